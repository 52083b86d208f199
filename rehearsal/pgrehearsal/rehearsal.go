package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/headers"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/deploy"
	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/rehearsal/autopilot"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/rehearsal/workerproc"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// namespace is where the rehearsal runs: compose's "rehearsal" namespace (temporal.env), so
// that its workers never meet a production worker's tasks.
const namespace = "rehearsal"

const fleetName = "pg-rehearsal"

func serverVersion() string { return headers.ServerVersion }

// rehearsal is the fleet side: the simulated cloud behind its HTTPS proxy, the simulated
// people (fed by the workers' JSON webhook), the worker processes and the operator's client.
type rehearsal struct {
	o        options
	logf     func(string, ...any)
	work     string
	frontend string
	client   client.Client
	ops      ops.Ops
	cloud    *sim.Cloud
	pilot    *autopilot.Autopilot
	workers  []*workerproc.Worker
	failures []error
	cleanup  []func()
}

func newRehearsal(ctx context.Context, o options, s deploy.TemporalSettings, frontend, work, archiveURI string, logf func(string, ...any)) (_ *rehearsal, err error) {
	if !slices.Contains(s.Namespaces, namespace) {
		return nil, fmt.Errorf("%s: NAMESPACES must include %q (the rehearsal's namespace)", deploy.TemporalEnvFile, namespace)
	}
	r := &rehearsal{o: o, logf: logf, work: work, frontend: frontend}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	admin, err := dial(ctx, frontend, namespace, zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", frontend, err)
	}
	r.cleanup = append(r.cleanup, admin.Close)
	if err := setupNamespaces(ctx, admin, s, archiveURI); err != nil {
		return nil, err
	}
	logf("namespaces %s (retention %s, history archival to %s) and search attributes set up", strings.Join(s.Namespaces, ", "), s.Retention, archiveURI)
	r.client = admin
	r.ops = ops.Ops{Client: admin, TaskQueue: app.TaskQueue}

	scn := sim.Generate(o.tenants, o.seed)
	scn.Faults = sim.Faults{}
	// Tokens live two real hours, as in the in-process rehearsals (MSAL renews by wall time).
	if min := time.Duration(o.speed * float64(2*time.Hour)); scn.TokenLifetime < min {
		scn.TokenLifetime = min
	}
	r.cloud = sim.New(scn, sim.Options{Clock: sim.NewScaledClock(o.speed)})
	cloudURL := r.cloud.Start()
	r.cleanup = append(r.cleanup, r.cloud.Close)
	logf("simulated Microsoft cloud for %d tenants at %s", o.tenants, cloudURL)

	speed := o.speed
	r.pilot = autopilot.New(r.cloud, stack.Confirmer{Ops: r.ops}, autopilot.Options{Sleep: func(ctx context.Context, d time.Duration) error {
		return ctxtime.Sleep(ctx, time.Duration(float64(d)/speed))
	}})
	r.cleanup = append(r.cleanup, r.pilot.Close)
	host, err := workerproc.Start(ctx, workerproc.Options{Dir: work, Cloud: r.cloud, People: r.pilot, Bin: o.workerBin, Logf: logf,
		Temporal: app.TemporalConfig{Address: frontend, Namespace: namespace, TaskQueue: app.TaskQueue}})
	if err != nil {
		return nil, err
	}
	r.cleanup = append(r.cleanup, host.Close)
	for i := range o.workers {
		w, err := host.StartWorker(ctx, i+1)
		if err != nil {
			return nil, err
		}
		r.workers = append(r.workers, w)
	}
	return r, nil
}

func (r *rehearsal) close() {
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
	r.cleanup = nil
}

func (r *rehearsal) fail(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	r.failures = append(r.failures, err)
	r.logf("CHECK FAILED: %v", err)
}

// inventory is the operator's inventory for the generated tenants, windows open now, with the
// upgrade durations scaled to the simulated clock.
func (r *rehearsal) inventory() *inventory.Inventory {
	scn := r.cloud.Scenario()
	inv := &inventory.Inventory{Path: "(generated)", Fleet: fleetName, Config: stack.ScaledConfig(&scn, r.o.speed),
		Waves: []workflows.WaveSpec{{Name: "all", Concurrency: r.o.concurrency}}}
	now := time.Now()
	for i, t := range scn.Tenants {
		inv.Tenants = append(inv.Tenants, inventory.Entry{Tenant: stack.TenantSpec(t, now), Line: i + 1})
	}
	return inv
}

// run launches the fleet, stops one worker with SIGTERM and kills another with SIGKILL on the
// way, waits for the fleet and checks the outcome.
func (r *rehearsal) run(ctx context.Context, fig *figures) error {
	inv := r.inventory()
	t0 := time.Now()
	id, state, err := r.ops.LaunchFleet(ctx, inv)
	if err != nil {
		return fmt.Errorf("launch the fleet: %w", err)
	}
	r.logf("fleet %s %s: %d tenants, wave concurrency %d", id, state, len(inv.Tenants), r.o.concurrency)
	total := int64(len(inv.Tenants))
	done := fmt.Sprintf("WorkFleet = '%s' AND WorkflowType = '%s' AND ExecutionStatus = 'Completed'", fleetName, workflows.TenantUpgradeWorkflow)
	fleetRun := r.client.GetWorkflow(ctx, id, "")
	fleetDone := make(chan error, 1)
	var res workflows.FleetResult
	go func() { fleetDone <- fleetRun.Get(ctx, &res) }()

	midRunChecked := false
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastLog := time.Time{}
wait:
	for {
		select {
		case err := <-fleetDone:
			if err != nil {
				return fmt.Errorf("the fleet workflow: %w", err)
			}
			break wait
		case <-ctx.Done():
			return fmt.Errorf("waiting for the fleet: %w", ctx.Err())
		case <-tick.C:
		}
		n, err := r.count(ctx, done)
		if err != nil {
			r.logf("count completed upgrades: %v", err)
			continue
		}
		if time.Since(lastLog) > 15*time.Second {
			r.logf("%d/%d tenants completed", n, total)
			lastLog = time.Now()
		}
		if !midRunChecked && n >= total/10 {
			midRunChecked = true
			r.onCallQueries(ctx, fig, "mid-run")
		}
		if w := r.workers[0]; w.Stopped() == "" && n >= total/4 {
			t := time.Now()
			err := w.Stop(syscall.SIGTERM, "SIGTERM", 2*time.Minute)
			r.logf("worker 1 stopped with SIGTERM at %d/%d completed: exit %v after %.1fs", n, total, orText(err), time.Since(t).Seconds())
			fig.add(fmt.Sprintf("worker 1 SIGTERM at %d/%d: exit %s in", n, total, orText(err)), time.Since(t))
			if err != nil {
				r.fail("worker 1 did not stop cleanly on SIGTERM: %v", err)
			}
		}
		if w := r.workers[1]; w.Stopped() == "" && n >= total/2 {
			err := w.Stop(syscall.SIGKILL, "SIGKILL", 30*time.Second)
			r.logf("worker 2 killed with SIGKILL at %d/%d completed (%v)", n, total, err)
			fig.note("worker 2 SIGKILL at %d/%d completed", n, total)
		}
	}
	fleetTime := time.Since(t0)
	fig.add(fmt.Sprintf("fleet of %d tenants, launch to end", total), fleetTime)
	fig.note("%-52s %8.1f", "tenants per minute", float64(total)/fleetTime.Minutes())
	for _, w := range r.workers[:2] {
		if w.Stopped() == "" {
			r.fail("the fleet ended before worker %d was stopped: use more tenants or a lower --speed", w.N)
		}
	}
	r.checkOutcome(ctx, inv, res)
	r.checkReport(res)
	r.onCallQueries(ctx, fig, "final")
	r.checkFinalVisibility(ctx)
	for _, w := range r.workers[2:] {
		if err := w.Stop(syscall.SIGTERM, "end", time.Minute); err != nil {
			r.fail("worker %d did not stop cleanly at the end: %v", w.N, err)
		}
	}
	return nil
}

func orText(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

func (r *rehearsal) count(ctx context.Context, query string) (int64, error) {
	resp, err := r.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query})
	if err != nil {
		return 0, err
	}
	return resp.GetCount(), nil
}

// checkOutcome: every tenant upgraded, started once (one execution of its workflow ID, as
// visibility lists them), and the simulated cloud saw exactly one Work 365 import per tenant
// (the portal's reinstall is the only other import). The fleet's result is a summary (counts
// and the failed tenants) since the fleet-summary change; an older fleet lists every tenant.
func (r *rehearsal) checkOutcome(ctx context.Context, inv *inventory.Inventory, res workflows.FleetResult) {
	total, outcomes := res.Total, res.Outcomes
	if len(res.Tenants) > 0 {
		total, outcomes = len(res.Tenants), map[workflows.Outcome]int{}
		for _, t := range res.Tenants {
			outcomes[t.Outcome]++
		}
	}
	if total != len(inv.Tenants) {
		r.fail("the fleet reports %d tenants, the inventory has %d", total, len(inv.Tenants))
	}
	if outcomes[workflows.OutcomeUpgraded] != len(inv.Tenants) {
		r.fail("%d of %d tenants upgraded (outcomes %v)", outcomes[workflows.OutcomeUpgraded], len(inv.Tenants), outcomes)
	}
	for _, t := range append(res.Failed, res.Tenants...) {
		if t.Outcome != workflows.OutcomeUpgraded {
			r.fail("%s: outcome %q (%s)", t.Name, t.Outcome, t.Error)
		}
	}
	for _, e := range inv.Tenants {
		n, err := r.count(ctx, fmt.Sprintf("WorkflowId = '%s'", e.Tenant.UpgradeWorkflowID()))
		if err != nil {
			r.fail("%s: count its upgrade's executions: %v", e.Tenant.DisplayName, err)
		} else if n != 1 {
			r.fail("%s: %d executions of its upgrade, want exactly one", e.Tenant.DisplayName, n)
		}
	}
	r.logf("outcomes: %v", outcomes)
	imports, retried := 0, 0
	for _, e := range inv.Tenants {
		c := r.cloud.TenantCounters(e.Tenant.TenantID)
		// The generated fleet has tenants whose first import fails by design (the operator's
		// retry starts a new import job): one import succeeded, and none was started beyond
		// the retries of failed ones.
		succeeded := c.ImportsSucceeded - c.PortalInstalls
		started := c.Imports - c.PortalInstalls
		imports += succeeded
		retried += c.ImportsFailed
		if succeeded != 1 || started != 1+c.ImportsFailed {
			r.fail("%s: %d Work 365 imports succeeded, %d started (%d failed by the scenario), want exactly one", e.Tenant.DisplayName, succeeded, started, c.ImportsFailed)
		}
		if st, ok := r.cloud.State(e.Tenant.TenantID); ok && st.Frozen {
			r.fail("%s: Work 365 left frozen", e.Tenant.DisplayName)
		}
	}
	r.logf("Work 365 imports seen by the simulated cloud: %d succeeded for %d tenants (%d failed by the scenario and retried by the operator)", imports, len(inv.Tenants), retried)
}

// checkReport: the fleet wrote its final report (JSON and CSV) when it ended.
func (r *rehearsal) checkReport(res workflows.FleetResult) {
	jsons, _ := filepath.Glob(filepath.Join(r.work, "reports", fleetName+"-*.json"))
	csvs, _ := filepath.Glob(filepath.Join(r.work, "reports", fleetName+"-*.csv"))
	if len(jsons) != 1 || len(csvs) != 1 {
		r.fail("final report: %d JSON and %d CSV files in %s, want one each (fleet events: %v)", len(jsons), len(csvs), filepath.Join(r.work, "reports"), res.Events)
		return
	}
	data, err := os.ReadFile(jsons[0])
	var rep activities.FleetReport
	if err == nil {
		err = json.Unmarshal(data, &rep)
	}
	if err != nil || len(rep.Tenants) != r.o.tenants {
		r.fail("final report %s: %v, %d tenants", jsons[0], err, len(rep.Tenants))
		return
	}
	for _, t := range rep.Tenants {
		if t.Outcome != string(workflows.OutcomeUpgraded) {
			r.fail("final report %s: %s: outcome %q (%s)", filepath.Base(jsons[0]), t.Name, t.Outcome, t.Error)
		}
	}
	r.logf("final report written by the fleet: %s and %s", filepath.Base(jsons[0]), filepath.Base(csvs[0]))
}
