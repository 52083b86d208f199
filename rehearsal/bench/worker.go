package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/csp-ops/work365-upgrade/internal/codec"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/rehearsal/workerproc"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// fleetWorker is where the fleet's worker runs: the production worker binary in a process of
// its own (proc set), or the stack's worker inside this process.
type fleetWorker struct {
	proc *workerproc.Worker
}

// rss is the worker's resident set in MB: its process's, or this process's.
func (w fleetWorker) rss() (float64, error) {
	if w.proc == nil {
		return workerproc.ResidentMB(0)
	}
	return workerproc.ResidentMB(w.proc.Pid())
}

// memory describes the worker's memory now: its resident set and, for a worker process, the
// Go runtime's own figures from its /metrics.
func (w fleetWorker) memory(ctx context.Context) string {
	mb, err := w.rss()
	out := fmt.Sprintf("worker rss %.0f MB", mb)
	if err != nil {
		out = fmt.Sprintf("worker rss unknown (%v)", err)
	}
	if w.proc == nil {
		return out + " (this process: worker, simulated cloud, autopilot, client)"
	}
	g, err := workerproc.ReadGoMemory(ctx, w.proc.Metrics)
	if err != nil {
		return fmt.Sprintf("%s (process %d; Go figures unknown: %v)", out, w.proc.Pid(), err)
	}
	return fmt.Sprintf("%s (process %d; %s)", out, w.proc.Pid(), g)
}

// benchKeys are new payload keys and the file a worker process reads them from (codec.keysFile),
// so this process and the worker encrypt alike, as a rehearsal does.
func benchKeys(dir string) (*codec.Keys, string, error) {
	k, err := codec.GenerateKey("bench-1")
	if err != nil {
		return nil, "", err
	}
	file := filepath.Join(dir, "payload-keys")
	if err := os.WriteFile(file, []byte(codec.Format(k)), 0o600); err != nil {
		return nil, "", err
	}
	keys, err := codec.NewKeys(k)
	return keys, file, err
}

// startWorkerProcess runs the production worker binary (bin, or built into dir) on the stack's
// task queue, its Microsoft calls going to the stack's simulated cloud and its notifications to
// the stack's autopilot.
func startWorkerProcess(ctx context.Context, s *stack.Stack, address, dir, bin, keysFile, memLimit string, wcfg app.WorkerConfig) (*workerproc.Host, *workerproc.Worker, error) {
	var env []string
	if memLimit != "" {
		env = append(env, "GOMEMLIMIT="+memLimit)
	}
	host, err := workerproc.Start(ctx, workerproc.Options{Dir: dir, Cloud: s.Cloud, People: s.Autopilot, Bin: bin, Worker: wcfg, PayloadKeysFile: keysFile, ExtraEnv: env,
		Temporal: app.TemporalConfig{Address: address, Namespace: s.Namespace(), TaskQueue: stack.DefaultTaskQueue},
		Logf:     func(format string, args ...any) { fmt.Printf(format+"\n", args...) }})
	if err != nil {
		return nil, nil, err
	}
	w, err := host.StartWorker(ctx, 1)
	if err != nil {
		host.Close()
		return nil, nil, err
	}
	return host, w, nil
}

// holdRelease says when held people may act: once hold upgrades run at once, or once every
// tenant's upgrade has started (no more will come: some finished without needing anyone).
func holdRelease(running, started, tenants, hold int) bool {
	return running >= hold || started >= tenants
}

// gate is closed once, by whoever opens it first; the stack's people wait on it (stack.Options.Hold).
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// hold counts the tenant upgrades in visibility every two seconds until holdRelease, prints
// the worker's memory at that moment and opens the gate. It returns when the gate is open or
// ctx ends.
func hold(ctx context.Context, s *stack.Stack, w fleetWorker, g *gate, tenants, n int) {
	defer g.open()
	count := func(query string) (int, error) {
		resp, err := s.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: s.Namespace(), Query: query})
		return int(resp.GetCount()), err
	}
	t0 := time.Now()
	last := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		started, err := count(fmt.Sprintf("WorkflowType = '%s'", workflows.TenantUpgradeWorkflow))
		if err != nil {
			continue
		}
		running, err := count(fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.TenantUpgradeWorkflow))
		if err != nil {
			continue
		}
		if holdRelease(running, started, tenants, n) {
			people, err := count(fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND %s != '%s'", workflows.TenantUpgradeWorkflow, searchattr.WaitingOn.GetName(), workflows.Nobody))
			waiting := fmt.Sprintf("%d waiting on people", people)
			if err != nil {
				waiting = fmt.Sprintf("waiting on people unknown: %v", err)
			}
			fmt.Printf("rss_in_flight: %d upgrades in flight (%d of %d started, %s), %s, after %.1f s (load %s)\n",
				running, started, tenants, waiting, w.memory(ctx), time.Since(t0).Seconds(), loadAvg())
			return
		}
		if time.Since(last) >= 15*time.Second {
			fmt.Printf("  holding the people: %d upgrades in flight, %d of %d started, %s (load %s)\n", running, started, tenants, w.memory(ctx), loadAvg())
			last = time.Now()
		}
	}
}
