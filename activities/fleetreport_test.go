package activities

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// TestWriteFleetReportJoinsPartsWrittenAsItGoes: parts a fleet wrote while it ran (named by
// its workflow ID and first run, no end time) and those of its end are joined into one
// report on disk; a part written again by a retry (the same number, with the tenants that
// finished since) lists each tenant once.
func TestWriteFleetReportJoinsPartsWrittenAsItGoes(t *testing.T) {
	dir := t.TempDir()
	a := &Activities{Reports: DirReports{Dir: dir}}
	ctx := context.Background()
	line := func(i int) FleetReportTenant {
		return FleetReportTenant{WorkflowID: fmt.Sprintf("w%d", i), RunID: fmt.Sprintf("r%d", i), TenantID: fmt.Sprintf("t%d", i), Name: fmt.Sprintf("n%d", i), Outcome: "upgraded"}
	}
	part := func(n int, from, to int) FleetReportPart {
		p := FleetReportPart{Fleet: "q4", Part: n, FleetWorkflowID: "work365-fleet/q4", FirstRunID: "0196f1c2-7a3b-7c4d-8e5f-0123456789ab"}
		for i := from; i < to; i++ {
			p.Tenants = append(p.Tenants, line(i))
		}
		return p
	}
	// While the fleet runs: part 1 (tenants 0-2), then part 2 written, seen to fail, and
	// written again by the next run with one more tenant.
	for _, p := range []FleetReportPart{part(1, 0, 3), part(2, 3, 5), part(2, 3, 6)} {
		w, err := a.WriteFleetReportPart(ctx, p)
		if err != nil || len(w.Locations) != 1 || strings.Contains(w.Locations[0], "0001010") {
			t.Fatalf("part %d: %+v %v (named without an end time)", p.Part, w, err)
		}
	}
	// At its end: part 3 with the rest, then the report joining the three.
	end := time.Date(2026, 12, 6, 4, 30, 0, 0, time.UTC)
	p3 := part(3, 6, 8)
	p3.EndedAt = end
	if _, err := a.WriteFleetReportPart(ctx, p3); err != nil {
		t.Fatal(err)
	}
	w, err := a.WriteFleetReport(ctx, FleetReport{Fleet: "q4", FleetWorkflowID: "work365-fleet/q4", EndedAt: end, Parts: 3, FirstRunID: p3.FirstRunID})
	if err != nil || len(w.Locations) != 2 {
		t.Fatalf("report: %+v %v", w, err)
	}
	var back FleetReport
	data, err := os.ReadFile(filepath.Join(dir, "q4-20261206T043000Z.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tn := range back.Tenants {
		ids = append(ids, tn.WorkflowID+"/"+tn.RunID)
	}
	if want := "w0/r0 w1/r1 w2/r2 w3/r3 w4/r4 w5/r5 w6/r6 w7/r7"; strings.Join(ids, " ") != want {
		t.Fatalf("tenants = %v, want %s", ids, want)
	}
	if back.Parts != 0 || back.FirstRunID != "" {
		t.Fatalf("the joined report still names parts: %+v", back)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("parts left behind: %v", names)
	}
	// A retried report call finds its parts gone: it must say so, not write an empty report.
	if _, err := a.WriteFleetReport(ctx, FleetReport{Fleet: "q4", FleetWorkflowID: "work365-fleet/q4", EndedAt: end, Parts: 3, FirstRunID: p3.FirstRunID}); err == nil || !strings.Contains(err.Error(), "part 1 of 3") {
		t.Fatalf("a missing part: %v", err)
	}
}

// Parts named by the fleet's run are the same object whoever writes them, whatever the
// fleet's end: a fleet with the same workflow ID started later (another first run) keeps
// apart.
func TestReportPartNames(t *testing.T) {
	p := FleetReportPart{Fleet: "q4", Part: 7, FleetWorkflowID: "work365-fleet/q4", FirstRunID: "run-a"}
	later := p
	later.EndedAt = time.Date(2026, 12, 6, 4, 30, 0, 0, time.UTC)
	if p.name() != later.name() || p.name() != "work365-fleet_2fq4-run-a.json.part-0007" {
		t.Fatalf("names: %s, %s", p.name(), later.name())
	}
	other := p
	other.FirstRunID = "run-b"
	if other.name() == p.name() {
		t.Fatal("two fleets with one workflow ID share a part")
	}
	old := FleetReportPart{Fleet: "q4", Part: 1, EndedAt: later.EndedAt}
	if old.name() != "q4-20261206T043000Z.json.part-0001" {
		t.Fatalf("parts of fleets before the change keep their names: %s", old.name())
	}
}
