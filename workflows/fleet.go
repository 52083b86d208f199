package workflows

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Fleet phases.
const (
	phaseWave     = "running-wave"
	phaseBake     = "baking"
	phaseApproval = "awaiting-approval"
	phaseDone     = "done"
)

// fleetCarry is the state a fleet carries over continue-as-new.
type fleetCarry struct {
	Tenants     []FleetTenant `json:"tenants"`
	Wave        int           `json:"wave"`
	Phase       string        `json:"phase"`
	BakeUntil   time.Time     `json:"bakeUntil,omitempty"`
	Approved    []bool        `json:"approved"`
	Paused      bool          `json:"paused"`
	Halted      string        `json:"halted,omitempty"`
	ForgivenFor []int         `json:"forgivenFor"` // failures already accepted by a resume, per wave
	Cancelled   bool          `json:"cancelled"`
	// AskedApproval is true once operators were told the current wave awaits approval.
	AskedApproval bool     `json:"askedApproval,omitempty"`
	Events        []string `json:"events,omitempty"`
	Runs          int      `json:"runs"`
	// Since changeFleetReportAsItGoes: ReportParts counts the report parts written while the
	// fleet ran, named by ReportRun (the fleet's first run). Reported has one character per
	// tenant of the plan: '.' for a tenant carried in Tenants, or 'a'+k for a tenant whose
	// report line is written, with outcome and starts ReportedKinds[k] (its wave is the plan's);
	// ReportedErrors keeps the errors the summary shows of such tenants (the first
	// MaxResultFailed failed ones, cut), by position. A reported tenant costs about a byte.
	ReportParts    int            `json:"reportParts,omitempty"`
	ReportRun      string         `json:"reportRun,omitempty"`
	Reported       string         `json:"reported,omitempty"`
	ReportedKinds  []reportedKind `json:"reportedKinds,omitempty"`
	ReportedErrors map[int]string `json:"reportedErrors,omitempty"`
	// EventsOmitted counts the earliest events no longer carried (since
	// changeFleetReportAsItGoes the carried state keeps the last maxCarriedEvents).
	EventsOmitted int `json:"eventsOmitted,omitempty"`
	// Recheck are the positions of tenants whose end was signalled to an earlier run that
	// continued as new before it took it: the next run checks them at once, not at its
	// periodic check 15 minutes later (found in the bench: one tenant of 1,000 signalled
	// in the last workflow task before continue-as-new, and its close reached no run).
	Recheck []int `json:"recheck,omitempty"`
}

// maxCarriedEvents bounds the events carried over continue-as-new (the summary shows the
// last MaxResultEvents; notifications and the report's parts have the rest).
const maxCarriedEvents = MaxResultEvents

// maxFailedEvent bounds a failed tenant's error in the fleet's events since
// changeFleetReportAsItGoes (the operators' notification, the summary and the report have it
// whole): 500 failures of long errors must not fill the carried state.
const maxFailedEvent = 160

// reportedKind is what the fleet still decides on of a tenant whose report line is written.
type reportedKind struct {
	Outcome Outcome `json:"o"`
	Starts  int     `json:"s,omitempty"`
}

// maxReportedKinds bounds the kinds of reported tenants one character can name (a..z); a
// reported tenant of another kind keeps its full record.
const maxReportedKinds = 26

type fleet struct {
	in     FleetInput
	id     string
	specs  [][]spec.Tenant
	st     fleetCarry
	index  map[string]int // workflow ID → position in st.Tenants (lookups only)
	starts []pendingStart
	poke   workflow.Channel
	// events estimates this run's history events (4 per child start, 1 per signal), for
	// environments that do not report the history length.
	events  int
	progCh  workflow.ReceiveChannel
	doneCh  workflow.ReceiveChannel
	details string
	// windowWaitsFree is the changeFleetWindowSlots version: a tenant waiting for its
	// downtime window holds no concurrency slot.
	windowWaitsFree bool
	// writesReport is the changeFleetReport version: the fleet writes its final report.
	writesReport bool
	// reportParts is the changeFleetReportParts version: the final report goes in parts.
	reportParts bool
	// asItGoes is the changeFleetReportAsItGoes version: before each continue-as-new the
	// report lines of the tenants that finished go out as parts, and the carried state keeps
	// of those tenants only what the fleet still decides on.
	asItGoes bool
	// childEnds is the changeFleetChildEnds version: a tenant's end is taken from its child
	// workflow (the future's result in this run, a describe otherwise); the tenant-finished
	// signal is only a hint.
	childEnds bool
	ends      fleetEnds
	// summary is the changeFleetSummary version: a summary result, cancels in batches
	// across workflow tasks, and a carried state without what the plan already says.
	summary bool
	// startsBatched is the changeFleetStartBatch version: at most startBatch child starts
	// are awaited at a time, and at most maxRunChildren children of this run run at once.
	startsBatched bool
	// ownChildren are the tenants this run started (not carried over continue-as-new).
	ownChildren []int
	// full is set when this run holds maxRunChildren running children and has more to
	// start: it continues as new, whose children count from zero.
	full bool
	// leanReports is the changeFleetLeanReports version: children tell the fleet only
	// what it decides on (Input.LeanReports).
	leanReports bool
	// tenantPriority is the changeFleetPriority version: children run at TenantPriorityKey,
	// not at the fleet's own priority they would inherit.
	tenantPriority bool
}

// changeFleetWindowSlots gates the fleet's slot rule for tenants waiting for their window.
const changeFleetWindowSlots = "fleet-window-slots"

// changeFleetReport gates the final report activity at the fleet's end.
const changeFleetReport = "fleet-final-report"

// changeFleetSummary gates what lets 5,000 tenants fit the payload and pending-request limits:
// the summary result, batched cancels and the slim carried state.
const changeFleetSummary = "fleet-summary"

// changeFleetReportParts gates the final report sent in bounded parts (issue 14: every
// payload under 512 KB at 5,000 tenants).
const changeFleetReportParts = "fleet-report-parts"

// changeFleetReportAsItGoes gates the report parts written as the fleet goes and the compact
// carried state of the reported tenants (issue 14: every continue-as-new input of a 5,000
// tenant fleet under 512 KB, not growing with each started tenant's run ID and times).
const changeFleetReportAsItGoes = "fleet-report-as-it-goes"

// changeFleetChildEnds gates the fleet's integrity check (issue 16): a tenant's end comes
// from its workflow, not from the tenant-finished signal anyone with namespace access can send.
const changeFleetChildEnds = "fleet-child-ends"

// Bounds of the fleet's checks of its tenants' ends.
const (
	// endCheckEvery is how often the fleet reads the state of tenants started by an earlier
	// run (no future in this one) whose end signal has not come.
	endCheckEvery = 15 * time.Minute
	// endCheckBatch is the most tenants one check activity reads.
	endCheckBatch = 100
	// endCheckSweep is the most tenants one periodic check queues (the next takes the rest).
	endCheckSweep = 500
	// endChecksInFlight bounds the check activities running at once.
	endChecksInFlight = 2
	// endHintGrace is how long a child of this run said to have ended has to close before
	// the fleet checks its workflow.
	endHintGrace = time.Minute
)

// fleetEnds is this run's state of the end checks (not carried: a new run starts afresh).
type fleetEnds struct {
	dctx     workflow.Context
	children map[int]bool // positions with a child future in this run
	pending  []childFuture
	added    workflow.Channel // wakes watchEnds when a child starts
	queue    []int
	queued   map[int]bool
	hinted   map[int]bool
	hintedAt map[int]time.Time // same-run children: when their end was signalled
	refused  map[int]bool
	inFlight int
	next     time.Time // the next periodic check
	timer    workflow.Future
	cursor   int
}

// changeFleetLeanReports gates Input.LeanReports for the children this fleet starts: about
// three progress signals per tenant instead of one per wait (issue 14: child starts waited
// behind the fleet's workflow lock).
const changeFleetLeanReports = "fleet-lean-reports"

// changeFleetPriority gates the children's explicit TenantPriorityKey: a fleet launched at
// FleetPriorityKey would otherwise pass its priority on to every tenant upgrade it starts.
const changeFleetPriority = "fleet-priority"

// changeFleetStartBatch gates the cap on child starts awaited at once.
const changeFleetStartBatch = "fleet-start-batch"

// startBatch bounds the child starts awaited at once: a wave of 1,000 started in one workflow
// task is one request of megabytes (each start carries the tenant's input) and a burst the
// server works through before any child runs; in batches, the first children run while the
// next ones start.
const startBatch = 100

// maxRunChildren bounds the running children of one fleet run: the server refuses a workflow
// more than 2,000 pending children (limit.numPendingChildExecutions.error, a child pending
// until it ends, abandoned or not), and tenants waiting for their window hold no slot, so
// even a narrow wave could start thousands. At the bound the run continues as new.
const maxRunChildren = 1000

// cancelBatch bounds the cancel requests one workflow task sends (the server refuses more
// than 2,000 pending ones per workflow).
const cancelBatch = 500

type pendingStart struct {
	pos    int
	future workflow.Future
}

// FleetUpgrade runs tenant upgrades as child workflows, wave by wave: per-wave concurrency,
// failure budget, bake time and approval gate; operators pause, resume and cancel it. Children
// are abandoned on continue-as-new and report back by signal, so thousands of tenants fit.
func FleetUpgrade(ctx workflow.Context, in FleetInput) (FleetResult, error) {
	f := &fleet{in: in, id: workflow.GetInfo(ctx).WorkflowExecution.ID, index: map[string]int{}}
	if err := f.load(); err != nil {
		return FleetResult{}, temporal.NewNonRetryableApplicationError("invalid fleet input: "+err.Error(), "InvalidFleet", nil)
	}
	f.st.Runs++
	f.windowWaitsFree = workflow.GetVersion(ctx, changeFleetWindowSlots, workflow.DefaultVersion, 1) >= 1
	f.writesReport = workflow.GetVersion(ctx, changeFleetReport, workflow.DefaultVersion, 1) >= 1
	f.summary = workflow.GetVersion(ctx, changeFleetSummary, workflow.DefaultVersion, 1) >= 1
	f.reportParts = workflow.GetVersion(ctx, changeFleetReportParts, workflow.DefaultVersion, 1) >= 1
	f.childEnds = workflow.GetVersion(ctx, changeFleetChildEnds, workflow.DefaultVersion, 1) >= 1
	if f.childEnds {
		f.ends.dctx, _ = workflow.NewDisconnectedContext(ctx)
		f.ends.children, f.ends.queued, f.ends.hinted, f.ends.refused = map[int]bool{}, map[int]bool{}, map[int]bool{}, map[int]bool{}
		f.ends.hintedAt = map[int]time.Time{}
		f.ends.next = workflow.Now(ctx).Add(endCheckEvery)
		f.ends.added = workflow.NewBufferedChannel(ctx, 1)
		workflow.Go(f.ends.dctx, f.watchEnds)
		for _, pos := range f.st.Recheck {
			if pos >= 0 && pos < len(f.st.Tenants) {
				f.hint(ctx, pos) // not a child of this run: checked at once
			}
		}
		f.st.Recheck = nil
	}
	f.startsBatched = workflow.GetVersion(ctx, changeFleetStartBatch, workflow.DefaultVersion, 1) >= 1
	f.asItGoes = workflow.GetVersion(ctx, changeFleetReportAsItGoes, workflow.DefaultVersion, 1) >= 1 && f.writesReport && f.reportParts
	f.leanReports = workflow.GetVersion(ctx, changeFleetLeanReports, workflow.DefaultVersion, 1) >= 1
	f.tenantPriority = workflow.GetVersion(ctx, changeFleetPriority, workflow.DefaultVersion, 1) >= 1
	f.poke = workflow.NewBufferedChannel(ctx, 100)
	f.progCh = workflow.GetSignalChannel(ctx, SignalTenantProgress)
	f.doneCh = workflow.GetSignalChannel(ctx, SignalTenantFinished)
	if err := f.registerHandlers(ctx); err != nil {
		return FleetResult{}, err
	}
	for {
		f.drain(ctx)
		if f.st.Cancelled {
			return f.cancelAll(ctx)
		}
		if f.step(ctx) {
			break
		}
		f.publish(ctx)
		f.checkEnds(ctx)
		if f.shouldContinue(ctx) {
			return FleetResult{}, f.continueAsNew(ctx)
		}
		f.wait(ctx)
		if ctx.Err() != nil {
			f.st.Cancelled = true
			f.event(ctx, "fleet workflow cancelled")
		}
	}
	f.publish(ctx)
	return f.end(ctx, f.result(false)), nil
}

// end writes the final report (JSON and CSV, worker config reports.dir) and returns res. A
// report that cannot be written is a fleet event, never a failed fleet.
func (f *fleet) end(ctx workflow.Context, res FleetResult) FleetResult {
	if !f.writesReport {
		return res
	}
	r := activities.FleetReport{Fleet: f.in.Name, FleetWorkflowID: f.id, Cancelled: res.Cancelled, EndedAt: workflow.Now(ctx), Events: res.Events}
	for _, t := range f.st.Tenants {
		if !t.Reported { // since changeFleetReportAsItGoes, a reported tenant's line is in a part already
			r.Tenants = append(r.Tenants, f.reportLine(t))
		}
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                "Write the fleet's final report",
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
	})
	var w activities.FleetReportWritten
	var err error
	if f.reportParts {
		first := 0 // parts written while the fleet ran (changeFleetReportAsItGoes)
		if f.asItGoes {
			first, r.FirstRunID = f.st.ReportParts, f.reportRun(ctx)
			r.Parts = first
		}
		for i, part := range activities.ReportParts(r.Tenants) {
			p := activities.FleetReportPart{Fleet: r.Fleet, EndedAt: r.EndedAt, Part: first + i + 1, Tenants: part}
			if f.asItGoes {
				p.FleetWorkflowID, p.FirstRunID = f.id, r.FirstRunID
			}
			if err = workflow.ExecuteActivity(actx, a.WriteFleetReportPart, p).Get(actx, &w); err != nil || w.Skipped != "" {
				break
			}
			r.Parts = first + i + 1
		}
		r.Tenants = nil
	}
	if err == nil && w.Skipped == "" {
		err = workflow.ExecuteActivity(actx, a.WriteFleetReport, r).Get(actx, &w)
	}
	switch {
	case err != nil:
		f.event(ctx, "final report NOT written: "+err.Error())
	case w.Skipped != "":
		f.event(ctx, "final report not written: "+w.Skipped)
	default:
		f.event(ctx, "final report written: "+strings.Join(w.Locations, ", "))
	}
	return f.result(res.Cancelled)
}

// reportLine is a tenant's line of the fleet's report.
func (f *fleet) reportLine(t FleetTenant) activities.FleetReportTenant {
	wave := ""
	if t.Wave >= 0 && t.Wave < len(f.in.Waves) {
		wave = f.in.Waves[t.Wave].Name
	}
	return activities.FleetReportTenant{WorkflowID: t.WorkflowID, RunID: t.RunID, TenantID: t.TenantID, Name: t.Name,
		Wave: wave, Outcome: string(t.Outcome), Error: t.Error, FromVersion: t.FromVersion, Stage: string(t.Stage), Since: t.Since}
}

// reportRun names the parts the fleet writes as it goes: its first run, carried over
// continue-as-new (this run's ID where the first is not known).
func (f *fleet) reportRun(ctx workflow.Context) string {
	if f.st.ReportRun == "" {
		info := workflow.GetInfo(ctx)
		f.st.ReportRun = info.FirstRunID
		if f.st.ReportRun == "" {
			f.st.ReportRun = info.WorkflowExecution.RunID
		}
		if f.st.ReportRun == "" {
			f.st.ReportRun = "run"
		}
	}
	return f.st.ReportRun
}

// reportFinished writes the report lines of the finished tenants not yet reported, as parts
// numbered on from the carried count, and marks them reported. Without a report store
// (Skipped) or when a write fails, the tenants keep their full records in the carried state
// and the next run (or the fleet's end) writes them under the same part number: a write that
// succeeded unseen is replaced, never doubled.
func (f *fleet) reportFinished(ctx workflow.Context) {
	var lines []activities.FleetReportTenant
	var at []int
	for pos, t := range f.st.Tenants {
		if t.State == TenantFinished && !t.Reported {
			lines = append(lines, f.reportLine(t))
			at = append(at, pos)
		}
	}
	if len(lines) == 0 {
		return
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                "Write the report lines of the tenants that finished",
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 5 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	run := f.reportRun(ctx)
	for _, part := range activities.ReportParts(lines) {
		p := activities.FleetReportPart{Fleet: f.in.Name, Part: f.st.ReportParts + 1, Tenants: part, FleetWorkflowID: f.id, FirstRunID: run}
		var w activities.FleetReportWritten
		if err := workflow.ExecuteActivity(actx, a.WriteFleetReportPart, p).Get(actx, &w); err != nil {
			f.event(ctx, fmt.Sprintf("report part %d NOT written (%d tenants kept in the fleet's state; the next run tries again): %v", p.Part, len(part), err))
			return
		}
		if w.Skipped != "" {
			return // no report store: the carried state keeps every tenant's line
		}
		f.st.ReportParts++
		for _, pos := range at[:len(part)] {
			f.st.Tenants[pos].Reported = true
		}
		at = at[len(part):]
	}
}

// compactCarry is the carried state's tenants since changeFleetReportAsItGoes: the plan says
// who each tenant is, and a reported tenant is one character of Reported.
func (f *fleet) compactCarry(st *fleetCarry) {
	st.Tenants = nil
	reported := make([]byte, len(f.st.Tenants))
	st.ReportedKinds, st.ReportedErrors = nil, map[int]string{}
	failed := 0
	for pos, t := range f.st.Tenants {
		if t.Outcome == OutcomeFailed {
			failed++
		}
		k := -1
		if t.Reported {
			k = slices.Index(st.ReportedKinds, reportedKind{t.Outcome, t.Starts})
			if k < 0 && len(st.ReportedKinds) < maxReportedKinds {
				st.ReportedKinds = append(st.ReportedKinds, reportedKind{t.Outcome, t.Starts})
				k = len(st.ReportedKinds) - 1
			}
		}
		if k < 0 {
			t.WorkflowID, t.TenantID, t.Name = "", "", ""
			st.Tenants = append(st.Tenants, t)
			reported[pos] = '.'
			continue
		}
		reported[pos] = byte('a' + k)
		if t.Outcome == OutcomeFailed && failed <= MaxResultFailed && t.Error != "" {
			st.ReportedErrors[pos] = cut(t.Error, maxResultError)
		}
	}
	st.Reported = string(reported)
}

// expandCarry restores the reported tenants of a compact carried state (compactCarry).
func (f *fleet) expandCarry() error {
	if f.st.Reported == "" {
		return nil
	}
	if len(f.st.Reported) != f.planSize() {
		return fmt.Errorf("the carried state marks %d tenants but the plan has %d", len(f.st.Reported), f.planSize())
	}
	full := make([]FleetTenant, 0, len(f.st.Reported))
	kept := f.st.Tenants
	pos := 0
	for w, ts := range f.specs {
		for range ts {
			c := f.st.Reported[pos]
			switch {
			case c == '.':
				if len(kept) == 0 {
					return fmt.Errorf("the carried state lacks tenant %d", pos)
				}
				full, kept = append(full, kept[0]), kept[1:]
			case c >= 'a' && int(c-'a') < len(f.st.ReportedKinds):
				k := f.st.ReportedKinds[c-'a']
				full = append(full, FleetTenant{Wave: w, State: TenantFinished, Outcome: k.Outcome, Starts: k.Starts, Error: f.st.ReportedErrors[pos], Reported: true})
			default:
				return fmt.Errorf("the carried state marks tenant %d %q", pos, c)
			}
			pos++
		}
	}
	if len(kept) > 0 {
		return fmt.Errorf("the carried state has %d tenants more than it marks", len(kept))
	}
	f.st.Tenants, f.st.Reported, f.st.ReportedKinds, f.st.ReportedErrors = full, "", nil, nil
	return nil
}

// result is the fleet's result: a bounded summary (since changeFleetSummary), or every tenant.
func (f *fleet) result(cancelled bool) FleetResult {
	if !f.summary {
		return FleetResult{Name: f.in.Name, Cancelled: cancelled, Tenants: f.st.Tenants, Events: f.st.Events}
	}
	r := summarize(f.in.Name, cancelled, f.st.Tenants, f.st.Events)
	r.EventsOmitted += f.st.EventsOmitted
	return r
}

// summarize counts the tenants by outcome and keeps the failed ones and the last events,
// within the bounds of MaxResultFailed and MaxResultEvents.
func summarize(name string, cancelled bool, tenants []FleetTenant, events []string) FleetResult {
	r := FleetResult{Name: name, Cancelled: cancelled, Total: len(tenants), Outcomes: map[Outcome]int{}}
	for _, t := range tenants {
		o := t.Outcome
		if t.State != TenantFinished {
			o = Outcome(t.State)
		}
		r.Outcomes[o]++
		if t.Outcome != OutcomeFailed {
			continue
		}
		if len(r.Failed) >= MaxResultFailed {
			r.FailedOmitted++
			continue
		}
		t.Error = cut(t.Error, maxResultError)
		r.Failed = append(r.Failed, t)
	}
	if n := len(events) - MaxResultEvents; n > 0 {
		r.EventsOmitted, events = n, events[n:]
	}
	for _, e := range events {
		r.Events = append(r.Events, cut(e, maxResultError+100))
	}
	return r
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func (f *fleet) load() error {
	if len(f.in.Waves) == 0 {
		return errors.New("a fleet needs at least one wave")
	}
	if err := unpack(f.in.Plan, &f.specs); err != nil {
		return fmt.Errorf("read the packed plan: %w", err)
	}
	if len(f.specs) != len(f.in.Waves) {
		return fmt.Errorf("%d waves but tenants for %d", len(f.in.Waves), len(f.specs))
	}
	if len(f.in.Carry) > 0 {
		if err := unpack(f.in.Carry, &f.st); err != nil {
			return fmt.Errorf("read the carried state: %w", err)
		}
		if err := f.expandCarry(); err != nil {
			return fmt.Errorf("read the carried state: %w", err)
		}
	} else {
		for w, ts := range f.specs {
			for _, t := range ts {
				f.st.Tenants = append(f.st.Tenants, FleetTenant{WorkflowID: t.UpgradeWorkflowID(), TenantID: t.TenantID, Name: t.DisplayName, Wave: w, State: TenantPending})
			}
		}
		f.st.Phase = phaseWave
		f.st.Approved = make([]bool, len(f.in.Waves))
		f.st.ForgivenFor = make([]int, len(f.in.Waves))
	}
	if len(f.st.Tenants) != f.planSize() {
		return fmt.Errorf("the carried state has %d tenants but the plan %d", len(f.st.Tenants), f.planSize())
	}
	for i := range f.st.Tenants {
		t := &f.st.Tenants[i]
		if t.WorkflowID == "" { // a slim carried state: the plan says who the tenant is
			s := f.specOf(i)
			t.WorkflowID, t.TenantID, t.Name = s.UpgradeWorkflowID(), s.TenantID, s.DisplayName
		}
		f.index[t.WorkflowID] = i
	}
	return nil
}

func (f *fleet) planSize() int {
	n := 0
	for _, ts := range f.specs {
		n += len(ts)
	}
	return n
}

// step moves the fleet forward as far as it can without waiting; true when the fleet is done.
func (f *fleet) step(ctx workflow.Context) bool {
	for {
		if f.st.Wave >= len(f.in.Waves) {
			f.st.Phase = phaseDone
			return true
		}
		w := f.st.Wave
		wave := f.in.Waves[w]
		switch f.st.Phase {
		case phaseWave:
			f.checkBudget(ctx, w)
			if !f.st.Paused && f.st.Halted == "" {
				f.launch(ctx, w)
			}
			if !f.waveDone(w) {
				return false
			}
			f.event(ctx, fmt.Sprintf("wave %s finished", wave.Name))
			f.st.Phase = phaseBake
			f.st.BakeUntil = workflow.Now(ctx).Add(wave.BakeTime)
		case phaseBake:
			if workflow.Now(ctx).Before(f.st.BakeUntil) {
				return false
			}
			f.st.Phase = phaseApproval
		case phaseApproval:
			if wave.Approval && !f.st.Approved[w] && w+1 < len(f.in.Waves) {
				if !f.st.AskedApproval {
					f.st.AskedApproval = true
					f.event(ctx, fmt.Sprintf("wave %s awaits approval: starter fleet approve %s %s --by <you> --why <reason>", wave.Name, f.in.Name, wave.Name))
				}
				return false
			}
			f.st.AskedApproval = false
			f.st.Wave++
			f.st.Phase = phaseWave
		}
	}
}

func (f *fleet) waveDone(w int) bool {
	for _, t := range f.st.Tenants {
		if t.Wave == w && t.State != TenantFinished {
			return false
		}
	}
	return true
}

// holdsSlot says whether a running tenant counts against its wave's concurrency.
func (f *fleet) holdsSlot(t FleetTenant) bool {
	if t.State != TenantRunning {
		return false
	}
	if f.windowWaitsFree && t.Stage == StageDowntimeWindow && (t.WaitingOn == "" || t.WaitingOn == Nobody) {
		return false // waiting for its window: no machine work to do
	}
	if f.in.HumanWaitsHoldSlots {
		return true
	}
	return t.WaitingOn == "" || t.WaitingOn == Nobody
}

func (f *fleet) launch(ctx workflow.Context, w int) {
	f.full = false
	if f.startsBatched && f.continueDue(ctx) {
		// No new start: once the pending ones settle, this run continues as new. (Starting
		// as slots free up, a run would never find its starts all settled.)
		return
	}
	limit := f.in.Waves[w].Concurrency
	if limit <= 0 {
		limit = 10
	}
	busy := 0
	for _, t := range f.st.Tenants {
		if t.Wave == w && f.holdsSlot(t) {
			busy++
		}
	}
	for pos := range f.st.Tenants {
		if busy >= limit || (f.startsBatched && len(f.starts) >= startBatch) {
			return
		}
		t := &f.st.Tenants[pos]
		if t.Wave != w || t.State != TenantPending {
			continue
		}
		if f.startsBatched && f.runningChildren() >= f.maxRunChildren() {
			f.full = true
			return
		}
		f.startChild(ctx, pos)
		busy++
	}
}

// unbounded says whether wave w's concurrency covers all its tenants: launching never waits
// for a slot there, so its tenants need not report slot changes.
func (f *fleet) unbounded(w int) bool {
	return f.in.Waves[w].Concurrency >= len(f.specs[w])
}

func (f *fleet) specOf(pos int) spec.Tenant {
	t := f.st.Tenants[pos]
	n := 0
	for w := 0; w < t.Wave; w++ {
		n += len(f.specs[w])
	}
	return f.specs[t.Wave][pos-n]
}

func (f *fleet) startChild(ctx workflow.Context, pos int) {
	t := &f.st.Tenants[pos]
	s := f.specOf(pos)
	wave := f.in.Waves[t.Wave].Name
	now := workflow.Now(ctx)
	t.State, t.Stage, t.WaitingOn, t.Since = TenantRunning, StageValidate, Nobody, now
	t.Starts++
	var priority temporal.Priority // older runs: inherited from the fleet
	if f.tenantPriority {
		priority = temporal.Priority{PriorityKey: TenantPriorityKey}
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: t.WorkflowID,
		Priority:   priority,
		// Children outlive this run (continue-as-new) and report back by signal.
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		StaticSummary:         fmt.Sprintf("Upgrade %s (%s) to Work 365 %s — fleet %s, wave %s", s.DisplayName, s.TenantID, s.TargetVersion, f.in.Name, wave),
		StaticDetails:         StaticDetails(s),
		TypedSearchAttributes: temporal.NewSearchAttributes(searchattr.TenantID.ValueSet(s.TenantID), searchattr.TenantName.ValueSet(s.DisplayName), searchattr.Fleet.ValueSet(f.in.Name), searchattr.Wave.ValueSet(wave), searchattr.Stage.ValueSet(string(StageValidate)), searchattr.WaitingOn.ValueSet(string(Nobody))),
		WaitForCancellation:   true, // a cancelled child runs its cleanup (unfreeze) before the fleet counts it cancelled
	})
	f.events += 4
	child := workflow.ExecuteChildWorkflow(cctx, TenantUpgrade, Input{Tenant: s, Config: f.in.Config, Fleet: f.in.Name, Wave: wave, ReportTo: f.id,
		LeanReports: f.leanReports, NoSlotReports: f.leanReports && f.unbounded(t.Wave)})
	f.starts = append(f.starts, pendingStart{pos: pos, future: child.GetChildWorkflowExecution()})
	f.ownChildren = append(f.ownChildren, pos)
	if f.childEnds {
		f.ends.children[pos] = true
		f.ends.pending = append(f.ends.pending, childFuture{pos: pos, future: child})
		f.ends.added.SendAsync(true)
	}
}

// childFuture is a child of this run whose end the fleet waits for.
type childFuture struct {
	pos    int
	future workflow.ChildWorkflowFuture
}

// collectEnds takes the end of every child of this run that closed.
func (f *fleet) collectEnds(ctx workflow.Context) {
	if !f.childEnds {
		return
	}
	keep := f.ends.pending[:0]
	for _, c := range f.ends.pending {
		if !c.future.IsReady() {
			keep = append(keep, c)
			continue
		}
		start := c.future.GetChildWorkflowExecution()
		if !start.IsReady() || start.Get(ctx, nil) != nil {
			continue // not started: started() says why
		}
		var r Result
		err := c.future.Get(ctx, &r)
		f.childEnded(ctx, c.pos, r, err)
	}
	clear(f.ends.pending[len(keep):])
	f.ends.pending = keep
}

// watchEnds waits for the ends of this run's children and wakes the fleet when one closed.
// One coroutine selecting over the futures, woken only by child starts and ends, costs far
// less than a coroutine per child or the futures in the fleet's selector, which wakes on
// every progress signal.
func (f *fleet) watchEnds(ctx workflow.Context) {
	for {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(f.ends.added, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		for _, c := range f.ends.pending {
			sel.AddFuture(c.future, func(workflow.Future) {})
		}
		sel.Select(ctx)
		before := len(f.ends.pending)
		f.collectEnds(ctx)
		if len(f.ends.pending) < before {
			f.poke.SendAsync(true)
		}
	}
}

// childEnded takes a tenant's end from its child workflow's result.
func (f *fleet) childEnded(ctx workflow.Context, pos int, r Result, err error) {
	t := &f.st.Tenants[pos]
	if t.State == TenantFinished {
		return
	}
	outcome, msg := r.Outcome, r.Error
	var cancelled *temporal.CanceledError
	switch {
	case err == nil && outcome == "":
		outcome, msg = OutcomeFailed, "its result names no outcome"
	case err == nil:
	case errors.As(err, &cancelled):
		outcome, msg = OutcomeCancelled, "cancelled"
	default:
		outcome, msg = OutcomeFailed, err.Error()
	}
	if r.FromVersion != "" {
		t.FromVersion = r.FromVersion
	}
	f.finish(ctx, t, outcome, msg)
}

// finish records a tenant's end.
func (f *fleet) finish(ctx workflow.Context, t *FleetTenant, outcome Outcome, msg string) {
	t.State, t.Outcome, t.Error = TenantFinished, outcome, msg
	t.WaitingOn = Nobody
	if outcome == OutcomeFailed {
		full := fmt.Sprintf("tenant %s failed: %s", t.Name, msg)
		if f.asItGoes {
			f.eventShort(ctx, fmt.Sprintf("tenant %s failed: %s", t.Name, cut(msg, maxFailedEvent)), full)
		} else {
			f.event(ctx, full)
		}
	}
}

// hint queues a check of a tenant whose end was signalled: the signal itself changes nothing.
// A child of this run is checked only at a periodic check at least endHintGrace later, if
// its future has not told its end by then (a genuine signal comes a moment before the
// child closes).
func (f *fleet) hint(ctx workflow.Context, pos int) {
	if f.st.Tenants[pos].State != TenantRunning {
		return
	}
	f.ends.hinted[pos] = true
	if !f.ends.children[pos] {
		f.queueCheck(pos)
		return
	}
	now := workflow.Now(ctx)
	f.ends.hintedAt[pos] = now
	if f.ends.next.Before(now.Add(endHintGrace)) {
		f.ends.next = now.Add(endHintGrace)
	}
}

func (f *fleet) queueCheck(pos int) {
	if f.ends.queued[pos] {
		return
	}
	f.ends.queued[pos] = true
	f.ends.queue = append(f.ends.queue, pos)
}

// checkEnds queues the periodic check of running tenants this run has no future for, and
// starts check activities for what is queued.
func (f *fleet) checkEnds(ctx workflow.Context) {
	if !f.childEnds {
		return
	}
	if now := workflow.Now(ctx); !now.Before(f.ends.next) {
		f.ends.next = now.Add(endCheckEvery)
		n, total := 0, len(f.st.Tenants)
		for i := 0; i < total && n < endCheckSweep; i++ {
			pos := (f.ends.cursor + i) % total
			if f.st.Tenants[pos].State == TenantRunning && f.st.Tenants[pos].RunID != "" && (!f.ends.children[pos] || f.ends.hinted[pos] && !now.Before(f.ends.hintedAt[pos].Add(endHintGrace))) {
				f.queueCheck(pos)
				n++
				f.ends.cursor = (pos + 1) % total
			}
		}
	}
	for len(f.ends.queue) > 0 && f.ends.inFlight < endChecksInFlight {
		batch := f.ends.queue[:min(endCheckBatch, len(f.ends.queue))]
		f.ends.queue = f.ends.queue[len(batch):]
		var runs []activities.TenantRun
		for _, pos := range batch {
			t := f.st.Tenants[pos]
			runs = append(runs, activities.TenantRun{WorkflowID: t.WorkflowID, RunID: t.RunID, Hinted: f.ends.hinted[pos]})
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			Summary:                fmt.Sprintf("Read how %d tenant upgrades stand", len(runs)),
			StartToCloseTimeout:    2*time.Minute + activities.HintGrace,
			HeartbeatTimeout:       time.Minute,
			ScheduleToCloseTimeout: 15 * time.Minute,
			RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
		})
		fu := workflow.ExecuteActivity(actx, a.ReadTenantEnds, runs)
		f.ends.inFlight++
		workflow.Go(f.ends.dctx, func(gctx workflow.Context) {
			var ends []activities.TenantEnd
			err := fu.Get(gctx, &ends)
			f.ends.inFlight--
			f.checked(gctx, batch, ends, err)
			f.poke.SendAsync(true)
		})
	}
}

// checked applies what a check read: closed tenants end with their workflow's outcome; a
// hinted tenant still running means the end signal was false, and it is refused.
func (f *fleet) checked(ctx workflow.Context, batch []int, ends []activities.TenantEnd, err error) {
	for _, pos := range batch {
		delete(f.ends.queued, pos)
	}
	if err != nil {
		f.event(ctx, fmt.Sprintf("could not read how %d tenant upgrades stand: %v (the next check tries again)", len(batch), err))
		for _, pos := range batch {
			delete(f.ends.hinted, pos)
		}
		return
	}
	for _, e := range ends {
		pos, ok := f.index[e.WorkflowID]
		if !ok {
			continue
		}
		hinted := f.ends.hinted[pos]
		delete(f.ends.hinted, pos)
		delete(f.ends.hintedAt, pos)
		t := &f.st.Tenants[pos]
		switch {
		case t.State == TenantFinished:
		case e.Closed:
			if e.FromVersion != "" {
				t.FromVersion = e.FromVersion
			}
			f.finish(ctx, t, Outcome(e.Outcome), e.Error)
		case hinted && !f.ends.refused[pos]:
			f.ends.refused[pos] = true
			f.event(ctx, fmt.Sprintf("refused an end signal for tenant %s: its upgrade %s is still running (%s); the fleet takes a tenant's end from its workflow", t.Name, t.WorkflowID, e.Status))
		}
	}
}

func (f *fleet) maxRunChildren() int {
	if f.in.MaxRunChildren > 0 {
		return f.in.MaxRunChildren
	}
	return maxRunChildren
}

// runningChildren counts the tenants this run started that still run.
func (f *fleet) runningChildren() int {
	n := 0
	for _, pos := range f.ownChildren {
		if f.st.Tenants[pos].State == TenantRunning {
			n++
		}
	}
	return n
}

func (f *fleet) started(ctx workflow.Context, p pendingStart) {
	t := &f.st.Tenants[p.pos]
	var we workflow.Execution
	err := p.future.Get(ctx, &we)
	if err == nil {
		t.RunID = we.RunID
	}
	var dup *temporal.ChildWorkflowExecutionAlreadyStartedError
	var dupSvc *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
	case errors.As(err, &dup), errors.As(err, &dupSvc):
		if t.State != TenantFinished {
			t.State, t.Outcome = TenantFinished, OutcomeSkipped
			t.Error = "an upgrade with this ID is already running or done (another fleet or a direct launch): not started twice"
		}
	default:
		if t.State != TenantFinished {
			t.State, t.Outcome, t.Error = TenantFinished, OutcomeFailed, "could not start: "+err.Error()
		}
	}
}

func (f *fleet) onProgress(ctx workflow.Context, p TenantProgress, finished bool) {
	f.events++
	pos, ok := f.index[p.WorkflowID]
	if !ok {
		return
	}
	t := &f.st.Tenants[pos]
	if t.State == TenantFinished {
		return
	}
	if finished && f.childEnds {
		f.hint(ctx, pos) // only a hint: the tenant's workflow says whether and how it ended
		return
	}
	if p.Stage != "" {
		t.Stage = p.Stage
	}
	t.WaitingOn, t.Since, t.Fault = p.WaitingOn, p.Since, p.Fault
	if p.Fault != "" {
		f.checkFaults(ctx, p.Fault)
	}
	if p.FromVersion != "" {
		t.FromVersion = p.FromVersion
	}
	if finished {
		f.finish(ctx, t, p.Outcome, p.Error)
	}
}

// checkBudget halts launching when the wave's failures pass its budget.
// checkFaults halts launching when several tenants wait on the same orchestrator fault: it is
// the orchestrator's own credential, and every new tenant would only wait on it too.
func (f *fleet) checkFaults(ctx workflow.Context, code string) {
	limit := f.in.HaltAfterOrchestratorFaults
	if limit <= 0 {
		limit = 3
	}
	n := 0
	for _, t := range f.st.Tenants {
		if t.State == TenantRunning && t.Fault == code {
			n++
		}
	}
	if n < limit || f.st.Halted != "" {
		return
	}
	f.st.Halted = fmt.Sprintf("%d tenants wait on the orchestrator's own sign-in (%s): fix the worker's credential, then resume", n, code)
	f.event(ctx, "halted: "+f.st.Halted)
}

func (f *fleet) checkBudget(ctx workflow.Context, w int) {
	if f.st.Halted != "" {
		return
	}
	wave := f.in.Waves[w]
	failed := 0
	for _, t := range f.st.Tenants {
		if t.Wave == w && t.Outcome == OutcomeFailed {
			failed++
		}
	}
	counted := failed - f.st.ForgivenFor[w]
	switch {
	case wave.MaxFailures != nil && counted > *wave.MaxFailures:
		f.st.Halted = fmt.Sprintf("wave %s: %d tenants failed, more than the budget of %d", wave.Name, counted, *wave.MaxFailures)
	case wave.MaxFailurePercent != nil && wave.Size > 0 && float64(counted)*100/float64(wave.Size) > *wave.MaxFailurePercent:
		f.st.Halted = fmt.Sprintf("wave %s: %d of %d tenants failed (%.0f%%), more than the budget of %.0f%%", wave.Name, counted, wave.Size,
			math.Round(float64(counted)*100/float64(wave.Size)), *wave.MaxFailurePercent)
	default:
		return
	}
	f.event(ctx, "halted: "+f.st.Halted+"; review the failed tenants, then resume or cancel the fleet")
}

// drain processes every signal already received, without blocking.
func (f *fleet) drain(ctx workflow.Context) {
	for {
		var p TenantProgress
		switch {
		case f.doneCh.ReceiveAsync(&p):
			f.onProgress(ctx, p, true)
		case f.progCh.ReceiveAsync(&p):
			f.onProgress(ctx, p, false)
		case f.poke.ReceiveAsync(nil):
		default:
			return
		}
	}
}

// signalSelector is a selector over the tenants' progress and end signals.
func (f *fleet) signalSelector(ctx workflow.Context) workflow.Selector {
	sel := workflow.NewSelector(ctx)
	for _, c := range []struct {
		ch       workflow.ReceiveChannel
		finished bool
	}{{f.doneCh, true}, {f.progCh, false}} {
		finished := c.finished
		sel.AddReceive(c.ch, func(ch workflow.ReceiveChannel, _ bool) {
			var p TenantProgress
			ch.Receive(ctx, &p)
			f.onProgress(ctx, p, finished)
		})
	}
	return sel
}

// wait blocks until something may let the fleet move: a signal, an operator action, a child
// start, or the end of a bake.
func (f *fleet) wait(ctx workflow.Context) {
	sel := f.signalSelector(ctx)
	sel.AddReceive(f.poke, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
	starts := f.starts
	f.starts = nil
	for _, p := range starts {
		p := p
		sel.AddFuture(p.future, func(workflow.Future) { f.started(ctx, p) })
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	f.addCheckTimer(ctx, sel)
	if f.st.Phase == phaseBake {
		d := f.st.BakeUntil.Sub(workflow.Now(ctx))
		sel.AddFuture(workflow.NewTimerWithOptions(tctx, d, workflow.TimerOptions{Summary: "Bake time after wave " + f.in.Waves[f.st.Wave].Name}), func(workflow.Future) {})
	}
	sel.Select(ctx)
	// Keep the child starts that did not resolve in this round.
	for _, p := range starts {
		if !p.future.IsReady() {
			f.starts = append(f.starts, p)
		} else if f.st.Tenants[p.pos].State == TenantRunning {
			f.started(ctx, p)
		}
	}
	f.collectEnds(ctx)
}

// addCheckTimer wakes the fleet for its periodic check while tenants of an earlier run run
// or a child of this run was said to have ended;
// the timer lives across rounds (a timer per round would double the history).
func (f *fleet) addCheckTimer(ctx workflow.Context, sel workflow.Selector) {
	if !f.childEnds {
		return
	}
	if f.ends.timer == nil {
		inherited := false
		for pos, t := range f.st.Tenants {
			if t.State == TenantRunning && (!f.ends.children[pos] || f.ends.hinted[pos]) {
				inherited = true
				break
			}
		}
		if !inherited {
			return
		}
		f.ends.timer = workflow.NewTimerWithOptions(f.ends.dctx, max(f.ends.next.Sub(workflow.Now(ctx)), time.Second), workflow.TimerOptions{Summary: "Check tenants started by an earlier run"})
	}
	sel.AddFuture(f.ends.timer, func(workflow.Future) { f.ends.timer = nil })
}

func (f *fleet) shouldContinue(ctx workflow.Context) bool {
	if len(f.starts) > 0 {
		return false // every child start must be settled before this run ends
	}
	if f.childEnds && f.ends.inFlight > 0 {
		return false // a check's answer must not be lost
	}
	return f.continueDue(ctx)
}

// continueDue says whether this run should continue as new once its child starts settle.
func (f *fleet) continueDue(ctx workflow.Context) bool {
	if f.full {
		return true
	}
	info := workflow.GetInfo(ctx)
	if f.in.ContinueAfterEvents > 0 {
		return max(info.GetCurrentHistoryLength(), f.events) >= f.in.ContinueAfterEvents
	}
	return info.GetContinueAsNewSuggested()
}

func (f *fleet) continueAsNew(ctx workflow.Context) error {
	if f.asItGoes {
		f.reportFinished(ctx)
	}
	// Nothing may be lost: process every received signal and let handlers finish first.
	f.drain(ctx)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	f.drain(ctx)
	f.collectEnds(ctx) // children that closed in this run: the next run has no future for them
	next := f.in
	st := f.st
	if f.childEnds {
		// Ends signalled but not yet taken (the checks in flight have settled): a queued
		// check, or a child of this run that signalled its end and will close after this
		// run (its close then reaches no one, and the signal was this run's). The next run
		// checks them first.
		st.Recheck = nil
		for pos, t := range f.st.Tenants {
			if t.State == TenantRunning && (f.ends.queued[pos] || f.ends.hinted[pos]) {
				st.Recheck = append(st.Recheck, pos)
			}
		}
	}
	if f.asItGoes {
		f.compactCarry(&st)
		if n := len(st.Events) - maxCarriedEvents; n > 0 {
			st.Events, st.EventsOmitted = st.Events[n:], st.EventsOmitted+n
		}
	} else if f.summary {
		// The plan says who each tenant is; the carried state keeps only what changes.
		st.Tenants = make([]FleetTenant, len(f.st.Tenants))
		for i, t := range f.st.Tenants {
			t.WorkflowID, t.TenantID, t.Name = "", "", ""
			st.Tenants[i] = t
		}
	}
	carry, err := pack(st)
	if err != nil {
		return err
	}
	next.Carry = carry
	return workflow.NewContinueAsNewError(ctx, FleetUpgrade, next)
}

// cancelAll cancels every running tenant (each unfreezes in its cleanup) and waits for them
// to report their end.
func (f *fleet) cancelAll(ctx workflow.Context) (FleetResult, error) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	for len(f.starts) > 0 {
		f.wait(dctx)
	}
	var futures []workflow.Future
	requested := 0
	for i := range f.st.Tenants {
		t := &f.st.Tenants[i]
		switch t.State {
		case TenantPending:
			t.State, t.Outcome, t.Error = TenantFinished, OutcomeCancelled, "not started: the fleet was cancelled"
		case TenantRunning:
			futures = append(futures, workflow.RequestCancelExternalWorkflow(dctx, t.WorkflowID, ""))
			requested++
			if f.summary && len(futures) >= cancelBatch {
				// Wait for this batch: the next one goes out in a later workflow task.
				for _, fu := range futures {
					_ = fu.Get(dctx, nil)
				}
				futures = nil
			}
		}
	}
	for _, fu := range futures {
		_ = fu.Get(dctx, nil) // a tenant that just ended cannot be cancelled; its end signal comes anyway
	}
	f.event(dctx, fmt.Sprintf("cancel requested for %d running tenants", requested))
	deadline := workflow.Now(dctx).Add(time.Hour)
	var timeout workflow.Future
	for f.running() > 0 && workflow.Now(dctx).Before(deadline) {
		f.publish(dctx)
		sel := f.signalSelector(dctx)
		if f.childEnds {
			// One deadline timer, and the ends of children and checks wake the loop too.
			f.checkEnds(dctx)
			f.addCheckTimer(dctx, sel)
			sel.AddReceive(f.poke, func(c workflow.ReceiveChannel, _ bool) { c.Receive(dctx, nil) })
			if timeout == nil {
				timeout = workflow.NewTimer(dctx, deadline.Sub(workflow.Now(dctx)))
			}
			sel.AddFuture(timeout, func(workflow.Future) {})
		} else {
			sel.AddFuture(workflow.NewTimer(dctx, deadline.Sub(workflow.Now(dctx))), func(workflow.Future) {})
		}
		sel.Select(dctx)
		f.collectEnds(dctx)
	}
	f.publish(dctx)
	return f.end(dctx, f.result(true)), nil
}

func (f *fleet) running() int {
	n := 0
	for _, t := range f.st.Tenants {
		if t.State == TenantRunning {
			n++
		}
	}
	return n
}

// event records a fleet event and notifies operators; the notification is not waited for, so
// a slow channel never holds the fleet back (its key keeps retries from sending twice).
func (f *fleet) event(ctx workflow.Context, msg string) {
	f.eventShort(ctx, msg, msg)
}

// eventShort records short and notifies operators of msg.
func (f *fleet) eventShort(ctx workflow.Context, short, msg string) {
	f.st.Events = append(f.st.Events, workflow.Now(ctx).UTC().Format(time.RFC3339)+" "+short)
	workflow.GetLogger(ctx).Info("fleet event", "fleet", f.in.Name, "event", msg)
	workflow.ExecuteActivity(notifyOpts(ctx), a.Notify, activities.Notification{
		Key: fmt.Sprintf("%s/event/%d", f.id, f.st.EventsOmitted+len(f.st.Events)), Event: activities.EventFleet, At: workflow.Now(ctx),
		WorkflowID: f.id, Fleet: f.in.Name, Audience: string(Operator), Title: "Fleet " + f.in.Name, Message: msg,
	})
}

func (f *fleet) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (FleetProgress, error) { return f.progress(ctx), nil }); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryFleetTenants, func() ([]FleetTenant, error) { return f.st.Tenants, nil }); err != nil {
		return err
	}
	needBy := func(by string) error {
		if strings.TrimSpace(by) == "" {
			return errors.New("by is required: say who acts")
		}
		return nil
	}
	type handler struct {
		name     string
		validate func(OperatorRequest) error
		apply    func(workflow.Context, OperatorRequest)
	}
	handlers := []handler{
		{UpdatePauseFleet, func(r OperatorRequest) error {
			if f.st.Paused {
				return errors.New("the fleet is already paused")
			}
			return nil
		}, func(ctx workflow.Context, r OperatorRequest) {
			f.st.Paused = true
			f.event(ctx, "paused by "+r.By+noteSuffix(r.Note))
		}},
		{UpdateResumeFleet, func(r OperatorRequest) error {
			if !f.st.Paused && f.st.Halted == "" {
				return errors.New("the fleet is neither paused nor halted")
			}
			return nil
		}, func(ctx workflow.Context, r OperatorRequest) {
			if f.st.Halted != "" && f.st.Wave < len(f.in.Waves) {
				failed := 0
				for _, t := range f.st.Tenants {
					if t.Wave == f.st.Wave && t.Outcome == OutcomeFailed {
						failed++
					}
				}
				f.st.ForgivenFor[f.st.Wave] = failed
			}
			f.st.Paused, f.st.Halted = false, ""
			f.event(ctx, "resumed by "+r.By+noteSuffix(r.Note))
		}},
		{UpdateCancelFleet, func(r OperatorRequest) error {
			if f.st.Cancelled {
				return errors.New("the fleet is already being cancelled")
			}
			return nil
		}, func(ctx workflow.Context, r OperatorRequest) {
			f.st.Cancelled = true
			f.event(ctx, "cancelled by "+r.By+noteSuffix(r.Note))
		}},
	}
	for _, h := range handlers {
		h := h
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, func(ctx workflow.Context, r OperatorRequest) error {
			h.apply(ctx, r)
			f.poke.SendAsync(true)
			return nil
		}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r OperatorRequest) error {
			if err := needBy(r.By); err != nil {
				return err
			}
			if err := r.CheckText(); err != nil {
				return err
			}
			return h.validate(r)
		}}); err != nil {
			return err
		}
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateApproveWave, func(ctx workflow.Context, a WaveApproval) error {
		for i, w := range f.in.Waves {
			if w.Name == a.Wave {
				f.st.Approved[i] = true
			}
		}
		f.event(ctx, fmt.Sprintf("wave %s approved by %s: %s", a.Wave, a.By, a.Why))
		f.poke.SendAsync(true)
		return nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, a WaveApproval) error {
		if err := needBy(a.By); err != nil {
			return err
		}
		if err := a.CheckText(); err != nil {
			return err
		}
		if strings.TrimSpace(a.Why) == "" {
			return errors.New("why is required: say why the next wave may start")
		}
		for i, w := range f.in.Waves {
			if w.Name == a.Wave {
				switch {
				case !w.Approval:
					return fmt.Errorf("wave %s has no approval gate", a.Wave)
				case f.st.Approved[i]:
					return fmt.Errorf("wave %s is already approved", a.Wave)
				}
				return nil
			}
		}
		return fmt.Errorf("no wave named %q", a.Wave)
	}})
}

func (f *fleet) progress(ctx workflow.Context) FleetProgress {
	p := FleetProgress{Name: f.in.Name, Phase: f.st.Phase, Paused: f.st.Paused, Halted: f.st.Halted, Events: f.st.Events, EventsOmitted: f.st.EventsOmitted, Runs: f.st.Runs}
	if f.st.Wave < len(f.in.Waves) {
		p.Wave = f.in.Waves[f.st.Wave].Name
	}
	if f.st.Phase == phaseBake {
		p.BakeUntil = f.st.BakeUntil
	}
	stuckAfter := f.in.StuckAfter
	if stuckAfter <= 0 {
		stuckAfter = 2 * time.Hour
	}
	now := workflow.Now(ctx)
	for _, w := range f.in.Waves {
		p.Waves = append(p.Waves, WaveProgress{Name: w.Name, Size: w.Size, ByStage: map[string]int{}, ByOutcome: map[string]int{}})
	}
	for _, t := range f.st.Tenants {
		wp := &p.Waves[t.Wave]
		switch t.State {
		case TenantPending:
			wp.Pending++
		case TenantRunning:
			wp.Running++
			wp.ByStage[string(t.Stage)]++
			if f.holdsSlot(t) {
				wp.HoldingSlots++
			}
			// A child of an unbounded wave reports no stage (NoSlotReports): its start time
			// says nothing of being stuck; visibility does (starter stuck).
			if now.Sub(t.Since) > stuckAfter && !(f.leanReports && f.unbounded(t.Wave)) {
				p.Stuck = append(p.Stuck, t)
			}
		case TenantFinished:
			wp.Finished++
			wp.ByOutcome[string(t.Outcome)]++
			if t.Outcome == OutcomeFailed {
				p.Failed = append(p.Failed, t)
			}
		}
	}
	return p
}

// publish shows the fleet's phase in the Web UI.
func (f *fleet) publish(ctx workflow.Context) {
	p := f.progress(ctx)
	var b strings.Builder
	fmt.Fprintf(&b, "**Fleet %s** — %s", f.in.Name, p.Phase)
	if p.Wave != "" {
		fmt.Fprintf(&b, " (wave %s)", p.Wave)
	}
	b.WriteString("\n\n| wave | pending | running | finished |\n|---|---|---|---|\n")
	for _, w := range p.Waves {
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", w.Name, w.Pending, w.Running, w.Finished)
	}
	switch {
	case p.Halted != "":
		fmt.Fprintf(&b, "\n**Halted:** %s. Next: `starter fleet resume %s --by <you> --note <why>` or `starter fleet cancel %s`.\n", p.Halted, f.id, f.id)
	case p.Paused:
		fmt.Fprintf(&b, "\n**Paused.** Next: `starter fleet resume %s --by <you>`.\n", f.id)
	case p.Phase == phaseApproval:
		fmt.Fprintf(&b, "\n**Waiting for approval** of wave %s. Next: `starter fleet approve %s %s --by <you> --why <reason>`.\n", p.Wave, f.id, p.Wave)
	}
	if d := b.String(); d != f.details {
		f.details = d
		workflow.SetCurrentDetails(ctx, d)
	}
}
