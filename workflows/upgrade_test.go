package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

func TestUpgradeFrom21HappyPath(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, "2.1.0.3", r.FromVersion)
	require.Equal(t, "2.5.0.1", r.ToVersion)
	require.Equal(t, []Stage{StageValidate, StageDiscover, StagePrerequisites, StageMFA, StageDowntimeWindow, StageFreezeAndDrain,
		StagePortalUninstall, StageImport, StageServiceRole, StageRegistration, StageConsentInit, StageCompletion,
		StagePortalReinstall, StageUnfreeze, StagePartnerCenter, StageVerify, StageDone}, stagesOf(r))
	require.Equal(t, []TaskKind{TaskGetConsent, TaskBeginUpgrade, TaskConfirmCompletion}, confirmedKinds(r.Confirmations))
	// Preparation before the window, re-verified when it opens; then freeze.
	require.Equal(t, []string{"ResolveWindow", "Discover", "CheckPrerequisites", "CheckMFA", "CheckPrerequisites", "CheckMFA", "Freeze", "DrainJobs",
		"StartImport:work365", "WaitForImport", "VerifyImport", "VerifyConsent"}, h.f.callList()[:12])
	before(t, h.f.callList(), "VerifyConsent", "WaitForCompletion")
	before(t, h.f.callList(), "WaitForCompletion", "FinalCheck")
	before(t, h.f.callList(), "FinalCheck", "Unfreeze")
	require.Greater(t, r.Frozen, time.Duration(0), "the result says how long Work 365 was frozen")
	require.Equal(t, 1, h.f.callCount("StartImport:work365"))
	require.Equal(t, 0, h.f.callCount("StartPortalUninstall"))
	require.Equal(t, 1, r.LinkRounds)
	require.False(t, h.f.frozen)
}

func TestUpgradeFrom20WithPortal(t *testing.T) {
	f := upgradeFrom21()
	f.installed, f.portal, f.portalVersion = "2.0.1.0", true, "2.0.0.0"
	h := newHarness(t, f)
	tn := testTenant()
	tn.PortalPackage = "work365/Work365Portal_latest.zip"
	h.replies[TaskReinstallPortal] = nil
	h.run(tn, Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	calls := h.f.callList()
	before(t, calls, "StartPortalUninstall", "StartImport:work365")
	before(t, calls, "WaitForAsyncOperation", "StartImport:work365")
	before(t, calls, "WaitForCompletion", "StartImport:portal")
	before(t, calls, "StartImport:portal", "Unfreeze")
	require.Equal(t, 1, h.f.callCount("StartPortalUninstall"))
	require.Equal(t, 1, h.f.callCount("StartImport:portal"))
	require.True(t, h.f.portal, "portal reinstalled")
	require.Empty(t, r.Cleanup)
}

func TestUpgradeWithPortalFrom22KeepsPortal(t *testing.T) {
	f := upgradeFrom21()
	f.installed, f.portal = "2.2.0.0", true
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.NoError(t, err)
	require.Zero(t, h.f.callCount("StartPortalUninstall"), "portal stays when upgrading from above 2.1")
	require.Zero(t, h.f.callCount("StartImport:portal"))
}

func TestPortalReinstallWithoutPackageIsAHumanTask(t *testing.T) {
	f := upgradeFrom21()
	f.portal = true
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, []TaskKind{TaskGetConsent, TaskBeginUpgrade, TaskConfirmCompletion, TaskReinstallPortal}, confirmedKinds(r.Confirmations))
}

func TestNewInstallAsksForRegistrationForm(t *testing.T) {
	f := upgradeFrom21()
	f.installed = ""
	h := newHarness(t, f)
	tn := testTenant()
	tn.LicenseKeyRef = "vault://work365/contoso"
	h.run(tn, Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, "", r.FromVersion)
	require.Equal(t, []TaskKind{TaskSubmitRegistration, TaskGetConsent, TaskBeginUpgrade, TaskConfirmCompletion}, confirmedKinds(r.Confirmations))
	require.Zero(t, h.f.callCount("Freeze"), "nothing to freeze before Work 365 exists")
	require.Zero(t, h.f.callCount("DrainJobs"))
	require.Zero(t, h.f.callCount("Unfreeze"))
	require.Equal(t, 1, h.f.callCount("StartImport:work365-install"), "a new install is installed, not staged")
	require.NotZero(t, h.f.callCount("WaitForUpgradeStarted"), "a new install's initialisation is observed in Work 365's record")
	for _, n := range h.f.notifications {
		if n.TaskKind == string(TaskSubmitRegistration) {
			require.Contains(t, n.Instructions, "vault://work365/contoso", "licence key reference, never the key")
			require.Contains(t, n.Instructions, "Europe/London")
		}
	}
}

func TestAlreadyCurrentIsANoOp(t *testing.T) {
	f := upgradeFrom21()
	f.installed = "2.5.0.1"
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeAlreadyCurrent, r.Outcome)
	require.Equal(t, []string{"ResolveWindow", "Discover"}, h.f.callList(), "no side effects")
	require.Empty(t, h.f.notifications)
}

func TestLinkExpiresTwiceThenSucceeds(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskBeginUpgrade] = []reply{
		{delay: 20 * time.Minute, skip: true},
		{delay: 20 * time.Minute, skip: true},
		{delay: 5*time.Minute + 10*time.Second, act: func(f *fakeTenant) { f.begun = true }},
	}
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 3, r.LinkRounds)
	require.Equal(t, []TaskKind{TaskGetConsent, TaskGetConsent, TaskGetConsent, TaskBeginUpgrade, TaskConfirmCompletion}, confirmedKinds(r.Confirmations))
	require.Equal(t, 1, h.tasksOpened(TaskSubmitRegistration)+1, "no registration form for an upgrade")
	require.Zero(t, h.tasksOpened(TaskLinkEscalation))
	// each expiry sends the tenant back to Get Consent
	stages := stagesOf(r)
	require.Equal(t, 3, count(stages, StageRegistration))
	require.Equal(t, 3, count(stages, StageConsentInit))
}

func TestLinkExpiresThreeTimesEscalatesThenRetry(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskBeginUpgrade] = []reply{
		{skip: true}, {skip: true}, {skip: true},
		{delay: 2 * time.Minute, act: func(f *fakeTenant) { f.begun = true }},
	}
	h.replies[TaskLinkEscalation] = []reply{{delay: 30 * time.Minute, decision: DecisionRetry}}
	h.run(testTenant(), Config{LinkValidity: 10 * time.Minute})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 4, r.LinkRounds)
	require.Equal(t, []TaskKind{TaskGetConsent, TaskGetConsent, TaskGetConsent, TaskLinkEscalation, TaskGetConsent, TaskBeginUpgrade, TaskConfirmCompletion}, confirmedKinds(r.Confirmations))
	require.Equal(t, DecisionRetry, r.Confirmations[3].Decision)
}

func TestLinkEscalationAbortCancelsAndUnfreezes(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskBeginUpgrade] = []reply{{skip: true}}
	h.replies[TaskLinkEscalation] = []reply{{delay: time.Minute, decision: DecisionAbort}}
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.Error(t, err)
	require.True(t, temporal.IsCanceledError(err))
	r = detailsOf(t, err)
	require.Equal(t, OutcomeCancelled, r.Outcome)
	require.Contains(t, r.Cleanup, "unfroze Work 365 activity")
	require.False(t, h.f.frozen)
	require.Equal(t, 3, r.LinkRounds)
}

func TestDrainOverManyPolls(t *testing.T) {
	f := upgradeFrom21()
	f.pendingJobs = []int{7, 6, 4, 4, 2, 1, 0}
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 7, h.f.callCount("DrainJobs"))
	before(t, h.f.callList(), "Freeze", "DrainJobs")
	require.Empty(t, r.Confirmations[:0])
	require.Zero(t, h.tasksOpened(TaskDrainDeadline))
}

func TestDrainDeadlineDecisions(t *testing.T) {
	cfg := Config{DrainDeadline: 10 * time.Minute, DrainPollInterval: time.Minute}
	t.Run("keep-waiting", func(t *testing.T) {
		f := upgradeFrom21()
		f.pendingJobs = append(repeat(3, 15), 0)
		h := newHarness(t, f)
		h.replies[TaskDrainDeadline] = []reply{{delay: time.Minute, decision: DecisionKeepWaiting}}
		h.run(testTenant(), cfg)
		r, err := h.result()
		require.NoError(t, err)
		require.Equal(t, OutcomeUpgraded, r.Outcome)
		require.Equal(t, TaskDrainDeadline, r.Confirmations[0].Kind)
		require.Equal(t, 16, h.f.callCount("DrainJobs"))
		for _, n := range h.f.notifications {
			if n.TaskKind == string(TaskDrainDeadline) {
				require.Contains(t, n.Instructions, "3 Work 365 jobs still pending")
			}
		}
	})
	t.Run("proceed", func(t *testing.T) {
		f := upgradeFrom21()
		f.pendingJobs = []int{2}
		h := newHarness(t, f)
		h.replies[TaskDrainDeadline] = []reply{{delay: time.Minute, decision: DecisionProceed}}
		h.run(testTenant(), cfg)
		r, err := h.result()
		require.NoError(t, err)
		require.Equal(t, OutcomeUpgraded, r.Outcome)
		require.True(t, containsText(r.Warnings, "may fail after the upgrade"), r.Warnings)
	})
	t.Run("abort", func(t *testing.T) {
		f := upgradeFrom21()
		f.pendingJobs = []int{2}
		h := newHarness(t, f)
		h.replies[TaskDrainDeadline] = []reply{{delay: time.Minute, decision: DecisionAbort}}
		h.run(testTenant(), cfg)
		_, err := h.result()
		require.True(t, temporal.IsCanceledError(err))
		r := detailsOf(t, err)
		require.Equal(t, OutcomeCancelled, r.Outcome)
		require.Equal(t, []string{"unfroze Work 365 activity"}, r.Cleanup)
		require.Zero(t, h.f.callCount("StartImport:work365"))
		require.False(t, h.f.frozen)
	})
}

func TestPrerequisitesFailingThenFixed(t *testing.T) {
	f := upgradeFrom21()
	f.prereqFixed[activities.CheckAdminLicence] = false
	f.prereqFixed[activities.CheckServiceLicence] = false
	h := newHarness(t, f)
	// the first fix confirmed fixes only the admin's licence; the service account's takes a
	// second round
	h.replies[TaskFixPrerequisite] = []reply{
		{delay: time.Hour, act: func(f *fakeTenant) { f.prereqFixed[activities.CheckAdminLicence] = true }},
		{delay: 2 * time.Hour},
		{delay: time.Hour, act: func(f *fakeTenant) { f.prereqFixed[activities.CheckServiceLicence] = true }},
	}
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 4, h.f.callCount("CheckPrerequisites"), "three rounds, then re-verified when the window opens")
	require.Equal(t, 3, h.tasksOpened(TaskFixPrerequisite))
	before(t, h.f.callList(), "CheckPrerequisites", "Freeze")
	calls := h.f.callList()
	require.Equal(t, "CheckPrerequisites", calls[4], "third check before MFA")
}

func TestServiceRoleMissingUntilAfterImport(t *testing.T) {
	f := upgradeFrom21()
	f.serviceRole = false
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	calls := h.f.callList()
	before(t, calls, "VerifyImport", "CheckServiceRole")
	before(t, calls, "CheckServiceRole", "VerifyConsent")
	require.Equal(t, 2, h.f.callCount("CheckServiceRole"), "checked, task, re-checked")
	require.Equal(t, []TaskKind{TaskAssignServiceRole, TaskGetConsent, TaskBeginUpgrade, TaskConfirmCompletion}, confirmedKinds(r.Confirmations))
}

func TestMFAMissingBecomesTasks(t *testing.T) {
	f := upgradeFrom21()
	f.mfaPolicies, f.mfaService, f.mfaAdmin = false, false, false
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.ElementsMatch(t, []TaskKind{TaskEnableMFAPolicies, TaskRegisterMFAService, TaskRegisterMFAAdmin}, confirmedKinds(r.Confirmations)[:3])
	require.Equal(t, 3, h.f.callCount("CheckMFA"), "checked, tasks, re-checked; re-verified when the window opens")
	before(t, h.f.callList(), "CheckMFA", "Freeze")
	for _, c := range r.Confirmations[:3] {
		switch c.Kind {
		case TaskRegisterMFAService:
			require.Equal(t, ServiceAccount, c.Audience)
		default:
			require.Equal(t, GlobalAdmin, c.Audience)
		}
	}
}

// runDirectWithTwoPartnerCenters upgrades a direct partner with a primary Partner Center and
// one in another tenant whose MFA policies the partner admin enables after an hour.
func runDirectWithTwoPartnerCenters(t *testing.T) (*harness, Result) {
	t.Helper()
	h := newHarness(t, upgradeFrom21())
	tn := testTenant()
	tn.PartnerType = spec.Direct
	tn.PartnerCenters = []spec.PartnerCenter{
		{Name: "primary", TenantID: tn.TenantID, ConnectedToPrimary: true},
		{Name: "emea", TenantID: otherPartnerCenterTenant},
	}
	h.replies[TaskPartnerMFAPolicies] = []reply{{delay: time.Hour, act: func(f *fakeTenant) { f.pcMFA[otherPartnerCenterTenant] = true }}}
	h.run(tn, Config{})
	r, err := h.result()
	require.NoError(t, err)
	return h, r
}

// otherPartnerCenterTenant is the tenant of the second Partner Center connection.
const otherPartnerCenterTenant = "00000000-0000-0000-0000-0000000000aa"

func TestDirectPartnerWithTwoPartnerCenters(t *testing.T) {
	h, r := runDirectWithTwoPartnerCenters(t)
	other, tn := otherPartnerCenterTenant, testTenant()
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Len(t, r.PartnerCenters, 2)
	require.Equal(t, "primary", r.PartnerCenters[0].Name)
	require.Equal(t, []TaskKind{TaskPartnerReconsent}, confirmedKinds(r.PartnerCenters[0].Confirmations))
	require.Equal(t, []TaskKind{TaskPartnerMFAPolicies, TaskPartnerReconsent}, confirmedKinds(r.PartnerCenters[1].Confirmations))
	require.True(t, r.PartnerCenters[0].Verified && r.PartnerCenters[1].Verified)
	calls := h.f.callList()
	require.Equal(t, 2, h.f.callCount("CheckMFAPolicies:"+other), "checked, task, re-checked")
	require.Zero(t, h.f.callCount("CheckMFAPolicies:"+tn.TenantID), "primary tenant's MFA was checked in stage 5")
	before(t, calls, "WaitForCompletion", "CheckMFAPolicies:"+other)
	// Frozen as briefly as possible: unfrozen before Partner Center re-consent (days, maybe).
	before(t, calls, "Unfreeze", "CheckMFAPolicies:"+other)
	for _, n := range h.f.notifications {
		if n.TaskKind == string(TaskPartnerReconsent) {
			require.Contains(t, n.Instructions, "Do NOT create new providers")
			require.Equal(t, string(PartnerAdmin), n.Audience)
		}
	}
}

func TestIndirectPartnerSkipsPartnerCenter(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	for _, s := range r.Stages {
		if s.Stage == StagePartnerCenter {
			require.Contains(t, s.Note, "skipped: indirect reseller")
		}
	}
	require.Empty(t, r.PartnerCenters)
}

func TestCancellationMidwayUnfreezes(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskGetConsent] = []reply{{skip: true}}
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 3*time.Hour)
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.True(t, temporal.IsCanceledError(err), "%v", err)
	r := detailsOf(t, err)
	require.Equal(t, OutcomeCancelled, r.Outcome)
	require.Equal(t, []string{"unfroze Work 365 activity"}, r.Cleanup)
	require.False(t, h.f.frozen)
	calls := h.f.callList()
	require.Equal(t, "Unfreeze", calls[len(calls)-1])
	// the reminder fired before the cancellation
	reminders := 0
	for _, n := range h.f.notifications {
		if n.Event == activities.EventTaskReminder {
			reminders++
		}
	}
	require.Equal(t, 0, reminders, "default reminder is 4h; cancelled after 3h")
}

func TestRemindersEveryInterval(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskGetConsent] = []reply{{delay: 9 * time.Hour, act: func(f *fakeTenant) { f.consent = true }}}
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.NoError(t, err)
	var keys []string
	for _, n := range h.f.notifications {
		if n.Event == activities.EventTaskReminder {
			keys = append(keys, n.Key)
		}
	}
	require.Equal(t, []string{testWorkflowID + "/get-consent-1/task-reminder/1", testWorkflowID + "/get-consent-1/task-reminder/2"}, keys)
}

func TestEscalationAfterReminders(t *testing.T) {
	h := newHarness(t, upgradeFrom21())
	h.replies[TaskGetConsent] = []reply{{delay: 13 * time.Hour, act: func(f *fakeTenant) { f.consent = true }}}
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.NoError(t, err)
	var escalated []activities.Notification
	for _, n := range h.f.notifications {
		if n.Event == activities.EventTaskEscalated {
			escalated = append(escalated, n)
		}
	}
	require.Len(t, escalated, 1, "escalated once, after the third reminder")
	require.Equal(t, string(Operator), escalated[0].Audience)
	require.Equal(t, "get-consent-1", escalated[0].TaskID)
	require.Contains(t, escalated[0].Message, "after 3 reminders")
	require.Equal(t, h.start.Add(12*time.Hour), escalated[0].At.UTC())
}

func TestRefusedConfirmationsLeaveNoTrace(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskGetConsent] = []reply{{delay: time.Hour, act: func(f *fakeTenant) { f.consent = true }}}
	bad := []ConfirmRequest{
		{TaskID: "get-consent-99", As: GlobalAdmin, By: "alice"},
		{TaskID: "get-consent-1", As: ServiceAccount, By: "bob"},
		{TaskID: "get-consent-1", As: GlobalAdmin, By: ""},
		{TaskID: "get-consent-1", As: GlobalAdmin, By: "alice", Decision: DecisionProceed},
	}
	for i, req := range bad {
		req := req
		h.env.RegisterDelayedCallback(func() { h.confirm(testWorkflowID, req) }, time.Duration(i+1)*time.Minute)
	}
	// a signal from the wrong audience is refused when read, and recorded as a warning
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalConfirmTask, ConfirmRequest{TaskID: "get-consent-1", As: Operator, By: "mallory"})
	}, 10*time.Minute)
	// a late confirmation of a closed task names why it closed
	h.env.RegisterDelayedCallback(func() {
		h.confirm(testWorkflowID, ConfirmRequest{TaskID: "get-consent-1", As: GlobalAdmin, By: "late"})
	}, 65*time.Minute)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Len(t, h.refused, 5)
	require.Contains(t, h.refused[0], "task get-consent-99 is not open")
	require.Contains(t, h.refused[1], "is for the global-admin, not the service-account")
	require.Contains(t, h.refused[2], "by is required")
	require.Contains(t, h.refused[3], "takes no decision")
	require.Contains(t, h.refused[4], "confirmed by person:global-admin")
	require.Equal(t, []TaskKind{TaskGetConsent, TaskBeginUpgrade, TaskConfirmCompletion}, confirmedKinds(r.Confirmations))
	require.Equal(t, "person:global-admin", r.Confirmations[0].By)
	require.True(t, containsText(r.Warnings, `refused a signalled confirmation from "mallory"`), r.Warnings)
}

func TestSignalConfirmationCompletesTask(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskGetConsent] = []reply{{skip: true}}
	h.env.RegisterDelayedCallback(func() {
		h.f.mu.Lock()
		h.f.consent = true
		h.f.mu.Unlock()
		h.env.SignalWorkflow(SignalConfirmTask, ConfirmRequest{TaskID: "get-consent-1", As: GlobalAdmin, By: "alice", Note: "done from my phone"})
	}, 30*time.Minute)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, "signal", r.Confirmations[0].Via)
	require.Equal(t, "done from my phone", r.Confirmations[0].Note)
}

func TestInvalidSpecFailsFast(t *testing.T) {
	h := newHarness(t, upgradeFrom21())
	tn := testTenant()
	tn.TenantID = "contoso"
	tn.TargetVersion = "2.6"
	h.run(tn, Config{})
	_, err := h.result()
	require.Error(t, err)
	require.Contains(t, err.Error(), "tenantId")
	require.Contains(t, err.Error(), "targetVersion")
	require.Empty(t, h.f.callList())
	r := detailsOf(t, err)
	require.Equal(t, OutcomeFailed, r.Outcome)
}

func TestWaitsForDowntimeWindowAndStartNow(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		h := newHarness(t, upgradeFrom21())
		h.env.SetStartTime(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
		h.run(testTenant(), Config{})
		r, err := h.result()
		require.NoError(t, err)
		for _, s := range r.Stages {
			if s.Stage == StageFreezeAndDrain {
				require.Equal(t, time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC), s.Started.UTC(), "freeze when the window opens, London time")
			}
		}
	})
	t.Run("start-now", func(t *testing.T) {
		h := newHarness(t, upgradeFrom21())
		h.env.SetStartTime(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
		h.env.RegisterDelayedCallback(func() {
			h.env.UpdateWorkflow(UpdateStartNow, "sn", &testsuite.TestUpdateCallback{
				OnReject: func(err error) { t.Errorf("refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
			}, OperatorRequest{By: "ops-lead", Note: "customer asked"})
		}, time.Hour)
		h.run(testTenant(), Config{})
		r, err := h.result()
		require.NoError(t, err)
		for _, s := range r.Stages {
			if s.Stage == StageFreezeAndDrain {
				require.Equal(t, time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC), s.Started.UTC())
			}
		}
		require.True(t, containsText(r.Warnings, "started now by ops-lead"))
	})
}

func TestStatusQueryShowsOpenTask(t *testing.T) {
	h := newHarness(t, upgradeFrom21())
	h.replies[TaskGetConsent] = []reply{{delay: 2 * time.Hour, act: func(f *fakeTenant) { f.consent = true }}}
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryStatus)
		require.NoError(t, err)
		var s Status
		require.NoError(t, v.Get(&s))
		require.Equal(t, StageRegistration, s.Stage)
		require.Equal(t, GlobalAdmin, s.WaitingOn)
		require.Len(t, s.OpenTasks, 1)
		require.Equal(t, "get-consent-1", s.OpenTasks[0].ID)
		require.Contains(t, s.OpenTasks[0].Instructions, "Get Consent button")
		require.Equal(t, h.start, s.OpenTasks[0].OpenedAt.UTC())
		require.GreaterOrEqual(t, len(s.Stages), 9)
	}, time.Hour)
	h.run(testTenant(), Config{})
	_, err := h.result()
	require.NoError(t, err)
}

func count[T comparable](xs []T, x T) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func containsText(xs []string, sub string) bool {
	for _, x := range xs {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}

func detailsOf(t *testing.T, err error) Result {
	t.Helper()
	var r Result
	var ce *temporal.CanceledError
	var ae *temporal.ApplicationError
	switch {
	case errors.As(err, &ce):
		require.NoError(t, ce.Details(&r))
	case errors.As(err, &ae):
		require.NoError(t, ae.Details(&r))
	default:
		t.Fatalf("no details in %v", err)
	}
	return r
}

func TestImportFailureAsksOperatorThenRetriesWithNewJob(t *testing.T) {
	f := upgradeFrom21()
	f.importFails = 1
	h := newHarness(t, f)
	h.replies[TaskImportFailed] = []reply{{delay: time.Hour, decision: DecisionRetry}}
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 2, h.f.callCount("StartImport:work365"))
	require.Equal(t, TaskImportFailed, r.Confirmations[0].Kind)
	require.True(t, containsText(r.Warnings, "import attempt 1 failed"))
}

func TestHostileUpdatePayloadsAreRefused(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskGetConsent] = []reply{{delay: time.Hour, act: func(f *fakeTenant) { f.consent = true }}}
	bad := []ConfirmRequest{
		{TaskID: "get-consent-1", As: GlobalAdmin, By: "alice\x1b]0;owned\x07"},
		{TaskID: "get-consent-1", As: GlobalAdmin, By: strings.Repeat("a", spec.MaxNameLen+1)},
		{TaskID: "get-consent-1", As: GlobalAdmin, By: "alice", Note: "done\n[2026-01-01] forged log line"},
		{TaskID: "get-consent-1", As: GlobalAdmin, By: "alice", Note: strings.Repeat("n", spec.MaxNoteLen+1)},
	}
	for i, req := range bad {
		req := req
		h.env.RegisterDelayedCallback(func() { h.confirm(testWorkflowID, req) }, time.Duration(i+1)*time.Minute)
	}
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Len(t, h.refused, 4)
	require.Contains(t, h.refused[0], "by contains the control character U+001B")
	require.Contains(t, h.refused[1], "by is 129 characters long; at most 128")
	require.Contains(t, h.refused[2], "note contains the control character U+000A")
	require.Contains(t, h.refused[3], "note is 2001 characters long; at most 2000")
	for _, c := range r.Confirmations {
		require.NotContains(t, c.By, "alice", "a refused Update leaves nothing behind")
	}
}

// TestStartedImportIsFollowedThroughTransientErrors: once the import is started, reads that
// fail for a passing reason never fail the upgrade — more of them than the ten attempts the
// old policy allowed.
func TestStartedImportIsFollowedThroughTransientErrors(t *testing.T) {
	f := upgradeFrom21()
	f.followErrors = 25
	h := newHarness(t, f)
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 1, h.f.callCount("StartImport:work365"), "the started import is followed, never started again")
	require.Equal(t, 26, h.f.callCount("WaitForImport"), "25 throttled reads, then the import's end")
	require.Zero(t, h.tasksOpened(TaskOperationDeadline))
}

// TestStartedImportPastItsDeadlineAsksTheOperator: an import still not seen finished at its
// deadline is the operator's decision: keep-waiting follows it again, abort ends the upgrade
// (and unfreezes); it never fails on its own.
func TestStartedImportPastItsDeadlineAsksTheOperator(t *testing.T) {
	f := upgradeFrom21()
	f.followErrors = 1000
	h := newHarness(t, f)
	h.replies[TaskOperationDeadline] = []reply{{delay: time.Minute, decision: DecisionKeepWaiting}, {delay: time.Minute, decision: DecisionAbort}}
	h.run(testTenant(), Config{ImportTimeout: 30 * time.Minute})
	_, err := h.result()
	require.Error(t, err)
	require.True(t, temporal.IsCanceledError(err), "an abort ends the upgrade as cancelled: %v", err)
	r := detailsOf(t, err)
	require.Equal(t, OutcomeCancelled, r.Outcome)
	require.Contains(t, r.Cleanup, "unfroze Work 365 activity")
	require.Equal(t, 2, h.tasksOpened(TaskOperationDeadline))
	require.Equal(t, 1, h.f.callCount("StartImport:work365"))
	require.False(t, h.f.frozen, "the abort's cleanup unfreezes")

	f = upgradeFrom21()
	f.followErrors = 50
	h = newHarness(t, f)
	h.replies[TaskOperationDeadline] = []reply{{delay: time.Minute, decision: DecisionKeepWaiting}}
	h.run(testTenant(), Config{ImportTimeout: 30 * time.Minute})
	r, err = h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.Equal(t, 1, h.tasksOpened(TaskOperationDeadline))
	require.Contains(t, confirmedKinds(r.Confirmations), TaskOperationDeadline)
}
