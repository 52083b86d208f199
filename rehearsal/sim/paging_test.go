package sim_test

import (
	"context"
	"testing"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// TestAdaptersFollowDataversePages: with the simulated Dataverse paging two rows at a time,
// the adapter follows @odata.nextLink to every row.
func TestAdaptersFollowDataversePages(t *testing.T) {
	scn, err := sim.LoadScenario("../../examples/sim-scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scn.DataversePageSize = 2
	scn.Tenants[0].Jobs = sim.Jobs{Pending: 7}
	cloud := sim.New(scn, sim.Options{Clock: scn.NewClock(), NoFaults: true})
	defer cloud.Close()
	a := wire(t, cloud)
	names := cloud.Names()
	rows, err := a.dv.(*dataverse.Client).ListRows(context.Background(), scn.Tenants[0].OrgURL, names.JobsEntitySet,
		dataverse.RowQuery{Select: []string{names.JobsIDColumn}, Filter: names.PendingJobsFilter})
	if err != nil || len(rows) != 7 {
		t.Fatalf("ListRows over pages of 2: %d rows, %v", len(rows), err)
	}
	calls := cloud.TenantCounters(scn.Tenants[0].TenantID).Calls["GET dataverse /api/data/v9.2/"+names.JobsEntitySet]
	if calls != 4 {
		t.Fatalf("%d requests for 7 rows in pages of 2, want 4", calls)
	}
}
