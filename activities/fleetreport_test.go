package activities

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

type memReports map[string][]byte

func (m memReports) Put(_ context.Context, name string, data []byte) (string, error) {
	m[name] = data
	return "mem://" + name, nil
}

func (m memReports) Get(_ context.Context, name string) ([]byte, error) {
	d, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("%s: no such object", name)
	}
	return d, nil
}

func (m memReports) Delete(_ context.Context, name string) error {
	delete(m, name)
	return nil
}

// TestWriteFleetReportInParts: parts are joined into one JSON and one CSV, then deleted; a
// missing part is an error naming it.
func TestWriteFleetReportInParts(t *testing.T) {
	store := memReports{}
	a := &Activities{Reports: store}
	end := time.Date(2026, 12, 6, 4, 30, 0, 0, time.UTC)
	var all []FleetReportTenant
	for i := range 2500 {
		all = append(all, FleetReportTenant{WorkflowID: fmt.Sprintf("w%d", i), TenantID: fmt.Sprintf("t%d", i), Name: fmt.Sprintf("n%d", i), Outcome: "upgraded", Error: strings.Repeat("x", 5000)})
	}
	parts := ReportParts(all)
	n := 0
	for i, p := range parts {
		if len(p) > MaxReportPartTenants {
			t.Fatalf("part %d has %d tenants", i, len(p))
		}
		js, _ := json.Marshal(p)
		if len(js) > 2*MaxReportPartBytes {
			t.Fatalf("part %d is %d bytes", i, len(js))
		}
		n += len(p)
		if _, err := a.WriteFleetReportPart(context.Background(), FleetReportPart{Fleet: "big", EndedAt: end, Part: i + 1, Tenants: p}); err != nil {
			t.Fatal(err)
		}
	}
	if n != 2500 || len(parts) < 3 {
		t.Fatalf("%d tenants in %d parts", n, len(parts))
	}
	if _, err := a.WriteFleetReport(context.Background(), FleetReport{Fleet: "big", EndedAt: end, Parts: len(parts) + 1}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("part %d of %d", len(parts)+1, len(parts)+1)) {
		t.Fatalf("a missing part: %v", err)
	}
	if _, err := a.WriteFleetReport(context.Background(), FleetReport{Fleet: "big", EndedAt: end, Parts: len(parts)}); err != nil {
		t.Fatal(err)
	}
	var back FleetReport
	if err := json.Unmarshal(store["big-20261206T043000Z.json"], &back); err != nil || len(back.Tenants) != 2500 || back.Parts != 0 || back.Tenants[2499].WorkflowID != "w2499" {
		t.Fatalf("joined report: %v, %d tenants", err, len(back.Tenants))
	}
	if len(back.Tenants[0].Error) > MaxReportError+len("…") {
		t.Fatalf("error not cut: %d", len(back.Tenants[0].Error))
	}
	if len(store) != 2 {
		t.Fatalf("parts left behind: %d objects", len(store))
	}
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
