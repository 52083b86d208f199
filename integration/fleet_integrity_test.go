package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// TestFleetIgnoresAForgedEndSignal runs a fleet on the real server, sends a tenant-finished
// signal claiming a running tenant failed (anyone with namespace access can), and shows the
// fleet still takes every end from the tenants' workflows; then reads those ends as the
// fleet's ReadTenantEnds activity does, with the stack's client (codec included).
func TestFleetIgnoresAForgedEndSignal(t *testing.T) {
	s := startStack(t, "testdata/scenario.yaml")
	ctx := context.Background()
	inv := s.Inventory("integrity")
	inv.Waves = []workflows.WaveSpec{{Name: "all", Concurrency: 5}}
	id, _, err := s.Ops.LaunchFleet(ctx, inv)
	require.NoError(t, err)

	var victim workflows.FleetTenant
	require.Eventually(t, func() bool {
		ts, err := s.Ops.FleetTenants(ctx, id)
		if err != nil {
			return false
		}
		for _, tn := range ts {
			if tn.State == workflows.TenantRunning && tn.RunID != "" {
				victim = tn
				return true
			}
		}
		return false
	}, 2*time.Minute, 200*time.Millisecond, "a tenant runs")
	require.NoError(t, s.Client.SignalWorkflow(ctx, id, "", workflows.SignalTenantFinished,
		workflows.TenantProgress{WorkflowID: victim.WorkflowID, Stage: workflows.StageDone, Outcome: workflows.OutcomeFailed, Error: "forged"}))
	time.Sleep(2 * time.Second)
	ts, err := s.Ops.FleetTenants(ctx, id)
	require.NoError(t, err)
	for _, tn := range ts {
		if tn.WorkflowID == victim.WorkflowID && tn.State == workflows.TenantFinished {
			require.NotEqual(t, "forged", tn.Error, "the forged end was taken")
		}
	}

	wctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	var res workflows.FleetResult
	require.NoError(t, s.Client.GetWorkflow(wctx, id, "").Get(wctx, &res))
	require.Equal(t, map[workflows.Outcome]int{workflows.OutcomeUpgraded: 5}, res.Outcomes, "failed: %v", res.Failed)

	ts, err = s.Ops.FleetTenants(ctx, id)
	require.NoError(t, err)
	var runs []activities.TenantRun
	for _, tn := range ts {
		runs = append(runs, activities.TenantRun{WorkflowID: tn.WorkflowID, RunID: tn.RunID})
	}
	ends, err := (&activities.Activities{Workflows: s.Client}).ReadTenantEnds(ctx, runs)
	require.NoError(t, err)
	require.Len(t, ends, 5)
	for i, e := range ends {
		require.True(t, e.Closed, e.WorkflowID)
		require.Equal(t, "Completed", e.Status)
		require.Equal(t, runs[i].RunID, e.RunID, "the run the fleet started")
		require.Equal(t, string(workflows.OutcomeUpgraded), e.Outcome, "read from the upgrade's own result: %s", e.WorkflowID)
	}
}
