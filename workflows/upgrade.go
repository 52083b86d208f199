// Package workflows turns the Work 365 v2.5 upgrade runbook into Temporal workflows: one
// TenantUpgrade per tenant, whose stage functions below follow the runbook in order, and one
// PartnerCenterReconsent child per Partner Center connection of a direct partner.
package workflows

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Failure types of the workflow itself.
const (
	ErrUpgradeFailed  = "UpgradeFailed"
	ErrUpgradeAborted = "UpgradeAborted"
)

// errAlreadyCurrent ends the runbook early, without side effects, for a tenant at or above
// the target.
var errAlreadyCurrent = errors.New("already at or above the target version")

// upgrade is one tenant's upgrade in progress.
type upgrade struct {
	*run
	in  Input
	ref activities.TenantRef

	window             activities.WindowTimes
	windowChanged      workflow.Channel
	startNow           bool
	discovery          activities.Discovery
	fromVersion        string
	serviceRoleMissing bool
	frozen             bool
	portalUninstalled  bool
	portalReinstalled  bool
	linkRound          int
	partnerCenters     []PartnerCenterResult
	cleanup            []string
	// upgradeIn is set once the upgrade went in (completion seen): from then on nothing turns
	// the outcome into failed.
	upgradeIn bool
	// frozenAt is when Work 365 was frozen; frozenFor accumulates the frozen time.
	frozenAt  time.Time
	frozenFor time.Duration
	// lookNow carries late confirmations (evidence) to the stage that can look at the tenant.
	lookNow workflow.Channel
	// followStarted is true for runs of the changeFollowStarted version: started operations
	// are followed until their own outcome (see followOperation).
	followStarted bool
	// checked holds, for slim runs, the wait count (run.waits) at which a check last passed
	// or a look found nothing: with no wait since, doing it again would read the same answer.
	checked map[string]int
}

// Workflow versions (README, "Evolving running upgrades"): each release that changes the
// commands a running upgrade issues adds one change ID here, read once at the start.
const (
	// changeSafeRunbook gates issue 10's runbook: preparation before the window, a closed
	// window asks the operator, bounded human loops, observed Begin Upgrade, the completion
	// page, portal and unfreeze before Partner Center, post-upgrade stages that never fail
	// the tenant, and waits instead of failures on orchestrator faults.
	changeSafeRunbook = "safe-on-real-tenant"
	// changeFollowStarted gates issue 12's following of started operations: an import,
	// uninstall or portal install that was started is followed through any transient error;
	// only its own outcome, or the operator at its deadline (operation-deadline), ends it.
	changeFollowStarted = "follow-started-operations"
	// changeSlimHistory gates issue 14's shorter history: search attributes and the fleet's
	// progress report are published only where the upgrade waits (run.flush), and short,
	// idempotent reads, checks, notifications and the freeze/unfreeze run as local activities
	// (run.local) with the regular activity as their fallback.
	changeSlimHistory = "slim-history"
)

// TenantUpgrade upgrades one tenant to Work 365 v2.5, following the runbook stage by stage.
// It returns a Result for upgraded and already-current tenants; failed and cancelled upgrades
// end with an error whose details are the Result.
func TenantUpgrade(ctx workflow.Context, in Input) (Result, error) {
	return tenantUpgrade(ctx, in, gateSafeRunbook)
}

// gateSafeRunbook reads the version gate of the safe runbook: new runs take it; runs that
// started before it keep the runbook they started with.
func gateSafeRunbook(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, changeSafeRunbook, workflow.DefaultVersion, 1) >= 1
}

// tenantUpgrade is TenantUpgrade with its version gate as a parameter, so a test can show
// what replaying recorded histories without the gate would do.
func tenantUpgrade(ctx workflow.Context, in Input, safe func(workflow.Context) bool) (Result, error) {
	u := &upgrade{
		run: newRun(ctx, in.Tenant.TenantID, in.Tenant.DisplayName, in.Fleet, in.Config, ""),
		in:  in,
		ref: activities.TenantRef{TenantID: in.Tenant.TenantID, OrgURL: in.Tenant.OrgURL},
	}
	u.reportTo = in.ReportTo
	u.leanReports, u.noSlotReports = in.LeanReports, in.LeanReports && in.NoSlotReports
	u.reported = u.slotKey() // the fleet starts it as running in validate, waiting on nobody
	u.checked = map[string]int{}
	u.windowChanged = workflow.NewBufferedChannel(ctx, 10)
	u.lookNow = workflow.NewBufferedChannel(ctx, 10)
	// The newest gate is read first: a run that takes it takes the older changes too, and
	// records one version marker (and one TemporalChangeVersion upsert) instead of three.
	// Runs that started before it find no marker and read the older gates as they did.
	u.slim = workflow.GetVersion(ctx, changeSlimHistory, workflow.DefaultVersion, 1) >= 1
	if u.slim {
		u.safe, u.followStarted = true, true
	} else {
		u.safe = safe(ctx)
		u.followStarted = workflow.GetVersion(ctx, changeFollowStarted, workflow.DefaultVersion, 1) >= 1
	}
	if u.safe {
		u.board.lateEvidence = map[TaskKind]workflow.Channel{TaskBeginUpgrade: u.lookNow}
	}
	if err := u.registerHandlers(ctx); err != nil {
		return Result{}, err
	}
	err := u.runbook(ctx)
	return u.finish(ctx, err)
}

// runbook runs the stages in the runbook's order. Human preparation that needs no freeze
// (prerequisites, MFA) comes before the window; once the upgrade is in, the portal comes back
// and Work 365 is unfrozen before Partner Center re-consent (which may take days), and later
// stages never fail the upgraded tenant.
func (u *upgrade) runbook(ctx workflow.Context) error {
	if u.safe {
		return u.steps(ctx,
			u.validate,
			u.discover,
			u.prerequisites,
			u.enableMFA,
			u.downtimeWindow, // re-verifies the preparation when it opens
			u.freezeAndDrain,
			u.uninstallPortal,
			u.importSolution,
			u.recheckServiceRole,
			u.registrationAndConsent,
			u.completion, // the completion page and the final checks through the APIs
			u.afterUpgrade(u.reinstallPortal),
			u.afterUpgrade(u.unfreezeUnlessPartnerCenterFirst),
			u.afterUpgrade(u.partnerCenterReconsent),
			u.afterUpgrade(u.verify),
		)
	}
	return u.steps(ctx,
		u.validate,
		u.discover,
		u.prerequisites,
		u.downtimeWindow,
		u.freezeAndDrain,
		u.enableMFA,
		u.uninstallPortal,
		u.importSolution,
		u.recheckServiceRole,
		u.registrationAndConsent, // Complete Registration + Consent & Initialization, looping on expired links
		u.completion,
		u.partnerCenterReconsent,
		u.reinstallPortal,
		u.unfreezeAndVerify,
	)
}

func (u *upgrade) steps(ctx workflow.Context, steps ...func(workflow.Context) error) error {
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// 0. Validate the spec: an invalid one fails fast, naming the field.
func (u *upgrade) validate(ctx workflow.Context) error {
	u.enter(ctx, StageValidate)
	if err := u.in.Tenant.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError("invalid tenant spec: "+err.Error(), activities.ErrInvalidSpec, nil)
	}
	if err := u.read(ctx, "Resolve the downtime window in "+u.in.Tenant.TimeZone, a.ResolveWindow, u.in.Tenant, &u.window); err != nil {
		return err
	}
	u.note(fmt.Sprintf("spec valid; downtime window %s for %s (%s)", u.in.Tenant.Window.Start, u.in.Tenant.Window.Length, u.in.Tenant.TimeZone))
	return nil
}

// 1. Discover: installed Work 365 version (none = new install) and portal.
func (u *upgrade) discover(ctx workflow.Context) error {
	u.enter(ctx, StageDiscover)
	if err := u.read(ctx, "Discover installed Work 365 and portal", a.Discover, u.ref, &u.discovery); err != nil {
		return err
	}
	u.fromVersion = u.discovery.InstalledVersion
	u.run.fromVersion = versionOrNone(u.fromVersion)
	u.extra = []temporal.SearchAttributeUpdate{searchattr.FromVersion.ValueSet(versionOrNone(u.fromVersion))}
	if u.fromVersion == "" {
		u.note("new install: Work 365 is not installed")
	} else {
		u.note("installed Work 365 " + u.fromVersion)
	}
	if u.discovery.PortalInstalled {
		u.note("portal " + u.discovery.PortalVersion + " installed")
	}
	if u.fromVersion != "" && spec.CompareVersions(u.fromVersion, u.in.Tenant.TargetVersion) >= 0 {
		return errAlreadyCurrent
	}
	return nil
}

// 2. Prerequisites (runbook table). Blocking failures become "fix X" tasks, re-verified until
// they pass, for at most MaxFixRounds rounds before the operator decides. The Work 365 Service
// role may be missing now; it is re-checked after the import.
func (u *upgrade) prerequisites(ctx workflow.Context) error {
	u.enter(ctx, StagePrerequisites)
	_, err := u.fixPrerequisites(ctx, false)
	return err
}

// fixPrerequisites checks the prerequisites and asks for fixes until they pass; it reports
// whether anything had to be fixed. recheck is the re-verification when the window opens.
func (u *upgrade) fixPrerequisites(ctx workflow.Context, recheck bool) (bool, error) {
	in := activities.PrerequisiteInput{Tenant: u.ref, GlobalAdminUPN: u.in.Tenant.GlobalAdminUPN, ServiceAccountUPN: u.in.Tenant.ServiceAccountUPN}
	asked := false
	for round := 1; ; round++ {
		var rep activities.PrerequisiteReport
		if err := u.read(ctx, "Check the runbook's prerequisites", a.CheckPrerequisites, in, &rep); err != nil {
			return asked, err
		}
		var fixes []taskRequest
		var left []string
		for _, c := range rep.Checks {
			if c.Blocking && !c.Passed {
				fixes = append(fixes, fixPrerequisiteTask(u.in.Tenant, c))
				left = append(left, c.Title+": "+c.Detail)
			}
		}
		if len(fixes) == 0 {
			if recheck {
				return asked, nil
			}
			if c, ok := rep.Check(activities.CheckServiceRole); ok && !c.Passed {
				u.serviceRoleMissing = true
				u.note("'Work 365 Service' role missing: allowed now, re-checked after the import")
			}
			if c, ok := rep.Check(activities.CheckPremiumLicences); ok && !c.Passed {
				u.warn(ctx, "advice: "+c.Detail)
			}
			u.note("prerequisites met")
			return asked, nil
		}
		var err error
		if round, err = u.fixRound(ctx, "prerequisites", round, left, fixes, recheck && !asked); err != nil {
			return true, err
		}
		asked = true
	}
}

// fixRound asks for one round of fixes (several tasks at once); past MaxFixRounds rounds the
// operator decides first (retry starts the count again). It returns the round number to go on
// with. regressed says the preparation was in place before and no longer is.
func (u *upgrade) fixRound(ctx workflow.Context, what string, round int, left []string, reqs []taskRequest, regressed bool) (int, error) {
	if regressed {
		u.warn(ctx, what+" no longer in place when the window opened: "+strings.Join(left, "; "))
	}
	if u.safe && round > u.cfg.MaxFixRounds {
		if err := u.roundsExhausted(ctx, what, round-1, strings.Join(left, "; ")); err != nil {
			return round, err
		}
		round = 1
	}
	_, err := u.askAll(ctx, reqs)
	return round, err
}

// 3. Downtime window: wait until it opens in the tenant's time zone; operators may start now
// or move it.
func (u *upgrade) downtimeWindow(ctx workflow.Context) error {
	u.enter(ctx, StageDowntimeWindow)
	if u.safe {
		return u.windowContract(ctx)
	}
	for !u.startNow {
		now := workflow.Now(ctx)
		if !now.Before(u.window.Opens) {
			if now.After(u.window.Closes) {
				u.warn(ctx, fmt.Sprintf("the downtime window %s–%s had already closed when this stage began; proceeding", u.window.Opens.Format(time.RFC3339), u.window.Closes.Format(time.RFC3339)))
			}
			break
		}
		tctx, cancel := workflow.WithCancel(ctx)
		timer := workflow.NewTimerWithOptions(tctx, u.window.Opens.Sub(now), workflow.TimerOptions{
			Summary: "Downtime window opens " + u.in.Tenant.Window.Start + " " + u.in.Tenant.TimeZone,
		})
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(workflow.Future) {})
		sel.AddReceive(u.windowChanged, func(ch workflow.ReceiveChannel, _ bool) { ch.Receive(ctx, nil) })
		u.flush(ctx)
		sel.Select(ctx)
		cancel()
		if ctx.Err() != nil {
			return temporal.NewCanceledError("cancelled while waiting for the downtime window")
		}
	}
	if u.startNow {
		u.note("started now by an operator")
	}
	return nil
}

// windowContract never lets the freeze happen outside the window: it waits for the window;
// a closed window asks the operator (start now, move the window, or abort); once it is open,
// the preparation (prerequisites, MFA) is verified again, and if fixes took time, the window
// is checked again.
func (u *upgrade) windowContract(ctx workflow.Context) error {
	for {
		if err := u.waitForWindow(ctx); err != nil {
			return err
		}
		fixedPrereqs, err := u.fixPrerequisites(ctx, true)
		if err != nil {
			return err
		}
		fixedMFA, err := u.fixMFA(ctx, true)
		if err != nil {
			return err
		}
		if !fixedPrereqs && !fixedMFA {
			break
		}
		u.note("preparation fixed again after the window opened; window checked again")
	}
	if u.startNow {
		u.note("started now by an operator")
	} else {
		u.note("window open until " + u.window.Closes.UTC().Format(time.RFC3339) + "; preparation re-verified")
	}
	return nil
}

// waitForWindow returns once the window is open (or an operator started it now).
func (u *upgrade) waitForWindow(ctx workflow.Context) error {
	for !u.startNow {
		now := workflow.Now(ctx)
		wctx, cancel := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(u.windowChanged, func(ch workflow.ReceiveChannel, _ bool) { ch.Receive(ctx, nil) })
		var task *pendingTask
		var decided *Confirmation
		var taskErr error
		switch {
		case now.Before(u.window.Opens):
			u.awaiting(ctx, fmt.Sprintf("the downtime window to open at %s (%s %s)", u.window.Opens.UTC().Format("Jan 2 15:04 UTC"), u.in.Tenant.Window.Start, u.in.Tenant.TimeZone))
			timer := workflow.NewTimerWithOptions(wctx, u.window.Opens.Sub(now), workflow.TimerOptions{
				Summary: "Downtime window opens " + u.in.Tenant.Window.Start + " " + u.in.Tenant.TimeZone,
			})
			sel.AddFuture(timer, func(workflow.Future) {})
		case !now.After(u.window.Closes):
			cancel()
			return nil
		default:
			u.warn(ctx, "the downtime window closed at "+u.window.Closes.UTC().Format(time.RFC3339)+" before the freeze: nothing frozen; the operator decides")
			task = u.askAsync(wctx, windowClosedTask(u.in.Tenant, u.window.Opens, u.window.Closes))
			sel.AddFuture(task.future, func(f workflow.Future) {
				var c Confirmation
				if taskErr = f.Get(ctx, &c); taskErr == nil {
					decided = &c
				}
			})
		}
		u.flush(ctx)
		sel.Select(ctx)
		if task != nil && decided == nil && taskErr == nil {
			task.stop("the downtime window was changed")
		}
		cancel()
		if ctx.Err() != nil {
			return temporal.NewCanceledError("cancelled while waiting for the downtime window")
		}
		if taskErr != nil {
			return taskErr
		}
		if decided != nil {
			if decided.Decision == DecisionAbort {
				return aborted(*decided, "the downtime window closed before the upgrade could start")
			}
			u.startNow = true
			u.warnings = append(u.warnings, "downtime window started now by "+decided.By+" after it had closed"+noteSuffix(decided.Note))
		}
	}
	return nil
}

// 4. Freeze Work 365 activity, then wait for pending jobs to drain, bounded by a deadline after
// which the operator decides.
func (u *upgrade) freezeAndDrain(ctx workflow.Context) error {
	u.enter(ctx, StageFreezeAndDrain)
	if u.fromVersion == "" {
		u.note("skipped: new install, no Work 365 activity or jobs yet")
		return nil
	}
	u.frozen = true // set first: cleanup unfreezes (idempotently) even if the freeze's answer is lost
	if err := u.read(ctx, "Freeze Work 365 activity", a.Freeze, u.ref, nil); err != nil {
		return err
	}
	if u.safe {
		u.frozenAt = workflow.Now(ctx)
		u.watchFrozenTime(ctx)
	}
	if u.slim {
		// One look first (a local activity): a tenant with no jobs pending needs no poll.
		// Any other answer goes to the poll below, which handles it as before.
		if err := workflow.ExecuteLocalActivity(localOpts(ctx, "Look for pending Work 365 jobs"), a.DrainJobs, u.ref).Get(ctx, nil); err == nil {
			u.note("no Work 365 jobs pending")
			return nil
		}
	}
	for {
		summary := "Wait for pending Work 365 jobs to complete"
		u.awaiting(ctx, fmt.Sprintf("pending Work 365 jobs to finish while Work 365 is frozen (the count is the drain activity's last failure, e.g. \"7 Work 365 jobs still pending\"); deadline %s",
			workflow.Now(ctx).Add(u.cfg.DrainDeadline).UTC().Format("Jan 2 15:04 UTC")))
		err := u.exec(ctx, pollOpts(ctx, summary, u.cfg.DrainPollInterval, u.cfg.DrainDeadline), a.DrainJobs, u.ref, nil)
		if err == nil {
			u.note("no Work 365 jobs pending")
			return nil
		}
		if !deadlinePassed(err) {
			return err
		}
		left := lastFailure(err)
		c, err := u.ask(ctx, drainDeadlineTask(left, u.cfg.Show(u.cfg.DrainDeadline)))
		if err != nil {
			return err
		}
		switch c.Decision {
		case DecisionProceed:
			u.warn(ctx, "proceeded with Work 365 jobs still pending ("+left+") on "+c.By+"'s decision: jobs that are not completed may fail after the upgrade")
			return nil
		case DecisionAbort:
			return aborted(c, "pending Work 365 jobs did not drain")
		}
	}
}

// 5. MFA: policies enabled, MFA registered for the service account and the admin; each missing
// one is a human task, re-verified after confirmation, for at most MaxFixRounds rounds. It needs
// no freeze, so it runs before the downtime window and is re-verified when the window opens.
func (u *upgrade) enableMFA(ctx workflow.Context) error {
	u.enter(ctx, StageMFA)
	_, err := u.fixMFA(ctx, false)
	return err
}

// fixMFA checks MFA and asks for what is missing until it is all in place; it reports whether
// anything had to be done.
func (u *upgrade) fixMFA(ctx workflow.Context, recheck bool) (bool, error) {
	in := activities.MFAInput{Tenant: u.ref, GlobalAdminUPN: u.in.Tenant.GlobalAdminUPN, ServiceAccountUPN: u.in.Tenant.ServiceAccountUPN}
	asked := false
	for round := 1; ; round++ {
		var rep activities.MFAReport
		if err := u.read(ctx, "Check MFA policies and registrations", a.CheckMFA, in, &rep); err != nil {
			return asked, err
		}
		var todo []taskRequest
		var left []string
		if !rep.Policies.Enabled {
			todo = append(todo, mfaPoliciesTask(u.in.Tenant.TenantID, GlobalAdmin, TaskEnableMFAPolicies))
			left = append(left, "MFA policies not enabled")
		}
		if !rep.ServiceRegistered {
			todo = append(todo, registerMFATask(u.in.Tenant, true))
			left = append(left, "service account has no MFA method")
		}
		if !rep.AdminRegistered {
			todo = append(todo, registerMFATask(u.in.Tenant, false))
			left = append(left, "Global Administrator has no MFA method")
		}
		if len(todo) == 0 {
			if !recheck {
				u.note("MFA enforced by " + rep.Policies.Source + "; both accounts registered")
			}
			return asked, nil
		}
		var err error
		if round, err = u.fixRound(ctx, "MFA set-up", round, left, todo, recheck && !asked); err != nil {
			return true, err
		}
		asked = true
	}
}

// 6. Portal: upgrading from 2.1 or lower with the portal installed → uninstall it first.
func (u *upgrade) uninstallPortal(ctx workflow.Context) error {
	u.enter(ctx, StagePortalUninstall)
	if !u.discovery.PortalInstalled || u.fromVersion == "" || !spec.AtMost21(u.fromVersion) {
		u.note("skipped: not needed (only when upgrading from v2.1 or lower with the portal installed)")
		return nil
	}
	var op activities.AsyncOp
	if err := u.exec(ctx, readOpts(ctx, "Start uninstalling the Work 365 portal solution"), a.StartPortalUninstall, u.ref, &op); err != nil {
		return err
	}
	u.portalUninstalled = true
	u.awaiting(ctx, "Dataverse to uninstall the Work 365 portal solution")
	if err := u.followOperation(ctx, "Wait for the portal uninstall", "portal uninstall", a.WaitForAsyncOperation, op); err != nil {
		return err
	}
	u.note("portal " + u.discovery.PortalVersion + " uninstalled; reinstalled after the upgrade")
	return nil
}

// 7. Import v2.5 as a staged (holding) upgrade, not applied — or, for a new install, install
// it (there is nothing to upgrade). The import job ID is derived from the workflow so a retry
// never imports twice.
func (u *upgrade) importSolution(ctx workflow.Context) error {
	u.enter(ctx, StageImport)
	newInstall := u.fromVersion == ""
	summary := "Import Work 365 " + u.in.Tenant.TargetVersion + " as staged upgrade"
	if newInstall {
		summary = "Install Work 365 " + u.in.Tenant.TargetVersion + " (new install)"
	}
	for attempt := 1; ; attempt++ {
		what := "work365-" + u.in.Tenant.TargetVersion
		if attempt > 1 {
			what += fmt.Sprintf("-attempt-%d", attempt) // a retried import is a new import job
		}
		in := activities.ImportInput{
			Tenant: u.ref, PackageRef: u.in.Tenant.SolutionPackage, Holding: !newInstall,
			ImportJobID: importJobID(ctx, what), TargetVersion: u.in.Tenant.TargetVersion,
		}
		var st activities.ImportStarted
		if err := u.exec(ctx, readOpts(ctx, summary), a.StartImport, in, &st); err != nil {
			return err
		}
		if st.Already != "" {
			u.note(st.Already)
		}
		u.awaiting(ctx, fmt.Sprintf("Dataverse to import Work 365 %s (the activity's heartbeat has the percent); if it has not finished by %s, operators decide",
			u.in.Tenant.TargetVersion, workflow.Now(ctx).Add(u.cfg.ImportTimeout).UTC().Format("Jan 2 15:04 UTC")))
		err := u.followOperation(ctx, "Wait for the import of Work 365 "+u.in.Tenant.TargetVersion, "import of Work 365 "+u.in.Tenant.TargetVersion, a.WaitForImport, st)
		if err == nil {
			break
		}
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != activities.ErrOperationFailed {
			return err
		}
		u.warn(ctx, fmt.Sprintf("import attempt %d failed: %s", attempt, truncate(app.Message(), 300)))
		c, err := u.ask(ctx, importFailedTask(truncate(app.Message(), 1500), attempt))
		if err != nil {
			return err
		}
		if c.Decision == DecisionAbort {
			return aborted(c, "the solution import failed")
		}
	}
	var s activities.SolutionState
	if err := u.read(ctx, "Verify the import", a.VerifyImport, u.check(), &s); err != nil {
		return err
	}
	if newInstall {
		u.note("Work 365 " + s.InstalledVersion + " installed; initialisation follows the consent")
	} else {
		u.note("staged upgrade " + s.StagedVersion + " present, not applied (do not click Upgrade in Dynamics)")
	}
	return nil
}

// followOperation follows an operation that has been started in Dynamics (import, uninstall,
// portal install) until its own outcome. Runs of changeFollowStarted retry transient errors
// while following without a limit on attempts and, when ImportTimeout passes, ask the operator
// whether to keep following or abort; a failed operation (ErrOperationFailed) is returned for
// the caller to handle. Older runs keep longOpts (ten attempts, then the upgrade fails).
func (u *upgrade) followOperation(ctx workflow.Context, summary, what string, activity, arg any) error {
	if !u.followStarted {
		return u.exec(ctx, longOpts(ctx, summary, u.cfg.ImportTimeout), activity, arg, nil)
	}
	for {
		err := u.exec(ctx, followOpts(ctx, summary, u.cfg.ImportTimeout), activity, arg, nil)
		if err == nil || !followDeadlinePassed(err) {
			return err
		}
		c, err := u.ask(ctx, operationDeadlineTask(what, lastFailure(err), u.cfg.ImportTimeout))
		if err != nil {
			return err
		}
		if c.Decision == DecisionAbort {
			return aborted(c, "the "+what+" did not finish in time")
		}
		u.note("kept following the " + what + " on " + c.By + "'s decision")
	}
}

// followDeadlinePassed tells whether a follow activity ended without the operation's outcome:
// retries stop only at the deadline, so a timeout or a passing error (throttling, an outage)
// means the deadline passed. The operation's own failure is non-retryable.
func followDeadlinePassed(err error) bool {
	if deadlinePassed(err) {
		return true
	}
	var app *temporal.ApplicationError
	return errors.As(err, &app) && !app.NonRetryable()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (u *upgrade) check() activities.UpgradeCheck {
	return activities.UpgradeCheck{Tenant: u.ref, TargetVersion: u.in.Tenant.TargetVersion, NewInstall: u.fromVersion == ""}
}

// 8. Service role re-check, when it was missing before the import.
func (u *upgrade) recheckServiceRole(ctx workflow.Context) error {
	u.enter(ctx, StageServiceRole)
	if !u.serviceRoleMissing {
		u.note("skipped: the role was already assigned")
		return nil
	}
	in := activities.PrerequisiteInput{Tenant: u.ref, GlobalAdminUPN: u.in.Tenant.GlobalAdminUPN, ServiceAccountUPN: u.in.Tenant.ServiceAccountUPN}
	for round := 1; ; round++ {
		var ok bool
		if err := u.read(ctx, "Check the service account's Work 365 Service role", a.CheckServiceRole, in, &ok); err != nil {
			return err
		}
		if ok {
			u.note("'Work 365 Service' role assigned")
			return nil
		}
		if u.safe && round > u.cfg.MaxFixRounds {
			if err := u.roundsExhausted(ctx, "the Work 365 Service role", round-1, u.in.Tenant.ServiceAccountUPN+" does not hold the role"); err != nil {
				return err
			}
			round = 1
		}
		if _, err := u.ask(ctx, serviceRoleTask(u.in.Tenant, "Work 365 Service")); err != nil {
			return err
		}
	}
}

// 9 and 10. Complete Registration (new installs: the form once), Get Consent, then the service
// account's Begin Upgrade within the link's validity. An expired link goes back to Get
// Consent; after MaxLinkRounds expired links the operator must retry or abort.
func (u *upgrade) registrationAndConsent(ctx workflow.Context) error {
	u.enter(ctx, StageRegistration)
	newInstall := u.fromVersion == ""
	if newInstall {
		c, err := u.ask(ctx, registrationTask(u.in.Tenant))
		if err != nil {
			return err
		}
		u.note("registration form completed by " + c.By)
	} else {
		u.note("registration form skipped: upgrading from a previous version")
	}
	expired, notFound, why := 0, 0, ""
	for {
		if u.stage != StageRegistration {
			u.enter(ctx, StageRegistration)
		}
		// Observe, don't trust: Begin Upgrade may already have happened in an earlier round
		// (a click in the last seconds, a confirmation that reached a closed task).
		if u.safe && u.linkRound > 0 && !u.current("begin-upgrade") && u.lookForBeginUpgrade(ctx, "Look for Begin Upgrade in the tenant") {
			u.note("Begin Upgrade of an earlier round seen in the tenant; no new consent needed")
			return nil
		}
		u.linkRound++
		u.extra = []temporal.SearchAttributeUpdate{searchattr.FromVersion.ValueSet(versionOrNone(u.fromVersion)), searchattr.LinkRound.ValueSet(int64(u.linkRound))}
		c, began, err := u.askConsent(ctx, getConsentTask(u.in.Tenant, u.linkRound, newInstall, why))
		if err != nil {
			return err
		}
		if began {
			u.note("Begin Upgrade seen in the tenant after a late confirmation; Get Consent closed")
			return nil
		}
		linkIssued := c.At
		var consent activities.ConsentState
		if err := u.read(ctx, "Verify the Work 365 app's admin consent", a.VerifyConsent, u.ref, &consent); err != nil {
			return err
		}
		switch {
		case !consent.Observable:
			u.warn(ctx, "consent not verified: "+consent.Detail)
		case !consent.Granted:
			u.warn(ctx, "round "+fmt.Sprint(u.linkRound)+": "+consent.Detail)
			why = "The consent was not found in the tenant (" + consent.Detail + "): accept the permissions this time."
			if notFound++; u.safe && notFound >= u.cfg.MaxFixRounds {
				if err := u.roundsExhausted(ctx, "the Work 365 app's consent", notFound, consent.Detail); err != nil {
					return err
				}
				notFound = 0
			}
			continue
		default:
			u.note("consent verified: " + consent.Detail)
		}

		u.enter(ctx, StageConsentInit)
		began, err = u.waitForBeginUpgrade(ctx, linkIssued)
		if err != nil {
			return err
		}
		if began {
			return nil
		}
		expired++
		u.warn(ctx, fmt.Sprintf("upgrade link of round %d expired after %s without Begin Upgrade", u.linkRound, u.cfg.Show(u.cfg.LinkValidity)))
		u.note(fmt.Sprintf("link of round %d expired after %s without Begin Upgrade; Get Consent again", u.linkRound, u.cfg.Show(u.cfg.LinkValidity)))
		why = fmt.Sprintf("The previous upgrade link expired (round %d).", u.linkRound)
		if expired >= u.cfg.MaxLinkRounds {
			c, err := u.ask(ctx, linkEscalationTask(expired))
			if err != nil {
				return err
			}
			if c.Decision == DecisionAbort {
				return aborted(c, fmt.Sprintf("the upgrade link expired %d times", expired))
			}
			expired = 0
		}
	}
}

// askConsent opens the Get Consent task and waits for it. In the safe runbook a late
// confirmation of an earlier Begin Upgrade task makes it look at the tenant at once; when the
// upgrade is seen started, the task closes and began is true.
func (u *upgrade) askConsent(ctx workflow.Context, req taskRequest) (c Confirmation, began bool, err error) {
	if !u.safe {
		c, err = u.ask(ctx, req)
		return c, false, err
	}
	p := u.askAsync(ctx, req)
	for {
		done := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(p.future, func(f workflow.Future) { err = f.Get(ctx, &c); done = true })
		sel.AddReceive(u.lookNow, func(ch workflow.ReceiveChannel, _ bool) {
			var late Confirmation
			ch.Receive(ctx, &late)
			u.note("late confirmation of " + late.TaskID + " by " + late.By + ": looking at the tenant")
			began = u.lookForBeginUpgrade(ctx, "Look for Begin Upgrade in the tenant")
		})
		u.flush(ctx)
		sel.Select(ctx)
		if done {
			return c, false, err
		}
		if began {
			p.stop("Begin Upgrade already seen in the tenant")
			return Confirmation{}, true, nil
		}
	}
}

// lookForBeginUpgrade looks once whether Begin Upgrade has started (Work 365's record, or the
// staged upgrade promoted).
func (u *upgrade) lookForBeginUpgrade(ctx workflow.Context, summary string) bool {
	once := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary: summary, StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var s activities.SolutionState
	if u.execWith(ctx, func() error { return u.local(ctx, once, a.WaitForUpgradeStarted, u.check(), &s) }) == nil {
		return true
	}
	u.checkedNow("begin-upgrade")
	return false
}

// checkedNow records that a check passed (or a look found nothing) now.
func (u *upgrade) checkedNow(what string) {
	if u.slim {
		u.checked[what] = u.waits
	}
}

// current reports, for slim runs, that a check passed (or a look found nothing) with no
// wait since: nothing can have changed that the workflow would see.
func (u *upgrade) current(what string) bool {
	w, ok := u.checked[what]
	return u.slim && ok && w == u.waits
}

// waitForBeginUpgrade waits for the service account's Begin Upgrade: its confirmation, or the
// upgrade visibly under way in Dataverse. It reports false when the link expired first.
func (u *upgrade) waitForBeginUpgrade(ctx workflow.Context, linkIssued time.Time) (bool, error) {
	expires := linkIssued.Add(u.cfg.LinkValidity)
	remaining := expires.Sub(workflow.Now(ctx))
	if remaining < 0 {
		remaining = 0
	}
	wctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	req := beginUpgradeTask(u.in.Tenant, u.cfg.Show(u.cfg.LinkValidity), expires)
	req.until = expires // stopped when the link expires
	task := u.askAsync(wctx, req)
	check := u.check()
	link := workflow.NewTimerWithOptions(wctx, remaining, workflow.TimerOptions{Summary: "Link validity " + u.cfg.Show(u.cfg.LinkValidity)})

	var (
		began, linkExpired bool
		failure            error
	)
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(task.future, func(f workflow.Future) {
		var c Confirmation
		if err := f.Get(ctx, &c); err == nil {
			began = true
			u.note("Begin Upgrade confirmed by " + c.By)
		} else {
			failure = err
		}
	})
	if !check.NewInstall || u.safe {
		// An upgrade shows in Dataverse once the staged solution is promoted; a new install's
		// initialisation shows in Work 365's settings record (the safe runbook reads it).
		detect := workflow.ExecuteActivity(pollOpts(wctx, "Watch for Begin Upgrade in Dynamics", u.cfg.UpgradeStartPollInterval, remaining+u.cfg.UpgradeStartPollInterval), a.WaitForUpgradeStarted, check)
		sel.AddFuture(detect, func(f workflow.Future) {
			if err := f.Get(ctx, nil); err == nil {
				began = true
				u.note("Begin Upgrade detected in Dynamics (staged upgrade promoted)")
			} else if !deadlinePassed(err) && !temporal.IsCanceledError(err) {
				u.warn(ctx, "could not watch for Begin Upgrade: "+err.Error())
			}
		})
	}
	sel.AddFuture(link, func(workflow.Future) { linkExpired = true })
	for !began && !linkExpired && failure == nil {
		u.flush(ctx)
		sel.Select(ctx)
		if ctx.Err() != nil {
			task.stop("upgrade cancelled")
			return false, temporal.NewCanceledError("cancelled while waiting for Begin Upgrade")
		}
	}
	if failure != nil && !began {
		return false, failure
	}
	if began {
		task.stop("Begin Upgrade detected")
		return true, nil
	}
	// The link timer fired: look once more, in case the click landed in the last seconds.
	if check.NewInstall && !u.safe {
		task.stop(fmt.Sprintf("the upgrade link expired at %s; a new Get Consent task follows", expires.UTC().Format(time.RFC3339)))
		return false, nil
	}
	if u.lookForBeginUpgrade(ctx, "Check once more for Begin Upgrade") {
		task.stop("Begin Upgrade detected")
		u.note("Begin Upgrade detected in Dynamics as the link expired")
		return true, nil
	}
	task.stop(fmt.Sprintf("the upgrade link expired at %s; a new Get Consent task follows", expires.UTC().Format(time.RFC3339)))
	return false, nil
}

// 11. Completion: the target version installed and no staged upgrade left, with a deadline.
// The safe runbook also asks the service account what the page showed ("Congratulations! …"
// or an error) and verifies the end state through the APIs before anything else.
func (u *upgrade) completion(ctx workflow.Context) error {
	u.enter(ctx, StageCompletion)
	if !u.safe {
		return u.waitForCompletion(ctx)
	}
	page := u.askAsync(ctx, confirmCompletionTask(u.in.Tenant))
	if err := u.waitForCompletion(ctx); err != nil {
		page.stop("the upgrade did not complete")
		return err
	}
	u.upgradeIn = true
	return u.afterUpgrade(func(ctx workflow.Context) error { return u.confirmCompletion(ctx, page) })(ctx)
}

// confirmCompletion waits, for CongratulationsGrace, for the service account to say what the
// page showed, then verifies the end state through the APIs.
func (u *upgrade) confirmCompletion(ctx workflow.Context, page *pendingTask) error {
	for page != nil {
		if u.slim && (page.future.IsReady() || u.board.find(page.task.ID) == nil) {
			// Answered while the upgrade completed (the task left the board with the
			// confirmation; its future settles in this workflow task): no grace timer to
			// start and cancel.
			var c Confirmation
			err := page.future.Get(ctx, &c)
			if err != nil {
				return err
			}
			if page, err = u.completionAnswer(ctx, c); err != nil {
				return err
			}
			continue
		}
		tctx, cancel := workflow.WithCancel(ctx)
		grace := workflow.NewTimerWithOptions(tctx, u.cfg.CongratulationsGrace, workflow.TimerOptions{Summary: "Wait for the service account's word on the completion page"})
		var (
			c        Confirmation
			err      error
			answered bool
		)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(page.future, func(f workflow.Future) { err = f.Get(ctx, &c); answered = true })
		sel.AddFuture(grace, func(workflow.Future) {})
		u.flush(ctx)
		sel.Select(ctx)
		cancel()
		switch {
		case !answered:
			page.stop("not confirmed within " + u.cfg.Show(u.cfg.CongratulationsGrace) + "; the APIs show the upgrade complete")
			u.warn(ctx, "the service account did not say what the completion page showed within "+u.cfg.Show(u.cfg.CongratulationsGrace)+"; the APIs show the upgrade complete")
			page = nil
		case err != nil:
			return err
		default:
			if page, err = u.completionAnswer(ctx, c); err != nil {
				return err
			}
		}
	}
	var s activities.SolutionState
	if err := u.read(ctx, "Verify the upgrade through the APIs", a.FinalCheck, u.check(), &s); err != nil {
		return err
	}
	if spec.CompareVersions(s.InstalledVersion, u.in.Tenant.TargetVersion) < 0 || s.StagedVersion != "" {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("verification through the APIs failed: installed %q, staged %q — check Settings > Solutions in Dynamics 365", s.InstalledVersion, s.StagedVersion), ErrUpgradeFailed, nil)
	}
	u.note("verified through the APIs: Work 365 " + s.InstalledVersion + " installed, nothing staged, Work 365 answering")
	return nil
}

// completionAnswer acts on what the service account said the completion page showed: the
// next page task to wait for after an error the operator did not wave through, else nil.
func (u *upgrade) completionAnswer(ctx workflow.Context, c Confirmation) (*pendingTask, error) {
	if c.Decision == DecisionCongratulations {
		u.note("the service account saw 'Congratulations! The Work 365 upgrade process was completed successfully!'")
		return nil, nil
	}
	u.warn(ctx, "the service account's completion page showed an error"+noteSuffix(c.Note))
	d, err := u.ask(ctx, completionErrorTask(c.Note))
	if err != nil {
		return nil, err
	}
	if d.Decision == DecisionProceed {
		u.warn(ctx, "proceeded after the completion page's error on "+d.By+"'s decision")
		return nil, nil
	}
	return u.askAsync(ctx, confirmCompletionTask(u.in.Tenant)), nil
}

// waitForCompletion polls until the target is installed and nothing is staged; at the
// deadline the operator decides.
func (u *upgrade) waitForCompletion(ctx workflow.Context) error {
	check := u.check()
	for {
		var s activities.SolutionState
		u.awaiting(ctx, fmt.Sprintf("Work 365 %s to finish upgrading in Dynamics; deadline %s", u.in.Tenant.TargetVersion,
			workflow.Now(ctx).Add(u.cfg.CompletionDeadline).UTC().Format("Jan 2 15:04 UTC")))
		err := u.exec(ctx, pollOpts(ctx, "Wait for Work 365 "+u.in.Tenant.TargetVersion+" to finish upgrading", u.cfg.CompletionPollInterval, u.cfg.CompletionDeadline), a.WaitForCompletion, check, &s)
		if err == nil {
			u.note("Work 365 " + s.InstalledVersion + " installed; no staged upgrade left")
			return nil
		}
		if !deadlinePassed(err) {
			return err
		}
		c, err := u.ask(ctx, completionDeadlineTask(lastFailure(err), u.cfg.Show(u.cfg.CompletionDeadline)))
		if err != nil {
			return err
		}
		if c.Decision == DecisionAbort {
			return aborted(c, "the upgrade did not complete in time")
		}
	}
}

// 12. Partner Center re-consent: direct partners only, one child workflow per connection.
func (u *upgrade) partnerCenterReconsent(ctx workflow.Context) error {
	u.enter(ctx, StagePartnerCenter)
	if u.in.Tenant.PartnerType != spec.Direct {
		u.note("skipped: indirect reseller — no additional steps are required")
		return nil
	}
	if len(u.in.Tenant.PartnerCenters) == 0 {
		u.warn(ctx, "direct partner without Partner Center connections in the inventory: nothing re-consented")
		return nil
	}
	futures := make([]workflow.ChildWorkflowFuture, 0, len(u.in.Tenant.PartnerCenters))
	var pending []string // the connections of futures, in order
	for _, pc := range u.in.Tenant.PartnerCenters {
		if u.safe && u.partnerCenterDone(pc.Name) {
			u.note(pc.Name + ": done in an earlier attempt")
			continue // a retry after a failure re-runs only the connections not done
		}
		pending = append(pending, pc.Name)
		sas := []temporal.SearchAttributeUpdate{
			searchattr.TenantID.ValueSet(u.in.Tenant.TenantID),
			searchattr.TenantName.ValueSet(u.in.Tenant.DisplayName),
			searchattr.Stage.ValueSet(string(StagePartnerMFA)),
		}
		if u.fleet != "" {
			sas = append(sas, searchattr.Fleet.ValueSet(u.fleet))
		}
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            PartnerCenterWorkflowID(u.workflowID, pc.Name),
			StaticSummary:         "Re-consent Partner Center " + pc.Name + " of " + u.in.Tenant.DisplayName,
			TypedSearchAttributes: temporal.NewSearchAttributes(sas...),
		})
		futures = append(futures, workflow.ExecuteChildWorkflow(cctx, PartnerCenterReconsent, PartnerCenterInput{
			ParentWorkflowID: u.workflowID, TenantID: u.in.Tenant.TenantID, TenantName: u.in.Tenant.DisplayName,
			Fleet: u.fleet, Connection: pc, Config: u.in.Config,
		}))
	}
	if len(pending) > 0 {
		u.awaiting(ctx, fmt.Sprintf("the Partner Center re-consent of %s (one child workflow each; their partner admins act there)", strings.Join(pending, ", ")))
	}
	u.flush(ctx)
	var firstErr error
	for i, f := range futures {
		var r PartnerCenterResult
		if err := f.Get(ctx, &r); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			u.note(pending[i] + ": failed: " + rootMessage(err))
			continue
		}
		u.partnerCenters = append(u.partnerCenters, r)
		u.note(r.Summary())
		if !r.Verified {
			u.warn(ctx, "Partner Center "+r.Name+" re-consent not verified: "+r.Detail)
		}
	}
	return firstErr
}

// rootMessage is the innermost error's message: a child's failure without the wrapping
// "child workflow execution error (…)".
func rootMessage(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// partnerCenterWait is the longest wait on a partner admin among the connections (they run
// side by side).
func (u *upgrade) partnerCenterWait() time.Duration {
	var longest time.Duration
	for _, r := range u.partnerCenters {
		longest = max(longest, r.HumanWait)
	}
	return longest
}

func (u *upgrade) partnerCenterDone(name string) bool {
	for _, r := range u.partnerCenters {
		if r.Name == name {
			return true
		}
	}
	return false
}

// 13. Portal reinstall, when it was uninstalled in stage 6.
func (u *upgrade) reinstallPortal(ctx workflow.Context) error {
	u.enter(ctx, StagePortalReinstall)
	if !u.portalUninstalled {
		u.note("skipped: the portal was not uninstalled")
		return nil
	}
	if u.in.Tenant.PortalPackage == "" {
		c, err := u.ask(ctx, reinstallPortalTask(u.in.Tenant))
		if err != nil {
			return err
		}
		u.portalReinstalled = true
		u.note("portal reinstalled by hand by " + c.By + " (no portalPackage in the inventory)")
		return nil
	}
	in := activities.ImportInput{
		Tenant: u.ref, PackageRef: u.in.Tenant.PortalPackage, Holding: false,
		ImportJobID: importJobID(ctx, "portal"),
	}
	var st activities.ImportStarted
	if err := u.exec(ctx, readOpts(ctx, "Reinstall the latest Work 365 portal solution"), a.StartImport, in, &st); err != nil {
		return err
	}
	if err := u.followOperation(ctx, "Wait for the portal install", "portal install", a.WaitForImport, st); err != nil {
		return err
	}
	u.portalReinstalled = true
	u.note("portal reinstalled from " + u.in.Tenant.PortalPackage)
	return nil
}

// 14 (safe runbook). Unfreeze right after the upgrade and the portal, before Partner Center
// re-consent, which may take days; unless UnfreezeAfterPartnerCenter asks to wait for it.
func (u *upgrade) unfreezeUnlessPartnerCenterFirst(ctx workflow.Context) error {
	u.enter(ctx, StageUnfreeze)
	switch {
	case !u.frozen:
		u.note("skipped: Work 365 was not frozen")
	case u.cfg.UnfreezeAfterPartnerCenter && u.in.Tenant.PartnerType == spec.Direct && len(u.in.Tenant.PartnerCenters) > 0:
		u.note("kept frozen until Partner Center re-consent (unfreezeAfterPartnerCenter)")
	default:
		return u.unfreezeNoted(ctx)
	}
	return nil
}

// unfreezeNoted unfreezes Work 365 activity and notes how long it was frozen.
func (u *upgrade) unfreezeNoted(ctx workflow.Context) error {
	if err := u.unfreeze(ctx, readOpts(ctx, "Unfreeze Work 365 activity")); err != nil {
		return err
	}
	u.note(fmt.Sprintf("Work 365 activity unfrozen after %s frozen", u.cfg.Show(u.frozenFor)))
	return nil
}

// unfreeze unfreezes Work 365 activity (with the activity options of actx) and counts the
// frozen time.
func (u *upgrade) unfreeze(ctx, actx workflow.Context) error {
	if err := u.execWith(ctx, func() error { return u.local(ctx, actx, a.Unfreeze, u.ref, nil) }); err != nil {
		return err
	}
	u.frozen = false
	if !u.frozenAt.IsZero() {
		u.frozenFor += workflow.Now(ctx).Sub(u.frozenAt)
		u.frozenAt = time.Time{}
	}
	return nil
}

// watchFrozenTime alerts the operator once when Work 365 stays frozen past MaxFrozen.
func (u *upgrade) watchFrozenTime(ctx workflow.Context) {
	frozenAt := u.frozenAt
	workflow.Go(ctx, func(ctx workflow.Context) {
		if err := workflow.NewTimerWithOptions(ctx, u.cfg.MaxFrozen, workflow.TimerOptions{Summary: "Frozen-time cap " + u.cfg.Show(u.cfg.MaxFrozen)}).Get(ctx, nil); err != nil {
			return
		}
		if !u.frozen || !u.frozenAt.Equal(frozenAt) {
			return
		}
		msg := fmt.Sprintf("Work 365 of %s has been frozen for %s (cap %s), at stage %s: billing and Work 365 jobs are stopped. Help the people the upgrade waits on, or decide its open operator task.", u.in.Tenant.DisplayName, u.cfg.Show(u.cfg.MaxFrozen), u.cfg.Show(u.cfg.MaxFrozen), u.stage)
		u.warn(ctx, msg)
		u.notify(ctx, activities.Notification{Key: u.workflowID + "/frozen-too-long", Event: activities.EventFrozenTooLong, Audience: string(Operator), Title: "ESCALATED: Work 365 frozen too long at " + u.in.Tenant.DisplayName, Message: msg})
	})
}

// 15 (safe runbook). Verify: unfreeze if still frozen, and check the end state once more.
func (u *upgrade) verify(ctx workflow.Context) error {
	u.enter(ctx, StageVerify)
	if u.frozen {
		if err := u.unfreezeNoted(ctx); err != nil {
			return err
		}
	}
	var s activities.SolutionState
	if err := u.read(ctx, "Final verification", a.FinalCheck, u.check(), &s); err != nil {
		return err
	}
	if s.Frozen {
		u.warn(ctx, "Work 365 still reports activity frozen after unfreeze: check the Work 365 settings")
	}
	u.note("Work 365 " + s.InstalledVersion + " verified; activity not frozen")
	return nil
}

// afterUpgrade wraps a stage that runs once the upgrade is in: its failure never fails the
// upgraded tenant; the operator retries it or skips it (a warning says what is left to do).
func (u *upgrade) afterUpgrade(step func(workflow.Context) error) func(workflow.Context) error {
	return func(ctx workflow.Context) error {
		for attempt := 1; ; attempt++ {
			err := step(ctx)
			if err == nil || ctx.Err() != nil || temporal.IsCanceledError(err) || isAbort(err) {
				return err
			}
			stage := u.stage
			msg := truncate(lastFailure(err), 1500)
			u.warn(ctx, fmt.Sprintf("stage %s failed after the upgrade went in (attempt %d): %s", stage, attempt, msg))
			c, aerr := u.ask(ctx, postUpgradeFailedTask(stage, msg, attempt))
			if aerr != nil {
				return aerr
			}
			if c.Decision == DecisionSkip {
				u.warn(ctx, fmt.Sprintf("stage %s skipped by %s after its failure: do it by hand%s", stage, c.By, noteSuffix(c.Note)))
				u.note("skipped by " + c.By + " after a failure")
				return nil
			}
		}
	}
}

// 14. Unfreeze Work 365 activity and verify the end state.
func (u *upgrade) unfreezeAndVerify(ctx workflow.Context) error {
	u.enter(ctx, StageUnfreeze)
	if u.frozen {
		if err := u.exec(ctx, readOpts(ctx, "Unfreeze Work 365 activity"), a.Unfreeze, u.ref, nil); err != nil {
			return err
		}
		u.frozen = false
	}
	var s activities.SolutionState
	if err := u.read(ctx, "Final verification", a.FinalCheck, u.check(), &s); err != nil {
		return err
	}
	if spec.CompareVersions(s.InstalledVersion, u.in.Tenant.TargetVersion) < 0 || s.StagedVersion != "" {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("final verification failed: installed %q, staged %q — check Settings > Solutions in Dynamics 365", s.InstalledVersion, s.StagedVersion), ErrUpgradeFailed, nil)
	}
	if s.Frozen {
		u.warn(ctx, "Work 365 still reports activity frozen after unfreeze: check the Work 365 settings")
	}
	if now := workflow.Now(ctx); now.After(u.window.Closes) {
		u.warn(ctx, "the upgrade ended after the downtime window closed at "+u.window.Closes.Format(time.RFC3339))
	}
	u.note("Work 365 " + s.InstalledVersion + " verified; activity unfrozen")
	return nil
}

// finish builds the result and, for failures and cancellations, leaves the tenant safe.
func (u *upgrade) finish(ctx workflow.Context, err error) (Result, error) {
	res := func(o Outcome) Result {
		return Result{
			WorkflowID: u.workflowID, TenantID: u.in.Tenant.TenantID, TenantName: u.in.Tenant.DisplayName,
			Outcome: o, FromVersion: u.fromVersion, ToVersion: u.in.Tenant.TargetVersion,
			Stages: u.stages, Confirmations: u.board.confirmations, Warnings: u.warnings,
			Cleanup: u.cleanup, PartnerCenters: u.partnerCenters, LinkRounds: u.linkRound,
			Frozen: u.frozenFor, HumanWait: u.humanWaited(ctx) + u.partnerCenterWait(),
		}
	}
	if err != nil && u.upgradeIn && !temporal.IsCanceledError(err) {
		// Once the upgrade is in, the tenant is upgraded: what failed or was aborted later is a
		// warning, and what was left undone is listed.
		u.warn(ctx, "after the upgrade: "+err.Error()+" — the stages after "+string(u.stage)+" are left to do by hand")
		err = nil
	}
	switch {
	case err == nil:
		if u.frozen && u.safe {
			u.cleanupUnfreeze(ctx)
		}
		u.enter(ctx, StageDone)
		u.endStage(ctx, "upgraded")
		r := res(OutcomeUpgraded)
		u.notify(ctx, activities.Notification{Key: u.workflowID + "/ended", Event: activities.EventUpgradeEnded, Outcome: string(r.Outcome), Message: "Work 365 upgraded to " + r.ToVersion})
		u.reportEnd(ctx, r.Outcome, "")
		return r, nil
	case errors.Is(err, errAlreadyCurrent):
		u.note("no-op: already at " + u.fromVersion)
		u.enter(ctx, StageDone)
		u.endStage(ctx, "already current")
		u.reportEnd(ctx, OutcomeAlreadyCurrent, "")
		return res(OutcomeAlreadyCurrent), nil
	}

	// Cleanup runs on a disconnected context so a cancelled upgrade still unfreezes.
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	u.endStage(dctx, "ended: "+err.Error())
	if u.frozen && u.safe {
		u.cleanupUnfreeze(dctx)
	} else if u.frozen {
		if uerr := u.exec(dctx, readOpts(dctx, "Cleanup: unfreeze Work 365 activity"), a.Unfreeze, u.ref, nil); uerr != nil {
			u.cleanup = append(u.cleanup, "FAILED to unfreeze Work 365 activity ("+uerr.Error()+"): unfreeze it by hand in the Work 365 settings")
		} else {
			u.frozen = false
			u.cleanup = append(u.cleanup, "unfroze Work 365 activity")
		}
	}
	if u.portalUninstalled && !u.portalReinstalled {
		u.cleanup = append(u.cleanup, "the portal solution was uninstalled and is not reinstalled: reinstall the latest Work 365 portal solution")
	}
	for _, t := range u.board.tasks() {
		u.board.close(t.ID, "upgrade ended")
	}
	outcome := OutcomeFailed
	if temporal.IsCanceledError(err) || isAbort(err) {
		outcome = OutcomeCancelled
	}
	r := res(outcome)
	r.Error = err.Error()
	u.refreshDetails(dctx)
	u.notify(dctx, activities.Notification{Key: u.workflowID + "/ended", Event: activities.EventUpgradeEnded, Outcome: string(outcome), Message: err.Error()})
	u.reportEnd(dctx, outcome, err.Error())
	if outcome == OutcomeCancelled {
		return r, temporal.NewCanceledError(r)
	}
	return r, temporal.NewNonRetryableApplicationError("upgrade failed at stage "+string(u.stage)+": "+err.Error(), ErrUpgradeFailed, err, r)
}

// cleanupUnfreeze leaves the tenant unfrozen, retrying for hours (and through orchestrator
// faults); when even that fails it says so loudly: in the result and to the operators.
func (u *upgrade) cleanupUnfreeze(ctx workflow.Context) {
	err := u.unfreeze(ctx, cleanupOpts(ctx, "Cleanup: unfreeze Work 365 activity"))
	if err == nil {
		u.cleanup = append(u.cleanup, "unfroze Work 365 activity")
		return
	}
	msg := "FAILED to unfreeze Work 365 activity (" + err.Error() + "): unfreeze it by hand in the Work 365 settings now"
	u.cleanup = append(u.cleanup, msg)
	u.notify(ctx, activities.Notification{Key: u.workflowID + "/cleanup-failed", Event: activities.EventCleanupFailed, Audience: string(Operator), Title: "URGENT: Work 365 of " + u.in.Tenant.DisplayName + " is still frozen", Message: msg})
}

func (u *upgrade) registerHandlers(ctx workflow.Context) error {
	if err := u.board.register(ctx, func(msg string) { u.warn(ctx, msg) }); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, u.status); err != nil {
		return err
	}
	startNow := func(ctx workflow.Context, req OperatorRequest) error {
		u.startNow = true
		u.warnings = append(u.warnings, "downtime window started now by "+req.By+noteSuffix(req.Note))
		u.windowChanged.SendAsync(true)
		return nil
	}
	moveWindow := func(ctx workflow.Context, req MoveWindowRequest) error {
		t := u.in.Tenant
		t.Window = req.Window
		var w activities.WindowTimes
		if err := u.exec(ctx, readOpts(ctx, "Resolve the moved downtime window"), a.ResolveWindow, t, &w); err != nil {
			return err
		}
		u.in.Tenant.Window, u.window = req.Window, w
		u.warnings = append(u.warnings, "downtime window moved to "+req.Window.Start+" for "+req.Window.Length+" by "+req.By+noteSuffix(req.Note))
		u.windowChanged.SendAsync(true)
		return nil
	}
	windowOpen := func() error {
		// "" is before the first stage: an operator may move a window right after the launch.
		if u.stage != "" && u.stage != StageDowntimeWindow && u.stage != StageValidate && u.stage != StageDiscover && u.stage != StagePrerequisites && (!u.safe || u.stage != StageMFA) {
			return fmt.Errorf("the downtime window has already opened (stage %s): nothing to change", u.stage)
		}
		return nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateStartNow, startNow, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, req OperatorRequest) error {
			if req.By == "" {
				return errors.New("by is required: say who starts the window now")
			}
			if err := req.CheckText(); err != nil {
				return err
			}
			return windowOpen()
		},
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateMoveWindow, moveWindow, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, req MoveWindowRequest) error {
			if req.By == "" {
				return errors.New("by is required: say who moves the window")
			}
			if err := req.CheckText(); err != nil {
				return err
			}
			t := u.in.Tenant
			t.Window = req.Window
			for _, e := range unwrapAll(t.Validate()) {
				var fe spec.FieldError
				if errors.As(e, &fe) && (fe.Field == "window.start" || fe.Field == "window.length") {
					return e
				}
			}
			return windowOpen()
		},
	}); err != nil {
		return err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		sn := workflow.GetSignalChannel(ctx, SignalStartNow)
		mw := workflow.GetSignalChannel(ctx, SignalMoveWindow)
		for {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(sn, func(ch workflow.ReceiveChannel, _ bool) {
				var req OperatorRequest
				ch.Receive(ctx, &req)
				if err := windowOpen(); err != nil || req.By == "" {
					u.warn(ctx, fmt.Sprintf("refused signalled start-now from %q: by is required and the window must not have opened", req.By))
					return
				}
				_ = startNow(ctx, req)
			})
			sel.AddReceive(mw, func(ch workflow.ReceiveChannel, _ bool) {
				var req MoveWindowRequest
				ch.Receive(ctx, &req)
				if err := windowOpen(); err != nil || req.By == "" {
					u.warn(ctx, fmt.Sprintf("refused signalled move-window from %q: by is required and the window must not have opened", req.By))
					return
				}
				if err := moveWindow(ctx, req); err != nil {
					u.warn(ctx, "refused signalled move-window: "+err.Error())
				}
			})
			sel.Select(ctx)
		}
	})
	return nil
}

func (u *upgrade) status() (Status, error) {
	return Status{
		WorkflowID: u.workflowID, TenantID: u.in.Tenant.TenantID, TenantName: u.in.Tenant.DisplayName,
		Stage: u.stage, StageSince: u.stageSince, WaitingOn: u.board.waitingOn(), OpenTasks: u.board.tasks(),
		Stages: u.stages, Warnings: u.warnings, FromVersion: u.fromVersion, ToVersion: u.in.Tenant.TargetVersion,
		LinkRound: u.linkRound, Confirmations: u.board.confirmations,
	}, nil
}

// PartnerCenterWorkflowID is the child workflow ID of a Partner Center connection.
func PartnerCenterWorkflowID(parentID, connection string) string {
	return parentID + "/partner-center/" + connection
}

// importJobID derives the import job's GUID from the workflow ID, its first run and what is
// imported: a retried activity finds its own import instead of starting a second one.
func importJobID(ctx workflow.Context, what string) string {
	info := workflow.GetInfo(ctx)
	h := sha1.Sum([]byte(info.WorkflowExecution.ID + "/" + info.FirstRunID + "/" + what))
	h[6] = (h[6] & 0x0f) | 0x50 // version 5 (name-based, SHA-1)
	h[8] = (h[8] & 0x3f) | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// deadlinePassed reports a poll that ran out of time: its ScheduleToClose deadline fired, or
// retries stopped while the activity still said "not yet" (pollers have no attempt limit, so
// only the deadline stops them).
func deadlinePassed(err error) bool {
	var ae *temporal.ActivityError
	if errors.As(err, &ae) && ae.RetryState() == enumspb.RETRY_STATE_TIMEOUT {
		return true
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return true
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && !app.NonRetryable() {
		switch app.Type() {
		case activities.ErrJobsPending, activities.ErrUpgradeNotStarted, activities.ErrUpgradeNotComplete:
			return true
		}
	}
	return false
}

// lastFailure is the poller's last message, e.g. "7 Work 365 jobs still pending".
func lastFailure(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

func aborted(c Confirmation, why string) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("aborted by %s: %s%s", c.By, why, noteSuffix(c.Note)), ErrUpgradeAborted, nil)
}

func isAbort(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == ErrUpgradeAborted
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return " (" + note + ")"
}

func versionOrNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
