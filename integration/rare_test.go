package integration

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// TestRarePathsOnARealTenant runs the rarer paths on the real embedded server, through the
// simulated cloud and the autopilot, so that their histories can be recorded for the replay
// tests (RECORD_HISTORIES): a drain deadline, a failed import retried, reminders and an
// escalation, a moved window, a confirmation by Signal, and a cancellation.
func TestRarePathsOnARealTenant(t *testing.T) {
	if testing.Short() {
		t.Skip("rehearsal of about three minutes")
	}
	ctx := context.Background()
	s := startStackWith(t, "testdata/rare.yaml", stack.Options{Speed: 300})

	inv := s.Inventory("rare")
	launched, err := s.Ops.Launch(ctx, inv)
	require.NoError(t, err)
	ids := map[string]string{}
	for _, l := range launched {
		ids[l.TenantName] = l.WorkflowID
	}
	if dir := os.Getenv("RECORD_HISTORIES"); dir != "" {
		defer recordHistories(t, s, dir)
	}

	// The operator moves Tailspin's window (two days away) to now.
	now := time.Now().UTC()
	require.NoError(t, s.Ops.MoveWindow(ctx, ids["Tailspin window moved"], workflows.MoveWindowRequest{
		By: "operator:alice", Note: "customer agreed to upgrade today",
		Window: spec.Window{Start: now.Format(spec.WindowLayout), Length: "6h"},
	}))
	// The operator cancels Litware once it waits for Begin Upgrade.
	litware := ids["Litware cancelled"]
	require.Eventually(t, func() bool {
		st, err := s.Ops.Status(ctx, litware)
		return err == nil && st.Stage == workflows.StageConsentInit
	}, 2*time.Minute, 200*time.Millisecond)
	require.NoError(t, s.Ops.Cancel(ctx, litware))

	results := map[string]workflows.Result{}
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	for name, id := range ids {
		r, err := s.Ops.Result(wctx, id)
		require.NoError(t, err, "upgrade of %s", name)
		results[name] = r
		st, ok := s.Cloud.State(r.TenantID)
		require.True(t, ok)
		require.False(t, st.Frozen, "%s is left frozen", name)
	}

	drain := results["Contoso jobs never drain"]
	require.Equal(t, workflows.OutcomeUpgraded, drain.Outcome)
	require.Contains(t, kinds(drain.Confirmations), workflows.TaskDrainDeadline)
	require.True(t, anyContains(drain.Warnings, "proceeded with Work 365 jobs still pending"), drain.Warnings)

	imp := results["Fabrikam import fails once"]
	require.Equal(t, workflows.OutcomeUpgraded, imp.Outcome)
	require.Contains(t, kinds(imp.Confirmations), workflows.TaskImportFailed)
	k := s.Cloud.TenantCounters(imp.TenantID)
	require.Equal(t, 2, k.Imports, "the retry is a new import job")
	require.Equal(t, 1, k.ImportsFailed)

	slow := results["Northwind slow service account"]
	require.Equal(t, workflows.OutcomeUpgraded, slow.Outcome)
	require.Contains(t, kinds(slow.Confirmations), workflows.TaskRegisterMFAService)

	moved := results["Tailspin window moved"]
	require.Equal(t, workflows.OutcomeUpgraded, moved.Outcome)
	require.True(t, anyContains(moved.Warnings, "downtime window moved to "+now.Format(spec.WindowLayout)), moved.Warnings)

	signalled := results["Woodgrove signalled consent"]
	require.Equal(t, workflows.OutcomeUpgraded, signalled.Outcome)
	via := map[workflows.TaskKind]string{}
	for _, c := range signalled.Confirmations {
		via[c.Kind] = c.Via
	}
	require.Equal(t, "signal", via[workflows.TaskGetConsent])

	cancelled := results["Litware cancelled"]
	require.Equal(t, workflows.OutcomeCancelled, cancelled.Outcome)
	require.Contains(t, cancelled.Cleanup, "unfroze Work 365 activity")

	// Reminders and the escalation reached people (the autopilot received them).
	got := s.Autopilot.Received(ids["Northwind slow service account"])
	reminders, escalations := got["task-reminder"], got["task-escalated"]
	require.GreaterOrEqual(t, reminders, 3, "reminders every 4 simulated hours")
	require.Equal(t, 1, escalations, "one escalation after three reminders")
}
