package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/activities/notify"
	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/rehearsal/autopilot"
	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/rehearsal/workerproc"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Options shape a crash rehearsal.
type Options struct {
	// Tenants is the size of the generated fleet (Seed makes it).
	Tenants int
	Seed    int64
	// Speed makes simulated time run this many times faster than real time.
	Speed float64
	// Kills is how many times the worker process is killed (SIGKILL).
	Kills int
	// MinGap and MaxGap bound the random real time between two events (a kill or the restart).
	MinGap, MaxGap time.Duration
	// Down is how long the stack stays down when it restarts.
	Down time.Duration
	// StateDir holds the SQLite file, the simulator's state and the logs; empty: a temporary
	// folder, removed when the rehearsal passes.
	StateDir string
	// Timeout bounds the whole rehearsal.
	Timeout time.Duration
	// Out receives progress lines (nil: none).
	Out io.Writer
}

// Kill is one SIGKILL of the worker process.
type Kill struct {
	At time.Duration `json:"at"`
	// Running is how many upgrades were unfinished at that moment; WorkerUp how long the
	// killed process had run.
	Running  int           `json:"running"`
	WorkerUp time.Duration `json:"workerUp"`
}

// Restart is the stop and restart of the stack: the embedded Temporal server's process
// (stopped with SIGTERM, started anew from its SQLite file) and the simulated cloud (from its
// saved state).
type Restart struct {
	At      time.Duration `json:"at"`
	Running int           `json:"running"`
	// Stop is how long stopping took, Start how long the server took to answer again, Down
	// the whole time nothing answered.
	Stop  time.Duration `json:"stop"`
	Start time.Duration `json:"start"`
	Down  time.Duration `json:"down"`
}

// Report is what a crash rehearsal measured and found.
type Report struct {
	Tenants  int                       `json:"tenants"`
	Speed    float64                   `json:"speed"`
	Wall     time.Duration             `json:"wall"`
	Kills    []Kill                    `json:"kills"`
	Restarts []Restart                 `json:"restarts"`
	Outcomes map[workflows.Outcome]int `json:"outcomes"`
	// ImportStarts maps Work 365 imports started in a tenant to how many tenants saw that
	// many; InjectedImportFailures is how many of them the scenario made fail on purpose
	// (each then retried by the operator: one more import, never a duplicate).
	ImportStarts           map[int]int `json:"importStarts"`
	InjectedImportFailures int         `json:"injectedImportFailures"`
	PortalUninstalls       int         `json:"portalUninstalls"`
	PortalReinstalls       int         `json:"portalReinstalls"`
	// Confirmations counts tasks the autopilot confirmed, each found once in a result;
	// ConfirmationRetries counts confirmations that needed more than one attempt.
	Confirmations       int `json:"confirmations"`
	ConfirmationRetries int `json:"confirmationRetries"`
	// Problems lists every check that failed; empty means the rehearsal passed.
	Problems []string `json:"problems,omitempty"`
	StateDir string   `json:"stateDir"`
}

const (
	fleetName = "crashtest"
	namespace = "rehearsal"
	taskQueue = "work365-rehearsal"
)

// rig is a running crash rehearsal.
type rig struct {
	o            Options
	dir          string
	started      time.Time
	scn          *sim.Scenario
	simOpts      sim.Options
	simPath      string
	frontendPort int

	server   *serverProc
	cloud    *sim.Cloud
	stopSave func()
	client   client.Client
	ops      ops.Ops
	pilot    *autopilot.Autopilot
	hook     *httptest.Server
	cfgPath  string

	worker     *exec.Cmd
	workerUp   time.Time
	workerDone chan error
	workerOut  *os.File
	serverLog  *os.File

	mu        sync.Mutex
	attempts  map[string]int // workflowID|taskID → confirmation attempts
	closeOnce sync.Once
}

func (r *rig) logf(format string, args ...any) {
	if r.o.Out != nil {
		fmt.Fprintf(r.o.Out, "%6.1fs  %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
	}
}

// Run runs a crash rehearsal and returns what it measured. The error is set when it could not
// run, or when a check failed (the report lists them all).
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Tenants <= 0 {
		o.Tenants = 200
	}
	if o.Speed <= 0 {
		o.Speed = 600
	}
	if o.Kills < 0 {
		return nil, fmt.Errorf("--kills %d: must not be negative", o.Kills)
	}
	if o.MinGap <= 0 {
		o.MinGap = 4 * time.Second
	}
	if o.MaxGap < o.MinGap {
		o.MaxGap = 3 * o.MinGap
	}
	if o.Down <= 0 {
		o.Down = 3 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &rig{o: o, started: time.Now(), attempts: map[string]int{}}
	if err := r.prepareDir(); err != nil {
		return nil, err
	}
	defer r.close()
	if err := r.up(ctx); err != nil {
		return nil, err
	}
	rep, err := r.rehearse(ctx)
	if err != nil {
		return rep, err
	}
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("%d problems (state kept in %s): %s", len(rep.Problems), r.dir, strings.Join(rep.Problems, "; "))
	}
	if o.StateDir == "" {
		// Stopped first: the cloud's last save would create the folder again.
		r.close()
		_ = os.RemoveAll(r.dir)
	}
	return rep, nil
}

func (r *rig) prepareDir() error {
	r.dir = r.o.StateDir
	if r.dir == "" {
		d, err := os.MkdirTemp("", "work365-crashtest-")
		if err != nil {
			return err
		}
		r.dir = d
		return nil
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("--state %s is not empty: a crash rehearsal starts from nothing (give an empty or new folder)", r.dir)
	}
	return nil
}

// up starts the stack: server, cloud, people, notification receiver, worker process.
func (r *rig) up(ctx context.Context) error {
	scn := sim.Generate(r.o.Tenants, r.o.Seed)
	scn.Faults = sim.Faults{}
	// The upgrade link lives an hour instead of 15 minutes: at x600, 15 simulated minutes are
	// 1.5 real seconds, less than a person's round trip (notification webhook, action, Update)
	// takes on a loaded machine, and every round would expire. What is rehearsed here is
	// crashes, not the link (the integration tests rehearse its expiry).
	scn.LinkValidity = time.Hour
	// People take a simulated minute, so kills also land while confirmations are due.
	scn.Autopilot.Delays = map[string][]time.Duration{}
	for _, k := range []workflows.TaskKind{workflows.TaskGetConsent, workflows.TaskBeginUpgrade, workflows.TaskSubmitRegistration,
		workflows.TaskEnableMFAPolicies, workflows.TaskRegisterMFAAdmin, workflows.TaskRegisterMFAService, workflows.TaskFixPrerequisite,
		workflows.TaskAssignServiceRole, workflows.TaskPartnerMFAPolicies, workflows.TaskPartnerReconsent} {
		scn.Autopilot.Delays[string(k)] = []time.Duration{time.Minute}
	}
	// Tokens live two real hours, as in the in-process stack: MSAL renews them 5 minutes
	// before expires_in, which the simulator states in real seconds.
	if lifetime := time.Duration(r.o.Speed * float64(2*time.Hour)); scn.TokenLifetime < lifetime {
		scn.TokenLifetime = lifetime
	}
	r.scn = scn

	frontend, err := workerproc.FreePort()
	if err != nil {
		return err
	}
	simAddr, err := freeAddr()
	if err != nil {
		return err
	}
	if r.serverLog, err = os.OpenFile(filepath.Join(r.dir, "temporal.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
		return err
	}
	r.frontendPort = frontend
	if r.server, err = r.startServer(ctx); err != nil {
		return err
	}
	r.simPath = filepath.Join(r.dir, sim.StateFileName)
	r.simOpts = sim.Options{Clock: sim.NewScaledClock(r.o.Speed), Addr: simAddr}
	if err := r.openCloud(); err != nil {
		return err
	}
	r.client, err = client.DialContext(ctx, client.Options{HostPort: r.frontend(), Namespace: namespace,
		Logger: app.NewTemporalLogger(zap.NewNop())})
	if err != nil {
		return fmt.Errorf("connect to Temporal: %w", err)
	}
	r.ops = ops.Ops{Client: r.client, TaskQueue: taskQueue}
	speed := r.o.Speed
	r.pilot = autopilot.New(r.cloud, confirmer{r}, autopilot.Options{
		Sleep: func(ctx context.Context, d time.Duration) error {
			return ctxtime.Sleep(ctx, time.Duration(float64(d)/speed))
		},
		// A confirmation goes on being sent while the worker or the server is down.
		ConfirmAttempts: 200,
		ConfirmBackoff:  50 * time.Millisecond,
	})
	r.hook = httptest.NewServer(http.HandlerFunc(r.receive))
	return r.startWorker(ctx)
}

// openCloud opens the simulated cloud from its saved state (if any) and saves it every second.
func (r *rig) openCloud() error {
	c, err := sim.Open(r.scn, r.simOpts, r.simPath)
	if err != nil {
		return err
	}
	c.Start()
	r.cloud = c
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.SaveEvery(sctx, r.simPath, time.Second, func(err error) { r.logf("saving the simulated cloud: %v", err) })
	}()
	r.stopSave = func() { stop(); <-done }
	return nil
}

// receive is the notification webhook (JSON format) of the worker process: the people.
func (r *rig) receive(w http.ResponseWriter, req *http.Request) {
	var n activities.Notification
	if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
		http.Error(w, "not a JSON notification: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := r.pilot.Notify(req.Context(), n); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// startWorker writes the worker's configuration (once) and starts the worker process.
func (r *rig) startWorker(ctx context.Context) error {
	if r.cfgPath == "" {
		cfg, err := stack.WorkerConfig(r.dir, r.cloud, app.TemporalConfig{Address: r.frontend(), Namespace: namespace, TaskQueue: taskQueue})
		if err != nil {
			return err
		}
		hookFile := filepath.Join(r.dir, "autopilot-webhook-url")
		if err := os.WriteFile(hookFile, []byte(r.hook.URL), 0o600); err != nil {
			return err
		}
		cfg.Notify.Webhooks = append(cfg.Notify.Webhooks, notifyTarget(hookFile))
		cfg.Log = app.LogConfig{Format: "json", Level: "info", File: filepath.Join(r.dir, "worker.log")}
		data, err := yaml.Marshal(cfg)
		if err != nil {
			return err
		}
		r.cfgPath = filepath.Join(r.dir, "worker.yaml")
		if err := os.WriteFile(r.cfgPath, data, 0o600); err != nil {
			return err
		}
		if r.workerOut, err = os.OpenFile(filepath.Join(r.dir, "worker.out"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	poll := time.Duration(float64(10*time.Second) / r.o.Speed)
	poll = max(poll, 200*time.Millisecond)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envRole+"="+roleWorker, "W365_CONFIG="+r.cfgPath, envSimURL+"="+r.cloud.URL(), envPollInterval+"="+poll.String())
	cmd.Stdout, cmd.Stderr = r.workerOut, r.workerOut
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the worker process: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	r.worker, r.workerUp, r.workerDone = cmd, time.Now(), done
	r.logf("worker process %d started", cmd.Process.Pid)
	return nil
}

// killWorker kills the worker process with SIGKILL; it must still be running.
func (r *rig) killWorker() (time.Duration, error) {
	select {
	case err := <-r.workerDone:
		return 0, fmt.Errorf("the worker process ended by itself (%v): read %s", err, filepath.Join(r.dir, "worker.out"))
	default:
	}
	up := time.Since(r.workerUp)
	if err := r.worker.Process.Signal(syscall.SIGKILL); err != nil {
		return up, err
	}
	<-r.workerDone
	return up, nil
}

// restartStack stops the server process and the cloud (the cloud saved to its file), waits
// Down, and starts both again from their files. The worker process runs on and must reconnect,
// and so must this process's client.
func (r *rig) restartStack(ctx context.Context) (Restart, error) {
	var rs Restart
	t0 := time.Now()
	err := r.pilot.SwapCloud(func(old *sim.Cloud) (*sim.Cloud, error) {
		err := r.server.stop()
		r.server = nil
		if err != nil {
			return nil, fmt.Errorf("stop the Temporal server: %w", err)
		}
		r.stopSave()
		if err := old.Save(r.simPath); err != nil {
			return nil, err
		}
		old.Close()
		rs.Stop = time.Since(t0)
		r.logf("stack stopped (server and simulated cloud) in %s; down for %s", rs.Stop.Round(time.Millisecond), r.o.Down)
		time.Sleep(r.o.Down)
		t1 := time.Now()
		if err := r.openCloud(); err != nil {
			return nil, err
		}
		srv, err := r.startServer(ctx)
		if err != nil {
			return nil, fmt.Errorf("restart the Temporal server from %s: %w", filepath.Join(r.dir, devserver.DBFileName), err)
		}
		r.server = srv
		rs.Start = time.Since(t1)
		return r.cloud, nil
	})
	rs.Down = time.Since(t0)
	return rs, err
}

// running counts the upgrades not finished yet (-1 when Temporal does not answer).
func (r *rig) running(ctx context.Context) int {
	us, err := r.ops.List(ctx, fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.TenantUpgradeWorkflow))
	if err != nil {
		return -1
	}
	return len(us)
}

// rehearse launches the fleet, kills and restarts as scheduled, waits for every upgrade and
// checks the results against the cloud.
func (r *rig) rehearse(ctx context.Context) (*Report, error) {
	rep := &Report{Tenants: r.o.Tenants, Speed: r.o.Speed, StateDir: r.dir, Outcomes: map[workflows.Outcome]int{}, ImportStarts: map[int]int{}}
	inv := stack.Inventory(r.scn, fleetName, r.o.Speed)
	launched, err := r.ops.Launch(ctx, inv)
	if err != nil {
		return rep, err
	}
	r.logf("%d upgrades launched (simulated time x%g)", len(launched), r.o.Speed)

	// The schedule: Kills kills and one restart, in random order, at random gaps.
	rng := rand.New(rand.NewPCG(uint64(r.o.Seed), 0xc4a5))
	events := make([]string, r.o.Kills+1)
	for i := range events {
		events[i] = "kill"
	}
	events[rng.IntN(len(events))] = "restart"
	for _, ev := range events {
		gap := r.o.MinGap + time.Duration(rng.Int64N(int64(r.o.MaxGap-r.o.MinGap)+1))
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(gap):
		}
		n := r.running(ctx)
		if n == 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("every upgrade finished before the %s at %s: nothing was left to interrupt (lower --speed)", ev, time.Since(r.started).Round(time.Second)))
			break
		}
		switch ev {
		case "kill":
			up, err := r.killWorker()
			if err != nil {
				return rep, err
			}
			k := Kill{At: time.Since(r.started), Running: n, WorkerUp: up}
			rep.Kills = append(rep.Kills, k)
			r.logf("kill %d: SIGKILL the worker (up %s) with %d upgrades running", len(rep.Kills), up.Round(time.Millisecond), n)
			if err := r.startWorker(ctx); err != nil {
				return rep, err
			}
		case "restart":
			rs, err := r.restartStack(ctx)
			rs.At, rs.Running = time.Since(r.started)-rs.Down, n
			if err != nil {
				return rep, err
			}
			rep.Restarts = append(rep.Restarts, rs)
			r.logf("stack restarted from its files: server answered %s after its start, down %s in all", rs.Start.Round(time.Millisecond), rs.Down.Round(time.Millisecond))
		}
	}

	// Every upgrade ends.
	for {
		n := r.running(ctx)
		if n == 0 {
			break
		}
		if n > 0 {
			r.logf("%d upgrades running", n)
		}
		select {
		case <-ctx.Done():
			return rep, fmt.Errorf("upgrades still running after %s (state kept in %s): %w", r.o.Timeout, r.dir, ctx.Err())
		case <-time.After(5 * time.Second):
		}
	}
	rep.Wall = time.Since(r.started)
	r.logf("every upgrade finished")
	if err := r.pilot.Wait(ctx); err != nil {
		return rep, err
	}
	return rep, r.check(ctx, launched, rep)
}

// check compares results, the people's log and the cloud's counters.
func (r *rig) check(ctx context.Context, launched []ops.Launched, rep *Report) error {
	bad := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	// What the people confirmed, by workflow and task.
	confirmed := map[string]int{}
	for _, e := range r.pilot.Log() {
		if e.Confirmed {
			confirmed[e.WorkflowID+"|"+e.TaskID]++
		}
	}
	r.mu.Lock()
	for _, n := range r.attempts {
		if n > 1 {
			rep.ConfirmationRetries++
		}
	}
	r.mu.Unlock()
	inResults := map[string]int{}
	for _, l := range launched {
		var res workflows.Result
		if err := r.client.GetWorkflow(ctx, l.WorkflowID, "").Get(ctx, &res); err != nil {
			bad("%s: %v", l.TenantName, err)
			continue
		}
		rep.Outcomes[res.Outcome]++
		if res.Outcome != workflows.OutcomeUpgraded {
			bad("%s: outcome %s %s", l.TenantName, res.Outcome, res.Error)
		}
		for _, c := range res.Confirmations {
			inResults[l.WorkflowID+"|"+c.TaskID]++
		}
		for _, pc := range res.PartnerCenters {
			for _, c := range pc.Confirmations {
				inResults[l.WorkflowID+"/partner-center/"+pc.Name+"|"+c.TaskID]++
			}
		}
	}
	for k, n := range confirmed {
		if n != 1 {
			bad("the autopilot confirmed %s %d times", k, n)
		}
		if inResults[k] != 1 {
			bad("confirmed %s appears %d times in the results", k, inResults[k])
		}
	}
	for k := range inResults {
		if confirmed[k] == 0 {
			var seen []string
			for _, e := range r.pilot.Log() {
				if e.WorkflowID+"|"+e.TaskID == k {
					seen = append(seen, fmt.Sprintf("action %q error %q cancelled %v", e.Action, e.Error, e.Cancelled))
				}
			}
			bad("%s is in a result but the autopilot does not know it confirmed it (its log: %s)", k, strings.Join(seen, "; "))
		}
	}
	rep.Confirmations = len(confirmed)

	for _, t := range r.scn.Tenants {
		c := r.cloud.TenantCounters(t.TenantID)
		st, _ := r.cloud.State(t.TenantID)
		work365 := c.Imports - c.PortalInstalls
		rep.ImportStarts[work365]++
		rep.InjectedImportFailures += c.ImportsFailed
		want := 1 + t.Import.Failures
		switch {
		case c.ImportsSucceeded+c.ImportsFailed != c.Imports:
			bad("%s: %d imports started, %d finished", t.Name, c.Imports, c.ImportsSucceeded+c.ImportsFailed)
		case c.ImportsSucceeded-c.PortalInstalls != 1:
			bad("%s: Work 365 imported %d times", t.Name, c.ImportsSucceeded-c.PortalInstalls)
		case work365 != want || c.ImportsFailed != t.Import.Failures:
			bad("%s: %d Work 365 imports started (%d failed on purpose): want %d", t.Name, work365, c.ImportsFailed, 1+t.Import.Failures)
		}
		due := t.Portal && t.Work365Version != "" && spec.AtMost21(t.Work365Version)
		wantPortal := map[bool]int{true: 1, false: 0}[due]
		if c.Uninstalls != wantPortal || c.PortalUninstalls != wantPortal || c.PortalInstalls != wantPortal {
			bad("%s: portal uninstalls started %d, done %d, reinstalls %d: want %d each", t.Name, c.Uninstalls, c.PortalUninstalls, c.PortalInstalls, wantPortal)
		}
		rep.PortalUninstalls += c.PortalUninstalls
		rep.PortalReinstalls += c.PortalInstalls
		if st.Work365Version != stack.TargetVersion || st.StagedVersion != "" || st.Frozen {
			bad("%s: ends at %q, staged %q, frozen %v", t.Name, st.Work365Version, st.StagedVersion, st.Frozen)
		}
	}
	sort.Strings(rep.Problems)
	return nil
}

// close stops everything still running (once).
func (r *rig) close() { r.closeOnce.Do(r.stopAll) }

func (r *rig) stopAll() {
	if r.worker != nil {
		select {
		case <-r.workerDone:
		default:
			_ = r.worker.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.workerDone:
			case <-time.After(10 * time.Second):
				_ = r.worker.Process.Kill()
				<-r.workerDone
			}
		}
	}
	if r.pilot != nil {
		r.pilot.Close()
	}
	if r.hook != nil {
		r.hook.Close()
	}
	if r.client != nil {
		r.client.Close()
	}
	if r.stopSave != nil {
		r.stopSave()
	}
	if r.cloud != nil {
		r.cloud.Close()
	}
	if r.server != nil {
		_ = r.server.stop()
	}
	for _, f := range []*os.File{r.workerOut, r.serverLog} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// confirmer confirms tasks as `starter confirm` does (ops.Confirm), counting attempts.
type confirmer struct{ r *rig }

func (c confirmer) ConfirmTask(ctx context.Context, workflowID string, req workflows.ConfirmRequest) error {
	c.r.mu.Lock()
	c.r.attempts[workflowID+"|"+req.TaskID]++
	c.r.mu.Unlock()
	// Each attempt gets its own deadline: an Update admitted by a server that then stopped
	// is never answered.
	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := c.r.ops.Confirm(actx, workflowID, req, false)
	return err
}

func (r *rig) frontend() string { return fmt.Sprintf("127.0.0.1:%d", r.frontendPort) }

func freeAddr() (string, error) {
	p, err := workerproc.FreePort()
	return fmt.Sprintf("127.0.0.1:%d", p), err
}

// notifyTarget is the people's webhook: JSON, every event and audience.
func notifyTarget(urlFile string) notify.Target {
	return notify.Target{Name: "autopilot", URLFile: urlFile, Format: notify.FormatJSON}
}
