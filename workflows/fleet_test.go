package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

const fleetID = "fleet/test"

// childPlan says how a fake tenant upgrade behaves.
type childPlan struct {
	dur        time.Duration
	humanWait  time.Duration
	windowWait time.Duration // waiting for its downtime window, before any machine work
	faultWait  time.Duration // waiting on an orchestrator fault (the worker's own credential)
	outcome    Outcome
	err        string // the error of a failed outcome
	silent     bool   // never sends its end signal
	// closeAfter, when set, is how long the workflow runs on after its end signal before it
	// closes (its outcome known to Temporal only then): the race of the end lost at
	// continue-as-new.
	closeAfter time.Duration
}

type fleetFixture struct {
	t *testing.T
	// patient raises the deadlock detector's limit (see newEnv).
	patient bool
	suite   testsuite.WorkflowTestSuite
	env     *testsuite.TestWorkflowEnvironment
	plans   map[string]childPlan

	mu        sync.Mutex
	starts    map[string]int
	startedAt map[string]time.Time
	endedAt   map[string]time.Time
	cancelled map[string]bool
	machine   map[int]int // wave → tenants doing machine work now
	maxBusy   map[int]int
	waveOf    map[string]int
	notified  []activities.Notification
	// reports is where the fleet's final report goes; reportInputs are the encoded sizes of
	// the report activities' inputs.
	reports      memReports
	reportInputs []int
	// store, when set, is the report store instead of reports; noStore leaves the worker
	// without one; partWrite, when set, runs before each part write and may fail it.
	store     activities.ReportStore
	noStore   bool
	partWrite func(activities.FleetReportPart) error
	// outcomes are the ends of the children as Temporal knows them (ReadTenantEnds reads them).
	outcomes map[string]Outcome
	checked  []activities.TenantRun
	// ran is each child's plan as it ran (by workflow ID), runIDs its run ID as the fleet
	// knows it.
	ran    map[string]childPlan
	runIDs map[string]string
	// inputs are the children's inputs, by workflow ID.
	inputs map[string]Input
}

// memReports is a report store in memory.
type memReports map[string][]byte

func (m memReports) Put(_ context.Context, name string, data []byte) (string, error) {
	m[name] = data
	return "mem://" + name, nil
}

func (m memReports) Get(_ context.Context, name string) ([]byte, error) {
	d, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("%s: not found", name)
	}
	return d, nil
}

func (m memReports) Delete(_ context.Context, name string) error {
	delete(m, name)
	return nil
}

func newFleetFixture(t *testing.T) *fleetFixture {
	fx := &fleetFixture{t: t, plans: map[string]childPlan{}, starts: map[string]int{}, startedAt: map[string]time.Time{},
		endedAt: map[string]time.Time{}, cancelled: map[string]bool{}, machine: map[int]int{}, maxBusy: map[int]int{}, waveOf: map[string]int{}, reports: memReports{}, outcomes: map[string]Outcome{},
		ran: map[string]childPlan{}, runIDs: map[string]string{}, inputs: map[string]Input{}}
	fx.newEnv()
	return fx
}

func (fx *fleetFixture) newEnv() {
	fx.suite.SetLogger(quietLogger())
	fx.env = fx.suite.NewTestWorkflowEnvironment()
	fx.env.SetStartTime(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	fx.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: fleetID})
	fx.env.RegisterWorkflow(FleetUpgrade)
	fx.env.RegisterWorkflowWithOptions(fx.fakeUpgrade, workflow.RegisterOptions{Name: TenantUpgradeWorkflow})
	fx.env.RegisterActivity(&activities.Activities{})
	fx.env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		fx.mu.Lock()
		fx.notified = append(fx.notified, n)
		fx.mu.Unlock()
		return nil
	})
	writer := &activities.Activities{Reports: fx.reports}
	if fx.store != nil {
		writer.Reports = fx.store
	}
	if fx.noStore {
		writer.Reports = nil
	}
	fx.env.OnActivity(a.WriteFleetReportPart, mock.Anything, mock.Anything).Return(func(ctx context.Context, p activities.FleetReportPart) (activities.FleetReportWritten, error) {
		fx.reportInput(p)
		w, err := writer.WriteFleetReportPart(ctx, p)
		if err == nil && fx.partWrite != nil {
			err = fx.partWrite(p)
		}
		return w, err
	})
	fx.env.OnActivity(a.WriteFleetReport, mock.Anything, mock.Anything).Return(func(ctx context.Context, r activities.FleetReport) (activities.FleetReportWritten, error) {
		fx.reportInput(r)
		return writer.WriteFleetReport(ctx, r)
	})
	fx.env.OnActivity(a.ReadTenantEnds, mock.Anything, mock.Anything).Return(func(_ context.Context, runs []activities.TenantRun) ([]activities.TenantEnd, error) {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		var out []activities.TenantEnd
		for _, r := range runs {
			fx.checked = append(fx.checked, r)
			e := activities.TenantEnd{WorkflowID: r.WorkflowID, RunID: r.RunID, Status: "Running"}
			if o, ok := fx.outcomes[r.WorkflowID]; ok {
				e.Closed, e.Status, e.Outcome, e.Error = true, "Completed", string(o), fx.ran[r.WorkflowID].err
			}
			out = append(out, e)
		}
		return out, nil
	})
	fx.env.SetTestTimeout(2 * time.Minute)
	if fx.patient {
		// The deadlock detector measures real time: on a loaded 2-core CI machine the test
		// environment's tasks of a 5,000-tenant fleet can pass its 1 s default. What such a
		// test measures is payloads and continue-as-new, not task time (the benchmark does).
		fx.env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: 20 * time.Second})
	}
}

func (fx *fleetFixture) reportInput(v any) {
	n, err := encodedSize(v)
	require.NoError(fx.t, err)
	fx.mu.Lock()
	fx.reportInputs = append(fx.reportInputs, n)
	fx.mu.Unlock()
}

// report is the fleet's final report as written.
func (fx *fleetFixture) report() activities.FleetReport {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var r activities.FleetReport
	for name, data := range fx.reports {
		if strings.HasSuffix(name, ".json") {
			require.NoError(fx.t, json.Unmarshal(data, &r))
			return r
		}
	}
	fx.t.Fatalf("no report written: %v", fx.reports)
	return r
}

// fakeUpgrade stands in for TenantUpgrade: it reports to the fleet as the real one does.
func (fx *fleetFixture) fakeUpgrade(ctx workflow.Context, in Input) (Result, error) {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	fx.mu.Lock()
	fx.starts[id]++
	fx.startedAt[id] = workflow.Now(ctx)
	p := fx.plans[in.Tenant.TenantID]
	wave := fx.waveOf[in.Tenant.TenantID]
	if p.dur == 0 {
		p.dur = time.Hour
	}
	if p.outcome == "" {
		p.outcome = OutcomeUpgraded
	}
	fx.ran[id] = p
	fx.runIDs[id] = workflow.GetInfo(ctx).WorkflowExecution.RunID
	fx.inputs[id] = in
	fx.mu.Unlock()
	busy := func(d int) {
		fx.mu.Lock()
		fx.machine[wave] += d
		if fx.machine[wave] > fx.maxBusy[wave] {
			fx.maxBusy[wave] = fx.machine[wave]
		}
		fx.mu.Unlock()
	}
	report := func(ctx workflow.Context, name string, pr TenantProgress) {
		pr.WorkflowID = id
		pr.Since = workflow.Now(ctx)
		_ = workflow.SignalExternalWorkflow(ctx, in.ReportTo, "", name, pr).Get(ctx, nil)
	}
	if p.windowWait > 0 {
		report(ctx, SignalTenantProgress, TenantProgress{Stage: StageDowntimeWindow, WaitingOn: Nobody})
		_ = workflow.Sleep(ctx, p.windowWait)
	}
	if p.faultWait > 0 {
		report(ctx, SignalTenantProgress, TenantProgress{Stage: StageDiscover, WaitingOn: Operator, Fault: "AADSTS7000222"})
		_ = workflow.Sleep(ctx, p.faultWait)
	}
	busy(1)
	report(ctx, SignalTenantProgress, TenantProgress{Stage: StageImport, WaitingOn: Nobody})
	var err error
	if p.humanWait > 0 {
		busy(-1)
		report(ctx, SignalTenantProgress, TenantProgress{Stage: StageRegistration, WaitingOn: GlobalAdmin})
		err = workflow.Sleep(ctx, p.humanWait)
		busy(1)
		if err == nil {
			report(ctx, SignalTenantProgress, TenantProgress{Stage: StageCompletion, WaitingOn: Nobody})
		}
	}
	if err == nil {
		err = workflow.Sleep(ctx, p.dur)
	}
	busy(-1)
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	fx.mu.Lock()
	fx.endedAt[id] = workflow.Now(ctx)
	fx.mu.Unlock()
	if err != nil {
		fx.mu.Lock()
		fx.cancelled[id] = true
		fx.outcomes[id] = OutcomeCancelled
		fx.mu.Unlock()
		if !p.silent {
			report(dctx, SignalTenantFinished, TenantProgress{Stage: StageDone, Outcome: OutcomeCancelled, Error: "cancelled"})
		}
		return Result{}, err
	}
	if p.closeAfter > 0 {
		if !p.silent {
			report(dctx, SignalTenantFinished, TenantProgress{Stage: StageDone, Outcome: p.outcome, Error: p.err})
		}
		_ = workflow.Sleep(dctx, p.closeAfter)
		fx.mu.Lock()
		fx.endedAt[id] = workflow.Now(ctx)
		fx.outcomes[id] = p.outcome
		fx.mu.Unlock()
		return Result{Outcome: p.outcome, Error: p.err}, nil
	}
	fx.mu.Lock()
	fx.outcomes[id] = p.outcome
	fx.mu.Unlock()
	if !p.silent {
		report(dctx, SignalTenantFinished, TenantProgress{Stage: StageDone, Outcome: p.outcome, Error: p.err})
	}
	return Result{Outcome: p.outcome, Error: p.err}, nil
}

func fleetTenants(wave, n int) []spec.Tenant {
	out := make([]spec.Tenant, n)
	for i := range out {
		t := testTenant()
		t.TenantID = fmt.Sprintf("00000000-0000-0000-%04d-%012d", wave, i)
		t.DisplayName = fmt.Sprintf("w%d-t%d", wave, i)
		out[i] = t
	}
	return out
}

func (fx *fleetFixture) input(waves []WaveSpec, sizes ...int) FleetInput {
	var tenants [][]spec.Tenant
	for w, n := range sizes {
		tenants = append(tenants, fleetTenants(w, n))
	}
	return fx.inputOf(waves, tenants)
}

func (fx *fleetFixture) inputOf(waves []WaveSpec, tenants [][]spec.Tenant) FleetInput {
	in := FleetInput{Name: "test", Waves: waves}
	for w, ts := range tenants {
		for _, t := range ts {
			fx.waveOf[t.TenantID] = w
		}
	}
	require.NoError(fx.t, PackPlan(&in, tenants))
	return in
}

// realisticTenants are n tenants whose IDs, names and accounts vary as real ones do (random
// GUIDs compress far worse than fleetTenants' counters).
func realisticTenants(rnd *rand.Rand, wave, n int) []spec.Tenant {
	out := make([]spec.Tenant, n)
	for i := range out {
		t := testTenant()
		slug := fmt.Sprintf("customer%x%d", rnd.Uint32(), i)
		t.TenantID = fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rnd.Uint32(), rnd.Uint32()&0xffff, rnd.Uint32()&0xffff, rnd.Uint32()&0xffff, rnd.Uint64()&0xffffffffffff)
		t.DisplayName = fmt.Sprintf("Customer %x %d Ltd (wave %d)", rnd.Uint32(), i, wave)
		t.OrgURL = "https://" + slug + ".crm4.dynamics.com"
		t.GlobalAdminUPN = "admin@" + slug + ".onmicrosoft.com"
		t.ServiceAccountUPN = "work365svc@" + slug + ".onmicrosoft.com"
		out[i] = t
	}
	return out
}

// payloadSize is the size of v as Temporal's default data converter sends it.
func payloadSize(t *testing.T, v any) int {
	n, err := encodedSize(v)
	require.NoError(t, err)
	return n
}

// maxPayload is the server's warning size for one payload.
const maxPayload = 512 * 1024

func (fx *fleetFixture) result() FleetResult {
	require.True(fx.t, fx.env.IsWorkflowCompleted())
	require.NoError(fx.t, fx.env.GetWorkflowError())
	var r FleetResult
	require.NoError(fx.t, fx.env.GetWorkflowResult(&r))
	return r
}

func (fx *fleetFixture) operator(name string, arg any, wantErr string) {
	fx.env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, rand.Int()), &testsuite.TestUpdateCallback{
		OnReject: func(err error) {
			if wantErr == "" {
				fx.t.Errorf("%s refused: %v", name, err)
			} else {
				require.ErrorContains(fx.t, err, wantErr)
			}
		},
		OnAccept:   func() {},
		OnComplete: func(any, error) {},
	}, arg)
}

// tenants is every tenant as the fleet tracks it (the tenants query, which a worker answers
// for a finished fleet too).
func (fx *fleetFixture) tenants() []FleetTenant {
	v, err := fx.env.QueryWorkflow(QueryFleetTenants)
	require.NoError(fx.t, err)
	var ts []FleetTenant
	require.NoError(fx.t, v.Get(&ts))
	return ts
}

func (fx *fleetFixture) progress() FleetProgress {
	v, err := fx.env.QueryWorkflow(QueryProgress)
	require.NoError(fx.t, err)
	var p FleetProgress
	require.NoError(fx.t, v.Get(&p))
	return p
}

func (fx *fleetFixture) waveTimes(wave int) (firstStart, lastEnd time.Time) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	for id, at := range fx.startedAt {
		w := -1
		for tid, ww := range fx.waveOf {
			if id == (spec.Tenant{TenantID: tid, TargetVersion: "2.5.0.1"}).UpgradeWorkflowID() {
				w = ww
			}
		}
		if w != wave {
			continue
		}
		if firstStart.IsZero() || at.Before(firstStart) {
			firstStart = at
		}
		if e := fx.endedAt[id]; e.After(lastEnd) {
			lastEnd = e
		}
	}
	return firstStart, lastEnd
}

func TestFleetWavesInOrderWithConcurrency(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "canary", Concurrency: 1}, {Name: "wave-1", Concurrency: 3}, {Name: "wave-2", Concurrency: 4}}, 2, 7, 9)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	r := fx.result()
	require.Equal(t, 18, r.Total)
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: 18}, r.Outcomes)
	require.Empty(t, r.Tenants, "a summary, not every tenant")
	for _, tn := range fx.tenants() {
		require.Equal(t, 1, tn.Starts, tn.Name)
	}
	_, canaryEnd := fx.waveTimes(0)
	w1Start, w1End := fx.waveTimes(1)
	w2Start, _ := fx.waveTimes(2)
	require.False(t, w1Start.Before(canaryEnd), "wave-1 starts after the canary ends")
	require.False(t, w2Start.Before(w1End), "wave-2 starts after wave-1 ends")
	require.Equal(t, map[int]int{0: 1, 1: 3, 2: 4}, fx.maxBusy)
}

// TestFleetStartsAWideWaveInBatches: a wave wider than startBatch still starts every tenant
// once and reaches its whole concurrency, the starts awaited startBatch at a time.
func TestFleetStartsAWideWaveInBatches(t *testing.T) {
	fx := newFleetFixture(t)
	n := 2*startBatch + 50
	in := fx.input([]WaveSpec{{Name: "all", Concurrency: n}}, n)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	r := fx.result()
	require.Equal(t, n, r.Total)
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: n}, r.Outcomes)
	for _, tn := range fx.tenants() {
		require.Equal(t, 1, tn.Starts, tn.Name)
	}
	require.Equal(t, map[int]int{0: n}, fx.maxBusy, "every tenant of the wave ran at once")
}

// runOnce runs one fleet run, the tenants inflight (left running by the run before) reporting
// their end after a minute; it returns the continue-as-new, or nil when the fleet ended.
func (fx *fleetFixture) runOnce(in FleetInput, inflight []string) *workflow.ContinueAsNewError {
	fx.env.RegisterDelayedCallback(func() {
		for _, id := range inflight {
			fx.mu.Lock()
			p := fx.ran[id]
			if p.outcome == "" {
				p.outcome = OutcomeUpgraded
			}
			fx.outcomes[id] = p.outcome
			fx.mu.Unlock()
			fx.env.SignalWorkflow(SignalTenantFinished, TenantProgress{WorkflowID: id, Stage: StageDone, Outcome: p.outcome, Error: p.err})
		}
	}, time.Minute)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	require.True(fx.t, fx.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	if err := fx.env.GetWorkflowError(); !errors.As(err, &can) {
		require.NoError(fx.t, err)
		return nil
	}
	return can
}

// TestFleetContinuesAsNewAtItsChildBound: a wave wider than the run's bound on children (the
// server refuses more than 2,000 pending children per workflow) runs that many, then continues
// as new, and the next run starts the rest; nobody starts twice.
func TestFleetContinuesAsNewAtItsChildBound(t *testing.T) {
	fx := newFleetFixture(t)
	const bound = 60 // the SDK's test environment stalls with ~1,000 running children
	n := bound + 30
	in := fx.input([]WaveSpec{{Name: "all", Concurrency: n}}, n)
	in.MaxRunChildren = bound
	var plan [][]spec.Tenant
	require.NoError(t, unpack(in.Plan, &plan))
	var inflight []string
	runs := 0
	for {
		runs++
		require.Less(t, runs, 5)
		can := fx.runOnce(in, inflight)
		if can == nil {
			break
		}
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
		var st fleetCarry
		require.NoError(t, unpack(in.Carry, &st))
		inflight = nil
		for i, tn := range st.Tenants {
			if tn.State == TenantRunning {
				inflight = append(inflight, plan[0][i].UpgradeWorkflowID())
			}
		}
		if runs == 1 {
			require.Len(t, inflight, bound, "the first run stops starting at its bound")
		}
		fx.newEnv()
	}
	require.Equal(t, 2, runs, "one continue-as-new at the bound")
	r := fx.result()
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: n}, r.Outcomes)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	require.Len(t, fx.starts, n, "every tenant started")
	for id, c := range fx.starts {
		require.Equal(t, 1, c, "%s started %d times", id, c)
	}
}

// TestFleetContinuesAsNewWhileStartingChildren: a run past its event budget stops starting
// children so that its pending starts settle and it continues as new, although slots free up
// all the time (tenants of staggered lengths). Otherwise a run would never continue.
func TestFleetContinuesAsNewWhileStartingChildren(t *testing.T) {
	fx := newFleetFixture(t)
	const n = 200
	in := fx.input([]WaveSpec{{Name: "all", Concurrency: 40}}, n)
	in.ContinueAfterEvents = 300
	var plan [][]spec.Tenant
	require.NoError(t, unpack(in.Plan, &plan))
	for i, tn := range plan[0] {
		fx.plans[tn.TenantID] = childPlan{dur: time.Duration(1+i%7) * time.Minute}
	}
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	require.True(t, fx.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, fx.env.GetWorkflowError(), &can, "the run continued as new before the fleet's end")
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	var st fleetCarry
	require.NoError(t, unpack(in.Carry, &st))
	pending := 0
	for _, tn := range st.Tenants {
		if tn.State == TenantPending {
			pending++
		}
	}
	require.Positive(t, pending, "tenants were left for the next run")
}

func TestFleetApprovalGateAndBakeTime(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "canary", Approval: true, BakeTime: 2 * time.Hour}, {Name: "rest"}}, 1, 2)
	fx.env.RegisterDelayedCallback(func() {
		p := fx.progress()
		require.Equal(t, "baking", p.Phase)
	}, 2*time.Hour)
	fx.env.RegisterDelayedCallback(func() {
		p := fx.progress()
		require.Equal(t, "awaiting-approval", p.Phase)
		require.Equal(t, "canary", p.Wave)
		fx.operator(UpdateApproveWave, WaveApproval{Wave: "canary", By: "lead"}, "why is required")
		fx.operator(UpdateApproveWave, WaveApproval{Wave: "rest", By: "lead", Why: "x"}, "has no approval gate")
		fx.operator(UpdateApproveWave, WaveApproval{Wave: "canary", By: "lead", Why: "canary healthy"}, "")
	}, 10*time.Hour)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	r := fx.result()
	_, canaryEnd := fx.waveTimes(0)
	restStart, _ := fx.waveTimes(1)
	require.Equal(t, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), canaryEnd)
	require.Equal(t, time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC), restStart, "after bake (2h) and the approval at +10h")
	require.True(t, containsText(r.Events, "wave canary approved by lead: canary healthy"))
	var asked []string
	for _, n := range fx.notified {
		if n.Event == activities.EventFleet && strings.Contains(n.Message, "awaits approval") {
			asked = append(asked, n.Key)
		}
	}
	require.Equal(t, []string{fleetID + "/event/2"}, asked, "operators told once that the canary awaits approval")
}

func TestFleetFailureBudgetHaltsAndResumes(t *testing.T) {
	fx := newFleetFixture(t)
	one := 1
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 2, MaxFailures: &one}}, 8)
	for i, tn := range fleetTenants(0, 8) {
		if i < 2 {
			// The second failure comes 10 minutes after the first: the slot the first frees
			// starts the third tenant (one failure is within the budget), the second halts.
			fx.plans[tn.TenantID] = childPlan{outcome: OutcomeFailed, dur: time.Duration(30+10*i) * time.Minute}
		}
	}
	pendingAtHalt := -1
	fx.env.RegisterDelayedCallback(func() { pendingAtHalt = fx.progress().Waves[0].Pending }, 45*time.Minute)
	fx.env.RegisterDelayedCallback(func() {
		p := fx.progress()
		require.Contains(t, p.Halted, "2 tenants failed, more than the budget of 1")
		require.Len(t, p.Failed, 2)
		require.Equal(t, 5, p.Waves[0].Pending)
		require.Equal(t, pendingAtHalt, p.Waves[0].Pending, "nothing launched after the halt")
		fx.operator(UpdateResumeFleet, OperatorRequest{By: "lead", Note: "known flaky tenants"}, "")
	}, 5*time.Hour)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	r := fx.result()
	fx.mu.Lock()
	defer fx.mu.Unlock()
	started := []time.Time{}
	for _, at := range fx.startedAt {
		started = append(started, at)
	}
	sort.Slice(started, func(i, j int) bool { return started[i].Before(started[j]) })
	require.Equal(t, time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC), started[2], "the first failure frees its slot")
	require.Equal(t, time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC), started[3], "the fourth tenant waits for the resume")
	require.True(t, containsText(r.Events, "resumed by lead (known flaky tenants)"))
	require.Equal(t, 8, r.Total)
}

func TestFleetPauseAndResume(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 1}}, 3)
	fx.env.RegisterDelayedCallback(func() {
		fx.operator(UpdatePauseFleet, OperatorRequest{By: ""}, "by is required")
		fx.operator(UpdatePauseFleet, OperatorRequest{By: "ops", Note: "customer call"}, "")
	}, 30*time.Minute)
	fx.env.RegisterDelayedCallback(func() {
		require.True(t, fx.progress().Paused)
		fx.operator(UpdateResumeFleet, OperatorRequest{By: "ops"}, "")
	}, 5*time.Hour)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	fx.result()
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var starts []time.Time
	for _, at := range fx.startedAt {
		starts = append(starts, at)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	require.Equal(t, []time.Time{
		time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC),
	}, starts)
}

func TestFleetCancelReachesEveryRunningTenant(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 4}, {Name: "later"}}, 10, 3)
	for _, tn := range fleetTenants(0, 10) {
		fx.plans[tn.TenantID] = childPlan{dur: 10 * time.Hour}
	}
	fx.env.RegisterDelayedCallback(func() {
		fx.operator(UpdateCancelFleet, OperatorRequest{By: "ops", Note: "Microsoft incident"}, "")
	}, 2*time.Hour)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	r := fx.result()
	require.True(t, r.Cancelled)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	require.Len(t, fx.cancelled, 4, "every running tenant was cancelled")
	require.Equal(t, map[Outcome]int{OutcomeCancelled: 13}, r.Outcomes, "every tenant finished, cancelled")
}

func TestFleetHumanWaitsReleaseSlots(t *testing.T) {
	for _, hold := range []bool{false, true} {
		t.Run(fmt.Sprint("hold=", hold), func(t *testing.T) {
			fx := newFleetFixture(t)
			in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 2}}, 6)
			in.HumanWaitsHoldSlots = hold
			for _, tn := range fleetTenants(0, 6) {
				fx.plans[tn.TenantID] = childPlan{dur: 10 * time.Minute, humanWait: 48 * time.Hour}
			}
			fx.env.ExecuteWorkflow(FleetUpgrade, in)
			fx.result()
			first, last := fx.waveTimes(0)
			if hold {
				require.GreaterOrEqual(t, last.Sub(first), 3*48*time.Hour, "two at a time, each holding its slot while waiting")
				require.LessOrEqual(t, fx.maxBusy[0], 2)
			} else {
				require.Less(t, last.Sub(first), 49*time.Hour, "waiting tenants release their slots: all wait together")
			}
		})
	}
}

// A tenant waiting for its downtime window does no machine work: it holds no slot, so a
// wave's tenants all wait for their windows together.
func TestFleetWindowWaitsReleaseSlots(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 2}}, 6)
	for _, tn := range fleetTenants(0, 6) {
		fx.plans[tn.TenantID] = childPlan{dur: 10 * time.Minute, windowWait: 48 * time.Hour}
	}
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	fx.result()
	first, last := fx.waveTimes(0)
	require.Less(t, last.Sub(first), 49*time.Hour, "all six wait for their windows together")
}

// Several tenants waiting on the same orchestrator fault halt the fleet: launching more would
// only add waiting upgrades. An operator fixes the credential and resumes.
func TestFleetHaltsOnARepeatedOrchestratorFault(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 3}}, 9)
	for _, tn := range fleetTenants(0, 9) {
		fx.plans[tn.TenantID] = childPlan{dur: 10 * time.Minute, faultWait: 2 * time.Hour}
	}
	pendingAtHalt := -1
	fx.env.RegisterDelayedCallback(func() {
		p := fx.progress()
		require.Contains(t, p.Halted, "tenants wait on the orchestrator's own sign-in (AADSTS7000222)")
		pendingAtHalt = p.Waves[0].Pending
		require.Positive(t, pendingAtHalt)
	}, time.Hour)
	fx.env.RegisterDelayedCallback(func() {
		p := fx.progress()
		require.Equal(t, pendingAtHalt, p.Waves[0].Pending, "nothing launched while halted, though the waiting tenants finished")
		// The new secret cures the fault: tenants started from now on do not wait on it
		// (otherwise three of them halt the fleet again, and whether the last pending tenant
		// starts before that depends on the order the test environment runs the children in).
		fx.mu.Lock()
		for _, tn := range fleetTenants(0, 9) {
			fx.plans[tn.TenantID] = childPlan{dur: 10 * time.Minute}
		}
		fx.mu.Unlock()
		fx.operator(UpdateResumeFleet, OperatorRequest{By: "lead", Note: "new secret deployed"}, "")
	}, 3*time.Hour)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	r := fx.result()
	require.True(t, containsText(r.Events, "tenants wait on the orchestrator's own sign-in (AADSTS7000222): fix the worker's credential, then resume"), r.Events)
	require.Equal(t, 9, r.Total)
}

// Each wave starts its tenants in the order their windows open.
func TestFleetPlanIsInWindowOrder(t *testing.T) {
	ts := fleetTenants(0, 3)
	ts[0].Window.Start, ts[1].Window.Start, ts[2].Window.Start = "2026-12-07T22:00", "2026-12-05T22:00", "2026-12-06T22:00"
	ts[1].TimeZone = "Asia/Tokyo" // 13:00 UTC on the 5th: still the earliest
	in := FleetInput{Name: "order", Waves: []WaveSpec{{Name: "all"}}}
	require.NoError(t, PackPlan(&in, [][]spec.Tenant{ts}))
	var plan [][]spec.Tenant
	require.NoError(t, unpack(in.Plan, &plan))
	var names []string
	for _, t := range plan[0] {
		names = append(names, t.DisplayName)
	}
	require.Equal(t, []string{"w0-t1", "w0-t2", "w0-t0"}, names)
}

func TestFleetPlanTooLargeIsRefused(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	ts := make([]spec.Tenant, 40000)
	for i := range ts {
		ts[i] = testTenant()
		ts[i].DisplayName = fmt.Sprintf("%x%x%x", rnd.Uint64(), rnd.Uint64(), rnd.Uint64())
		ts[i].TenantID = fmt.Sprintf("%08x-0000-0000-0000-%012x", rnd.Uint32(), rnd.Uint64()&0xffffffffffff)
		ts[i].OrgURL = fmt.Sprintf("https://%x.crm.dynamics.com", rnd.Uint64())
	}
	in := FleetInput{Name: "huge", Waves: []WaveSpec{{Name: "all"}}}
	err := PackPlan(&in, [][]spec.Tenant{ts})
	require.ErrorContains(t, err, "split the inventory into fleets of about")
}

// TestFleet5000ThroughContinueAsNew runs 5,000 tenants through several runs; children in flight
// when a run continues as new report to the next run, as abandoned children do on a server.
func TestFleet5000ThroughContinueAsNew(t *testing.T) {
	fx := newFleetFixture(t)
	fx.patient = true
	fx.newEnv()
	rnd := rand.New(rand.NewSource(5000))
	in := fx.inputOf([]WaveSpec{{Name: "canary", Concurrency: 50}, {Name: "bulk", Concurrency: 400}},
		[][]spec.Tenant{realisticTenants(rnd, 0, 100), realisticTenants(rnd, 1, 4900)})
	require.Less(t, payloadSize(t, in), MaxFleetInputPayload)
	var plan [][]spec.Tenant
	require.NoError(t, unpack(in.Plan, &plan))
	plan[1] = append(plan[0], plan[1]...)
	largest := 0
	in.ContinueAfterEvents = 4000
	runs := 0
	var inflight []string
	for {
		runs++
		require.Less(t, runs, 200)
		can := fx.runOnce(in, inflight)
		if can == nil {
			break
		}
		for _, p := range can.Input.GetPayloads() {
			largest = max(largest, proto.Size(p))
		}
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
		st, tenants := carried(t, in)
		for _, tn := range st.Tenants {
			require.Empty(t, tn.WorkflowID+tn.TenantID+tn.Name, "the carried state leaves who a tenant is to the plan")
		}
		require.Len(t, tenants, 5000)
		inflight = nil
		for i, tn := range tenants {
			require.Equal(t, plan[1][i].UpgradeWorkflowID(), tn.WorkflowID, "the plan's order is the fleet's")
			if tn.State == TenantRunning {
				inflight = append(inflight, tn.WorkflowID)
			}
		}
		fx.newEnv()
	}
	r := fx.result()
	require.Greater(t, runs, 2, "continued as new")
	resultSize := payloadSize(t, r)
	t.Logf("5,000 tenants, %d runs: plan input %d KiB, largest continue-as-new input %d KiB, result %d KiB (encoded)",
		runs, payloadSize(t, FleetInput{Name: in.Name, Waves: in.Waves, Plan: in.Plan})/1024, largest/1024, resultSize/1024)
	require.Less(t, largest, maxPayload, "every continue-as-new input stays under 512 KB")
	require.Less(t, resultSize, maxPayload)
	fx.mu.Lock()
	inputs := fx.reportInputs
	fx.mu.Unlock()
	require.Greater(t, len(inputs), 5, "the report goes in parts")
	t.Logf("final report: %d activity inputs, the largest %d KiB (encoded)", len(inputs), slices.Max(inputs)/1024)
	require.Less(t, slices.Max(inputs), maxPayload, "every report input stays under 512 KB")
	rep := fx.report()
	require.Len(t, rep.Tenants, 5000)
	require.Len(t, fx.reports, 2, "the parts are joined into one JSON and one CSV")
	require.Equal(t, 5000, r.Total)
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: 5000}, r.Outcomes)
	for _, tn := range fx.tenants() {
		require.Equal(t, 1, tn.Starts, tn.Name)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	require.Len(t, fx.starts, 5000, "every tenant started")
	for id, n := range fx.starts {
		require.Equal(t, 1, n, "%s started %d times", id, n)
	}
}

// carried reads a continue-as-new input as the next run does: the carried state as sent, and
// every tenant as the fleet tracks it.
func carried(t *testing.T, in FleetInput) (fleetCarry, []FleetTenant) {
	t.Helper()
	var st fleetCarry
	require.NoError(t, unpack(in.Carry, &st))
	f := &fleet{in: in, index: map[string]int{}}
	require.NoError(t, f.load())
	return st, f.st.Tenants
}

// TestFleetSummaryStaysSmall: 5,000 failed tenants with long errors and as many events still
// make a result far below 512 KB, with every tenant counted and the omissions said.
func TestFleetSummaryStaysSmall(t *testing.T) {
	rnd := rand.New(rand.NewSource(7))
	var tenants []FleetTenant
	var events []string
	long := strings.Repeat("Dataverse refused the import: ", 100)
	for i, s := range realisticTenants(rnd, 0, 5000) {
		tenants = append(tenants, FleetTenant{WorkflowID: s.UpgradeWorkflowID(), TenantID: s.TenantID, Name: s.DisplayName, State: TenantFinished, Outcome: OutcomeFailed, Error: fmt.Sprintf("%d %s", i, long)})
		events = append(events, "2026-12-01T08:00:00Z tenant "+s.DisplayName+" failed: "+long)
	}
	tenants[0].Outcome, tenants[1].State, tenants[1].Outcome = OutcomeUpgraded, TenantPending, ""
	r := summarize("big", false, tenants, events)
	size := payloadSize(t, r)
	t.Logf("summary of 5,000 failed tenants: %d KiB encoded", size/1024)
	require.Less(t, size, maxPayload/2)
	require.Equal(t, 5000, r.Total)
	require.Equal(t, map[Outcome]int{OutcomeFailed: 4998, OutcomeUpgraded: 1, TenantPending: 1}, r.Outcomes)
	require.Len(t, r.Failed, MaxResultFailed)
	require.Equal(t, 4998-MaxResultFailed, r.FailedOmitted)
	require.Equal(t, tenants[2].WorkflowID, r.Failed[0].WorkflowID, "failed tenants keep who they are")
	require.True(t, strings.HasPrefix(r.Failed[0].Error, "2 Dataverse refused"), r.Failed[0].Error)
	require.Len(t, r.Events, MaxResultEvents)
	require.Equal(t, 5000-MaxResultEvents, r.EventsOmitted)
	require.Contains(t, r.Events[MaxResultEvents-1], tenants[4999].Name, "the last events are kept")

	// The final report of the same tenants goes in parts, each far below 512 KB.
	var lines []activities.FleetReportTenant
	for _, tn := range tenants {
		lines = append(lines, activities.FleetReportTenant{WorkflowID: tn.WorkflowID, RunID: "0196f1c2-7a3b-7c4d-8e5f-000000000000", TenantID: tn.TenantID, Name: tn.Name, Wave: "bulk", Outcome: string(tn.Outcome), Error: tn.Error})
	}
	total, largest := 0, 0
	parts := activities.ReportParts(lines)
	for i, p := range parts {
		total += len(p)
		largest = max(largest, payloadSize(t, activities.FleetReportPart{Fleet: "big", Part: i + 1, Tenants: p}))
	}
	t.Logf("report of 5,000 failed tenants: %d parts, the largest %d KiB encoded", len(parts), largest/1024)
	require.Equal(t, 5000, total)
	require.Less(t, largest, maxPayload)
}

// TestFleetRefusesAForgedEndSignal: a tenant-finished signal for a tenant whose upgrade still
// runs changes nothing; the fleet checks the workflow and records the refusal.
func TestFleetRefusesAForgedEndSignal(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 2}}, 2)
	victim := fleetTenants(0, 2)[0]
	fx.env.RegisterDelayedCallback(func() {
		fx.env.SignalWorkflow(SignalTenantFinished, TenantProgress{WorkflowID: victim.UpgradeWorkflowID(), Stage: StageDone, Outcome: OutcomeFailed, Error: "forged"})
	}, 10*time.Minute)
	fx.env.RegisterDelayedCallback(func() {
		p := fx.progress()
		require.Equal(t, 2, p.Waves[0].Running, "the forged end changed nothing")
		require.Empty(t, p.Failed)
		require.True(t, containsText(p.Events, "refused an end signal for tenant "+victim.DisplayName), p.Events)
	}, 30*time.Minute)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	r := fx.result()
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: 2}, r.Outcomes)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	require.Equal(t, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), fx.endedAt[victim.UpgradeWorkflowID()], "the tenant ran to its end")
	require.Len(t, fx.checked, 1)
	require.Equal(t, victim.UpgradeWorkflowID(), fx.checked[0].WorkflowID, "the hint was checked against the workflow")
	require.True(t, fx.checked[0].Hinted)
	require.NotEmpty(t, fx.checked[0].RunID, "by its run ID")
}

// TestFleetLearnsAChildsEndWithoutItsSignal: children that never send their end signal still
// end in the fleet — from their result in the run that started them, and from a periodic
// check of their workflow when an earlier run started them.
func TestFleetLearnsAChildsEndWithoutItsSignal(t *testing.T) {
	t.Run("same run: the child's result", func(t *testing.T) {
		fx := newFleetFixture(t)
		in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 3}}, 3)
		for i, tn := range fleetTenants(0, 3) {
			fx.plans[tn.TenantID] = childPlan{silent: true, outcome: []Outcome{OutcomeUpgraded, OutcomeFailed, OutcomeAlreadyCurrent}[i]}
		}
		fx.env.ExecuteWorkflow(FleetUpgrade, in)
		r := fx.result()
		require.Equal(t, map[Outcome]int{OutcomeUpgraded: 1, OutcomeFailed: 1, OutcomeAlreadyCurrent: 1}, r.Outcomes)
		require.Len(t, r.Failed, 1)
		fx.mu.Lock()
		defer fx.mu.Unlock()
		require.Empty(t, fx.checked, "the futures told every end")
	})
	t.Run("earlier run: a check of the workflow", func(t *testing.T) {
		fx := newFleetFixture(t)
		in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 2}}, 2)
		for _, tn := range fleetTenants(0, 2) {
			fx.plans[tn.TenantID] = childPlan{silent: true}
		}
		in.ContinueAfterEvents = 10
		fx.env.ExecuteWorkflow(FleetUpgrade, in)
		var can *workflow.ContinueAsNewError
		require.ErrorAs(t, fx.env.GetWorkflowError(), &can, "the first run continues as new while its children run")
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
		in.ContinueAfterEvents = 0
		// The children close on the server without a word to the fleet.
		fx.mu.Lock()
		for _, tn := range fleetTenants(0, 2) {
			fx.outcomes[tn.UpgradeWorkflowID()] = OutcomeUpgraded
		}
		fx.mu.Unlock()
		fx.newEnv()
		fx.env.ExecuteWorkflow(FleetUpgrade, in)
		r := fx.result()
		require.Equal(t, map[Outcome]int{OutcomeUpgraded: 2}, r.Outcomes)
		fx.mu.Lock()
		defer fx.mu.Unlock()
		require.Len(t, fx.checked, 2)
		for _, c := range fx.checked {
			require.False(t, c.Hinted)
			require.NotEmpty(t, c.RunID, "checked by run ID")
		}
	})
}

// TestFleetChecksAtOnceAnEndSignalledBeforeContinueAsNew is the bench's end lost at
// continue-as-new: a child signals its end in the workflow task after which its fleet run
// continues as new, and closes a moment later. To the run that started it the signal is only
// a hint (the run waits for the child's close), and the close reaches no run. The run carries
// the tenant over (Recheck), and the next run checks it at once: the fleet ends right after the
// child's close, not at the next run's periodic check endCheckEvery later.
func TestFleetChecksAtOnceAnEndSignalledBeforeContinueAsNew(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 1}}, 1)
	tenant := fleetTenants(0, 1)[0]
	id := tenant.UpgradeWorkflowID()
	const closeAfter = 5 * time.Second
	fx.plans[tenant.TenantID] = childPlan{dur: time.Hour, closeAfter: closeAfter}
	// The run's events as the fleet counts them: 4 for the child's start, 1 per signal (the
	// child's progress, then its end), so the run continues as new in the task that takes the
	// end signal. The test environment then runs the abandoned child on to its close, as the
	// server would: a close no run hears.
	in.ContinueAfterEvents = 6
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	require.True(t, fx.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, fx.env.GetWorkflowError(), &can, "the run continues as new")
	fx.mu.Lock()
	signalledAt := fx.startedAt[id].Add(time.Hour)
	closedAt, closed := fx.endedAt[id]
	runID := fx.runIDs[id]
	fx.mu.Unlock()
	require.True(t, closed, "the child closed after the run")
	require.Equal(t, signalledAt.Add(closeAfter), closedAt, "the child closed %v after its end signal", closeAfter)

	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	st, tenants := carried(t, in)
	require.Equal(t, TenantRunning, tenants[0].State, "the run continued as new before the child closed")
	require.Equal(t, runID, tenants[0].RunID)
	require.Equal(t, []int{0}, st.Recheck, "the end signalled but not taken is carried to the next run")

	// The next run starts with the child closed (a real check of a hinted tenant also waits
	// activities.HintGrace for its close).
	in.ContinueAfterEvents = 0
	fx.newEnv()
	fx.env.SetStartTime(closedAt)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	r := fx.result()
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: 1}, r.Outcomes)
	took := fx.report().EndedAt.Sub(closedAt)
	t.Logf("the fleet ended %v (workflow time) after the child closed; the periodic check comes after %v", took, endCheckEvery)
	require.Less(t, took, endHintGrace, "the next run takes the end at once, not at its periodic check %v later", endCheckEvery)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	require.Equal(t, []activities.TenantRun{{WorkflowID: id, RunID: runID, Hinted: true}}, fx.checked,
		"one check of the carried tenant, by its run ID, as a hinted end")
}
