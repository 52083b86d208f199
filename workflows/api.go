package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Names the starter, the worker and the rehearsal autopilot share.
const (
	// TenantUpgradeWorkflow upgrades one tenant.
	TenantUpgradeWorkflow = "TenantUpgrade"
	// PartnerCenterWorkflow re-consents one Partner Center connection (child of TenantUpgrade).
	PartnerCenterWorkflow = "PartnerCenterReconsent"

	// QueryStatus returns Status.
	QueryStatus = "status"
	// UpdateConfirmTask completes an open human task (ConfirmRequest). Refused confirmations
	// leave no trace in history.
	UpdateConfirmTask = "confirm-task"
	// SignalConfirmTask is the same confirmation as a Signal: the server accepts it while no
	// worker runs; the workflow validates it when it next runs and records a refusal as a warning.
	SignalConfirmTask = "confirm-task"
	// UpdateStartNow opens the downtime window now (OperatorRequest).
	UpdateStartNow = "start-now"
	// SignalStartNow is UpdateStartNow as a Signal.
	SignalStartNow = "start-now"
	// UpdateMoveWindow moves the downtime window (MoveWindowRequest).
	UpdateMoveWindow = "move-window"
	// SignalMoveWindow is UpdateMoveWindow as a Signal.
	SignalMoveWindow = "move-window"
)

// Audience says who must act on a human task.
type Audience string

// Audiences.
const (
	GlobalAdmin    Audience = "global-admin"
	ServiceAccount Audience = "service-account"
	Operator       Audience = "operator"
	PartnerAdmin   Audience = "partner-admin"
	Nobody         Audience = "none"
)

// TaskKind says what a human task asks for.
type TaskKind string

// Task kinds, one per human step of the runbook.
const (
	TaskFixPrerequisite    TaskKind = "fix-prerequisite"
	TaskEnableMFAPolicies  TaskKind = "enable-mfa-policies"
	TaskRegisterMFAService TaskKind = "register-mfa-service-account"
	TaskRegisterMFAAdmin   TaskKind = "register-mfa-global-admin"
	TaskAssignServiceRole  TaskKind = "assign-service-role"
	TaskSubmitRegistration TaskKind = "submit-registration"
	TaskGetConsent         TaskKind = "get-consent"
	TaskBeginUpgrade       TaskKind = "begin-upgrade"
	TaskLinkEscalation     TaskKind = "link-escalation"
	TaskDrainDeadline      TaskKind = "drain-deadline"
	TaskCompletionDeadline TaskKind = "completion-deadline"
	// TaskOperationDeadline asks the operator whether to keep following a started import,
	// uninstall or portal install that has not finished by its deadline, or to abort.
	TaskOperationDeadline  TaskKind = "operation-deadline"
	TaskReinstallPortal    TaskKind = "reinstall-portal"
	TaskPartnerMFAPolicies TaskKind = "partner-mfa-policies"
	TaskPartnerReconsent   TaskKind = "partner-reconsent"
	TaskImportFailed       TaskKind = "import-failed"
	// TaskWindowClosed asks the operator what to do when the downtime window closed before
	// the freeze: start now, move the window (starter move-window) or abort.
	TaskWindowClosed TaskKind = "window-closed"
	// TaskRoundsExhausted asks the operator to decide after a bounded number of rounds of a
	// human loop (prerequisite fixes, MFA, consent, service role) did not succeed.
	TaskRoundsExhausted TaskKind = "rounds-exhausted"
	// TaskConfirmCompletion asks the service account what the upgrade page showed at the end.
	TaskConfirmCompletion TaskKind = "confirm-completion"
	// TaskCompletionError asks the operator to look at an upgrade page that showed an error.
	TaskCompletionError TaskKind = "completion-error"
	// TaskPostUpgradeFailed asks the operator to retry or skip a stage that failed after the
	// upgrade went in (the tenant stays upgraded either way).
	TaskPostUpgradeFailed TaskKind = "post-upgrade-failed"
	// TaskOrchestratorCredential asks the operator to fix the orchestrator's own credential.
	TaskOrchestratorCredential TaskKind = "orchestrator-credential"
)

// Decisions an operator task accepts.
const (
	DecisionKeepWaiting = "keep-waiting"
	DecisionProceed     = "proceed"
	DecisionAbort       = "abort"
	DecisionRetry       = "retry"
	DecisionSkip        = "skip"
	DecisionStartNow    = "start-now"
	// DecisionCongratulations: the page showed "Congratulations! The Work 365 upgrade process
	// was completed successfully!".
	DecisionCongratulations = "congratulations"
	// DecisionShowedError: the page showed an error instead.
	DecisionShowedError = "showed-an-error"
)

// Stage is a step of the runbook as the workflow runs it.
type Stage string

// Stages, in runbook order.
const (
	StageValidate        Stage = "validate"
	StageDiscover        Stage = "discover"
	StagePrerequisites   Stage = "prerequisites"
	StageDowntimeWindow  Stage = "downtime-window"
	StageFreezeAndDrain  Stage = "freeze-and-drain"
	StageMFA             Stage = "mfa"
	StagePortalUninstall Stage = "portal-uninstall"
	StageImport          Stage = "import"
	StageServiceRole     Stage = "service-role"
	StageRegistration    Stage = "registration"
	StageConsentInit     Stage = "consent-and-initialisation"
	StageCompletion      Stage = "completion"
	StagePartnerCenter   Stage = "partner-center"
	StagePortalReinstall Stage = "portal-reinstall"
	StageUnfreeze        Stage = "unfreeze"
	// StageVerify is the safe runbook's last stage: the end state checked once more.
	StageVerify Stage = "verify"
	StageDone   Stage = "done"
	// Partner Center child stages.
	StagePartnerMFA       Stage = "partner-mfa-policies"
	StagePartnerReconsent Stage = "partner-reconsent"
)

// Outcome is how an upgrade ended.
type Outcome string

// Outcomes.
const (
	OutcomeUpgraded       Outcome = "upgraded"
	OutcomeAlreadyCurrent Outcome = "already-current"
	OutcomeCancelled      Outcome = "cancelled"
	OutcomeFailed         Outcome = "failed"
)

// Config holds durations and limits; zero values take the defaults (see withDefaults), so
// rehearsals can shorten them.
type Config struct {
	// LinkValidity is how long Work 365's upgrade link stays valid (runbook: 15 minutes).
	LinkValidity time.Duration `json:"linkValidity,omitempty" yaml:"linkValidity,omitempty"`
	// MaxLinkRounds is how many links may expire before the operator must decide (default 3).
	MaxLinkRounds int `json:"maxLinkRounds,omitempty" yaml:"maxLinkRounds,omitempty"`
	// DrainDeadline bounds the wait for pending Work 365 jobs (default 2h).
	DrainDeadline time.Duration `json:"drainDeadline,omitempty" yaml:"drainDeadline,omitempty"`
	// DrainPollInterval is the time between two counts of pending jobs (default 1m).
	DrainPollInterval time.Duration `json:"drainPollInterval,omitempty" yaml:"drainPollInterval,omitempty"`
	// CompletionDeadline bounds the wait for the upgrade to finish after Begin Upgrade (default 2h).
	CompletionDeadline time.Duration `json:"completionDeadline,omitempty" yaml:"completionDeadline,omitempty"`
	// CompletionPollInterval is the time between two completion checks (default 1m).
	CompletionPollInterval time.Duration `json:"completionPollInterval,omitempty" yaml:"completionPollInterval,omitempty"`
	// ReminderInterval re-notifies an open human task (default 4h).
	ReminderInterval time.Duration `json:"reminderInterval,omitempty" yaml:"reminderInterval,omitempty"`
	// EscalateAfterReminders escalates a task to the operator after this many reminders
	// without a confirmation (default 3).
	EscalateAfterReminders int `json:"escalateAfterReminders,omitempty" yaml:"escalateAfterReminders,omitempty"`
	// ImportTimeout bounds one solution import or uninstall (default 2h).
	ImportTimeout time.Duration `json:"importTimeout,omitempty" yaml:"importTimeout,omitempty"`
	// UpgradeStartPollInterval is how often the workflow looks for the upgrade having started
	// while waiting for Begin Upgrade (default 30s).
	UpgradeStartPollInterval time.Duration `json:"upgradeStartPollInterval,omitempty" yaml:"upgradeStartPollInterval,omitempty"`
	// MaxFixRounds bounds every human fix loop (prerequisites, MFA, service role, consent):
	// after this many rounds the operator decides (default 3).
	MaxFixRounds int `json:"maxFixRounds,omitempty" yaml:"maxFixRounds,omitempty"`
	// CongratulationsGrace is how long, once the APIs show the upgrade complete, the workflow
	// waits for the service account to say what the page showed before going on (default 30m).
	CongratulationsGrace time.Duration `json:"congratulationsGrace,omitempty" yaml:"congratulationsGrace,omitempty"`
	// UnfreezeAfterPartnerCenter keeps Work 365 frozen until every Partner Center connection is
	// re-consented (for partners whose Work 365 jobs need Partner Center at once). Default
	// false: unfreeze right after the upgrade and the portal reinstall.
	UnfreezeAfterPartnerCenter bool `json:"unfreezeAfterPartnerCenter,omitempty" yaml:"unfreezeAfterPartnerCenter,omitempty"`
	// MaxFrozen is the frozen-time cap: the operator is alerted when Work 365 stays frozen
	// longer (default 6h).
	MaxFrozen time.Duration `json:"maxFrozen,omitempty" yaml:"maxFrozen,omitempty"`
	// CredentialRetryInterval is the first wait before retrying after the orchestrator's own
	// credential failed; it doubles up to 2h (default 15m).
	CredentialRetryInterval time.Duration `json:"credentialRetryInterval,omitempty" yaml:"credentialRetryInterval,omitempty"`
	// TimeScale is set by rehearsals whose clock runs faster than real time: the durations
	// above are divided by it, and messages multiply them back, so people read runbook time
	// ("expired after 15m", not 15s). 0 or 1: real time. Not an inventory key.
	TimeScale float64 `json:"timeScale,omitempty" yaml:"-"`
}

// Input starts a TenantUpgrade workflow.
type Input struct {
	Tenant spec.Tenant `json:"tenant"`
	Config Config      `json:"config,omitempty"`
	// Fleet names the fleet that launched this upgrade, if any.
	Fleet string `json:"fleet,omitempty"`
	// Wave names the fleet wave, if any.
	Wave string `json:"wave,omitempty"`
	// ReportTo is the fleet workflow ID this upgrade reports its progress and end to.
	ReportTo string `json:"reportTo,omitempty"`
	// LeanReports makes the upgrade tell its fleet only what the fleet decides on: whether
	// it holds a concurrency slot (machine work, a person, its window) and the orchestrator
	// fault it waits on, plus its end. Every signal takes the fleet's workflow lock, and
	// the server starts the fleet's children at low priority behind that lock: a signal
	// per stage made child starts wait up to minutes at 1,000 tenants. Stages are in
	// visibility (WorkUpgradeStage); set by fleets of the changeFleetLeanReports version.
	LeanReports bool `json:"leanReports,omitempty"`
	// NoSlotReports (with LeanReports): the wave's concurrency covers all its tenants, so
	// the fleet never decides on this tenant's slot; only its fault and end are told.
	NoSlotReports bool `json:"noSlotReports,omitempty"`
}

// ConfirmRequest completes a human task.
type ConfirmRequest struct {
	TaskID string `json:"taskId"`
	// As is the audience the confirmer speaks for; it must be the task's audience.
	As Audience `json:"as"`
	// By names who confirmed (a person or an operator's login).
	By string `json:"by"`
	// Note is free text kept with the confirmation.
	Note string `json:"note,omitempty"`
	// Decision is required for tasks that offer options (e.g. keep-waiting, proceed, abort).
	Decision string `json:"decision,omitempty"`
	// Identity is who confirmed as the sender established it: verified from a Microsoft Entra
	// ID token by the task desk, or the operator's connection identity from the starter.
	Identity *Identity `json:"identity,omitempty"`
	// OnBehalfOf names the person an operator confirms for (starter confirm --on-behalf-of):
	// the record then reads "operator X on behalf of Y", never as if Y had confirmed.
	OnBehalfOf string `json:"onBehalfOf,omitempty"`
}

// Identity is who stands behind a confirmation. It carries no token: only the claims the
// sender checked, so the audit trail says who consented and how that was established.
type Identity struct {
	// Verified is true when the claims come from an ID token the task desk validated.
	Verified bool `json:"verified,omitempty"`
	// Via is how the identity was established: "entra-id-token" (desk), "api-key",
	// "client-certificate" or "declared" (the starter's --by when the connection names nobody).
	Via string `json:"via"`
	// TenantID is the person's Entra tenant (the token's tid).
	TenantID string `json:"tenantId,omitempty"`
	// ObjectID is the person's Entra object ID (the token's oid).
	ObjectID string `json:"objectId,omitempty"`
	// UPN is the person's sign-in name (preferred_username / upn).
	UPN string `json:"upn,omitempty"`
	// Name is the person's display name.
	Name string `json:"name,omitempty"`
	// Client names the program that sent the confirmation (the desk, or the starter's
	// Temporal client identity).
	Client string `json:"client,omitempty"`
}

// OperatorRequest carries who asked and why, for operator actions.
type OperatorRequest struct {
	By   string `json:"by"`
	Note string `json:"note,omitempty"`
}

// MoveWindowRequest moves the downtime window.
type MoveWindowRequest struct {
	By     string      `json:"by"`
	Note   string      `json:"note,omitempty"`
	Window spec.Window `json:"window"`
}

// checkTexts checks the free-text fields of an Update payload against spec.CheckText's limits,
// naming each field that fails. Update validators call it (a refused Update leaves nothing in
// history, so tightening it never breaks a replay) and so does the starter, before it sends;
// Signals are not refused by it, since a Signal's effect is in history already.
func checkTexts(fields ...textField) error {
	var errs []error
	for _, f := range fields {
		if err := spec.CheckText(f.value, f.max); err != nil {
			errs = append(errs, fmt.Errorf("%s %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

type textField struct {
	name  string
	value string
	max   int
}

// CheckText refuses a by, note or decision that is too long or holds control characters.
func (r ConfirmRequest) CheckText() error {
	return checkTexts(textField{"taskId", r.TaskID, spec.MaxNameLen}, textField{"by", r.By, spec.MaxNameLen},
		textField{"note", r.Note, spec.MaxNoteLen}, textField{"decision", r.Decision, spec.MaxDecisionLen},
		textField{"onBehalfOf", r.OnBehalfOf, spec.MaxNameLen}, textField{"identity", r.Identity.text(), 4 * spec.MaxNameLen})
}

// text joins the identity's fields, so CheckText bounds them like any other text.
func (i *Identity) text() string {
	if i == nil {
		return ""
	}
	return strings.Join([]string{i.Via, i.TenantID, i.ObjectID, i.UPN, i.Name, i.Client}, " ")
}

// CheckText refuses a by or note that is too long or holds control characters.
func (r OperatorRequest) CheckText() error {
	return checkTexts(textField{"by", r.By, spec.MaxNameLen}, textField{"note", r.Note, spec.MaxNoteLen})
}

// CheckText refuses a by, note or window that is too long or holds control characters.
func (r MoveWindowRequest) CheckText() error {
	return checkTexts(textField{"by", r.By, spec.MaxNameLen}, textField{"note", r.Note, spec.MaxNoteLen},
		textField{"window.start", r.Window.Start, 32}, textField{"window.length", r.Window.Length, 32})
}

// Task is an open (or closed) human task.
type Task struct {
	ID           string    `json:"id"`
	Kind         TaskKind  `json:"kind"`
	Audience     Audience  `json:"audience"`
	Stage        Stage     `json:"stage"`
	Title        string    `json:"title"`
	Instructions string    `json:"instructions"`
	Options      []string  `json:"options,omitempty"`
	OpenedAt     time.Time `json:"openedAt"`
	Reminders    int       `json:"reminders,omitempty"`
}

// Confirmation records a completed human task.
type Confirmation struct {
	TaskID   string    `json:"taskId"`
	Kind     TaskKind  `json:"kind"`
	Audience Audience  `json:"audience"`
	By       string    `json:"by"`
	Note     string    `json:"note,omitempty"`
	Decision string    `json:"decision,omitempty"`
	At       time.Time `json:"at"`
	// Via is "update" or "signal".
	Via string `json:"via"`
	// Late is true for a confirmation that arrived after its task closed, kept as evidence
	// (the workflow looks at the tenant again) rather than lost.
	Late bool `json:"late,omitempty"`
	// Identity and OnBehalfOf are copied from the ConfirmRequest.
	Identity   *Identity `json:"identity,omitempty"`
	OnBehalfOf string    `json:"onBehalfOf,omitempty"`
}

// StageRecord is one stage's span.
type StageRecord struct {
	Stage   Stage      `json:"stage"`
	Started time.Time  `json:"started"`
	Ended   *time.Time `json:"ended,omitempty"`
	// Note says what happened, e.g. "skipped: indirect reseller".
	Note string `json:"note,omitempty"`
}

// Status is what the status query returns.
type Status struct {
	WorkflowID    string         `json:"workflowId"`
	TenantID      string         `json:"tenantId"`
	TenantName    string         `json:"tenantName"`
	Stage         Stage          `json:"stage"`
	StageSince    time.Time      `json:"stageSince"`
	WaitingOn     Audience       `json:"waitingOn"`
	OpenTasks     []Task         `json:"openTasks"`
	Stages        []StageRecord  `json:"stages"`
	Warnings      []string       `json:"warnings,omitempty"`
	FromVersion   string         `json:"fromVersion,omitempty"`
	ToVersion     string         `json:"toVersion"`
	LinkRound     int            `json:"linkRound,omitempty"`
	Confirmations []Confirmation `json:"confirmations,omitempty"`
}

// Result is what an upgrade returns (and, for failed or cancelled upgrades, the details of the
// error it ends with).
type Result struct {
	WorkflowID    string         `json:"workflowId"`
	TenantID      string         `json:"tenantId"`
	TenantName    string         `json:"tenantName"`
	Outcome       Outcome        `json:"outcome"`
	FromVersion   string         `json:"fromVersion,omitempty"`
	ToVersion     string         `json:"toVersion"`
	Stages        []StageRecord  `json:"stages"`
	Confirmations []Confirmation `json:"confirmations,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
	// Cleanup lists what was done to leave the tenant safe after a cancellation or failure.
	Cleanup []string `json:"cleanup,omitempty"`
	// Error is the failure's message for failed and cancelled outcomes.
	Error string `json:"error,omitempty"`
	// PartnerCenters has one entry per Partner Center connection.
	PartnerCenters []PartnerCenterResult `json:"partnerCenters,omitempty"`
	LinkRounds     int                   `json:"linkRounds,omitempty"`
	// Frozen is how long Work 365 activity was frozen, when it was.
	Frozen time.Duration `json:"frozen,omitempty"`
	// HumanWait is how long the upgrade waited on people (some human task open), including
	// its Partner Center children's longest wait.
	HumanWait time.Duration `json:"humanWait,omitempty"`
}

// PartnerCenterInput starts a PartnerCenterReconsent child.
type PartnerCenterInput struct {
	ParentWorkflowID string             `json:"parentWorkflowId"`
	TenantID         string             `json:"tenantId"`
	TenantName       string             `json:"tenantName"`
	Fleet            string             `json:"fleet,omitempty"`
	Connection       spec.PartnerCenter `json:"connection"`
	Config           Config             `json:"config,omitempty"`
}

// PartnerCenterResult is a PartnerCenterReconsent child's result.
type PartnerCenterResult struct {
	Name          string         `json:"name"`
	TenantID      string         `json:"tenantId"`
	Verified      bool           `json:"verified"`
	Detail        string         `json:"detail,omitempty"`
	Confirmations []Confirmation `json:"confirmations,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
	// HumanWait is how long the child waited on the partner admin.
	HumanWait time.Duration `json:"humanWait,omitempty"`
}

// Summary says in one line what became of the connection, e.g. "contoso-pc: re-consent
// verified (…) by Jane"; the partner-center stage notes it and reports list it.
func (r PartnerCenterResult) Summary() string {
	out := r.Name + ": re-consent "
	if r.Verified {
		out += "verified"
	} else {
		out += "not verified"
	}
	if r.Detail != "" {
		out += " (" + r.Detail + ")"
	}
	by := ""
	for _, c := range r.Confirmations {
		if c.Kind == TaskPartnerReconsent {
			by = c.Who() // the last re-consent counts
		}
	}
	if by != "" {
		out += " by " + by
	}
	return out
}
