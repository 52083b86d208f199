package workflows

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

const testWorkflowID = "upgrade/00000000-0000-0000-0000-000000000001/2.5.0.1"

// fakeTenant is the tenant as the mocked activities see it; responders (the people) change it.
type fakeTenant struct {
	mu sync.Mutex

	installed, staged, portalVersion string
	portal                           bool
	frozen                           bool

	// failing counts, per prerequisite check ID, how many more checks fail before a fix.
	prereqFixed   map[string]bool
	serviceRole   bool
	mfaPolicies   bool
	mfaService    bool
	mfaAdmin      bool
	pendingJobs   []int // successive counts, then 0
	consent       bool
	begun         bool
	completePolls int // polls after Begin Upgrade before the version shows
	importFails   int // Work 365 imports that fail before one succeeds
	// followErrors counts reads of a started Work 365 import that fail for a passing reason
	// (throttled) before one gets through.
	followErrors int
	pcMFA        map[string]bool
	pcConsented  map[string]bool

	// faults counts, per activity name, how many more calls fail with an orchestrator fault
	// (the worker's own credential refused by Entra ID).
	faults map[string]int
	// probeFails counts Partner Center probes that fail permanently before one succeeds.
	probeFails int
	// unfreezeFails makes every unfreeze fail permanently.
	unfreezeFails bool

	calls         []string
	notifications []activities.Notification
}

// fault returns an orchestrator fault while name has faults left.
func (f *fakeTenant) fault(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults[name] > 0 {
		f.faults[name]--
		return temporal.NewNonRetryableApplicationError("get a token for Microsoft Graph: login: acquire token failed with HTTP 401 AADSTS7000222: The provided client secret keys are expired", activities.ErrOrchestratorFault, nil)
	}
	return nil
}

func (f *fakeTenant) call(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *fakeTenant) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeTenant) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// upgradeFrom21 is a healthy tenant on 2.1 ready to upgrade.
func upgradeFrom21() *fakeTenant {
	return &fakeTenant{
		installed:   "2.1.0.3",
		prereqFixed: map[string]bool{},
		serviceRole: true, mfaPolicies: true, mfaService: true, mfaAdmin: true,
		pcMFA: map[string]bool{}, pcConsented: map[string]bool{}, faults: map[string]int{},
	}
}

func testTenant() spec.Tenant {
	return spec.Tenant{
		TenantID:          "00000000-0000-0000-0000-000000000001",
		DisplayName:       "Contoso",
		OrgURL:            "https://contoso.crm.dynamics.com",
		PartnerType:       spec.Indirect,
		GlobalAdminUPN:    "admin@contoso.onmicrosoft.com",
		ServiceAccountUPN: "work365svc@contoso.onmicrosoft.com",
		TimeZone:          "Europe/London",
		Window:            spec.Window{Start: "2026-12-05T22:00", Length: "6h"},
		TargetVersion:     "2.5.0.1",
		SolutionPackage:   "work365/Work365_2_5_0_1_managed.zip",
	}
}

// reply is what a person does when a task opens: after a delay, confirm (and change the tenant).
type reply struct {
	delay    time.Duration
	decision string
	as       Audience // empty: the task's audience
	act      func(f *fakeTenant)
	skip     bool // never answer
}

type harness struct {
	t     *testing.T
	suite testsuite.WorkflowTestSuite
	env   *testsuite.TestWorkflowEnvironment
	f     *fakeTenant
	// replies per task kind, consumed in order; the last one repeats.
	replies map[TaskKind][]reply
	start   time.Time

	mu      sync.Mutex
	refused []string
	updates int
}

func newHarness(t *testing.T, f *fakeTenant) *harness {
	h := &harness{t: t, f: f, replies: map[TaskKind][]reply{}}
	h.suite.SetLogger(quietLogger())
	h.env = h.suite.NewTestWorkflowEnvironment()
	h.start = time.Date(2026, 12, 5, 23, 0, 0, 0, time.UTC) // inside the window (22:00 London = 22:00 UTC in December)
	h.env.SetStartTime(h.start)
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testWorkflowID})
	h.env.RegisterWorkflow(TenantUpgrade)
	h.env.RegisterWorkflow(PartnerCenterReconsent)
	h.env.RegisterActivity(&activities.Activities{})
	h.env.SetTestTimeout(30 * time.Second)
	h.defaultReplies()
	h.mockActivities()
	return h
}

func (h *harness) defaultReplies() {
	h.replies[TaskGetConsent] = []reply{{delay: 10 * time.Minute, act: func(f *fakeTenant) { f.consent = true }}}
	h.replies[TaskBeginUpgrade] = []reply{{delay: 5*time.Minute + 10*time.Second, act: func(f *fakeTenant) { f.begun = true }}}
	h.replies[TaskSubmitRegistration] = []reply{{delay: 20 * time.Minute}}
	h.replies[TaskEnableMFAPolicies] = []reply{{delay: time.Hour, act: func(f *fakeTenant) { f.mfaPolicies = true }}}
	h.replies[TaskRegisterMFAService] = []reply{{delay: time.Hour, act: func(f *fakeTenant) { f.mfaService = true }}}
	h.replies[TaskRegisterMFAAdmin] = []reply{{delay: time.Hour, act: func(f *fakeTenant) { f.mfaAdmin = true }}}
	h.replies[TaskAssignServiceRole] = []reply{{delay: time.Hour, act: func(f *fakeTenant) { f.serviceRole = true }}}
	h.replies[TaskReinstallPortal] = []reply{{delay: time.Hour, act: func(f *fakeTenant) { f.portal = true }}}
	h.replies[TaskPartnerReconsent] = []reply{{delay: time.Hour}}
	h.replies[TaskPartnerMFAPolicies] = []reply{{delay: time.Hour}}
	h.replies[TaskConfirmCompletion] = []reply{{delay: 2 * time.Minute, decision: DecisionCongratulations}}
}

// onTask answers a task-opened notification as its person would.
func (h *harness) onTask(n activities.Notification) {
	h.mu.Lock()
	rs := h.replies[TaskKind(n.TaskKind)]
	if len(rs) == 0 {
		h.mu.Unlock()
		return
	}
	r := rs[0]
	if len(rs) > 1 {
		h.replies[TaskKind(n.TaskKind)] = rs[1:]
	}
	h.mu.Unlock()
	if r.skip {
		return
	}
	as := r.as
	if as == "" {
		as = Audience(n.Audience)
	}
	req := ConfirmRequest{TaskID: n.TaskID, As: as, By: "person:" + n.Audience, Decision: r.decision}
	h.env.RegisterDelayedCallback(func() {
		if r.act != nil {
			h.f.mu.Lock()
			r.act(h.f)
			h.f.mu.Unlock()
		}
		h.confirm(n.WorkflowID, req)
	}, r.delay)
}

// confirm sends a confirmation Update; refusals are collected.
func (h *harness) confirm(workflowID string, req ConfirmRequest) {
	h.mu.Lock()
	h.updates++
	id := fmt.Sprintf("update-%d", h.updates)
	h.mu.Unlock()
	err := h.env.UpdateWorkflowByID(workflowID, UpdateConfirmTask, id, &testsuite.TestUpdateCallback{
		OnReject: func(err error) {
			h.mu.Lock()
			h.refused = append(h.refused, err.Error())
			h.mu.Unlock()
		},
		OnAccept:   func() {},
		OnComplete: func(any, error) {},
	}, req)
	if err != nil {
		h.mu.Lock()
		h.refused = append(h.refused, err.Error())
		h.mu.Unlock()
	}
}

func (h *harness) mockActivities() {
	f := h.f
	env := h.env
	env.OnActivity(a.ResolveWindow, mock.Anything, mock.Anything).Return(func(_ context.Context, t spec.Tenant) (activities.WindowTimes, error) {
		f.call("ResolveWindow")
		opens, closes, err := t.LoadWindow()
		return activities.WindowTimes{Opens: opens.UTC(), Closes: closes.UTC()}, err
	})
	env.OnActivity(a.Discover, mock.Anything, mock.Anything).Return(func(context.Context, activities.TenantRef) (activities.Discovery, error) {
		f.call("Discover")
		f.mu.Lock()
		defer f.mu.Unlock()
		return activities.Discovery{InstalledVersion: f.installed, PortalInstalled: f.portal, PortalVersion: f.portalVersion, StagedVersion: f.staged}, nil
	})
	env.OnActivity(a.CheckPrerequisites, mock.Anything, mock.Anything).Return(func(context.Context, activities.PrerequisiteInput) (activities.PrerequisiteReport, error) {
		f.call("CheckPrerequisites")
		f.mu.Lock()
		defer f.mu.Unlock()
		var r activities.PrerequisiteReport
		for _, id := range []string{activities.CheckAdminGlobalAdmin, activities.CheckAdminSystemAdmin, activities.CheckAdminLicence, activities.CheckServiceLicence} {
			fixed, tracked := f.prereqFixed[id]
			r.Checks = append(r.Checks, activities.Check{ID: id, Title: id, Blocking: true, Passed: !tracked || fixed, Detail: "test"})
		}
		r.Checks = append(r.Checks, activities.Check{ID: activities.CheckServiceRole, Title: "role", Passed: f.serviceRole})
		r.Checks = append(r.Checks, activities.Check{ID: activities.CheckPremiumLicences, Title: "p1", Passed: true})
		return r, nil
	})
	env.OnActivity(a.Freeze, mock.Anything, mock.Anything).Return(func(context.Context, activities.TenantRef) error {
		f.call("Freeze")
		f.mu.Lock()
		f.frozen = true
		f.mu.Unlock()
		return nil
	})
	env.OnActivity(a.Unfreeze, mock.Anything, mock.Anything).Return(func(context.Context, activities.TenantRef) error {
		f.call("Unfreeze")
		if err := f.fault("Unfreeze"); err != nil {
			return err
		}
		if f.unfreezeFails {
			return temporal.NewNonRetryableApplicationError("dataverse: set the activity freeze failed with HTTP 403", activities.ErrMicrosoftUnauthorized, nil)
		}
		f.mu.Lock()
		f.frozen = false
		f.mu.Unlock()
		return nil
	})
	realActs := &activities.Activities{}
	_ = realActs
	env.OnActivity(a.DrainJobs, mock.Anything, mock.Anything).Return(func(context.Context, activities.TenantRef) error {
		f.call("DrainJobs")
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.pendingJobs) == 0 {
			return nil
		}
		n := f.pendingJobs[0]
		if len(f.pendingJobs) > 1 {
			f.pendingJobs = f.pendingJobs[1:]
		}
		if n == 0 {
			return nil
		}
		return pendingJobsError(n)
	})
	env.OnActivity(a.CheckMFA, mock.Anything, mock.Anything).Return(func(context.Context, activities.MFAInput) (activities.MFAReport, error) {
		f.call("CheckMFA")
		if err := f.fault("CheckMFA"); err != nil {
			return activities.MFAReport{}, err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return activities.MFAReport{Policies: activities.MFAPolicies{Enabled: f.mfaPolicies, Source: "security defaults"}, AdminRegistered: f.mfaAdmin, ServiceRegistered: f.mfaService}, nil
	})
	env.OnActivity(a.CheckMFAPolicies, mock.Anything, mock.Anything).Return(func(_ context.Context, tenantID string) (activities.MFAPolicies, error) {
		f.call("CheckMFAPolicies:" + tenantID)
		f.mu.Lock()
		defer f.mu.Unlock()
		return activities.MFAPolicies{Enabled: f.pcMFA[tenantID], Source: "security defaults"}, nil
	})
	env.OnActivity(a.StartPortalUninstall, mock.Anything, mock.Anything).Return(func(_ context.Context, t activities.TenantRef) (activities.AsyncOp, error) {
		f.call("StartPortalUninstall")
		return activities.AsyncOp{Tenant: t, OperationID: "op-uninstall", What: "portal uninstall"}, nil
	})
	env.OnActivity(a.WaitForAsyncOperation, mock.Anything, mock.Anything).Return(func(context.Context, activities.AsyncOp) error {
		f.call("WaitForAsyncOperation")
		f.mu.Lock()
		f.portal = false
		f.mu.Unlock()
		return nil
	})
	imports := map[string]string{} // import job ID → what it imports
	env.OnActivity(a.StartImport, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ImportInput) (activities.ImportStarted, error) {
		kind := "portal"
		switch {
		case strings.Contains(in.PackageRef, "Portal"):
		case in.Holding:
			kind = "work365"
		default:
			kind = "work365-install"
		}
		f.call("StartImport:" + kind)
		f.mu.Lock()
		imports[in.ImportJobID] = kind
		f.mu.Unlock()
		return activities.ImportStarted{Tenant: in.Tenant, ImportJobID: in.ImportJobID, AsyncOperationID: "op-" + in.ImportJobID}, nil
	})
	env.OnActivity(a.WaitForImport, mock.Anything, mock.Anything).Return(func(_ context.Context, st activities.ImportStarted) (activities.ImportProgress, error) {
		f.call("WaitForImport")
		f.mu.Lock()
		defer f.mu.Unlock()
		if k := imports[st.ImportJobID]; k != "portal" && f.followErrors > 0 {
			f.followErrors--
			return activities.ImportProgress{}, temporal.NewApplicationError("read import job: dataverse answered HTTP 429 0x80072322", activities.ErrMicrosoftTransient)
		}
		if k := imports[st.ImportJobID]; k != "portal" && f.importFails > 0 {
			f.importFails--
			return activities.ImportProgress{}, temporal.NewNonRetryableApplicationError("solution import failed: missing dependency", activities.ErrOperationFailed, nil)
		}
		switch imports[st.ImportJobID] {
		case "work365":
			f.staged = "2.5.0.1"
		case "work365-install":
			f.installed = "2.5.0.1"
		default:
			f.portal = true
		}
		return activities.ImportProgress{Percent: 100}, nil
	})
	env.OnActivity(a.VerifyImport, mock.Anything, mock.Anything).Return(func(context.Context, activities.UpgradeCheck) (activities.SolutionState, error) {
		f.call("VerifyImport")
		f.mu.Lock()
		defer f.mu.Unlock()
		return activities.SolutionState{InstalledVersion: f.installed, StagedVersion: f.staged}, nil
	})
	env.OnActivity(a.CheckServiceRole, mock.Anything, mock.Anything).Return(func(context.Context, activities.PrerequisiteInput) (bool, error) {
		f.call("CheckServiceRole")
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.serviceRole, nil
	})
	env.OnActivity(a.VerifyConsent, mock.Anything, mock.Anything).Return(func(context.Context, activities.TenantRef) (activities.ConsentState, error) {
		f.call("VerifyConsent")
		f.mu.Lock()
		defer f.mu.Unlock()
		return activities.ConsentState{Observable: true, Granted: f.consent, Detail: "test"}, nil
	})
	env.OnActivity(a.WaitForUpgradeStarted, mock.Anything, mock.Anything).Return(func(context.Context, activities.UpgradeCheck) (activities.SolutionState, error) {
		f.call("WaitForUpgradeStarted")
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.begun {
			return activities.SolutionState{}, nil
		}
		return activities.SolutionState{}, notStartedError()
	})
	env.OnActivity(a.WaitForCompletion, mock.Anything, mock.Anything).Return(func(context.Context, activities.UpgradeCheck) (activities.SolutionState, error) {
		f.call("WaitForCompletion")
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.begun && f.completePolls <= 0 {
			f.installed, f.staged = "2.5.0.1", ""
			return activities.SolutionState{InstalledVersion: f.installed}, nil
		}
		f.completePolls--
		return activities.SolutionState{}, notCompleteError()
	})
	env.OnActivity(a.FinalCheck, mock.Anything, mock.Anything).Return(func(context.Context, activities.UpgradeCheck) (activities.SolutionState, error) {
		f.call("FinalCheck")
		f.mu.Lock()
		defer f.mu.Unlock()
		return activities.SolutionState{InstalledVersion: f.installed, StagedVersion: f.staged, Frozen: f.frozen}, nil
	})
	env.OnActivity(a.ProbePartnerCenter, mock.Anything, mock.Anything).Return(func(_ context.Context, tenantID string) (activities.PartnerCenterProbe, error) {
		f.call("ProbePartnerCenter:" + tenantID)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.probeFails > 0 {
			f.probeFails--
			return activities.PartnerCenterProbe{}, temporal.NewNonRetryableApplicationError("partnercenter: get the organization profile failed with HTTP 403", activities.ErrMicrosoftUnauthorized, nil)
		}
		return activities.PartnerCenterProbe{Verified: true, Detail: "ok"}, nil
	})
	env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		f.mu.Lock()
		f.notifications = append(f.notifications, n)
		f.mu.Unlock()
		if n.Event == activities.EventTaskOpened {
			h.onTask(n)
		}
		return nil
	})
}

// taskID returns the ID of the n-th (1-based) opened task of a kind.
func (h *harness) taskID(kind TaskKind, n int) string {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	for _, x := range h.f.notifications {
		if x.Event == activities.EventTaskOpened && x.TaskKind == string(kind) {
			if n--; n == 0 {
				return x.TaskID
			}
		}
	}
	return ""
}

// events counts notifications of an event.
func (h *harness) events(event string) int {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n := 0
	for _, x := range h.f.notifications {
		if x.Event == event {
			n++
		}
	}
	return n
}

// run executes the workflow to its end.
func (h *harness) run(t spec.Tenant, cfg Config) {
	h.env.ExecuteWorkflow(TenantUpgrade, Input{Tenant: t, Config: cfg})
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow did not complete")
}

func (h *harness) result() (Result, error) {
	var r Result
	err := h.env.GetWorkflowError()
	if err == nil {
		require.NoError(h.t, h.env.GetWorkflowResult(&r))
	}
	return r, err
}

// stagesOf lists the stage names of a result, in order.
func stagesOf(r Result) []Stage {
	out := make([]Stage, 0, len(r.Stages))
	for _, s := range r.Stages {
		out = append(out, s.Stage)
	}
	return out
}

func confirmedKinds(cs []Confirmation) []TaskKind {
	out := make([]TaskKind, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

// before asserts that every call named first happens before the first call named then.
func before(t *testing.T, calls []string, first, then string) {
	t.Helper()
	i, j := slices.Index(calls, first), slices.Index(calls, then)
	require.NotEqual(t, -1, i, "%s never called: %v", first, calls)
	require.NotEqual(t, -1, j, "%s never called: %v", then, calls)
	require.Less(t, i, j, "%s must come before %s: %v", first, then, calls)
}

func (h *harness) tasksOpened(kind TaskKind) int {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n := 0
	for _, x := range h.f.notifications {
		if x.Event == activities.EventTaskOpened && x.TaskKind == string(kind) {
			n++
		}
	}
	return n
}

var _ = fmt.Sprint

func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}
