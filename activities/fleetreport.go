package activities

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
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
	// TenantsGzip, when set, holds the tenants instead of Tenants, as gzip-compressed JSON:
	// a report of 5,000 tenants is megabytes of JSON, past the 512 KB an activity's input
	// should stay under (PackReportTenants).
	TenantsGzip []byte `json:"tenantsGzip,omitempty"`
}

// PackReportTenants sets TenantsGzip from Tenants and clears Tenants.
func (r *FleetReport) PackReportTenants() error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(zw).Encode(r.Tenants); err != nil {
		return fmt.Errorf("pack the report's tenants: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("pack the report's tenants: %w", err)
	}
	r.TenantsGzip, r.Tenants = buf.Bytes(), nil
	return nil
}

// unpackTenants turns TenantsGzip back into Tenants.
func (r *FleetReport) unpackTenants() error {
	if len(r.TenantsGzip) == 0 {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.TenantsGzip))
	if err != nil {
		return fmt.Errorf("read the report's packed tenants: %w", err)
	}
	if err := json.NewDecoder(zr).Decode(&r.Tenants); err != nil {
		return fmt.Errorf("read the report's packed tenants: %w", err)
	}
	r.TenantsGzip = nil
	return nil
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
	if err := r.unpackTenants(); err != nil {
		return FleetReportWritten{}, temporal.NewNonRetryableApplicationError(err.Error(), "BadFleetReport", err)
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
