// Command bench measures the fleet against the engine it runs on, in one run on one embedded
// Temporal server: (1) a bare-engine baseline of N workflows × K no-op activities; (2) a
// rehearsal fleet of N generated tenants through FleetUpgrade, with people who act at once and
// a simulated cloud without added latency; (3) every history, read back. The server runs in a
// child process of its own; the fleet's worker is the production worker binary in a process
// of its own too (rehearsal/workerproc), so the peak RSS reported is the worker's alone
// (--in-process: the worker inside this process, beside the simulated cloud and autopilot).
// --hold N keeps the people from acting until N upgrades are in flight, and prints the
// worker's memory then. Its last line is for scripts (see BENCHMARKS.md).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

const (
	// baselineActivityTimeout is the start-to-close timeout of each baseline activity.
	baselineActivityTimeout = time.Minute
	engineQueue             = "bench-engine"
	engineWorkflow          = "BenchChain"
	serveFlag               = "serve-temporal"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	tenants := flag.Int("tenants", 200, "N: tenants in the fleet, and workflows in the baseline")
	seed := flag.Int64("seed", 1, "seed of the generated fleet")
	speed := flag.Float64("speed", 60, "simulated time runs this many times faster than real time (imports, drains, polls)")
	activities := flag.Int("activities", 23, "K: no-op activities per baseline workflow (the activities of a median tenant)")
	concurrency := flag.Int("concurrency", 0, "the fleet wave's concurrency (0: every tenant at once)")
	timeout := flag.Duration("timeout", 60*time.Minute, "give up after this long")
	simulated := flag.Bool("simulated-durations", false, "keep the generated imports, drains and failures (simulated time bounds the fleet) instead of the instant cloud")
	profile := flag.String("pprof", "", "write CPU and heap profiles of this process (worker-*.pprof with --in-process, else rehearsal-*.pprof: the simulated cloud, proxy and autopilot) and of the server, taken during the fleet, into this folder")
	skipBaseline := flag.Bool("skip-baseline", false, "skip the bare-engine baseline (engine_aps and ratio are then 0)")
	settle := flag.Duration("settle", baselineActivityTimeout+10*time.Second, "after the baseline, wait this long before the fleet, so the timeout timers of the baseline's last activities fire before the fleet starts instead of during it")
	inProcess := flag.Bool("in-process", false, "run the fleet's worker inside this process (rss_mb then includes the simulated cloud, the autopilot and the linked server code) instead of the production worker binary in a process of its own")
	workerBin := flag.String("worker-bin", "", "a built production worker binary (default: go build ./worker into a temporary folder)")
	memLimit := flag.String("worker-gomemlimit", "", "GOMEMLIMIT of the worker process (e.g. 250MiB, as a container deployment would set it; default: none, the Go runtime's own pacing)")
	holdN := flag.Int("hold", 0, "the simulated people act only once this many upgrades are in flight (or every tenant has started): the worker then holds them all at once; 0: people act at once")
	serve := flag.Bool(serveFlag, false, "internal: run only the embedded Temporal server (the child process)")
	var wopts workerFlags
	wopts.register(flag.CommandLine)
	var dyn serverConfig
	flag.Var(&dyn, "server-config", "a dynamic configuration key=value (JSON value) for the server, e.g. history.cacheNonUserContextLockTimeout=\"5s\" (repeatable)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *serve {
		return serveTemporal(ctx, dyn)
	}
	if *tenants <= 0 || *activities <= 0 || *speed <= 0 || *holdN < 0 {
		return errors.New("--tenants, --activities and --speed must be positive, --hold not negative")
	}
	if *memLimit != "" && *inProcess {
		return errors.New("--worker-gomemlimit sets the worker process's GOMEMLIMIT: with --in-process there is none (set GOMEMLIMIT for the whole bench instead)")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	address, server, err := startServer(ctx, dyn)
	if err != nil {
		return err
	}
	defer server.stop()
	fmt.Printf("embedded Temporal server in process %d at %s\n", server.cmd.Process.Pid, address)

	scn := sim.Generate(*tenants, *seed)
	scn.Faults = sim.Faults{}
	if !*simulated {
		instant(scn)
	}
	wcfg := wopts.config()
	work, err := os.MkdirTemp("", "work365-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: work folder kept (worker configuration and log): %s\n", work)
			return
		}
		_ = os.RemoveAll(work)
	}()
	people := newGate()
	// The in-process worker writes its fleet reports where the worker process does: without a
	// reports.dir the fleet cannot write report parts as it goes and carries every tenant's
	// full record (477.5 KB continue-as-new inputs at 5,000 tenants instead of ~380 KiB).
	sopts := stack.Options{TemporalAddress: address, Scenario: scn, Speed: *speed, Logger: zap.NewNop(), Worker: wcfg,
		ReportsDir: filepath.Join(work, "reports")}
	if *holdN > 0 {
		sopts.Hold = people.ch
	}
	var keysFile string
	if !*inProcess {
		sopts.NoWorker, sopts.NoDesk = true, true
		if sopts.PayloadKeys, keysFile, err = benchKeys(work); err != nil {
			return err
		}
	}
	s, err := stack.Start(ctx, sopts)
	if err != nil {
		return err
	}
	defer s.Stop()
	var fw fleetWorker
	if !*inProcess {
		host, proc, err := startWorkerProcess(ctx, s, address, work, *workerBin, keysFile, *memLimit, wcfg)
		if err != nil {
			return err
		}
		defer host.Close()
		fw.proc = proc
	}
	fmt.Printf("worker options: %s\n", wcfg)

	f := figures{Tenants: *tenants}
	if !*skipBaseline {
		f.EngineActivities = *tenants * *activities
		if f.EngineSeconds, err = baseline(ctx, s.Client, *tenants, *activities, wcfg); err != nil {
			return err
		}
		fmt.Printf("baseline: %d workflows × %d no-op activities in %.1f s (load %s)\n", *tenants, *activities, f.EngineSeconds, loadAvg())
		if *settle > 0 {
			// Every activity leaves a start-to-close timer in the server's timer queue, which
			// fires (and loads the closed workflow) a timeout later whether or not the activity
			// is done: the baseline's last minute of timers would otherwise fire during the
			// fleet and be counted against it.
			fmt.Printf("settling %s: the baseline's timers fire before the fleet starts\n", *settle)
			if err := ctxtime.Sleep(ctx, *settle); err != nil {
				return err
			}
			fmt.Printf("settled (load %s)\n", loadAvg())
		}
	}

	var prof *profiler
	if *profile != "" {
		self := "rehearsal"
		if *inProcess {
			self = "worker"
		}
		if prof, err = startProfiles(*profile, self, server); err != nil {
			return err
		}
	}
	peak := sampleRSS(ctx, fw.rss)
	holdCtx, stopHold := context.WithCancel(ctx)
	defer stopHold()
	if *holdN > 0 {
		go hold(holdCtx, s, fw, people, *tenants, *holdN)
	}
	if f.Seconds, err = runFleet(ctx, s, *tenants, *concurrency, prof); err != nil {
		return err
	}
	stopHold()
	fmt.Printf("at the fleet's end: %s\n", fw.memory(ctx))
	f.RSSMB = peak()
	if prof != nil {
		if err := prof.stop(); err != nil {
			return err
		}
		fmt.Printf("profiles in %s: %[2]s-cpu.pprof, %[2]s-heap.pprof (at the most in flight), server-cpu.pprof, server-heap.pprof\n", *profile, prof.self)
	}
	fmt.Printf("fleet: %d tenants in %.1f s (load %s)\n", *tenants, f.Seconds, loadAvg())

	outcomes := map[string]int{}
	// Each workflow writes its visibility row at start, at close and at every upsert: the
	// server's largest cost (a REPLACE over every index) is counted here per workflow type.
	var writes []string
	for _, ty := range []string{workflows.TenantUpgradeWorkflow, workflows.PartnerCenterWorkflow, workflows.FleetWorkflow} {
		us, err := s.Ops.List(ctx, fmt.Sprintf("WorkflowType = '%s'", ty))
		if err != nil {
			return err
		}
		upserts := 0
		for _, u := range us {
			st, err := readHistory(ctx, s.Client, u.WorkflowID, u.RunID)
			for try := 1; err != nil && try < 5 && ctx.Err() == nil; try++ {
				_ = ctxtime.Sleep(ctx, time.Second) // an overloaded server may refuse a read for a moment
				st, err = readHistory(ctx, s.Client, u.WorkflowID, u.RunID)
			}
			if err != nil {
				return err
			}
			f.FleetActivities += st.Actions
			f.MaxEventBytes = max(f.MaxEventBytes, st.MaxEventBytes)
			f.TaskTimeouts += st.TaskTimeouts
			f.TaskFailures += st.TaskFailures
			upserts += st.Upserts
			if ty == workflows.TenantUpgradeWorkflow {
				f.PerTenant = append(f.PerTenant, st)
				outcomes[u.Status]++
			}
		}
		writes = append(writes, fmt.Sprintf("%s %d runs × 2 + %d upserts", ty, len(us), upserts))
	}
	fmt.Printf("visibility writes: %s\n", strings.Join(writes, "; "))
	fmt.Printf("histories: %d tenant upgrades %v, %d activities in all\n", len(f.PerTenant), outcomes, f.FleetActivities)
	if fw.proc != nil {
		fmt.Printf("rss_mb is the peak resident set of the worker process (the production binary, pid %d), sampled each second during the fleet; the server, the simulated cloud and the autopilot run in other processes\n", fw.proc.Pid())
	} else {
		fmt.Println("rss_mb is the peak resident set of this process (worker, simulated cloud, autopilot, client), sampled each second during the fleet; the server runs in its own process")
	}
	fmt.Printf("workflow_task_timeouts=%d workflow_task_failures=%d (every history read)\n", f.TaskTimeouts, f.TaskFailures)
	fmt.Printf("max_payload_kb=%.1f (the largest event of every history read, an upper bound on each payload; the server warns at 512 KB)\n", float64(f.MaxEventBytes)/1024)
	fmt.Println(f.line())
	return nil
}

// instant makes the simulated cloud do at once what takes it simulated time: imports,
// uninstalls and upgrades take 1 ns (the simulator's shortest; zero means its default), an
// import starts without queueing, no Work 365 job is pending or arrives (nothing to drain), no
// import fails, and people act at once (no autopilot delays). The fleet is then bound by the
// engine and the worker, which is what the ratio measures.
func instant(scn *sim.Scenario) {
	scn.Autopilot = sim.AutopilotConfig{}
	for i := range scn.Tenants {
		t := &scn.Tenants[i]
		t.Jobs = sim.Jobs{}
		t.Import = sim.Operation{Duration: time.Nanosecond, StartDelay: -1}
		t.Uninstall = sim.Operation{Duration: time.Nanosecond}
		t.Upgrade = sim.Operation{Duration: time.Nanosecond}
		t.Autopilot = nil
	}
}

// loadAvg is the machine's load average (1, 5, 15 minutes), for figures taken on a shared machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// baseline runs n workflows of k sequential no-op activities at once on their own task queue
// and returns the seconds from the first start to the last end.
func baseline(ctx context.Context, c client.Client, n, k int, wcfg app.WorkerConfig) (float64, error) {
	w := worker.New(c, engineQueue, wcfg.Options())
	w.RegisterWorkflowWithOptions(benchChain, workflow.RegisterOptions{Name: engineWorkflow})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activityOptions())
	if err := w.Start(); err != nil {
		return 0, fmt.Errorf("start the baseline worker: %w", err)
	}
	defer w.Stop()
	start := time.Now()
	runs := make([]client.WorkflowRun, 0, n)
	for i := range n {
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("bench-engine-%d-%d", start.UnixNano(), i), TaskQueue: engineQueue}, engineWorkflow, k)
		if err != nil {
			return 0, fmt.Errorf("start baseline workflow %d: %w", i, err)
		}
		runs = append(runs, r)
	}
	for _, r := range runs {
		if err := r.Get(ctx, nil); err != nil {
			return 0, fmt.Errorf("baseline workflow %s: %w", r.GetID(), err)
		}
	}
	return time.Since(start).Seconds(), nil
}

func activityOptions() activity.RegisterOptions { return activity.RegisterOptions{Name: "BenchNoop"} }

// benchChain runs k no-op activities one after the other.
func benchChain(ctx workflow.Context, k int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: baselineActivityTimeout, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}})
	for range k {
		if err := workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// runFleet launches the stack's tenants as one wave and returns the seconds until the fleet's
// result.
func runFleet(ctx context.Context, s *stack.Stack, n, concurrency int, prof *profiler) (float64, error) {
	if concurrency <= 0 {
		concurrency = n
	}
	inv := s.Inventory("bench")
	inv.Waves = []workflows.WaveSpec{{Name: "all", Concurrency: concurrency}}
	start := time.Now()
	id, state, err := s.Ops.LaunchFleet(ctx, inv)
	if err != nil {
		return 0, err
	}
	if state != "started" {
		return 0, fmt.Errorf("fleet %s: %s", id, state)
	}
	stopWatch := watch(ctx, s, id, prof)
	defer stopWatch()
	if err := awaitFleet(ctx, s.Client, id); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// awaitFleet waits for the fleet's result. A wait cut by the server (an overloaded embedded
// server may close its shard, and a long poll then ends in a deadline or "unavailable") is
// waited again: only the fleet's own end, or the bench's timeout, ends it.
func awaitFleet(ctx context.Context, c client.Client, id string) error {
	for {
		err := c.GetWorkflow(ctx, id, "").Get(ctx, nil)
		var ended *temporal.WorkflowExecutionError
		if err == nil || errors.As(err, &ended) || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("fleet %s: %w", id, err)
			}
			return nil
		}
		fmt.Printf("  waiting for the fleet's result again after: %v\n", err)
		if err := ctxtime.Sleep(ctx, time.Second); err != nil {
			return fmt.Errorf("fleet %s: %w", id, err)
		}
	}
}

// watch prints, every 15 seconds, the fleet's own count of its tenants and, from visibility
// (which may lag), how many upgrades finished and where the others are.
func watch(ctx context.Context, s *stack.Stack, fleetID string, prof *profiler) func() {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			us, err := s.Ops.List(ctx, fmt.Sprintf("WorkflowType = '%s'", workflows.TenantUpgradeWorkflow))
			if err != nil {
				continue
			}
			where, running := map[string]int{}, 0
			for _, u := range us {
				if u.Status != "Running" {
					where[u.Status]++
				} else {
					running++
					where[string(u.Stage)+"/"+u.WaitingOn]++
				}
			}
			if p, err := s.Ops.FleetProgress(ctx, fleetID); err == nil && len(p.Waves) > 0 {
				w := p.Waves[0]
				fmt.Printf("  fleet's view: %d pending, %d running, %d finished\n", w.Pending, w.Running, w.Finished)
			}
			fmt.Printf("  visibility: %d upgrades, %d running: %v (load %s)\n", len(us), running, where, loadAvg())
			if prof != nil {
				prof.observe(running)
			}
		}
	}()
	return cancel
}

func readHistory(ctx context.Context, c client.Client, id, runID string) (historyStats, error) {
	events := make([]*historypb.HistoryEvent, 0, 256)
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return historyStats{}, fmt.Errorf("history of %s: %w", id, err)
		}
		events = append(events, e)
	}
	return countHistory(events), nil
}

// sampleRSS samples a resident set (rss, in MB) each second until the returned function is
// called, which returns the peak in MB.
func sampleRSS(ctx context.Context, rss func() (float64, error)) func() float64 {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var peak float64
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if mb, err := rss(); err == nil {
				mu.Lock()
				peak = max(peak, mb)
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

type childServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    *sync.Mutex
}

// command sends one profiling command to the child (serveCommands).
func (c childServer) command(line string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		return fmt.Errorf("the server process: %w", err)
	}
	return nil
}

// stop closes the child's stdin (it stops its server then) and waits for it.
func (c childServer) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// startServer runs this binary again as the embedded server and returns its address.
func startServer(ctx context.Context, dyn serverConfig) (string, childServer, error) {
	self, err := os.Executable()
	if err != nil {
		return "", childServer{}, err
	}
	args := []string{"--" + serveFlag}
	for _, kv := range dyn.raw {
		args = append(args, "--server-config", kv)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", childServer{}, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", childServer{}, err
	}
	if err := cmd.Start(); err != nil {
		return "", childServer{}, fmt.Errorf("start the server process: %w", err)
	}
	c := childServer{cmd: cmd, stdin: stdin, mu: &sync.Mutex{}}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "frontend "); ok {
				lines <- a
			}
		}
	}()
	select {
	case a := <-lines:
		return a, c, nil
	case <-ctx.Done():
		c.stop()
		return "", childServer{}, fmt.Errorf("the server process did not start: %w", ctx.Err())
	}
}

// serveTemporal is the child process: the embedded server until stdin closes; it takes
// profiling commands from stdin meanwhile.
func serveTemporal(ctx context.Context, dyn serverConfig) error {
	srv, err := devserver.Start(ctx, devserver.Options{Namespace: stack.DefaultNamespace, SearchAttributes: searchattr.All(), LogLevel: "error", DynamicConfig: dyn.values})
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	fmt.Printf("frontend %s\n", srv.FrontendAddress())
	eof := make(chan struct{})
	go func() { serveCommands(os.Stdin); close(eof) }()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return nil
}

// workerFlags tune the rehearsal's worker (and the baseline's) as worker.yaml's worker block.
type workerFlags struct{ c app.WorkerConfig }

func (w *workerFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&w.c.WorkflowPollers, "workflow-pollers", 0, "worker.workflowPollers (0: the worker's default)")
	fs.IntVar(&w.c.ActivityPollers, "activity-pollers", 0, "worker.activityPollers (0: the worker's default)")
	fs.IntVar(&w.c.WorkflowTaskSlots, "workflow-task-slots", 0, "worker.workflowTaskSlots (0: the worker's default)")
	fs.IntVar(&w.c.ActivitySlots, "activity-slots", 0, "worker.activitySlots (0: the worker's default)")
	fs.IntVar(&w.c.StickyCacheSize, "sticky-cache", 0, "worker.stickyCacheSize (0: the worker's default)")
}

func (w *workerFlags) config() app.WorkerConfig { return w.c }

// serverConfig collects --server-config key=value flags: the value is JSON (a duration as a
// string, "5s").
type serverConfig struct {
	raw    []string
	values map[string]any
}

func (c *serverConfig) String() string { return strings.Join(c.raw, " ") }

func (c *serverConfig) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("--server-config %q: want key=value", kv)
	}
	var val any
	if err := json.Unmarshal([]byte(v), &val); err != nil {
		return fmt.Errorf("--server-config %s: the value %q is not JSON (a string needs quotes): %w", k, v, err)
	}
	if c.values == nil {
		c.values = map[string]any{}
	}
	c.values[k] = val
	c.raw = append(c.raw, kv)
	return nil
}
