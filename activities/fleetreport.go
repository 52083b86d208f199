package activities

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FleetReport is a fleet's final report, written when the fleet ends so that the outcome of
// every tenant (and the run IDs that find its archived history) outlives Temporal's retention.
type FleetReport struct {
	Fleet           string              `json:"fleet"`
	FleetWorkflowID string              `json:"fleetWorkflowId"`
	Cancelled       bool                `json:"cancelled"`
	EndedAt         time.Time           `json:"endedAt"`
	Tenants         []FleetReportTenant `json:"tenants"`
	Events          []string            `json:"events,omitempty"`
}

// FleetReportTenant is one tenant's line of a fleet report.
type FleetReportTenant struct {
	WorkflowID  string    `json:"workflowId"`
	RunID       string    `json:"runId,omitempty"`
	TenantID    string    `json:"tenantId"`
	Name        string    `json:"name"`
	Wave        string    `json:"wave"`
	Outcome     string    `json:"outcome"`
	Error       string    `json:"error,omitempty"`
	FromVersion string    `json:"fromVersion,omitempty"`
	Stage       string    `json:"stage,omitempty"`
	Since       time.Time `json:"since,omitzero"`
}

// ReportStore keeps fleet reports (worker config reports.dir: a folder, e.g. a mounted
// volume or a synced bucket). Put replaces an object of the same name atomically.
type ReportStore interface {
	Put(ctx context.Context, name string, data []byte) (location string, err error)
}

// FleetReportWritten says where a report went (empty when no store is configured).
type FleetReportWritten struct {
	Locations []string `json:"locations,omitempty"`
	Skipped   string   `json:"skipped,omitempty"`
}

// WriteFleetReport writes the report as JSON and CSV, named after the fleet and its end; a
// retry rewrites the same objects.
func (a *Activities) WriteFleetReport(ctx context.Context, r FleetReport) (FleetReportWritten, error) {
	if a.Reports == nil {
		return FleetReportWritten{Skipped: "no report location configured (worker config reports.dir)"}, nil
	}
	base := fmt.Sprintf("%s-%s", safeName(r.Fleet), r.EndedAt.UTC().Format("20060102T150405Z"))
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return FleetReportWritten{}, err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"fleet", "workflowId", "runId", "tenantId", "name", "wave", "outcome", "error", "fromVersion", "stage", "since"})
	for _, t := range r.Tenants {
		since := ""
		if !t.Since.IsZero() {
			since = t.Since.UTC().Format(time.RFC3339)
		}
		_ = w.Write([]string{r.Fleet, t.WorkflowID, t.RunID, t.TenantID, t.Name, t.Wave, t.Outcome, t.Error, t.FromVersion, t.Stage, since})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return FleetReportWritten{}, err
	}
	var out FleetReportWritten
	for _, obj := range []struct {
		name string
		data []byte
	}{{base + ".json", js}, {base + ".csv", buf.Bytes()}} {
		loc, err := a.Reports.Put(ctx, obj.name, obj.data)
		if err != nil {
			return FleetReportWritten{}, fmt.Errorf("write fleet report %s: %w — check the worker's reports.dir (exists, writable)", obj.name, err)
		}
		out.Locations = append(out.Locations, loc)
	}
	return out, nil
}

// safeName keeps a fleet name usable as a file name.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteString("_" + strconv.FormatInt(int64(r), 16))
		}
	}
	if b.Len() == 0 {
		return "fleet"
	}
	return b.String()
}
