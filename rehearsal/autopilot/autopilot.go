// Package autopilot plays the people of a rehearsal: it receives the upgrade's notifications
// (it implements activities.Notifier), and for each opened human task, after the scenario's
// delay for that task kind, performs the matching action in the simulated cloud and confirms
// the task to the workflow as the task's audience.
//
// Mapping of task kinds to simulator actions (workflows.TaskKind → sim.Cloud method):
//
//	enable-mfa-policies           EnableConditionalAccessMFA with Entra ID P1, else EnableSecurityDefaults
//	register-mfa-service-account  RegisterMFA(service account)
//	register-mfa-global-admin     RegisterMFA(admin)
//	assign-service-role           AssignRole(service account, RoleWork365Service)
//	submit-registration           SubmitRegistration(tenant name, time zone, "autopilot-licence-key")
//	get-consent                   GetConsent; the link token stays inside the autopilot
//	begin-upgrade                 BeginUpgrade with the tenant's latest link; a refusal (expired
//	                              link...) is logged and the task is NOT confirmed
//	reinstall-portal              InstallPortal
//	partner-mfa-policies          EnableSecurityDefaults in the partner tenant
//	partner-reconsent             ReconsentPartnerCenter in the partner tenant
//	fix-prerequisite              see below
//	tasks offering Options        a decision (drain-deadline, link-escalation, completion-deadline,
//	                              import-failed...): the scenario's per-round decision, else
//	                              keep-waiting, else retry, else the first option
//	anything else                 confirmed without an action
//
// fix-prerequisite: the task's Title (then Instructions) names the subject — the service
// account when its UPN appears, else the admin — and the fix by keyword, case-insensitive:
// "global administrator" → AssignRole(RoleGlobalAdmin); "system administrator" →
// AssignRole(RoleSystemAdministrator); the Work 365 service role name → AssignRole(RoleWork365Service);
// "licen" → AssignLicence(LicenceDynamics); "mfa" → RegisterMFA. No keyword: confirmed as is.
//
// Partner tasks name their partner tenant by a GUID in the Title or by the connection name
// (WorkflowID ".../partner-center/{name}" or the Title); the scenario's connections map names
// to tenants.
//
// A refused action leaves its task unconfirmed (people cannot do what the cloud refuses); the
// person tries again, at once, on the task's next reminder. Every step is in Log.
package autopilot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// Confirmer confirms a human task to a running workflow (an Update or Signal in production).
type Confirmer interface {
	ConfirmTask(ctx context.Context, workflowID string, req workflows.ConfirmRequest) error
}

// SignalConfirmer is a Confirmer that can also confirm by Signal, the fallback while no
// worker runs; the scenario's viaSignal task kinds use it.
type SignalConfirmer interface {
	SignalTask(ctx context.Context, workflowID string, req workflows.ConfirmRequest) error
}

// Options tune an Autopilot.
type Options struct {
	// Sleep waits d before a person acts (default: a real timer). Tests pass a function that
	// advances the cloud's FakeClock instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// ConfirmAttempts is how many times a failed confirmation is tried (default 3).
	ConfirmAttempts int
	// ConfirmBackoff is the real wait between confirmation attempts (default 200ms).
	ConfirmBackoff time.Duration
	// Logf, when set, receives one line per step.
	Logf func(format string, args ...any)
	// ViaDesk makes people confirm through the task desk, as in production: they open the
	// notification's desk link, sign in on the simulated Microsoft page with their password
	// and confirm there. Tasks confirmed by Signal or late (viaSignal, confirmAfter), and
	// notifications without a desk link, are confirmed through the Confirmer.
	ViaDesk bool
}

// Entry records what the autopilot did for one task.
type Entry struct {
	// At is the cloud's time when the person acted.
	At         time.Time `json:"at"`
	WorkflowID string    `json:"workflowId"`
	TenantID   string    `json:"tenantId"`
	TaskID     string    `json:"taskId"`
	Kind       string    `json:"kind"`
	// Round counts tasks of this kind in the tenant, from 0.
	Round int `json:"round"`
	// Delay is how long the person took.
	Delay time.Duration `json:"delay"`
	// Action names the simulator action ("" when none).
	Action string `json:"action,omitempty"`
	// Error is the refusal of the action or confirmation, if any.
	Error     string `json:"error,omitempty"`
	Decision  string `json:"decision,omitempty"`
	Confirmed bool   `json:"confirmed"`
	// Via is "desk" when the person signed in to the task desk and confirmed there.
	Via string `json:"via,omitempty"`
	// Cancelled is true when the task closed (or the autopilot stopped) before the person acted.
	Cancelled bool `json:"cancelled,omitempty"`
}

// sendGrace is how long a confirmation under way may still be answered after its task closed.
const sendGrace = 30 * time.Second

// Autopilot is the simulated people of a rehearsal. It is safe for concurrent use.
type Autopilot struct {
	// cloudMu is held for reading while a person acts in the cloud, and for writing while
	// SwapCloud replaces it (a restarted rehearsal stack): no action is lost in between.
	cloudMu   sync.RWMutex
	cloud     *sim.Cloud
	scenario  sim.Scenario
	confirmer Confirmer
	opts      Options

	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	seen    map[string]bool               // notification keys
	rounds  map[string]int                // tenant|kind → tasks seen
	tasks   map[string]context.CancelFunc // workflowID|taskID → cancel
	links   map[string]string             // tenant → latest link token
	failed  map[string]bool               // workflowID|taskID whose action or confirmation failed
	entries []Entry
	// received keeps every notification (deduplicated by Key), for tests and reports.
	received []activities.Notification
}

// New returns an autopilot acting in cloud and confirming through confirmer.
func New(cloud *sim.Cloud, confirmer Confirmer, opts Options) *Autopilot {
	if opts.Sleep == nil {
		opts.Sleep = ctxtime.Sleep
	}
	if opts.ConfirmAttempts <= 0 {
		opts.ConfirmAttempts = 3
	}
	if opts.ConfirmBackoff <= 0 {
		opts.ConfirmBackoff = 200 * time.Millisecond
	}
	base, cancel := context.WithCancel(context.Background())
	return &Autopilot{
		cloud: cloud, scenario: cloud.Scenario(), confirmer: confirmer, opts: opts, base: base, cancel: cancel,
		seen: map[string]bool{}, rounds: map[string]int{}, tasks: map[string]context.CancelFunc{}, links: map[string]string{}, failed: map[string]bool{},
	}
}

// Notify receives a notification without blocking: an opened task starts a goroutine that
// waits the scenario's delay, acts and confirms; a closed task or an ended upgrade cancels
// what is still waiting. Notifications are deduplicated by Key.
func (a *Autopilot) Notify(ctx context.Context, n activities.Notification) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.base.Err() != nil {
		return errors.New("autopilot: closed")
	}
	if n.Key != "" {
		if a.seen[n.Key] {
			return nil
		}
		a.seen[n.Key] = true
	}
	a.received = append(a.received, n)
	switch n.Event {
	case activities.EventTaskOpened:
		a.open(n, false)
	case activities.EventTaskReminder:
		// A person whose action was refused tries again when reminded.
		if a.failed[n.WorkflowID+"|"+n.TaskID] {
			a.open(n, true)
		}
	case activities.EventTaskClosed:
		if cancel := a.tasks[n.WorkflowID+"|"+n.TaskID]; cancel != nil {
			cancel()
		}
	case activities.EventUpgradeEnded:
		for k, cancel := range a.tasks {
			if strings.HasPrefix(k, n.WorkflowID+"|") || strings.HasPrefix(k, n.WorkflowID+"/") {
				cancel()
			}
		}
	}
	return nil
}

// open starts the person for a task (again, at once, when retry); a.mu is held.
func (a *Autopilot) open(n activities.Notification, retry bool) {
	key := n.WorkflowID + "|" + n.TaskID
	if _, running := a.tasks[key]; running {
		return
	}
	delete(a.failed, key)
	scn := a.scenario
	tenant, _ := scn.Tenant(n.TenantID)
	cfg := scn.EffectiveAutopilot(tenant)
	for _, k := range cfg.Ignore {
		if k == n.TaskKind {
			a.logf("ignoring %s %s (scenario)", n.TaskKind, n.TaskID)
			return
		}
	}
	rk := strings.ToLower(n.TenantID) + "|" + n.TaskKind
	round := a.rounds[rk]
	var delay time.Duration
	if retry {
		round = max(0, round-1)
	} else {
		a.rounds[rk]++
		delay = pick(cfg.Delays[n.TaskKind], round)
	}
	decision := pick(cfg.Decisions[n.TaskKind], round)
	confirmAfter := pick(cfg.ConfirmAfter[n.TaskKind], round)
	noAction := slices.Contains(cfg.NoAction, n.TaskKind)
	viaSignal := slices.Contains(cfg.ViaSignal, n.TaskKind)
	ctx, cancel := context.WithCancel(a.base)
	a.tasks[key] = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.tasks, key)
			a.mu.Unlock()
			cancel()
		}()
		a.run(ctx, n, tenant, person{round: round, delay: delay, decision: decision, confirmAfter: confirmAfter, noAction: noAction, viaSignal: viaSignal})
	}()
}

func pick[T any](list []T, round int) T {
	var zero T
	if len(list) == 0 {
		return zero
	}
	return list[min(round, len(list)-1)]
}

// person is how one person behaves on one task.
type person struct {
	round        int
	delay        time.Duration
	decision     string
	confirmAfter time.Duration // act, then confirm this much later, even if the task closed
	noAction     bool          // confirm without doing it
	viaSignal    bool          // confirm by Signal instead of Update
}

// run is one person doing one task.
func (a *Autopilot) run(ctx context.Context, n activities.Notification, tenant sim.Tenant, p person) {
	decision := p.decision
	e := Entry{WorkflowID: n.WorkflowID, TenantID: n.TenantID, TaskID: n.TaskID, Kind: n.TaskKind, Round: p.round, Delay: p.delay}
	defer func() { a.record(e) }()
	if err := a.opts.Sleep(ctx, p.delay); err != nil || ctx.Err() != nil {
		e.Cancelled = true
		e.At = a.now()
		return
	}
	by := "autopilot:" + actor(n, tenant)
	action, err := "", error(nil)
	a.cloudMu.RLock()
	cloud := a.cloud
	e.At = cloud.Clock().Now()
	if p.noAction {
		action = "nothing (confirms without doing it)"
		if len(n.Options) > 0 && decision == "" {
			decision = n.Options[0]
		}
	} else {
		action, err = a.act(cloud, n, tenant, &decision)
	}
	a.cloudMu.RUnlock()
	e.Action, e.Decision = action, decision
	if err != nil {
		e.Error = err.Error()
		a.logf("%s %s: %s refused: %v", n.TaskKind, n.TaskID, action, err)
		return
	}
	if p.confirmAfter > 0 {
		// The person acted; the word reaches the workflow late, whatever became of the task.
		ctx = a.base
		if a.opts.Sleep(ctx, p.confirmAfter) != nil {
			e.Cancelled = true
			return
		}
	}
	req := workflows.ConfirmRequest{
		TaskID: n.TaskID, As: workflows.Audience(n.Audience), By: by, Decision: decision,
		Note: "done by the rehearsal autopilot" + map[bool]string{true: ": " + action, false: ""}[action != ""],
	}
	desk := a.opts.ViaDesk && n.DeskLink != "" && !p.viaSignal && p.confirmAfter == 0
	if desk {
		e.Via = "desk"
	}
	// The person has acted and now says so. The task closing meanwhile (often because of this
	// very confirmation, when it was the upgrade's last) stops further attempts, but not the
	// one under way: it gets a grace period to be answered, so an applied Update is not
	// reported as a failure for want of its answer.
	send, stop := context.WithCancel(a.base)
	defer stop()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(sendGrace, stop) })()
	for attempt := 1; ; attempt++ {
		if desk {
			err = a.confirmAtDesk(send, n, tenant, decision, req.Note)
		} else if sc, ok := a.confirmer.(SignalConfirmer); ok && p.viaSignal {
			err = sc.SignalTask(send, n.WorkflowID, req)
		} else {
			err = a.confirmer.ConfirmTask(send, n.WorkflowID, req)
		}
		if err == nil || attempt >= a.opts.ConfirmAttempts || ctx.Err() != nil || send.Err() != nil {
			break
		}
		if ctxtime.Sleep(ctx, a.opts.ConfirmBackoff*time.Duration(attempt)) != nil {
			break
		}
	}
	if err != nil {
		e.Error = "confirm: " + err.Error()
		a.logf("%s %s: confirmation failed: %v", n.TaskKind, n.TaskID, err)
		return
	}
	e.Confirmed = true
	if desk {
		by = "their Microsoft sign-in at the desk"
	}
	a.logf("%s %s: %s, confirmed as %s by %s", n.TaskKind, n.TaskID, orNone(action), n.Audience, by)
}

func orNone(s string) string {
	if s == "" {
		return "no action"
	}
	return s
}

// actor is the UPN (or role) of the person who acts on a task.
func actor(n activities.Notification, t sim.Tenant) string {
	switch workflows.Audience(n.Audience) {
	case workflows.GlobalAdmin:
		return t.Admin.UPN
	case workflows.ServiceAccount:
		return t.ServiceAccount.UPN
	case workflows.PartnerAdmin:
		return "partner-admin"
	case workflows.Operator:
		return "operator"
	}
	return "someone"
}

var guidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// act performs the simulator action of a task and returns its name.
func (a *Autopilot) act(c *sim.Cloud, n activities.Notification, t sim.Tenant, decision *string) (string, error) {
	id := n.TenantID
	switch workflows.TaskKind(n.TaskKind) {
	case workflows.TaskEnableMFAPolicies:
		target := id
		if g := guidRE.FindString(n.Title); g != "" {
			target = g
		}
		if s, ok := c.State(target); ok && s.EntraP1 && !s.SecurityDefaults {
			return "enable-conditional-access-mfa", c.EnableConditionalAccessMFA(target)
		}
		return "enable-security-defaults", c.EnableSecurityDefaults(target)
	case workflows.TaskRegisterMFAService:
		return "register-mfa " + t.ServiceAccount.UPN, c.RegisterMFA(id, t.ServiceAccount.UPN)
	case workflows.TaskRegisterMFAAdmin:
		return "register-mfa " + t.Admin.UPN, c.RegisterMFA(id, t.Admin.UPN)
	case workflows.TaskAssignServiceRole:
		return "assign-role work365-service", c.AssignRole(id, t.ServiceAccount.UPN, sim.RoleWork365Service)
	case workflows.TaskSubmitRegistration:
		tz := t.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		return "submit-registration", c.SubmitRegistration(id, t.Name, tz, "autopilot-licence-key")
	case workflows.TaskGetConsent:
		l, err := c.GetConsent(id)
		if err == nil {
			a.mu.Lock()
			a.links[strings.ToLower(id)] = l.Token
			a.mu.Unlock()
		}
		return "get-consent", err
	case workflows.TaskBeginUpgrade:
		a.mu.Lock()
		tok := a.links[strings.ToLower(id)]
		a.mu.Unlock()
		return "begin-upgrade", c.BeginUpgrade(id, tok)
	case workflows.TaskReinstallPortal:
		return "install-portal", c.InstallPortal(id, "")
	case workflows.TaskPartnerMFAPolicies:
		p, err := partnerTenant(n, t)
		if err != nil {
			return "enable-security-defaults (partner)", err
		}
		return "enable-security-defaults " + p, c.EnableSecurityDefaults(p)
	case workflows.TaskPartnerReconsent:
		p, err := partnerTenant(n, t)
		if err != nil {
			return "reconsent-partner-center", err
		}
		return "reconsent-partner-center " + p, c.ReconsentPartnerCenter(p)
	case workflows.TaskFixPrerequisite:
		return fixPrerequisite(c, n, t)
	}
	if len(n.Options) > 0 {
		*decision = chooseDecision(*decision, n.Options)
		return "", nil
	}
	return "", nil
}

// chooseDecision returns configured when offered, else keep-waiting, retry or the first option.
func chooseDecision(configured string, options []string) string {
	for _, want := range []string{configured, workflows.DecisionKeepWaiting, workflows.DecisionRetry} {
		for _, o := range options {
			if want != "" && o == want {
				return o
			}
		}
	}
	return options[0]
}

// partnerTenant finds the partner tenant a partner task is about.
func partnerTenant(n activities.Notification, t sim.Tenant) (string, error) {
	if g := guidRE.FindString(n.Title); g != "" {
		return g, nil
	}
	name := ""
	if _, after, ok := strings.Cut(n.WorkflowID, "/partner-center/"); ok {
		name = after
	}
	for _, pc := range t.PartnerCenters {
		if (name != "" && pc.Name == name) || (name == "" && strings.Contains(n.Title, pc.Name)) {
			return pc.TenantID, nil
		}
	}
	if len(t.PartnerCenters) == 1 {
		return t.PartnerCenters[0].TenantID, nil
	}
	return "", fmt.Errorf("cannot tell which Partner Center connection task %q is about", n.Title)
}

func fixPrerequisite(c *sim.Cloud, n activities.Notification, t sim.Tenant) (string, error) {
	for _, text := range []string{n.Title, n.Instructions} {
		low := strings.ToLower(text)
		subject := t.Admin.UPN
		if t.ServiceAccount.UPN != "" && strings.Contains(low, strings.ToLower(t.ServiceAccount.UPN)) {
			subject = t.ServiceAccount.UPN
		}
		switch {
		case strings.Contains(low, "global administrator"):
			return "assign-role global-admin " + subject, c.AssignRole(n.TenantID, subject, sim.RoleGlobalAdmin)
		case strings.Contains(low, "system administrator"):
			return "assign-role system-administrator " + subject, c.AssignRole(n.TenantID, subject, sim.RoleSystemAdministrator)
		case strings.Contains(low, strings.ToLower(c.Names().ServiceRoleName)):
			return "assign-role work365-service " + subject, c.AssignRole(n.TenantID, subject, sim.RoleWork365Service)
		case strings.Contains(low, "licen"):
			return "assign-licence dynamics " + subject, c.AssignLicence(n.TenantID, subject, sim.LicenceDynamics)
		case strings.Contains(low, "mfa"):
			return "register-mfa " + subject, c.RegisterMFA(n.TenantID, subject)
		}
	}
	return "", nil
}

// now is the cloud's time.
func (a *Autopilot) now() time.Time {
	a.cloudMu.RLock()
	defer a.cloudMu.RUnlock()
	return a.cloud.Clock().Now()
}

// SwapCloud replaces the cloud the people act in, for a rehearsal whose stack restarts: open
// is called with the old cloud while no person acts (those about to act wait), and returns
// the cloud to act in from then on (e.g. the old one saved, closed and reopened from its
// file). On error the old cloud stays.
func (a *Autopilot) SwapCloud(open func(old *sim.Cloud) (*sim.Cloud, error)) error {
	a.cloudMu.Lock()
	defer a.cloudMu.Unlock()
	c, err := open(a.cloud)
	if err != nil {
		return err
	}
	a.cloud = c
	return nil
}

func (a *Autopilot) record(e Entry) {
	a.mu.Lock()
	if e.Error != "" {
		a.failed[e.WorkflowID+"|"+e.TaskID] = true
	}
	a.entries = append(a.entries, e)
	a.mu.Unlock()
}

func (a *Autopilot) logf(format string, args ...any) {
	if a.opts.Logf != nil {
		a.opts.Logf("autopilot: "+format, args...)
	}
}

// Received counts the notifications received for a workflow, by event (duplicates by Key
// counted once): what its people were told, reminders and escalations included.
func (a *Autopilot) Received(workflowID string) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, n := range a.received {
		if n.WorkflowID == workflowID {
			out[n.Event]++
		}
	}
	return out
}

// Notifications returns the notifications received for a workflow, in order (duplicates by
// Key once): what its people were sent, desk links included.
func (a *Autopilot) Notifications(workflowID string) []activities.Notification {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []activities.Notification
	for _, n := range a.received {
		if n.WorkflowID == workflowID {
			out = append(out, n)
		}
	}
	return out
}

// Log returns what the autopilot did, in the order tasks finished.
func (a *Autopilot) Log() []Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Entry(nil), a.entries...)
}

// Wait blocks until no task is in progress or ctx ends.
func (a *Autopilot) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close cancels every waiting task and waits for the goroutines to end.
func (a *Autopilot) Close() {
	a.mu.Lock()
	a.cancel()
	a.mu.Unlock()
	a.wg.Wait()
}
