package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// The tests of the safe runbook (issue 10): each shows a way an upgrade could harm a customer
// and what the workflow does instead.

// A new install whose Begin Upgrade went in but was never confirmed in time: the workflow sees
// Work 365's initialisation record and goes on, instead of asking for consent round after round.
func TestNewInstallBeginUpgradeSeenWithoutConfirmation(t *testing.T) {
	f := upgradeFrom21()
	f.installed = ""
	h := newHarness(t, f)
	// The service account clicks after 5 minutes but never confirms.
	h.replies[TaskBeginUpgrade] = []reply{{delay: 5 * time.Minute, act: func(f *fakeTenant) { f.begun = true }, skip: true}}
	h.env.RegisterDelayedCallback(func() {
		h.f.mu.Lock()
		h.f.begun = true
		h.f.mu.Unlock()
	}, 40*time.Minute) // after the registration form (20m) and Get Consent (10m), within the link
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 1, r.LinkRounds, "one round: the initialisation was observed")
	require.Equal(t, 1, h.tasksOpened(TaskGetConsent))
}

// The confirmation of Begin Upgrade reaches a task that already closed (the link timer fired
// first): it is kept as evidence, the workflow looks at the tenant, sees the initialisation,
// and closes the next round's Get Consent instead of looping.
func TestLateBeginUpgradeConfirmationIsEvidence(t *testing.T) {
	f := upgradeFrom21()
	f.installed = ""
	h := newHarness(t, f)
	h.replies[TaskBeginUpgrade] = []reply{{skip: true}}
	h.replies[TaskGetConsent] = []reply{
		{delay: 10 * time.Minute, act: func(f *fakeTenant) { f.consent = true }},
		{skip: true}, // round 2 would wait for the admin
	}
	// The person clicked just as the link expired; Work 365 recorded it, and the confirmation
	// arrives at 70 minutes, addressed to round 1's closed task.
	h.env.RegisterDelayedCallback(func() {
		h.f.mu.Lock()
		h.f.begun = true
		h.f.mu.Unlock()
		h.confirm(testWorkflowID, ConfirmRequest{TaskID: h.taskID(TaskBeginUpgrade, 1), As: ServiceAccount, By: "svc"})
	}, 70*time.Minute)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 2, r.LinkRounds, "round 2 opened, then closed by the evidence")
	require.Empty(t, h.refused, "the late confirmation is accepted")
	var late []Confirmation
	for _, c := range r.Confirmations {
		if c.Late {
			late = append(late, c)
		}
	}
	require.Len(t, late, 1)
	require.Equal(t, TaskBeginUpgrade, late[0].Kind)
	require.Equal(t, 2, h.tasksOpened(TaskGetConsent), "no third round")
}

// A window that already closed is a contract: nothing is frozen; the operator decides.
func TestClosedWindowAsksTheOperatorAndNeverFreezes(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.start = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC) // the window closed at 04:00
	h.env.SetStartTime(h.start)
	h.replies[TaskWindowClosed] = []reply{{delay: 30 * time.Minute, decision: DecisionAbort}}
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.Error(t, err)
	require.True(t, temporal.IsCanceledError(err))
	r := detailsOf(t, err)
	require.Equal(t, OutcomeCancelled, r.Outcome)
	require.Zero(t, h.f.callCount("Freeze"), "never freeze outside the window")
	require.Equal(t, 1, h.tasksOpened(TaskWindowClosed))
}

// Moving a closed window closes the operator's task, waits for the new window and upgrades
// inside it.
func TestClosedWindowMovedThenUpgradesInTheNewWindow(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.start = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	h.env.SetStartTime(h.start)
	h.replies[TaskWindowClosed] = []reply{{skip: true}}
	h.env.RegisterDelayedCallback(func() {
		_ = h.env.UpdateWorkflowByID(testWorkflowID, UpdateMoveWindow, "move", noopUpdate(), MoveWindowRequest{By: "alice", Window: spec.Window{Start: "2026-12-06T22:00", Length: "6h"}})
	}, time.Hour)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	freeze := stageStart(r, StageFreezeAndDrain)
	require.False(t, freeze.Before(time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)), "frozen at %s, before the moved window", freeze)
	require.Zero(t, h.tasksOpened(TaskWindowClosed)-1)
}

// A partner admin who answers after 72 hours keeps nobody frozen: the portal is back and Work
// 365 unfrozen right after the upgrade; Partner Center re-consent follows.
func TestSlowPartnerAdminDoesNotKeepTheTenantFrozen(t *testing.T) {
	f := upgradeFrom21()
	f.installed, f.portal, f.portalVersion = "2.0.1.0", true, "2.0.0.0"
	h := newHarness(t, f)
	tn := testTenant()
	tn.PortalPackage = "work365/Work365Portal_latest.zip"
	tn.PartnerType = spec.Direct
	tn.PartnerCenters = []spec.PartnerCenter{{Name: "primary", TenantID: tn.TenantID, ConnectedToPrimary: true}}
	h.replies[TaskPartnerReconsent] = []reply{{delay: 72 * time.Hour}}
	h.run(tn, Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	calls := h.f.callList()
	before(t, calls, "StartImport:portal", "ProbePartnerCenter:"+tn.TenantID)
	before(t, calls, "Unfreeze", "ProbePartnerCenter:"+tn.TenantID)
	require.Less(t, r.Frozen, 3*time.Hour, "frozen for %s", r.Frozen)
	require.Zero(t, h.events(activities.EventFrozenTooLong))
}

// With unfreezeAfterPartnerCenter the tenant stays frozen for the re-consent, and the frozen
// time cap alerts the operator.
func TestFrozenTimeCapAlertsTheOperator(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	tn := testTenant()
	tn.PartnerType = spec.Direct
	tn.PartnerCenters = []spec.PartnerCenter{{Name: "primary", TenantID: tn.TenantID, ConnectedToPrimary: true}}
	h.replies[TaskPartnerReconsent] = []reply{{delay: 72 * time.Hour}}
	h.run(tn, Config{UnfreezeAfterPartnerCenter: true})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	before(t, h.f.callList(), "ProbePartnerCenter:"+tn.TenantID, "Unfreeze")
	require.Greater(t, r.Frozen, 72*time.Hour)
	require.Equal(t, 1, h.events(activities.EventFrozenTooLong))
	require.True(t, containsText(r.Warnings, "has been frozen for 6h (cap 6h)"), r.Warnings)
}

// A Partner Center failure after the upgrade went in never fails the upgraded tenant: the
// operator retries or skips.
func TestPartnerCenterFailureAfterCompletionIsNotAFailure(t *testing.T) {
	f := upgradeFrom21()
	f.probeFails = 100
	h := newHarness(t, f)
	tn := testTenant()
	tn.PartnerType = spec.Direct
	tn.PartnerCenters = []spec.PartnerCenter{{Name: "primary", TenantID: tn.TenantID, ConnectedToPrimary: true}}
	h.replies[TaskPostUpgradeFailed] = []reply{{delay: time.Hour, decision: DecisionRetry}, {delay: time.Hour, decision: DecisionSkip}}
	h.run(tn, Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 2, h.tasksOpened(TaskPostUpgradeFailed), "retried once, then skipped")
	require.True(t, containsText(r.Warnings, "stage partner-center skipped by person:operator"), r.Warnings)
	require.False(t, h.f.frozen)
}

// A Partner Center tenant whose MFA policies are never enabled is bounded in the child too;
// the operator's abort there leaves the tenant upgraded, unfrozen, with a warning.
func TestPartnerCenterMFARoundsAreBoundedAndAbortKeepsTheUpgrade(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	tn := testTenant()
	tn.PartnerType = spec.Direct
	other := "00000000-0000-0000-0000-0000000000bb"
	tn.PartnerCenters = []spec.PartnerCenter{{Name: "emea", TenantID: other}}
	h.replies[TaskPartnerMFAPolicies] = []reply{{delay: time.Hour}} // confirms, never enables
	h.replies[TaskRoundsExhausted] = []reply{{delay: time.Hour, decision: DecisionAbort}}
	h.run(tn, Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, DefaultMaxFixRounds, h.tasksOpened(TaskPartnerMFAPolicies))
	require.True(t, containsText(r.Warnings, "left to do by hand"), r.Warnings)
	require.False(t, h.f.frozen)
}

// The orchestrator's own expired secret is not the tenant's fault: one alert, a wait, a retry;
// the tenant is upgraded. The cleanup unfreeze also waits through it.
func TestExpiredSecretWaitsAndNeverFailsTheTenant(t *testing.T) {
	f := upgradeFrom21()
	f.faults["CheckMFA"] = 3
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 1, h.events(activities.EventOrchestratorFault), "alerted once")
	require.Zero(t, h.tasksOpened(TaskOrchestratorCredential), "no per-tenant task notification: the alert is shared")
	require.True(t, containsText(r.Warnings, "orchestrator fault, round 3"), r.Warnings)
	// 15m, 30m, 1h of waits before the fourth check succeeded.
	require.Equal(t, 4+1, h.f.callCount("CheckMFA"))
}

func TestCleanupUnfreezeWaitsThroughAnOrchestratorFault(t *testing.T) {
	f := upgradeFrom21()
	f.faults["Unfreeze"] = 2
	h := newHarness(t, f)
	h.replies[TaskBeginUpgrade] = []reply{{skip: true}}
	h.replies[TaskLinkEscalation] = []reply{{delay: time.Minute, decision: DecisionAbort}}
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.Error(t, err)
	r := detailsOf(t, err)
	require.Equal(t, OutcomeCancelled, r.Outcome)
	require.Contains(t, r.Cleanup, "unfroze Work 365 activity")
	require.False(t, h.f.frozen)
	require.Equal(t, 3, h.f.callCount("Unfreeze"))
}

// A cleanup unfreeze that cannot succeed says so loudly: in the result and to the operators.
func TestCleanupUnfreezeThatFailsIsReportedLoudly(t *testing.T) {
	f := upgradeFrom21()
	f.unfreezeFails = true
	h := newHarness(t, f)
	h.replies[TaskBeginUpgrade] = []reply{{skip: true}}
	h.replies[TaskLinkEscalation] = []reply{{delay: time.Minute, decision: DecisionAbort}}
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.Error(t, err)
	r := detailsOf(t, err)
	require.True(t, containsText(r.Cleanup, "FAILED to unfreeze Work 365 activity"), r.Cleanup)
	require.Equal(t, 1, h.events(activities.EventCleanupFailed))
	require.True(t, h.f.frozen, "still frozen: the operator must unfreeze by hand")
}

// Consent that is never found does not loop forever: after MaxFixRounds the operator decides.
func TestConsentNeverFoundIsBounded(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskGetConsent] = []reply{{delay: 10 * time.Minute}} // confirms, but never consents
	h.replies[TaskRoundsExhausted] = []reply{{delay: time.Hour, decision: DecisionAbort}}
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.Error(t, err)
	r := detailsOf(t, err)
	require.Equal(t, OutcomeCancelled, r.Outcome)
	require.Equal(t, DefaultMaxFixRounds, h.tasksOpened(TaskGetConsent))
	require.Equal(t, 1, h.tasksOpened(TaskRoundsExhausted))
	require.Contains(t, r.Cleanup, "unfroze Work 365 activity")
}

// Prerequisites that are never fixed are bounded the same way.
func TestPrerequisiteRoundsAreBounded(t *testing.T) {
	f := upgradeFrom21()
	f.prereqFixed[activities.CheckAdminLicence] = false
	h := newHarness(t, f)
	h.replies[TaskFixPrerequisite] = []reply{{delay: time.Hour}}
	h.replies[TaskRoundsExhausted] = []reply{{delay: time.Hour, decision: DecisionRetry}, {delay: time.Hour, decision: DecisionAbort}}
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.Error(t, err)
	require.Equal(t, 2*DefaultMaxFixRounds, h.tasksOpened(TaskFixPrerequisite))
	require.Equal(t, 2, h.tasksOpened(TaskRoundsExhausted))
	require.Zero(t, h.f.callCount("Freeze"))
}

// MFA that is never set up is bounded too, before anything is frozen.
func TestMFARoundsAreBounded(t *testing.T) {
	f := upgradeFrom21()
	f.mfaService = false
	h := newHarness(t, f)
	h.replies[TaskRegisterMFAService] = []reply{{delay: time.Hour}} // confirms, never registers
	h.replies[TaskRoundsExhausted] = []reply{{delay: time.Hour, decision: DecisionAbort}}
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.Error(t, err)
	require.Equal(t, DefaultMaxFixRounds, h.tasksOpened(TaskRegisterMFAService))
	require.Equal(t, 1, h.tasksOpened(TaskRoundsExhausted))
	require.Zero(t, h.f.callCount("Freeze"), "MFA is prepared before the window: nothing was frozen")
}

// "It showed an error" on the completion page asks the operator; the APIs decide the rest.
func TestCompletionPageErrorAsksTheOperator(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskConfirmCompletion] = []reply{{delay: time.Minute, decision: DecisionShowedError}}
	h.replies[TaskCompletionError] = []reply{{delay: 20 * time.Minute, decision: DecisionProceed}}
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 1, h.tasksOpened(TaskCompletionError))
	require.True(t, containsText(r.Warnings, "completion page showed an error"), r.Warnings)
	before(t, h.f.callList(), "FinalCheck", "Unfreeze")
}

func stageStart(r Result, s Stage) time.Time {
	for _, x := range r.Stages {
		if x.Stage == s {
			return x.Started
		}
	}
	return time.Time{}
}

func noopUpdate() *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{OnReject: func(error) {}, OnAccept: func() {}, OnComplete: func(any, error) {}}
}
