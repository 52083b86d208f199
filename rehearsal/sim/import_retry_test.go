package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// packages serves the Work 365 solution file the simulator accepts.
type packages struct{ name, version string }

func (p packages) Read(context.Context, string) ([]byte, error) {
	return sim.SolutionPackage(p.name, p.version), nil
}

// Issue 11 item 3: the import job row appears only when the asynchronous operation starts; a
// StartImport retried before then (its first answer lost) follows the running operation and
// never imports twice.
func TestRetriedStartImportBeforeTheJobRowImportsOnce(t *testing.T) {
	scn, err := sim.LoadScenario("../../examples/sim-scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scn.Tenants[0].Import.StartDelay = time.Minute
	clock := scn.NewClock()
	cloud := sim.New(scn, sim.Options{Clock: clock, NoFaults: true})
	defer cloud.Close()
	a := wire(t, cloud)
	names := cloud.Names()
	tn := scn.Tenants[0]
	acts := &activities.Activities{Dataverse: a.dv, Packages: packages{names.SolutionUniqueName, "2.5.0.1"}, Names: names}
	in := activities.ImportInput{Tenant: activities.TenantRef{TenantID: tn.TenantID, OrgURL: tn.OrgURL},
		PackageRef: "work365.zip", ImportJobID: "cccccccc-0000-4000-8000-000000000011", Holding: true, TargetVersion: "2.5.0.1"}
	ctx := context.Background()

	first, err := acts.StartImport(ctx, in)
	if err != nil || first.AsyncOperationID == "" || first.Already != "" {
		t.Fatalf("first start: %+v %v", first, err)
	}
	if j, err := a.dv.GetImportJob(ctx, tn.OrgURL, in.ImportJobID); err != nil || j != nil {
		t.Fatalf("the job row must not exist before the operation starts: %+v %v", j, err)
	}
	again, err := acts.StartImport(ctx, in) // the first answer was lost: Temporal retries
	if err != nil {
		t.Fatalf("retried start: %v", err)
	}
	if again.AsyncOperationID != first.AsyncOperationID || again.Already == "" {
		t.Fatalf("the retry must follow the running import: %+v (first %+v)", again, first)
	}
	clock.Advance(2 * time.Minute)
	if j, err := a.dv.GetImportJob(ctx, tn.OrgURL, in.ImportJobID); err != nil || j == nil {
		t.Fatalf("the job row exists once the operation started: %+v %v", j, err)
	}
	if st, err := acts.StartImport(ctx, in); err != nil || st.Already != "import job already started" {
		t.Fatalf("retry after the start: %+v %v", st, err)
	}
	k := cloud.TenantCounters(tn.TenantID)
	if k.Imports != 1 || k.ImportsRefused != 0 {
		t.Fatalf("imports %d, refused %d: want exactly one import and no refused start", k.Imports, k.ImportsRefused)
	}
}
