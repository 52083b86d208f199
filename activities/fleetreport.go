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

	"go.temporal.io/sdk/activity"
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
	// Parts is how many parts (WriteFleetReportPart, numbered from 1) hold the tenants: a
	// fleet of thousands sends its report in parts, each far below Temporal's payload
	// warning size, and this call joins them. Zero: Tenants holds every tenant.
	Parts int `json:"parts,omitempty"`
	// FirstRunID is set when the parts are named by the fleet's workflow ID and first run
	// (FleetReportPart.FirstRunID): parts written while the fleet ran, before its end time
	// was known.
	FirstRunID string `json:"firstRunId,omitempty"`
}

// FleetReportPart is up to MaxReportPartTenants lines of a fleet report, sent before the
// report itself (FleetReport.Parts).
type FleetReportPart struct {
	Fleet   string              `json:"fleet"`
	EndedAt time.Time           `json:"endedAt"`
	Part    int                 `json:"part"`
	Tenants []FleetReportTenant `json:"tenants"`
	// FleetWorkflowID and FirstRunID (the run that started the fleet, the same across
	// continue-as-new) name the part when set, instead of Fleet and EndedAt: a fleet writes
	// the lines of its finished tenants as it goes, long before it knows its end time.
	FleetWorkflowID string `json:"fleetWorkflowId,omitempty"`
	FirstRunID      string `json:"firstRunId,omitempty"`
}

// name is where the part is kept until WriteFleetReport joins it.
func (p FleetReportPart) name() string {
	if p.FirstRunID != "" {
		return partName(runBase(p.FleetWorkflowID, p.FirstRunID), p.Part)
	}
	return partName(reportBase(p.Fleet, p.EndedAt), p.Part)
}

// Bounds of one report part: at most this many tenants and about this many bytes, so that
// an activity input stays far below the 512 KB Temporal warns at.
const (
	MaxReportPartTenants = 1000
	MaxReportPartBytes   = 256 * 1024
	// MaxReportError bounds one tenant's error text in the report.
	MaxReportError = 4000
)

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
// volume or a synced bucket). Put replaces an object of the same name atomically; Get and
// Delete serve the parts a large report is sent in, so every worker must see one store.
type ReportStore interface {
	Put(ctx context.Context, name string, data []byte) (location string, err error)
	Get(ctx context.Context, name string) ([]byte, error)
	Delete(ctx context.Context, name string) error
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
	base := reportBase(r.Fleet, r.EndedAt)
	var parts []string
	for i := 1; i <= r.Parts; i++ {
		name := FleetReportPart{Fleet: r.Fleet, EndedAt: r.EndedAt, Part: i, FleetWorkflowID: r.FleetWorkflowID, FirstRunID: r.FirstRunID}.name()
		data, err := a.Reports.Get(ctx, name)
		if err != nil {
			return FleetReportWritten{}, fmt.Errorf("read part %d of %d of the fleet report (%s): %w — every worker must share the reports.dir", i, r.Parts, name, err)
		}
		var p FleetReportPart
		if err := json.Unmarshal(data, &p); err != nil {
			return FleetReportWritten{}, fmt.Errorf("read part %d of the fleet report (%s): %w", i, name, err)
		}
		r.Tenants = append(r.Tenants, p.Tenants...)
		parts = append(parts, name)
	}
	r.Tenants = oncePerTenant(r.Tenants)
	r.Parts, r.FirstRunID = 0, ""
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
	for _, name := range parts {
		if err := a.Reports.Delete(ctx, name); err != nil {
			activity.GetLogger(ctx).Warn("could not delete a part of the fleet report", "part", name, "error", err)
		}
	}
	return out, nil
}

// WriteFleetReportPart keeps one part of a fleet's report until WriteFleetReport joins the
// parts; a retry rewrites the same part.
func (a *Activities) WriteFleetReportPart(ctx context.Context, p FleetReportPart) (FleetReportWritten, error) {
	if a.Reports == nil {
		return FleetReportWritten{Skipped: "no report location configured (worker config reports.dir)"}, nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return FleetReportWritten{}, err
	}
	loc, err := a.Reports.Put(ctx, p.name(), data)
	if err != nil {
		return FleetReportWritten{}, fmt.Errorf("write part %d of the fleet report: %w — check the worker's reports.dir (exists, writable)", p.Part, err)
	}
	return FleetReportWritten{Locations: []string{loc}}, nil
}

// ReportParts splits a report's tenants into parts within MaxReportPartTenants and about
// MaxReportPartBytes each, cutting each error to MaxReportError characters.
func ReportParts(tenants []FleetReportTenant) [][]FleetReportTenant {
	var parts [][]FleetReportTenant
	var cur []FleetReportTenant
	size := 0
	for _, t := range tenants {
		if len(t.Error) > MaxReportError {
			t.Error = strings.ToValidUTF8(t.Error[:MaxReportError], "") + "…"
		}
		n := 300 + len(t.WorkflowID) + len(t.RunID) + len(t.TenantID) + len(t.Name) + len(t.Wave) + len(t.Outcome) + len(t.Error) + len(t.FromVersion) + len(t.Stage)
		if len(cur) > 0 && (len(cur) >= MaxReportPartTenants || size+n > MaxReportPartBytes) {
			parts, cur, size = append(parts, cur), nil, 0
		}
		cur = append(cur, t)
		size += n
	}
	if len(cur) > 0 {
		parts = append(parts, cur)
	}
	return parts
}

// oncePerTenant keeps one line per upgrade workflow, the last one written, where the first
// stood: a part written again (a fleet run that did not learn its write succeeded sends the
// same part again, with the tenants that finished since) never lists a tenant twice.
func oncePerTenant(ts []FleetReportTenant) []FleetReportTenant {
	at := make(map[string]int, len(ts))
	out := ts[:0:0]
	for _, t := range ts {
		if i, ok := at[t.WorkflowID]; ok && t.WorkflowID != "" {
			out[i] = t
			continue
		}
		at[t.WorkflowID] = len(out)
		out = append(out, t)
	}
	return out
}

// runBase names the parts a fleet writes as it goes: its workflow ID and first run.
func runBase(fleetWorkflowID, firstRunID string) string {
	return fmt.Sprintf("%s-%s", safeName(fleetWorkflowID), safeName(firstRunID))
}

func reportBase(fleet string, endedAt time.Time) string {
	return fmt.Sprintf("%s-%s", safeName(fleet), endedAt.UTC().Format("20060102T150405Z"))
}

// partName keeps parts out of the report's own name pattern (<fleet>-<end>.json).
func partName(base string, part int) string {
	return fmt.Sprintf("%s.json.part-%04d", base, part)
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
