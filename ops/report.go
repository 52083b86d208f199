package ops

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/workflows"
)

// ReportRow is one tenant of a report.
type ReportRow struct {
	WorkflowID    string                   `json:"workflowId"`
	TenantID      string                   `json:"tenantId"`
	TenantName    string                   `json:"tenantName"`
	Fleet         string                   `json:"fleet,omitempty"`
	Outcome       string                   `json:"outcome"`
	FromVersion   string                   `json:"fromVersion"`
	ToVersion     string                   `json:"toVersion"`
	Stage         string                   `json:"stage"`
	Stages        []workflows.StageRecord  `json:"stages"`
	Confirmations []workflows.Confirmation `json:"confirmations,omitempty"`
	Warnings      []string                 `json:"warnings,omitempty"`
	Cleanup       []string                 `json:"cleanup,omitempty"`
	Error         string                   `json:"error,omitempty"`
}

// Report gathers one row per upgrade matching the query: results of finished upgrades, status
// of running ones (outcome "running").
func (o Ops) Report(ctx context.Context, query string) ([]ReportRow, error) {
	us, err := o.List(ctx, query)
	if err != nil {
		return nil, err
	}
	rows := make([]ReportRow, 0, len(us))
	for _, u := range us {
		row := ReportRow{WorkflowID: u.WorkflowID, TenantID: u.TenantID, TenantName: u.TenantName, Fleet: u.Fleet}
		if u.Status == "Running" {
			s, err := o.Status(ctx, u.WorkflowID)
			if err != nil {
				return nil, err
			}
			row.Outcome, row.FromVersion, row.ToVersion, row.Stage = "running", s.FromVersion, s.ToVersion, string(s.Stage)
			row.Stages, row.Confirmations, row.Warnings = s.Stages, s.Confirmations, s.Warnings
		} else {
			r, err := o.Result(ctx, u.WorkflowID)
			if err != nil {
				row.Outcome, row.Error = strings.ToLower(u.Status), err.Error()
			} else {
				row.Outcome, row.FromVersion, row.ToVersion = string(r.Outcome), r.FromVersion, r.ToVersion
				row.Stages, row.Confirmations, row.Warnings, row.Cleanup, row.Error = r.Stages, r.Confirmations, r.Warnings, r.Cleanup, r.Error
				if n := len(r.Stages); n > 0 {
					row.Stage = string(r.Stages[n-1].Stage)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// WriteReport writes rows as csv, json or markdown.
func WriteReport(w io.Writer, format string, rows []ReportRow) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"tenant_id", "tenant_name", "workflow_id", "outcome", "from_version", "to_version", "stage", "stage_durations", "confirmations", "warnings", "cleanup", "error"})
		for _, r := range rows {
			_ = cw.Write([]string{r.TenantID, r.TenantName, r.WorkflowID, r.Outcome, r.FromVersion, r.ToVersion, r.Stage,
				durations(r.Stages), confirmations(r.Confirmations), strings.Join(r.Warnings, " | "), strings.Join(r.Cleanup, " | "), r.Error})
		}
		cw.Flush()
		return cw.Error()
	case "markdown", "md":
		fmt.Fprintln(w, "| tenant | outcome | from → to | stage | stage durations | confirmations | warnings |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, r := range rows {
			fmt.Fprintf(w, "| %s (`%s`) | %s | %s → %s | %s | %s | %s | %s |\n", md(r.TenantName), r.TenantID, r.Outcome, orNone(r.FromVersion), r.ToVersion,
				r.Stage, md(durations(r.Stages)), md(confirmations(r.Confirmations)), md(strings.Join(append(append([]string{}, r.Warnings...), r.Cleanup...), "; ")))
		}
		return nil
	}
	return fmt.Errorf("report format %q: use csv, json or markdown", format)
}

// durations sums each stage's time ("import=12m0s; registration=25m0s").
func durations(stages []workflows.StageRecord) string {
	var parts []string
	order := []workflows.Stage{}
	sum := map[workflows.Stage]time.Duration{}
	for _, s := range stages {
		if s.Ended == nil {
			continue
		}
		if _, ok := sum[s.Stage]; !ok {
			order = append(order, s.Stage)
		}
		sum[s.Stage] += s.Ended.Sub(s.Started)
	}
	for _, st := range order {
		parts = append(parts, fmt.Sprintf("%s=%s", st, sum[st].Round(time.Second)))
	}
	return strings.Join(parts, "; ")
}

func confirmations(cs []workflows.Confirmation) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		p := fmt.Sprintf("%s by %s at %s", c.TaskID, c.By, c.At.UTC().Format(time.RFC3339))
		if c.Decision != "" {
			p += " (" + c.Decision + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func md(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
