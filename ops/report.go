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
	// PartnerCenters is each Partner Center connection's outcome (direct partners).
	PartnerCenters []workflows.PartnerCenterResult `json:"partnerCenters,omitempty"`
	// HumanWait is how long the upgrade waited on people (finished upgrades).
	HumanWait time.Duration `json:"humanWait,omitempty"`
}

// fromResult fills the row from a finished upgrade's result.
func (r *ReportRow) fromResult(res workflows.Result) {
	r.Outcome, r.FromVersion, r.ToVersion = string(res.Outcome), res.FromVersion, res.ToVersion
	r.Stages, r.Confirmations, r.Warnings, r.Cleanup, r.Error = res.Stages, res.Confirmations, res.Warnings, res.Cleanup, res.Error
	r.PartnerCenters, r.HumanWait = res.PartnerCenters, res.HumanWait
	if n := len(res.Stages); n > 0 {
		r.Stage = string(res.Stages[n-1].Stage)
	}
}

// Duration is the time from the first stage's start to the last stage's end (zero while the
// upgrade runs).
func (r ReportRow) Duration() time.Duration {
	if len(r.Stages) == 0 {
		return 0
	}
	last := r.Stages[len(r.Stages)-1]
	if last.Ended == nil {
		return 0
	}
	return last.Ended.Sub(r.Stages[0].Started)
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
				row.fromResult(r)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// WriteReport writes rows as csv, json, markdown (a summary table, then each tenant's stages
// with what they did, Partner Center connections, warnings and confirmations) or table (an
// aligned summary that fits a 120-column terminal).
func WriteReport(w io.Writer, format string, rows []ReportRow) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"tenant_id", "tenant_name", "workflow_id", "outcome", "from_version", "to_version", "stage", "stage_durations", "confirmations", "warnings", "cleanup", "error",
			"duration", "human_wait", "partner_centers", "stage_notes"})
		for _, r := range rows {
			_ = cw.Write([]string{r.TenantID, r.TenantName, r.WorkflowID, r.Outcome, r.FromVersion, r.ToVersion, r.Stage,
				durations(r.Stages), confirmations(r.Confirmations), strings.Join(r.Warnings, " | "), strings.Join(r.Cleanup, " | "), r.Error,
				showDuration(r.Duration()), showDuration(r.HumanWait), partnerCenters(r.PartnerCenters, " | "), stageNotes(r.Stages)})
		}
		cw.Flush()
		return cw.Error()
	case "markdown", "md":
		writeMarkdown(w, rows)
		return nil
	case "table":
		return WriteTable(w, rows)
	}
	return fmt.Errorf("report format %q: use csv, json, markdown or table", format)
}

// writeMarkdown writes the summary table, then one section per tenant.
func writeMarkdown(w io.Writer, rows []ReportRow) {
	fmt.Fprintln(w, "| tenant | outcome | from → to | stage | duration | human waits | stage durations | confirmations | warnings | Partner Center |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s (`%s`) | %s | %s → %s | %s | %s | %s | %s | %s | %s | %s |\n", md(r.TenantName), r.TenantID, r.Outcome, orNone(r.FromVersion), r.ToVersion,
			r.Stage, showDuration(r.Duration()), showDuration(r.HumanWait), md(durations(r.Stages)), md(confirmations(r.Confirmations)),
			md(strings.Join(append(append([]string{}, r.Warnings...), r.Cleanup...), "; ")), md(partnerCenters(r.PartnerCenters, "; ")))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "\n## %s (`%s`): %s\n\n", r.TenantName, r.TenantID, r.Outcome)
		fmt.Fprintf(w, "Workflow `%s`; %s → %s", r.WorkflowID, orNone(r.FromVersion), r.ToVersion)
		if d := r.Duration(); d > 0 {
			fmt.Fprintf(w, " in %s, %s of it waiting on people", showDuration(d), showDuration(r.HumanWait))
		}
		fmt.Fprintln(w, ".")
		if r.Error != "" {
			fmt.Fprintf(w, "\n**Error:** %s\n", r.Error)
		}
		if len(r.Stages) > 0 {
			fmt.Fprintln(w, "\n| stage | took | what it did |\n|---|---|---|")
			for _, s := range r.Stages {
				took := "running"
				if s.Ended != nil {
					took = showDuration(s.Ended.Sub(s.Started))
				}
				fmt.Fprintf(w, "| %s | %s | %s |\n", s.Stage, took, md(s.Note))
			}
		}
		list := func(title string, items []string) {
			if len(items) == 0 {
				return
			}
			fmt.Fprintf(w, "\n**%s:**\n\n", title)
			for _, it := range items {
				fmt.Fprintf(w, "- %s\n", it)
			}
		}
		var pcs []string
		for _, pc := range r.PartnerCenters {
			pcs = append(pcs, pc.Summary())
		}
		list("Partner Center", pcs)
		list("Warnings", r.Warnings)
		list("Cleanup", r.Cleanup)
		if c := confirmations(r.Confirmations); c != "" {
			list("Confirmations", strings.Split(c, "; "))
		}
	}
}

// Column widths of the terminal table: with two spaces between columns it is at most 120
// characters wide.
var tableColumns = []struct {
	title string
	width int
}{{"TENANT", 30}, {"OUTCOME", 15}, {"FROM → TO", 19}, {"DURATION", 9}, {"HUMAN WAITS", 16}, {"WARNINGS", 8}, {"PC VERIFIED", 11}}

// WriteTable writes an aligned summary, one line per tenant, that fits 120 columns; long
// names are cut with "…". The full report is the markdown or csv format.
func WriteTable(w io.Writer, rows []ReportRow) error {
	cells := [][]string{}
	head := make([]string, len(tableColumns))
	for i, c := range tableColumns {
		head[i] = c.title
	}
	cells = append(cells, head)
	for _, r := range rows {
		verified := 0
		for _, pc := range r.PartnerCenters {
			if pc.Verified {
				verified++
			}
		}
		pc := "—"
		if len(r.PartnerCenters) > 0 {
			pc = fmt.Sprintf("%d/%d", verified, len(r.PartnerCenters))
		}
		waits := "—"
		if r.HumanWait > 0 || len(r.Confirmations) > 0 {
			waits = fmt.Sprintf("%s (%d tasks)", showDuration(r.HumanWait), len(r.Confirmations))
		}
		dur := "—"
		if d := r.Duration(); d > 0 {
			dur = showDuration(d)
		}
		cells = append(cells, []string{r.TenantName, r.Outcome, orNone(r.FromVersion) + " → " + r.ToVersion, dur, waits, fmt.Sprint(len(r.Warnings)), pc})
	}
	var b strings.Builder
	for _, row := range cells {
		b.Reset()
		for i, cell := range row {
			width := tableColumns[i].width
			if len([]rune(cell)) > width {
				cell = string([]rune(cell)[:width-1]) + "…"
			}
			if i == len(row)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(cell + strings.Repeat(" ", width-len([]rune(cell))+2))
		}
		if _, err := fmt.Fprintln(w, strings.TrimRight(b.String(), " ")); err != nil {
			return err
		}
	}
	return nil
}

func showDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return workflows.ShortDuration(d)
}

func partnerCenters(pcs []workflows.PartnerCenterResult, sep string) string {
	parts := make([]string, 0, len(pcs))
	for _, pc := range pcs {
		parts = append(parts, pc.Summary())
	}
	return strings.Join(parts, sep)
}

func stageNotes(stages []workflows.StageRecord) string {
	parts := make([]string, 0, len(stages))
	for _, s := range stages {
		if s.Note != "" {
			parts = append(parts, string(s.Stage)+": "+s.Note)
		}
	}
	return strings.Join(parts, " | ")
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

// ConfirmedBy says who stands behind a confirmation (workflows.Confirmation.Who): verified
// desk confirmations, operators on behalf of someone, or the name given.
func ConfirmedBy(c workflows.Confirmation) string { return c.Who() }

func confirmations(cs []workflows.Confirmation) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		p := fmt.Sprintf("%s by %s at %s", c.TaskID, ConfirmedBy(c), c.At.UTC().Format(time.RFC3339))
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
