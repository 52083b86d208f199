package activities

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type memReports map[string][]byte

func (m memReports) Put(_ context.Context, name string, data []byte) (string, error) {
	m[name] = data
	return "mem://" + name, nil
}

func TestWriteFleetReportJSONAndCSV(t *testing.T) {
	store := memReports{}
	a := &Activities{Reports: store}
	end := time.Date(2026, 12, 6, 4, 30, 0, 0, time.UTC)
	r := FleetReport{Fleet: "q4/2026", FleetWorkflowID: "work365-fleet/q4/2026", EndedAt: end, Tenants: []FleetReportTenant{
		{WorkflowID: "w1", RunID: "r1", TenantID: "t1", Name: "Contoso, Ltd", Wave: "canary", Outcome: "upgraded"},
		{WorkflowID: "w2", RunID: "r2", TenantID: "t2", Name: "Fabrikam", Wave: "bulk", Outcome: "failed", Error: "import failed"},
	}}
	got, err := a.WriteFleetReport(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mem://q4_2f2026-20261206T043000Z.json", "mem://q4_2f2026-20261206T043000Z.csv"}
	if strings.Join(got.Locations, " ") != strings.Join(want, " ") {
		t.Fatalf("locations = %v, want %v", got.Locations, want)
	}
	var back FleetReport
	if err := json.Unmarshal(store["q4_2f2026-20261206T043000Z.json"], &back); err != nil || len(back.Tenants) != 2 || back.Tenants[1].Error != "import failed" {
		t.Fatalf("json: %v %+v", err, back)
	}
	rows, err := csv.NewReader(strings.NewReader(string(store["q4_2f2026-20261206T043000Z.csv"]))).ReadAll()
	if err != nil || len(rows) != 3 || rows[1][4] != "Contoso, Ltd" || rows[2][2] != "r2" {
		t.Fatalf("csv: %v %v", err, rows)
	}

	skipped, err := (&Activities{}).WriteFleetReport(context.Background(), r)
	if err != nil || skipped.Skipped == "" {
		t.Fatalf("without a store: %+v, %v", skipped, err)
	}
}
