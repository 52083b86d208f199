package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// taskRequest describes a human task to open.
type taskRequest struct {
	kind         TaskKind
	audience     Audience
	title        string
	instructions string
	options      []string
	// quiet tasks are announced by a shared alert instead of one notification each (an
	// orchestrator fault reaches every tenant at once).
	quiet bool
	// until is when the stage closes the task itself (a link's validity), if it does: slim
	// runs start no reminder timer for a task that closes before its first reminder.
	until time.Time
}

// run is the state both workflows share: stages passed, human tasks, warnings.
type run struct {
	workflowID string
	tenantID   string
	tenantName string
	fleet      string
	cfg        Config
	board      *taskBoard
	stage      Stage
	stageSince time.Time
	stages     []StageRecord
	warnings   []string
	// extra are workflow-specific search attributes published with the stage.
	extra     []temporal.SearchAttributeUpdate
	published string
	// reportTo is the fleet to tell about stage changes and the end, if any.
	reportTo string
	// leanReports (Input.LeanReports): tell the fleet only when reported changes.
	leanReports bool
	// reported is the slot and fault state last told to the fleet (leanReports).
	reported string
	// noSlotReports (Input.NoSlotReports): the fleet decides nothing on this slot.
	noSlotReports bool
	fromVersion   string
	// safe is true for runs of the changeSafeRunbook version (see upgrade.go).
	safe bool
	// slim is true for runs of the changeSlimHistory version (see upgrade.go): search
	// attributes (and the fleet's progress report) are published only where the workflow is
	// about to wait (flush), and short reads run as local activities (read).
	slim bool
	// waits counts the waits of a slim run (flush): a check made after the last wait is
	// still current.
	waits int
	// fault is the orchestrator fault (AADSTS code) the upgrade waits on, if any; the fleet
	// halts when several tenants wait on the same one.
	fault string
	// humanWait adds up the time some human task was open; waitingSince is when the current
	// wait on people began (zero when nobody is waited on).
	humanWait    time.Duration
	waitingSince time.Time
	// waitFor says in plain words what the current stage waits for when no person is asked
	// (a window, jobs draining, an import); enter clears it.
	waitFor string
}

// awaiting says what the stage now waits for, in the current details on-call reads. It
// issues no command (the search attributes are published with stages and tasks, or, in slim
// runs, right before the wait: flush).
func (r *run) awaiting(ctx workflow.Context, what string) {
	r.waitFor = what
	r.setDetails(ctx)
}

// whoWords names an audience as on-call would say it.
var whoWords = map[Audience]string{
	GlobalAdmin:    "the customer's Global Administrator",
	ServiceAccount: "the holder of the Work 365 service account",
	Operator:       "an operator's decision",
	PartnerAdmin:   "the partner's Partner Center admin",
}

// waitingFor says in plain words what the upgrade waits for now.
func (r *run) waitingFor(tasks []Task) string {
	if len(tasks) > 0 {
		t := tasks[0]
		who := whoWords[t.Audience]
		if who == "" {
			who = string(t.Audience)
		}
		out := fmt.Sprintf("%s: %s — task %s, open since %s", who, t.Title, t.ID, t.OpenedAt.UTC().Format("Jan 2 15:04 UTC"))
		if len(tasks) > 1 {
			out += fmt.Sprintf(", and %d more task(s) below", len(tasks)-1)
		}
		if r.waitFor != "" {
			out += "; meanwhile " + r.waitFor
		}
		return out
	}
	if r.waitFor != "" {
		return r.waitFor
	}
	return "nobody: the worker is doing machine work"
}

// countHumanWait keeps humanWait current; it runs whenever tasks open or close.
func (r *run) countHumanWait(ctx workflow.Context) {
	now := workflow.Now(ctx)
	waiting := r.board.waitingOn() != Nobody
	switch {
	case waiting && r.waitingSince.IsZero():
		r.waitingSince = now
	case !waiting && !r.waitingSince.IsZero():
		r.humanWait += now.Sub(r.waitingSince)
		r.waitingSince = time.Time{}
	}
}

// humanWaited is the time spent waiting on people so far.
func (r *run) humanWaited(ctx workflow.Context) time.Duration {
	if r.waitingSince.IsZero() {
		return r.humanWait
	}
	return r.humanWait + workflow.Now(ctx).Sub(r.waitingSince)
}

func newRun(ctx workflow.Context, tenantID, tenantName, fleet string, cfg Config, taskPrefix string) *run {
	return &run{
		workflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		tenantID:   tenantID, tenantName: tenantName, fleet: fleet,
		cfg:   cfg.withDefaults(),
		board: newTaskBoard(taskPrefix),
	}
}

// enter starts a stage, ending the previous one.
func (r *run) enter(ctx workflow.Context, s Stage) {
	now := workflow.Now(ctx)
	r.endStage(ctx, "")
	r.stage, r.stageSince, r.waitFor = s, now, ""
	r.stages = append(r.stages, StageRecord{Stage: s, Started: now})
	workflow.GetLogger(ctx).Info("stage started", "stage", string(s))
	r.refreshDetails(ctx)
}

// endStage closes the current stage record, with an optional note.
func (r *run) endStage(ctx workflow.Context, note string) {
	if n := len(r.stages); n > 0 && r.stages[n-1].Ended == nil {
		now := workflow.Now(ctx)
		r.stages[n-1].Ended = &now
		if note != "" {
			r.stages[n-1].Note = note
		}
	}
}

// note annotates the current stage.
func (r *run) note(msg string) {
	if n := len(r.stages); n > 0 {
		if r.stages[n-1].Note != "" {
			r.stages[n-1].Note += "; "
		}
		r.stages[n-1].Note += msg
	}
}

func (r *run) warn(ctx workflow.Context, msg string) {
	r.warnings = append(r.warnings, msg)
	workflow.GetLogger(ctx).Warn("upgrade warning", "stage", string(r.stage), "warning", msg)
}

// notify delivers a notification; a notification that cannot be delivered is a warning, not
// a failure of the upgrade.
func (r *run) notify(ctx workflow.Context, n activities.Notification) {
	n.At = workflow.Now(ctx)
	n.WorkflowID, n.Fleet, n.TenantID, n.TenantName, n.Stage = r.workflowID, r.fleet, r.tenantID, r.tenantName, string(r.stage)
	if err := r.local(ctx, notifyOpts(ctx), a.Notify, n, nil); err != nil && ctx.Err() == nil {
		r.warn(ctx, fmt.Sprintf("could not notify %s for %s: %v", n.Event, orDash(n.TaskID), err))
	}
}

func (r *run) notifyTask(ctx workflow.Context, event string, t *openTask) {
	r.notify(ctx, activities.Notification{
		Key:   fmt.Sprintf("%s/%s/%s/%d", r.workflowID, t.ID, event, t.Reminders),
		Event: event, TaskID: t.ID, TaskKind: string(t.Kind), Audience: string(t.Audience),
		Title: t.Title, Instructions: t.Instructions, Options: t.Options, Reminder: t.Reminders,
		Command: r.confirmCommand(t.Task),
	})
}

func (r *run) confirmCommand(t Task) string {
	cmd := fmt.Sprintf("starter confirm %s %s --as %s --by <your name>", r.workflowID, t.ID, t.Audience)
	if t.Audience != Operator {
		// An operator confirms someone else's task only on their behalf (issue 16).
		cmd += ` --on-behalf-of "<who did it>"`
	}
	if len(t.Options) > 0 {
		cmd += " --decision <" + strings.Join(t.Options, "|") + ">"
	}
	return cmd + ` --note "<what you did>"`
}

// pendingTask is a human task being waited for in the background.
type pendingTask struct {
	task   *openTask
	future workflow.Future
	cancel workflow.CancelFunc
	board  *taskBoard
}

// stop closes the task without a confirmation (e.g. the link expired) and stops its wait.
func (p *pendingTask) stop(why string) {
	if p.board.find(p.task.ID) != nil {
		p.board.close(p.task.ID, why)
	}
	p.cancel()
}

// askAsync opens a human task, notifies its audience, and waits for its confirmation in the
// background, re-notifying every ReminderInterval. The future yields the Confirmation.
func (r *run) askAsync(ctx workflow.Context, req taskRequest) *pendingTask {
	ctx, cancel := workflow.WithCancel(ctx)
	t := r.board.newTask(ctx, r.stage, req)
	f, settle := workflow.NewFuture(ctx)
	p := &pendingTask{task: t, future: f, cancel: cancel, board: r.board}
	r.refreshDetails(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		c, err := r.waitTask(ctx, t)
		if err != nil && r.board.find(t.ID) != nil {
			r.board.close(t.ID, "upgrade cancelled")
		}
		r.refreshDetails(ctx)
		settle.Set(c, err)
	})
	return p
}

func (r *run) waitTask(ctx workflow.Context, t *openTask) (Confirmation, error) {
	if !t.quiet {
		r.notifyTask(ctx, activities.EventTaskOpened, t)
	}
	if r.slim && !t.until.IsZero() && workflow.Now(ctx).Add(r.cfg.ReminderInterval).After(t.until) {
		// The stage closes the task (stop) before a reminder could be due: no timer.
		var c Confirmation
		got := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(t.replies, func(ch workflow.ReceiveChannel, _ bool) { ch.Receive(ctx, &c); got = true })
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if !got {
			return Confirmation{}, temporal.NewCanceledError("task " + t.ID + " closed without confirmation")
		}
		workflow.GetLogger(ctx).Info("human task confirmed", "task", t.ID, "by", c.By, "via", c.Via)
		return c, nil
	}
	for {
		tctx, cancelTimer := workflow.WithCancel(ctx)
		timer := workflow.NewTimerWithOptions(tctx, r.cfg.ReminderInterval,
			workflow.TimerOptions{Summary: fmt.Sprintf("Reminder %d for %s", t.Reminders+1, t.ID)})
		var c Confirmation
		got := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(t.replies, func(ch workflow.ReceiveChannel, _ bool) { ch.Receive(ctx, &c); got = true })
		sel.AddFuture(timer, func(workflow.Future) {})
		sel.Select(ctx)
		cancelTimer()
		if got {
			workflow.GetLogger(ctx).Info("human task confirmed", "task", t.ID, "by", c.By, "via", c.Via)
			return c, nil
		}
		if ctx.Err() != nil {
			return Confirmation{}, temporal.NewCanceledError("task " + t.ID + " closed without confirmation")
		}
		t.Reminders++
		if t.quiet {
			continue
		}
		r.notifyTask(ctx, activities.EventTaskReminder, t)
		if t.Reminders == r.cfg.EscalateAfterReminders && t.Audience != Operator {
			r.notify(ctx, activities.Notification{
				Key:   fmt.Sprintf("%s/%s/%s", r.workflowID, t.ID, activities.EventTaskEscalated),
				Event: activities.EventTaskEscalated, TaskID: t.ID, TaskKind: string(t.Kind), Audience: string(Operator),
				Title:   "ESCALATED: " + t.Title,
				Message: fmt.Sprintf("Task %s for the %s has been open since %s without a confirmation after %d reminders: contact them or decide with the customer.", t.ID, t.Audience, t.OpenedAt.UTC().Format(time.RFC3339), t.Reminders),
				Command: r.confirmCommand(t.Task), Reminder: t.Reminders,
			})
		}
	}
}

// ask opens a human task and waits for its confirmation.
func (r *run) ask(ctx workflow.Context, req taskRequest) (Confirmation, error) {
	p := r.askAsync(ctx, req)
	r.flush(ctx)
	var c Confirmation
	err := p.future.Get(ctx, &c)
	return c, err
}

// exec runs an activity and waits for its result. When the orchestrator's own credential
// fails (an expired or wrong secret, a disabled app: no tenant is to blame), the upgrade does
// not fail: operators are alerted once for all tenants, and the activity is retried after a
// doubling wait or as soon as an operator confirms the fix; after MaxFixRounds waits only the
// operator's decision (retry or abort) continues.
func (r *run) exec(ctx, actx workflow.Context, activity, arg, out any) error {
	return r.execWith(ctx, func() error {
		r.flush(ctx) // a regular activity may take a while: on-call sees where the upgrade is
		return workflow.ExecuteActivity(actx, activity, arg).Get(ctx, out)
	})
}

// execWith is exec's handling of orchestrator faults around any way of running an activity.
func (r *run) execWith(ctx workflow.Context, run func() error) error {
	wait := r.cfg.CredentialRetryInterval
	for round := 1; ; round++ {
		err := run()
		if err == nil || !r.safe || !isOrchestratorFault(err) || ctx.Err() != nil {
			if round > 1 {
				r.fault = ""
			}
			return err
		}
		if err := r.orchestratorFault(ctx, lastFailure(err), round, wait); err != nil {
			return err
		}
		wait = min(wait*2, maxCredentialRetryInterval)
	}
}

// orchestratorFault alerts (once a day per fault, shared by every tenant), records a
// warning, and waits for the retry time or an operator's decision.
func (r *run) orchestratorFault(ctx workflow.Context, msg string, round int, wait time.Duration) error {
	r.warn(ctx, fmt.Sprintf("orchestrator fault, round %d: %s", round, msg))
	if round == 1 {
		day := workflow.Now(ctx).UTC().Format("2006-01-02")
		r.notify(ctx, activities.Notification{
			Key: "orchestrator-fault/" + faultCode(msg) + "/" + day, Event: activities.EventOrchestratorFault, Audience: string(Operator),
			Title:   "The orchestrator's own Microsoft sign-in fails",
			Message: msg + " — fix the worker's credential once; every waiting upgrade retries on its own (or confirm its orchestrator-credential task with --decision retry).",
		})
	}
	bounded := round <= r.cfg.MaxFixRounds
	r.fault = faultCode(msg)
	p := r.askAsync(ctx, orchestratorFaultTask(msg, r.cfg.Show(wait), bounded))
	if !bounded {
		var c Confirmation
		if err := p.future.Get(ctx, &c); err != nil {
			return err
		}
		if c.Decision == DecisionAbort {
			return aborted(c, "the orchestrator's own credential kept failing")
		}
		return nil
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimerWithOptions(tctx, wait, workflow.TimerOptions{Summary: "Retry after the orchestrator fault in " + r.cfg.Show(wait)})
	var (
		c       Confirmation
		err     error
		decided bool
	)
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(p.future, func(f workflow.Future) { err = f.Get(ctx, &c); decided = true })
	sel.AddFuture(timer, func(workflow.Future) {})
	r.flush(ctx)
	sel.Select(ctx)
	if !decided {
		p.stop("retried after " + r.cfg.Show(wait))
		return nil
	}
	if err != nil {
		return err
	}
	if c.Decision == DecisionAbort {
		return aborted(c, "the orchestrator's own credential kept failing")
	}
	return nil
}

// roundsExhausted asks the operator to decide after a human loop ran its bounded rounds: retry
// (another MaxFixRounds rounds) or abort.
func (r *run) roundsExhausted(ctx workflow.Context, what string, rounds int, left string) error {
	r.warn(ctx, fmt.Sprintf("%s: still not done after %d rounds (%s)", what, rounds, left))
	c, err := r.ask(ctx, roundsExhaustedTask(what, rounds, left))
	if err != nil {
		return err
	}
	if c.Decision == DecisionAbort {
		return aborted(c, what+" not done after "+fmt.Sprint(rounds)+" rounds")
	}
	return nil
}

func isOrchestratorFault(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == activities.ErrOrchestratorFault
}

// faultCode is the AADSTS code in a fault's message, so one alert covers every tenant.
func faultCode(msg string) string {
	if i := strings.Index(msg, "AADSTS"); i >= 0 {
		j := i + len("AADSTS")
		for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
			j++
		}
		return msg[i:j]
	}
	return "login"
}

// askAll opens several tasks at once (people can work in parallel) and waits for all.
func (r *run) askAll(ctx workflow.Context, reqs []taskRequest) ([]Confirmation, error) {
	ps := make([]*pendingTask, 0, len(reqs))
	for _, req := range reqs {
		ps = append(ps, r.askAsync(ctx, req))
	}
	r.flush(ctx)
	out := make([]Confirmation, 0, len(ps))
	for _, p := range ps {
		var c Confirmation
		if err := p.future.Get(ctx, &c); err != nil {
			for _, q := range ps {
				q.stop("upgrade cancelled")
			}
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// refreshDetails publishes the markdown on-call reads in the Web UI: stage, since when, who
// must act and the exact next action.
func (r *run) refreshDetails(ctx workflow.Context) {
	r.setDetails(ctx)
	r.publish(ctx)
}

// setDetails publishes the current details only (no command).
func (r *run) setDetails(ctx workflow.Context) {
	r.countHumanWait(ctx)
	var b strings.Builder
	tasks := r.board.tasks()
	fmt.Fprintf(&b, "**Waiting for:** %s\n\n", r.waitingFor(tasks))
	fmt.Fprintf(&b, "**Stage:** %s since %s\n\n", r.stage, r.stageSince.UTC().Format(time.RFC3339))
	if len(tasks) == 0 {
		b.WriteString("**Waiting on:** none (the worker is doing machine work)\n")
	} else {
		fmt.Fprintf(&b, "**Waiting on:** %s\n\n", tasks[0].Audience)
		for _, t := range tasks {
			fmt.Fprintf(&b, "### %s — %s\nFor **%s**, open since %s.\n\n%s\n\nConfirm: `%s`\n\n",
				t.ID, t.Title, t.Audience, t.OpenedAt.UTC().Format(time.RFC3339), t.Instructions, r.confirmCommand(t))
		}
	}
	if len(r.warnings) > 0 {
		fmt.Fprintf(&b, "**Warnings:** %d (see the status query)\n", len(r.warnings))
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

// publish upserts the search attributes on-call filters by, when they changed. Slim runs
// only record that they may have changed: flush publishes them where the workflow waits.
func (r *run) publish(ctx workflow.Context) {
	if r.slim {
		return
	}
	r.upsert(ctx)
}

// flush publishes the search attributes (one upsert, only if they changed) and tells the
// fleet, right before the workflow waits (a person, a timer, a long activity, a child): what
// on-call must see is where the upgrade is stuck, not the stages that passed within one
// workflow task. Runs before changeSlimHistory published at every change instead.
func (r *run) flush(ctx workflow.Context) {
	if r.slim {
		r.waits++
		r.upsert(ctx)
	}
}

// flushQuiet is flush without the progress report to the fleet.
func (r *run) flushQuiet(ctx workflow.Context) {
	if r.slim {
		r.waits++
		to := r.reportTo
		r.reportTo = ""
		r.upsert(ctx)
		r.reportTo = to
	}
}

func (r *run) upsert(ctx workflow.Context) {
	waiting := string(r.board.waitingOn())
	key := string(r.stage) + "|" + waiting + "|" + r.stageSince.String() + "|" + fmt.Sprint(r.extra)
	if key == r.published {
		return
	}
	r.published = key
	updates := []temporal.SearchAttributeUpdate{
		searchattr.Stage.ValueSet(string(r.stage)),
		searchattr.WaitingOn.ValueSet(waiting),
		searchattr.StageSince.ValueSet(r.stageSince),
	}
	updates = append(updates, r.extra...)
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("could not publish search attributes", "error", err)
	}
	if r.reportTo == "" {
		return
	}
	if r.leanReports {
		k := r.slotKey()
		if k == r.reported {
			return // nothing the fleet decides on changed
		}
		r.reported = k
	}
	if r.slim && r.signalFleet(ctx, SignalTenantProgress, r.progressReport("")) == nil {
		return
	}
	// Not waited for: a fleet that has ended cannot be told, and that is fine.
	workflow.SignalExternalWorkflow(ctx, r.reportTo, "", SignalTenantProgress, r.progressReport(""))
}

// signalFleet tells the fleet through a local activity (activities.SignalFleet: one marker,
// no workflow task of its own when it is delivered); on an error the caller signals it with
// a command, as runs before changeSlimHistory always did.
func (r *run) signalFleet(ctx workflow.Context, signal string, p TenantProgress) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	in := activities.FleetSignal{WorkflowID: r.reportTo, Signal: signal, Payload: raw}
	return workflow.ExecuteLocalActivity(localOpts(ctx, "Tell the fleet: "+signal), a.SignalFleet, in).Get(ctx, nil)
}

// slotKey is what a fleet decides on (fleet.holdsSlot, fleet.checkFaults): machine work, a
// person's task, or the downtime window; and the orchestrator fault waited on.
func (r *run) slotKey() string {
	if r.noSlotReports {
		return slotKind(Nobody, "") + "|" + r.fault
	}
	return slotKind(r.board.waitingOn(), r.stage) + "|" + r.fault
}

// slotKind says what a running tenant waits on, as a fleet's slot rule sees it.
func slotKind(w Audience, s Stage) string {
	switch {
	case w != "" && w != Nobody:
		return "person"
	case s == StageDowntimeWindow:
		return "window"
	}
	return "machine"
}

func (r *run) progressReport(outcome Outcome) TenantProgress {
	return TenantProgress{WorkflowID: r.workflowID, Stage: r.stage, WaitingOn: r.board.waitingOn(), Since: r.stageSince, Outcome: outcome, FromVersion: r.fromVersion, Fault: r.fault}
}

// reportEnd tells the fleet, if any, how the upgrade ended.
func (r *run) reportEnd(ctx workflow.Context, outcome Outcome, errMsg string) {
	if r.reportTo == "" {
		r.flush(ctx)
		return
	}
	r.flushQuiet(ctx) // the end report below tells the fleet
	p := r.progressReport(outcome)
	p.Error = errMsg
	if r.slim && r.signalFleet(ctx, SignalTenantFinished, p) == nil {
		return
	}
	if err := workflow.SignalExternalWorkflow(ctx, r.reportTo, "", SignalTenantFinished, p).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("could not report the end to the fleet", "fleet", r.reportTo, "error", err)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// localOpts: a short, idempotent call (a read, a notification, an idempotent write) run as a
// local activity: one marker in history and no workflow task of its own. One attempt, bounded
// well below the workflow task's own deadline; any passing failure (throttling, an outage, a
// timeout) is handed to the regular activity (see local), which keeps its retries, its
// heartbeat progress and its place in the Web UI's pending activities.
func localOpts(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
}

// local runs a short, idempotent activity. Slim runs try it once as a local activity; a
// failure that a retry may cure falls back to the regular activity with the options of actx
// (and its own retries); a permanent failure (ErrMicrosoftNotFound, an orchestrator fault…)
// is returned as the regular activity would have returned it. Older runs run the regular
// activity only.
func (r *run) local(ctx, actx workflow.Context, activity, arg, out any) error {
	if !r.slim {
		return workflow.ExecuteActivity(actx, activity, arg).Get(ctx, out)
	}
	summary := workflow.GetActivityOptions(actx).Summary
	err := workflow.ExecuteLocalActivity(localOpts(ctx, summary), activity, arg).Get(ctx, out)
	var app *temporal.ApplicationError
	if err == nil || ctx.Err() != nil || (errors.As(err, &app) && (app.NonRetryable() || slices.Contains(nonRetryable, app.Type()) || slices.Contains(notYet, app.Type()))) {
		return err
	}
	r.flush(ctx)
	return workflow.ExecuteActivity(actx, activity, arg).Get(ctx, out)
}

// notYet are a poll's answers "not yet": a local activity that gives one is not retried as a
// regular activity (the caller asked once).
var notYet = []string{activities.ErrJobsPending, activities.ErrUpgradeNotStarted, activities.ErrUpgradeNotComplete}

// read is exec for a short, idempotent activity (local, with readOpts as its fallback).
func (r *run) read(ctx workflow.Context, summary string, activity, arg, out any) error {
	if !r.slim {
		return r.exec(ctx, readOpts(ctx, summary), activity, arg, out)
	}
	return r.execWith(ctx, func() error { return r.local(ctx, readOpts(ctx, summary), activity, arg, out) })
}
