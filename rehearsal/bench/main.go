// Command bench measures the fleet against the engine it runs on, in one run on one embedded
// Temporal server: (1) a bare-engine baseline of N workflows × K no-op activities; (2) a
// rehearsal fleet of N generated tenants through FleetUpgrade, with people who act at once and
// a simulated cloud without added latency; (3) every history, read back. The server runs in a
// child process of its own, so the peak RSS reported is the worker's side (worker, simulated
// cloud, autopilot and this client). Its last line is for scripts (see BENCHMARKS.md).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
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

	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

const (
	engineQueue    = "bench-engine"
	engineWorkflow = "BenchChain"
	serveFlag      = "serve-temporal"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	tenants := flag.Int("tenants", 200, "N: tenants in the fleet, and workflows in the baseline")
	seed := flag.Int64("seed", 1, "seed of the generated fleet")
	speed := flag.Float64("speed", 60, "simulated time runs this many times faster than real time (imports, drains, polls)")
	activities := flag.Int("activities", 23, "K: no-op activities per baseline workflow (the activities of a median tenant)")
	concurrency := flag.Int("concurrency", 0, "the fleet wave's concurrency (0: every tenant at once)")
	timeout := flag.Duration("timeout", 60*time.Minute, "give up after this long")
	serve := flag.Bool(serveFlag, false, "internal: run only the embedded Temporal server (the child process)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *serve {
		return serveTemporal(ctx)
	}
	if *tenants <= 0 || *activities <= 0 || *speed <= 0 {
		return errors.New("--tenants, --activities and --speed must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	address, server, err := startServer(ctx)
	if err != nil {
		return err
	}
	defer server.stop()
	fmt.Printf("embedded Temporal server in process %d at %s\n", server.cmd.Process.Pid, address)

	scn := sim.Generate(*tenants, *seed)
	scn.Faults = sim.Faults{}
	s, err := stack.Start(ctx, stack.Options{TemporalAddress: address, Scenario: scn, Speed: *speed, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer s.Stop()

	f := figures{Tenants: *tenants}
	f.EngineActivities = *tenants * *activities
	if f.EngineSeconds, err = baseline(ctx, s.Client, *tenants, *activities); err != nil {
		return err
	}
	fmt.Printf("baseline: %d workflows × %d no-op activities in %.1f s\n", *tenants, *activities, f.EngineSeconds)

	peak := sampleRSS(ctx)
	if f.Seconds, err = runFleet(ctx, s, *tenants, *concurrency); err != nil {
		return err
	}
	f.RSSMB = peak()
	fmt.Printf("fleet: %d tenants in %.1f s\n", *tenants, f.Seconds)

	outcomes := map[string]int{}
	for _, ty := range []string{workflows.TenantUpgradeWorkflow, workflows.PartnerCenterWorkflow, workflows.FleetWorkflow} {
		us, err := s.Ops.List(ctx, fmt.Sprintf("WorkflowType = '%s'", ty))
		if err != nil {
			return err
		}
		for _, u := range us {
			st, err := readHistory(ctx, s.Client, u.WorkflowID, u.RunID)
			if err != nil {
				return err
			}
			f.FleetActivities += st.Actions
			if ty == workflows.TenantUpgradeWorkflow {
				f.PerTenant = append(f.PerTenant, st)
				outcomes[u.Status]++
			}
		}
	}
	fmt.Printf("histories: %d tenant upgrades %v, %d activities in all\n", len(f.PerTenant), outcomes, f.FleetActivities)
	fmt.Println("rss_mb is the peak resident set of this process (worker, simulated cloud, autopilot, client), sampled each second during the fleet; the server runs in its own process")
	fmt.Println(f.line())
	return nil
}

// baseline runs n workflows of k sequential no-op activities at once on their own task queue
// and returns the seconds from the first start to the last end.
func baseline(ctx context.Context, c client.Client, n, k int) (float64, error) {
	w := worker.New(c, engineQueue, worker.Options{})
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
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}})
	for range k {
		if err := workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// runFleet launches the stack's tenants as one wave and returns the seconds until the fleet's
// result.
func runFleet(ctx context.Context, s *stack.Stack, n, concurrency int) (float64, error) {
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
	stopWatch := watch(ctx, s)
	defer stopWatch()
	if err := s.Client.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		return 0, fmt.Errorf("fleet %s: %w", id, err)
	}
	return time.Since(start).Seconds(), nil
}

// watch prints, every 30 seconds, how many upgrades finished and where the others are.
func watch(ctx context.Context, s *stack.Stack) func() {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(30 * time.Second)
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
			where := map[string]int{}
			for _, u := range us {
				if u.Status != "Running" {
					where[u.Status]++
				} else {
					where[string(u.Stage)+"/"+u.WaitingOn]++
				}
			}
			fmt.Printf("  %d upgrades: %v\n", len(us), where)
		}
	}()
	return cancel
}

func readHistory(ctx context.Context, c client.Client, id, runID string) (historyStats, error) {
	var events []*historypb.HistoryEvent
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

// sampleRSS samples this process's resident set each second until the returned function is
// called, which returns the peak in MB.
func sampleRSS(ctx context.Context) func() float64 {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var peak float64
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if mb, err := rssMB(); err == nil {
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

// rssMB reads VmRSS from /proc/self/status (Linux).
func rssMB() (float64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

type childServer struct {
	cmd   *exec.Cmd
	stdin io.Closer
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
func startServer(ctx context.Context) (string, childServer, error) {
	self, err := os.Executable()
	if err != nil {
		return "", childServer{}, err
	}
	cmd := exec.Command(self, "--"+serveFlag)
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
	c := childServer{cmd: cmd, stdin: stdin}
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

// serveTemporal is the child process: the embedded server until stdin closes.
func serveTemporal(ctx context.Context) error {
	srv, err := devserver.Start(ctx, devserver.Options{SearchAttributes: searchattr.All(), LogLevel: "error"})
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	fmt.Printf("frontend %s\n", srv.FrontendAddress())
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return nil
}
