package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// TestClientRecoversFromSpentBudgets: a burst over Graph's per-app-per-tenant budget and over
// Dataverse's request budget is answered 429 with Retry-After, and the production client
// (msapi's in-place retry) waits and succeeds, on the real clock.
func TestClientRecoversFromSpentBudgets(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for real Retry-After seconds")
	}
	scn, err := sim.LoadScenario("../../examples/sim-scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scn.Faults = sim.Faults{}
	for i := range scn.Tenants {
		scn.Tenants[i].Faults = nil
	}
	scn.Limits.Graph = sim.GraphLimits{ResourceUnits: 3, Window: 2 * time.Second}
	scn.Limits.Dataverse.Requests = 3
	scn.Limits.Dataverse.Window = 2 * time.Second
	cloud := sim.New(scn, sim.Options{Clock: sim.SystemClock{}})
	defer cloud.Close()
	a := wire(t, cloud)
	ctx := context.Background()
	tn := scn.Tenants[0]
	start := time.Now()
	for i := 0; i < 5; i++ {
		if _, err := a.graph.GetUser(ctx, tn.TenantID, tn.Admin.UPN); err != nil {
			t.Fatalf("Graph call %d: %v", i, err)
		}
	}
	if c := cloud.TenantCounters(tn.TenantID); c.BudgetThrottled != 1 {
		t.Fatalf("a Graph burst of 5 over a budget of 3 was throttled %d times", c.BudgetThrottled)
	}
	for i := 0; i < 5; i++ {
		if _, err := a.dv.WhoAmI(ctx, tn.OrgURL); err != nil {
			t.Fatalf("Dataverse call %d: %v", i, err)
		}
	}
	c := cloud.TenantCounters(tn.TenantID)
	if c.BudgetThrottled != 2 {
		t.Fatalf("a burst of 5 over budgets of 3 was throttled %d times", c.BudgetThrottled)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the client did not wait for Retry-After (%v)", took)
	}
	t.Logf("%d budget 429s, recovered in %v", c.BudgetThrottled, time.Since(start).Round(time.Millisecond))
}
