package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// TestFleetOf200OnRealServer runs a generated 200-tenant fleet (canary wave, then bulk) on the
// embedded server against the simulator, and a second fleet that tries to upgrade a tenant the
// first one is already upgrading.
func TestFleetOf200OnRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("200-tenant fleet: skipped with -short")
	}
	scn := sim.Generate(200, 11)
	scn.Faults = sim.Faults{}
	ctx := context.Background()
	s, err := stack.Start(ctx, stack.Options{Scenario: scn, Speed: 120})
	require.NoError(t, err)
	t.Cleanup(s.Stop)

	inv := s.Inventory("fleet200")
	inv.Waves = []workflows.WaveSpec{{Name: "canary", Concurrency: 10}, {Name: "bulk", Concurrency: 100}}
	for i := range inv.Tenants {
		if i < 10 {
			inv.Tenants[i].Tenant.Wave = "canary"
		}
	}
	id, state, err := s.Ops.LaunchFleet(ctx, inv)
	require.NoError(t, err)
	require.Equal(t, "started", state)

	// A second fleet with one canary tenant, launched while the first fleet upgrades it.
	dup := &inventory.Inventory{Path: "(dup)", Fleet: "dup", Config: inv.Config, Waves: []workflows.WaveSpec{{Name: "all"}}, Tenants: inv.Tenants[:1]}
	dupTenant := inv.Tenants[0].Tenant.UpgradeWorkflowID()
	require.Eventually(t, func() bool {
		_, err := s.Client.DescribeWorkflowExecution(ctx, dupTenant, "")
		return err == nil
	}, time.Minute, 200*time.Millisecond)
	dupID, _, err := s.Ops.LaunchFleet(ctx, dup)
	require.NoError(t, err)

	wctx, cancel := context.WithTimeout(ctx, 12*time.Minute)
	defer cancel()
	var res workflows.FleetResult
	require.NoError(t, s.Client.GetWorkflow(wctx, id, "").Get(wctx, &res))
	var dupRes workflows.FleetResult
	require.NoError(t, s.Client.GetWorkflow(wctx, dupID, "").Get(wctx, &dupRes))

	require.Equal(t, 200, res.Total)
	require.Equal(t, map[workflows.Outcome]int{workflows.OutcomeUpgraded: 200}, res.Outcomes, "failed: %v", res.Failed)
	tenants, err := s.Ops.FleetTenants(ctx, id) // the tenants query, answered for a finished fleet too
	require.NoError(t, err)
	require.Len(t, tenants, 200)
	for _, tn := range tenants {
		require.Equal(t, 1, tn.Starts, tn.Name)
		require.Equal(t, workflows.OutcomeUpgraded, tn.Outcome, "%s: %s", tn.Name, tn.Error)
	}
	require.Equal(t, map[workflows.Outcome]int{workflows.OutcomeSkipped: 1}, dupRes.Outcomes, "a tenant is never upgraded by two fleets at once")

	// Exactly one upgrade workflow per tenant, and the canary wave ended before bulk began.
	us, err := s.Ops.List(ctx, fmt.Sprintf("WorkflowType = '%s'", workflows.TenantUpgradeWorkflow))
	require.NoError(t, err)
	require.Len(t, us, 200, "one upgrade per tenant, none twice")
	canary := map[string]bool{}
	for _, e := range inv.Tenants[:10] {
		canary[e.Tenant.UpgradeWorkflowID()] = true
	}
	var canaryEnd, bulkStart time.Time
	for _, u := range us {
		require.Equal(t, "Completed", u.Status, u.WorkflowID)
		if canary[u.WorkflowID] {
			if u.Close.After(canaryEnd) {
				canaryEnd = u.Close
			}
		} else if bulkStart.IsZero() || u.Start.Before(bulkStart) {
			bulkStart = u.Start
		}
	}
	require.False(t, bulkStart.Before(canaryEnd), "bulk started %s before the canary ended %s", bulkStart, canaryEnd)
	for _, e := range inv.Tenants {
		c := s.Cloud.TenantCounters(e.Tenant.TenantID)
		require.Equal(t, 1, c.ImportsSucceeded-c.PortalInstalls, "%s: Work 365 imported exactly once", e.Tenant.DisplayName)
		st, ok := s.Cloud.State(e.Tenant.TenantID)
		require.True(t, ok)
		require.False(t, st.Frozen, "%s is left frozen", e.Tenant.DisplayName)
	}
	running, err := s.Ops.List(ctx, "ExecutionStatus = 'Running'")
	require.NoError(t, err)
	require.Empty(t, running, "no upgrade, child or fleet is left running")
}
