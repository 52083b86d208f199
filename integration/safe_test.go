package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// TestSafeOnARealTenant rehearses, on the real embedded server through the simulated cloud and
// the autopilot, the situations in which an orchestration could harm a customer (issue 10): an
// expired orchestrator secret when the fleet starts, a new install whose service account says
// "done" 40 minutes late, a downtime window that already closed, a consent that is never given
// while the secret expires again as its cleanup runs, and a partner admin who takes 90 minutes
// while on-call terminates the Partner Center child after the upgrade went in.
func TestSafeOnARealTenant(t *testing.T) {
	if testing.Short() {
		t.Skip("rehearsal of about three minutes")
	}
	// Tokens live 30 simulated minutes (30 real seconds): every call signs in again, so the
	// secret's expiry reaches even a cleanup.
	s := startStackWith(t, "testdata/safe.yaml", stack.Options{Speed: speed, ScenarioTokenLifetime: true})
	ctx := context.Background()

	// The orchestrator's own secret is expired when the fleet starts, for 40 s (40 simulated
	// minutes): nobody's tenant is to blame.
	s.Cloud.SetOrchestratorCredentialExpired(true)
	restoredAt := time.Now().Add(40 * time.Second)
	restored := time.AfterFunc(time.Until(restoredAt), func() { s.Cloud.SetOrchestratorCredentialExpired(false) })
	defer restored.Stop()

	inv := s.Inventory("safe")
	launched, err := s.Ops.Launch(ctx, inv)
	require.NoError(t, err)
	ids := map[string]string{}
	for _, l := range launched {
		ids[l.TenantName] = l.WorkflowID
	}
	// Proseware: when the operator is asked to decide, the orchestrator's secret expires again,
	// so the cleanup unfreeze after the abort meets it and must wait it out.
	go func() {
		id := ids["Proseware consent never given"]
		if !waitFor(ctx, 4*time.Minute, func() bool {
			st, err := s.Ops.Status(ctx, id)
			return err == nil && st.Stage == workflows.StageRegistration && st.WaitingOn == workflows.Operator
		}) {
			return
		}
		time.Sleep(time.Until(restoredAt.Add(time.Second))) // after the first expiry has ended
		s.Cloud.SetOrchestratorCredentialExpired(true)
		time.AfterFunc(80*time.Second, func() { s.Cloud.SetOrchestratorCredentialExpired(false) })
	}()
	// Alpine: on-call terminates its Partner Center child after the upgrade went in.
	go func() {
		child := workflows.PartnerCenterWorkflowID(ids["Alpine direct slow partner admin"], "alpine-primary")
		if waitFor(ctx, 4*time.Minute, func() bool {
			d, err := s.Client.DescribeWorkflowExecution(ctx, child, "")
			return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		}) {
			_ = s.Client.TerminateWorkflow(ctx, child, "", "on-call terminated the child (simulated Partner Center failure)")
		}
	}()
	if dir := os.Getenv("RECORD_HISTORIES"); dir != "" {
		defer recordHistories(t, s, dir)
	}
	results := map[string]workflows.Result{}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for name, id := range ids {
		r, err := s.Ops.Result(wctx, id)
		require.NoError(t, err, "upgrade of %s", name)
		results[name] = r
	}

	for name, r := range results {
		require.NotEqual(t, workflows.OutcomeFailed, r.Outcome, "%s failed: %s", name, r.Error)
		require.True(t, anyContains(r.Warnings, "orchestrator fault"), "%s: the expired secret shows as an orchestrator fault: %v", name, r.Warnings)
		st, ok := s.Cloud.State(r.TenantID)
		require.True(t, ok)
		require.False(t, st.Frozen, "%s is left frozen", name)
	}

	// The new install: one round, the initialisation observed, exactly one initialisation.
	adatum := results["Adatum new install late word"]
	require.Equal(t, workflows.OutcomeUpgraded, adatum.Outcome)
	require.Equal(t, 1, adatum.LinkRounds, "Begin Upgrade was observed, not asked for again")
	require.Equal(t, 1, s.Cloud.TenantCounters(adatum.TenantID).Initialisations)

	// The closed window: the operator aborted, nothing was ever frozen.
	litware := results["Litware window closed"]
	require.Equal(t, workflows.OutcomeCancelled, litware.Outcome)
	require.Zero(t, s.Cloud.TenantCounters(litware.TenantID).Freezes, "never freeze outside the window")
	require.Contains(t, kinds(litware.Confirmations), workflows.TaskWindowClosed)

	// The consent never given: bounded, then the operator's abort, and unfrozen.
	proseware := results["Proseware consent never given"]
	require.Equal(t, workflows.OutcomeCancelled, proseware.Outcome)
	require.Equal(t, workflows.DefaultMaxFixRounds, countKind(proseware.Confirmations, workflows.TaskGetConsent))
	require.Contains(t, proseware.Cleanup, "unfroze Work 365 activity")
	require.Greater(t, lastIndex(proseware.Warnings, "orchestrator fault"), lastIndex(proseware.Warnings, "still not done after"),
		"the cleanup met the expired secret and waited it out: %v", proseware.Warnings)

	// The slow partner admin: unfrozen and the portal back before the re-consent.
	alpine := results["Alpine direct slow partner admin"]
	require.Equal(t, workflows.OutcomeUpgraded, alpine.Outcome)
	unfrozen, pc := stageOf(alpine, workflows.StageUnfreeze), stageOf(alpine, workflows.StagePartnerCenter)
	require.NotNil(t, unfrozen.Ended)
	require.False(t, pc.Started.Before(*unfrozen.Ended), "unfrozen before Partner Center re-consent")
	require.NotNil(t, pc.Ended)
	require.Positive(t, alpine.Frozen, "the result says how long Work 365 was frozen")
	require.Equal(t, 1, s.Cloud.TenantCounters(alpine.TenantID).PortalInstalls, "the portal is back")
	before := stageOf(alpine, workflows.StagePortalReinstall)
	require.NotNil(t, before.Ended)
	require.False(t, pc.Started.Before(*before.Ended), "portal reinstalled before Partner Center re-consent")
	require.Contains(t, kinds(alpine.Confirmations), workflows.TaskPostUpgradeFailed, "the child's failure asked the operator")
	require.True(t, anyContains(alpine.Warnings, "stage partner-center failed after the upgrade went in"), alpine.Warnings)
	require.Len(t, alpine.PartnerCenters, 1)
	require.True(t, alpine.PartnerCenters[0].Verified, alpine.PartnerCenters[0].Detail)

	// Exactly one Work 365 import wherever the upgrade got that far.
	require.Equal(t, 1, s.Cloud.TenantCounters(adatum.TenantID).Imports)
	require.Equal(t, 1, s.Cloud.TenantCounters(proseware.TenantID).HoldingImports)
	require.Equal(t, 1, s.Cloud.TenantCounters(alpine.TenantID).HoldingImports)
	require.Zero(t, s.Cloud.TenantCounters(litware.TenantID).Imports)
}

func waitFor(ctx context.Context, limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if ok() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func lastIndex(xs []string, sub string) int {
	last := -1
	for i, x := range xs {
		if strings.Contains(x, sub) {
			last = i
		}
	}
	return last
}

func anyContains(xs []string, sub string) bool {
	for _, x := range xs {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}

func kinds(cs []workflows.Confirmation) []workflows.TaskKind {
	out := make([]workflows.TaskKind, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

func countKind(cs []workflows.Confirmation, k workflows.TaskKind) int {
	n := 0
	for _, c := range cs {
		if c.Kind == k {
			n++
		}
	}
	return n
}

// stageOf returns the last record of a stage (a retried stage has several).
func stageOf(r workflows.Result, s workflows.Stage) workflows.StageRecord {
	var out workflows.StageRecord
	for _, x := range r.Stages {
		if x.Stage == s {
			out = x
		}
	}
	return out
}

// TestExampleScenarioLeavesNothingFrozen rehearses the README's example scenario (what
// `go run ./rehearsal/devstack` runs) and checks that no tenant is left frozen and nothing runs.
func TestExampleScenarioLeavesNothingFrozen(t *testing.T) {
	if testing.Short() {
		t.Skip("rehearsal of about a minute and a half")
	}
	s := startStack(t, "../examples/sim-scenario.yaml")
	ctx := context.Background()
	launched, err := s.Ops.Launch(ctx, s.Inventory("example"))
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	for _, l := range launched {
		r, err := s.Ops.Result(wctx, l.WorkflowID)
		require.NoError(t, err, l.TenantName)
		require.Equal(t, workflows.OutcomeUpgraded, r.Outcome, "%s: %s", l.TenantName, r.Error)
		st, ok := s.Cloud.State(l.TenantID)
		require.True(t, ok)
		require.False(t, st.Frozen, "%s is left frozen", l.TenantName)
	}
	running, err := s.Ops.List(ctx, "ExecutionStatus = 'Running'")
	require.NoError(t, err)
	require.Empty(t, running, "nothing is left running")
}
