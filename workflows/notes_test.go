package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
)

// requireEveryStageNoted fails when a finished stage of the result says nothing of what it did.
func requireEveryStageNoted(t *testing.T, r Result) {
	t.Helper()
	for _, s := range r.Stages {
		if s.Ended != nil {
			require.NotEmpty(t, s.Note, "stage %s ended without a note saying what it did", s.Stage)
		}
	}
}

// Every stage says what it did, including "skipped: …"; the partner-center stage names each
// connection's outcome.
func TestEveryStageSaysWhatItDid(t *testing.T) {
	t.Run("direct partner with two Partner Centers", func(t *testing.T) {
		_, r := runDirectWithTwoPartnerCenters(t)
		requireEveryStageNoted(t, r)
		var pc string
		for _, s := range r.Stages {
			if s.Stage == StagePartnerCenter {
				pc = s.Note
			}
		}
		require.Contains(t, pc, "primary: re-consent verified")
		require.Contains(t, pc, "emea: re-consent verified")
		require.Contains(t, pc, " by ", "who re-consented")
		require.GreaterOrEqual(t, r.HumanWait, time.Hour, "the partner admin's hour on MFA policies counts as a wait on people")
		require.GreaterOrEqual(t, r.PartnerCenters[1].HumanWait, time.Hour)
		require.Equal(t, "primary: re-consent verified", strings.SplitN(r.PartnerCenters[0].Summary(), " (", 2)[0])
	})
	t.Run("indirect partner", func(t *testing.T) {
		h := newHarness(t, upgradeFrom21())
		h.run(testTenant(), Config{})
		r, err := h.result()
		require.NoError(t, err)
		requireEveryStageNoted(t, r)
		require.Positive(t, r.HumanWait, "consent, Begin Upgrade and the completion page wait on people")
		for _, s := range r.Stages {
			switch s.Stage {
			case StagePartnerCenter, StagePortalUninstall, StagePortalReinstall, StageServiceRole:
				require.True(t, strings.HasPrefix(s.Note, "skipped: "), "%s: %q", s.Stage, s.Note)
			}
		}
	})
	t.Run("new install", func(t *testing.T) {
		f := upgradeFrom21()
		f.installed = ""
		h := newHarness(t, f)
		tn := testTenant()
		tn.LicenseKeyRef = "vault://work365/contoso"
		h.run(tn, Config{})
		r, err := h.result()
		require.NoError(t, err)
		requireEveryStageNoted(t, r)
	})
	t.Run("portal reinstalled by hand", func(t *testing.T) {
		f := upgradeFrom21()
		h := newHarness(t, f)
		tn := testTenant()
		tn.PortalPackage = ""
		h.run(tn, Config{})
		r, err := h.result()
		require.NoError(t, err)
		requireEveryStageNoted(t, r)
	})
}

// Under a rehearsal's scaled clock (TimeScale 60: 15m of runbook time pass in 15s), messages
// read in runbook time.
func TestRehearsalMessagesReadInRunbookTime(t *testing.T) {
	f := upgradeFrom21()
	h := newHarness(t, f)
	h.replies[TaskBeginUpgrade] = []reply{
		{delay: 20 * time.Second, skip: true},
		{delay: 5 * time.Second, act: func(f *fakeTenant) { f.begun = true }},
	}
	h.run(testTenant(), Config{TimeScale: 60, LinkValidity: 15 * time.Second})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	require.True(t, containsText(r.Warnings, "upgrade link of round 1 expired after 15m without Begin Upgrade"), r.Warnings)
	requireEveryStageNoted(t, r)
	for _, n := range h.f.notifications {
		if n.TaskKind == string(TaskBeginUpgrade) {
			require.Contains(t, n.Instructions, "valid for 15m only")
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15m", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s",
		90 * time.Second: "1m30s", 6*time.Hour + 1500*time.Millisecond: "6h0m2s",
	} {
		require.Equal(t, want, ShortDuration(d), "%s", d)
	}
	require.Equal(t, "15m", Config{TimeScale: 60}.Show(15*time.Second))
	require.Equal(t, "15s", Config{}.Show(15*time.Second))
}

// currentDetails reads the markdown the Web UI shows as the workflow's current details.
func currentDetails(t *testing.T, h *harness) string {
	t.Helper()
	v, err := h.env.QueryWorkflow("__temporal_workflow_metadata")
	require.NoError(t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&md))
	return md.GetCurrentDetails()
}

// The current details on-call reads always say in plain words what the upgrade waits for:
// a person and the task, jobs draining with their deadline, the import, the completion.
func TestCurrentDetailsSayWhatTheUpgradeWaitsFor(t *testing.T) {
	f := upgradeFrom21()
	f.pendingJobs = []int{7, 7, 6, 4, 4, 2, 1, 0} // the first look at 0, then drains from 0 to 6m
	h := newHarness(t, f)
	h.replies[TaskGetConsent] = []reply{{delay: 2 * time.Hour, act: func(f *fakeTenant) { f.consent = true }}}
	seen := map[time.Duration]string{}
	// Drain, Get Consent (6m to 2h6m), Begin Upgrade (2h6m to 2h11m), completion (to 2h13m).
	for _, at := range []time.Duration{3 * time.Minute, time.Hour, 2*time.Hour + 8*time.Minute, 2*time.Hour + 12*time.Minute} {
		h.env.RegisterDelayedCallback(func() { seen[at] = currentDetails(t, h) }, at)
	}
	h.run(testTenant(), Config{})
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	for at, want := range map[time.Duration]string{
		3 * time.Minute:              "**Waiting for:** pending Work 365 jobs to finish while Work 365 is frozen",
		time.Hour:                    "**Waiting for:** the customer's Global Administrator: Get Consent",
		2*time.Hour + 8*time.Minute:  "**Waiting for:** the holder of the Work 365 service account: Open the upgrade link and click Begin Upgrade",
		2*time.Hour + 12*time.Minute: "**Waiting for:** the holder of the Work 365 service account: Tell us what the upgrade page showed at the end — task confirm-completion-3, open since Dec 6 01:11 UTC; meanwhile Work 365 2.5.0.1 to finish upgrading in Dynamics; deadline Dec 6 03:11 UTC",
	} {
		require.Contains(t, seen[at], want, "current details at %s", at)
	}
	require.Contains(t, seen[3*time.Minute], "; deadline "+h.start.Add(2*time.Hour).UTC().Format("Jan 2 15:04 UTC"))
}
