package integration

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/workflows"
)

// TestFleetWithApprovalGate runs the five-tenant scenario as a fleet on the real server: a
// canary wave behind an approval gate, then the rest two at a time; the operator approves
// through the same Update the starter sends.
func TestFleetWithApprovalGate(t *testing.T) {
	s := startStack(t, "testdata/scenario.yaml")
	ctx := context.Background()
	inv := s.Inventory("gated")
	one := 0
	inv.Waves = []workflows.WaveSpec{{Name: "canary", Concurrency: 1, Approval: true, MaxFailures: &one}, {Name: "rest", Concurrency: 2}}
	inv.Tenants[0].Tenant.Wave = "canary"
	id, state, err := s.Ops.LaunchFleet(ctx, inv)
	require.NoError(t, err)
	require.Equal(t, "started", state)
	d, err := s.Client.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	require.EqualValues(t, workflows.FleetPriorityKey, d.GetWorkflowExecutionInfo().GetPriority().GetPriorityKey(), "a fleet's tasks pass its tenants'")

	require.Eventually(t, func() bool {
		p, err := s.Ops.FleetProgress(ctx, id)
		return err == nil && p.Phase == "awaiting-approval"
	}, 4*time.Minute, 500*time.Millisecond, "the canary finishes and the gate closes")
	p, err := s.Ops.FleetProgress(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 1, p.Waves[0].ByOutcome[string(workflows.OutcomeUpgraded)])
	require.Equal(t, 4, p.Waves[1].Pending, "nothing of the next wave starts before the approval")
	require.Error(t, s.Ops.FleetAction(ctx, id, workflows.UpdateApproveWave, workflows.WaveApproval{Wave: "canary", By: "lead"}), "why is required")
	require.NoError(t, s.Ops.FleetAction(ctx, id, workflows.UpdateApproveWave, workflows.WaveApproval{Wave: "canary", By: "lead", Why: "canary upgraded cleanly"}))

	wctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	var res workflows.FleetResult
	require.NoError(t, s.Client.GetWorkflow(wctx, id, "").Get(wctx, &res))
	require.Equal(t, map[workflows.Outcome]int{workflows.OutcomeUpgraded: 5}, res.Outcomes, "failed: %v", res.Failed)
	rows, err := s.Ops.FleetReport(ctx, id)
	require.NoError(t, err)
	require.Len(t, rows, 5)
	for _, r := range rows {
		require.Equal(t, "upgraded", r.Outcome)
		require.NotEmpty(t, r.Stages, "stage durations in the report")
	}
	if dir := os.Getenv("RECORD_HISTORIES"); dir != "" {
		recordHistories(t, s, dir)
	}
}
