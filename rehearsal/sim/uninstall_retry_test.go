package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// A StartPortalUninstall retried while its first attempt's uninstall still runs (the worker
// was killed, or the answer was lost) follows that operation: a second start would be refused
// by Dataverse ("another [Uninstall] running") and fail the upgrade.
func TestRetriedStartPortalUninstallFollowsTheRunningOne(t *testing.T) {
	scn := sim.Generate(1, 3)
	scn.Tenants[0].Work365Version = "2.1.0.3"
	scn.Tenants[0].Portal = true
	scn.Tenants[0].PortalVersion = "2.1.0.0"
	scn.Tenants[0].Uninstall.Duration = 10 * time.Minute
	clock := scn.NewClock()
	cloud := sim.New(scn, sim.Options{Clock: clock, NoFaults: true})
	defer cloud.Close()
	a := wire(t, cloud)
	tn := scn.Tenants[0]
	acts := &activities.Activities{Dataverse: a.dv, Names: cloud.Names()}
	ref := activities.TenantRef{TenantID: tn.TenantID, OrgURL: tn.OrgURL}
	ctx := context.Background()

	first, err := acts.StartPortalUninstall(ctx, ref)
	if err != nil || first.OperationID == "" {
		t.Fatalf("first start: %+v %v", first, err)
	}
	again, err := acts.StartPortalUninstall(ctx, ref) // Temporal retries: the first answer was lost
	if err != nil {
		t.Fatalf("retried start: %v", err)
	}
	if again.OperationID != first.OperationID {
		t.Fatalf("the retry must follow the running uninstall %s, got %+v", first.OperationID, again)
	}
	clock.Advance(11 * time.Minute)
	if err := acts.WaitForAsyncOperation(ctx, again); err != nil {
		t.Fatal(err)
	}
	k := cloud.TenantCounters(tn.TenantID)
	if k.Uninstalls != 1 || k.UninstallsRefused != 0 || k.PortalUninstalls != 1 {
		t.Fatalf("uninstalls %d, refused %d, done %d: want one started, none refused, one done", k.Uninstalls, k.UninstallsRefused, k.PortalUninstalls)
	}
}
