// Command devstack is the one-command rehearsal: an embedded Temporal server (SQLite under a
// local state folder) with its Web UI, the simulated Microsoft cloud, the worker and the human
// autopilot in one process. It launches the scenario's tenants as a fleet (FleetUpgrade, with
// the waves of the example inventory: a canary behind an approval gate, then the bulk), shows
// each wave and what the fleet waits on until every tenant finishes, prints a summary table,
// writes the full report, and keeps the UI up until Ctrl-C (or exits, --headless). A rerun
// with the same state folder resumes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/csp-ops/work365-upgrade/internal/codec"
	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// flags are devstack's command line.
type flags struct {
	state, scenario, inventory, approve, temporalAddr, fleet, namespace, taskQueue string
	logFormat, logLevel, logFile, keysFile, faults                                 string
	uiPort, tenants, deskPort                                                      int
	seed                                                                           int64
	speed                                                                          float64
	headless, force, compare, deskConfirms                                         bool
}

func parseFlags() flags {
	var f flags
	flag.StringVar(&f.state, "state", ".devstack", "state folder (SQLite file of the embedded Temporal server, worker log, reports); a rerun resumes")
	flag.IntVar(&f.uiPort, "ui-port", 8233, "Temporal Web UI port")
	flag.IntVar(&f.deskPort, "desk-port", 0, "the task desk's port on 127.0.0.1 (0: any free port; printed at the start)")
	flag.BoolVar(&f.deskConfirms, "desk-confirms", true, "the simulated people confirm through the task desk (sign in with their password); false: they send the Update themselves")
	flag.StringVar(&f.scenario, "scenario", "examples/sim-scenario.yaml", "simulated cloud scenario (its tenants are the fleet)")
	flag.StringVar(&f.inventory, "inventory", "examples/fleet.yaml", "inventory whose waves and fleet options the rehearsal uses (its tenants are not: the scenario's are)")
	flag.StringVar(&f.approve, "approve", "auto", "who approves the canary after its bake time: auto (the autopilot, as the operator) or manual (you, with the printed starter command)")
	flag.IntVar(&f.tenants, "tenants", 0, "generate this many tenants instead of reading --scenario")
	flag.Int64Var(&f.seed, "seed", 1, "seed for --tenants")
	flag.Float64Var(&f.speed, "speed", 60, "simulated time runs this many times faster than real time")
	flag.BoolVar(&f.headless, "headless", false, "exit when every tenant has finished instead of keeping the UI up")
	flag.StringVar(&f.temporalAddr, "temporal-address", "", "use this Temporal server instead of embedding one")
	flag.StringVar(&f.fleet, "fleet", "example", "fleet name (search attribute WorkFleet)")
	flag.StringVar(&f.namespace, "namespace", stack.DefaultNamespace, "Temporal namespace (\"default\" is refused with --temporal-address unless --force-production-names)")
	flag.StringVar(&f.taskQueue, "task-queue", stack.DefaultTaskQueue, "task queue of the rehearsal's worker (the production queue is refused with --temporal-address unless --force-production-names)")
	flag.BoolVar(&f.force, "force-production-names", false, "allow namespace \"default\" and the production task queue on --temporal-address (only for a server that serves no real tenant)")
	flag.StringVar(&f.logFormat, "log-format", "console", "worker log format: console or json")
	flag.StringVar(&f.logLevel, "log-level", "info", "worker log level")
	flag.StringVar(&f.logFile, "log-file", "", "worker log file (default: worker.log in the state folder; - for stderr)")
	flag.StringVar(&f.keysFile, "payload-keys-file", "", "payload encryption keys (id=base64 lines, the first encrypts; default: payload-keys in the state folder, created)")
	flag.StringVar(&f.faults, "faults", "", "faults on every Microsoft API call, e.g. 429=10%,503=2%,latency=20ms,retry-after=1s (replaces the scenario's; the tenants are then launched one by one and the throttling figures printed)")
	flag.BoolVar(&f.compare, "compare-faultfree", false, "also run the same tenants without faults, side by side, and print the slowdown (implies --headless)")
	flag.Parse()
	if f.compare {
		f.headless = true
	}
	return f
}

func run() error {
	f := parseFlags()
	if f.approve != "auto" && f.approve != "manual" {
		return fmt.Errorf("--approve %q: use auto (the autopilot approves the canary after its bake time) or manual (you approve it)", f.approve)
	}
	if f.logFile == "" {
		f.logFile = filepath.Join(f.state, "worker.log")
	}
	if err := os.MkdirAll(f.state, 0o755); err != nil {
		return fmt.Errorf("create the state folder %s: %w", f.state, err)
	}
	logger, err := app.NewLogger(app.LogConfig{Format: f.logFormat, Level: f.logLevel, File: f.logFile})
	if err != nil {
		return err
	}
	var scn *sim.Scenario
	if f.tenants > 0 {
		scn = sim.Generate(f.tenants, f.seed)
	} else if scn, err = sim.LoadScenario(f.scenario); err != nil {
		return err
	}
	if f.faults != "" {
		faults, err := sim.ParseFaults(f.faults)
		if err != nil {
			return fmt.Errorf("--faults: %w", err)
		}
		scn.Faults = faults
		for i := range scn.Tenants {
			scn.Tenants[i].Faults = nil
		}
	}
	example, err := inventory.Load(f.inventory)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	fmt.Printf("Starting the rehearsal stack (%d tenants, simulated time ×%g)…\n", len(scn.Tenants), f.speed)
	opts := stack.Options{TemporalAddress: f.temporalAddr, Namespace: f.namespace, TaskQueue: f.taskQueue, ForceProductionNames: f.force,
		StateDir: f.state, Scenario: scn, Speed: f.speed, Logger: logger, DeskPort: f.deskPort, DeskConfirms: f.deskConfirms}
	if f.temporalAddr == "" {
		opts.UIPort = f.uiPort
	} else {
		opts.StateDir = ""
	}
	if f.keysFile != "" {
		if opts.PayloadKeys, err = codec.Load(f.keysFile, ""); err != nil {
			return err
		}
	}
	s, err := stack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Stop()
	address := f.temporalAddr
	if s.Server != nil {
		address = s.Server.FrontendAddress()
		fmt.Printf("Temporal %s   Web UI %s\n", address, s.Server.UIURL())
	}
	keys := "a new key in memory"
	switch {
	case f.keysFile != "":
		keys = f.keysFile
	case opts.StateDir != "":
		keys = filepath.Join(opts.StateDir, stack.PayloadKeysFile)
	}
	fmt.Printf("Payloads encrypted (keys: %s); the Web UI decodes them through the codec server %s\n", keys, s.CodecURL)
	fmt.Printf("Task desk %s (people confirm there: %v); each task notification links to it\n", s.DeskURL, f.deskConfirms)
	fmt.Printf("Simulated Microsoft cloud %s\nWorker log %s\n\n", s.Cloud.URL(), f.logFile)

	if f.faults != "" || f.compare {
		if err := measureFaults(ctx, s, scn, f, logger, os.Stdout); err != nil {
			return err
		}
	} else if _, _, err := demo(ctx, s, example, demoOptions{fleet: f.fleet, state: f.state, address: address, namespace: f.namespace,
		speed: f.speed, manual: f.approve == "manual", out: os.Stdout}); err != nil {
		return err
	}
	if f.headless {
		return nil
	}
	fmt.Println("\nEvery tenant has finished. The Web UI stays up until Ctrl-C.")
	<-ctx.Done()
	logger.Info("stopping")
	return nil
}

// demoOptions shape one demo run.
type demoOptions struct {
	fleet, state, address, namespace string
	speed                            float64
	manual                           bool
	out                              io.Writer
}

// demo launches the rehearsal's tenants as a fleet with the example's waves, follows it to
// the end (approving the canary, unless manual), prints the summary table and writes the full
// reports into the state folder, returning their paths.
func demo(ctx context.Context, s *stack.Stack, example *inventory.Inventory, o demoOptions) (md, csvPath string, err error) {
	inv := FleetInventory(s.Inventory(o.fleet), example, o.speed)
	id, state, err := s.Ops.LaunchFleet(ctx, inv)
	if err != nil {
		return "", "", err
	}
	fmt.Fprintf(o.out, "Fleet %s (workflow %s): %s\n", inv.Fleet, id, state)
	printPlan(o.out, inv, o.speed)
	fmt.Fprintln(o.out)

	w := &watcher{o: s.Ops, out: o.out, id: id, fleet: inv.Fleet, speed: o.speed, manual: o.manual,
		approveCmd: fmt.Sprintf("go run ./starter --address %s --namespace %s fleet approve %s %%s --by <your name> --why \"<why the next wave may start>\"", o.address, o.namespace, inv.Fleet)}
	if err := w.follow(ctx); err != nil {
		return "", "", err
	}
	rows, err := s.Ops.FleetReport(ctx, id)
	if err != nil {
		return "", "", err
	}
	rows = Simulated(rows, o.speed)
	fmt.Fprintln(o.out)
	if err := ops.WriteTable(o.out, rows); err != nil {
		return "", "", err
	}
	if md, csvPath, err = writeReports(o.state, inv.Fleet, o.speed, rows); err != nil {
		return "", "", err
	}
	fmt.Fprintf(o.out, "\nDurations are in simulated (runbook) time. Full report, every stage with what it did:\n  %s\n  %s\n", md, csvPath)
	return md, csvPath, nil
}

// FleetInventory gives the rehearsal's tenants the example inventory's waves and fleet options:
// each wave but the last takes the next 1% of the tenants (at least one: the canary), the last
// wave the rest. Bake times are divided by the speed, like every other duration.
func FleetInventory(inv, example *inventory.Inventory, speed float64) *inventory.Inventory {
	out := *inv
	out.Options = example.Options
	out.Waves = append([]workflows.WaveSpec(nil), example.Waves...)
	if len(out.Waves) == 0 {
		out.Waves = []workflows.WaveSpec{{Name: "all"}}
	}
	for i := range out.Waves {
		if out.Waves[i].BakeTime > 0 && speed > 0 {
			out.Waves[i].BakeTime = max(time.Second, time.Duration(float64(out.Waves[i].BakeTime)/speed))
		}
	}
	if out.Options.StuckAfter > 0 && speed > 0 {
		out.Options.StuckAfter = time.Duration(float64(out.Options.StuckAfter) / speed)
	}
	out.Tenants = append([]inventory.Entry(nil), inv.Tenants...)
	per := max(1, len(out.Tenants)/100)
	next := 0
	for w := range out.Waves {
		n := per
		if w == len(out.Waves)-1 {
			n = len(out.Tenants)
		}
		for ; n > 0 && next < len(out.Tenants); n-- {
			out.Tenants[next].Tenant.Wave = out.Waves[w].Name
			next++
		}
	}
	return &out
}

// printPlan lists the waves: their tenants, limits and gates.
func printPlan(w io.Writer, inv *inventory.Inventory, speed float64) {
	byWave := inv.ByWave()
	for i, wv := range inv.Waves {
		var extra []string
		if wv.Concurrency > 0 {
			extra = append(extra, fmt.Sprintf("%d at a time", wv.Concurrency))
		}
		if wv.BakeTime > 0 {
			extra = append(extra, "bake "+workflows.Config{TimeScale: speed}.Show(wv.BakeTime))
		}
		if wv.Approval && i+1 < len(inv.Waves) {
			extra = append(extra, "then approval")
		}
		names := make([]string, 0, len(byWave[i]))
		for _, t := range byWave[i] {
			names = append(names, t.DisplayName)
		}
		list := strings.Join(names, ", ")
		if len(names) > 6 {
			list = strings.Join(names[:6], ", ") + fmt.Sprintf(" and %d more", len(names)-6)
		}
		fmt.Fprintf(w, "  wave %-8s %3d tenants (%s): %s\n", wv.Name, len(byWave[i]), strings.Join(extra, ", "), list)
	}
}

// watcher follows the fleet on the terminal and plays the operator at the approval gate.
type watcher struct {
	o          ops.Ops
	out        io.Writer
	id, fleet  string
	speed      float64
	manual     bool
	approveCmd string // with %s for the wave
	began      time.Time
	last       string // the last fleet picture printed
	lastAt     time.Time
	asked      map[string]bool
	tenants    map[string]string // tenant → what it last did, for small fleets
}

// follow prints a line whenever the fleet's picture changes (and every 30 s otherwise) until
// the fleet has finished.
func (w *watcher) follow(ctx context.Context) error {
	w.began, w.asked, w.tenants = time.Now(), map[string]bool{}, map[string]string{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p, err := w.o.FleetProgress(ctx, w.id)
		if err != nil && ctx.Err() == nil {
			return err
		}
		ts, err := w.o.FleetTenants(ctx, w.id)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(ts) <= 20 {
			w.tenantLines(ts)
		}
		block := "  " + strings.Join(FleetLines(p, ts), "\n  ")
		if block != w.last || time.Since(w.lastAt) > 30*time.Second {
			fmt.Fprintf(w.out, "%s fleet %s\n%s\n", w.elapsed(), w.fleet, block)
			w.last, w.lastAt = block, time.Now()
		}
		if p.Phase == "done" {
			return nil
		}
		if p.Phase == "awaiting-approval" && !w.asked[p.Wave] {
			w.asked[p.Wave] = true
			if err := w.approval(ctx, p.Wave); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// approval approves the wave as the operator (auto) or tells the person at the keyboard how.
func (w *watcher) approval(ctx context.Context, wave string) error {
	if w.manual {
		fmt.Fprintf(w.out, "\nWave %s is done and baked; the next wave waits for your approval. From another terminal:\n\n  %s\n\n", wave, fmt.Sprintf(w.approveCmd, wave))
		return nil
	}
	why := fmt.Sprintf("wave %s finished within its failure budget and baked", wave)
	err := w.o.FleetAction(ctx, w.id, workflows.UpdateApproveWave, workflows.WaveApproval{Wave: wave, By: "operator (autopilot)", Why: why})
	if err != nil && !strings.Contains(err.Error(), "already approved") {
		return fmt.Errorf("approve wave %s: %w", wave, err)
	}
	fmt.Fprintf(w.out, "%s the operator (autopilot) approves wave %s: %s\n%*s(--approve manual leaves it to you)\n", w.elapsed(), wave, why, len(w.elapsed())+1, "")
	return nil
}

// tenantLines prints what each tenant of a small fleet does, when it changes.
func (w *watcher) tenantLines(ts []workflows.FleetTenant) {
	for _, t := range ts {
		var now string
		switch t.State {
		case workflows.TenantPending:
			continue
		case workflows.TenantFinished:
			now = string(t.Outcome)
			if t.Error != "" {
				now += ": " + t.Error
			}
		default:
			now = string(t.Stage)
			if t.WaitingOn != "" && t.WaitingOn != workflows.Nobody {
				now += ", waiting on " + string(t.WaitingOn)
			}
		}
		if w.tenants[t.Name] != now {
			w.tenants[t.Name] = now
			fmt.Fprintf(w.out, "%s %s: %s\n", w.elapsed(), t.Name, now)
		}
	}
}

// elapsed is the time since the fleet was followed, simulated (runbook time) and real.
func (w *watcher) elapsed() string {
	real := time.Since(w.began).Round(time.Second)
	return fmt.Sprintf("[%7s simulated, %6s real]", workflows.Config{TimeScale: w.speed}.Show(real), workflows.ShortDuration(real))
}

// FleetLines are the fleet's picture: a line per wave with its tenants done / running /
// waiting on people / failed, then what the fleet itself waits on.
func FleetLines(p workflows.FleetProgress, ts []workflows.FleetTenant) []string {
	out := make([]string, 0, len(p.Waves)+1)
	width := 0
	for _, wv := range p.Waves {
		width = max(width, len(wv.Name))
	}
	for i, wv := range p.Waves {
		done, running, people, failed := 0, 0, 0, 0
		for _, t := range ts {
			if t.Wave != i {
				continue
			}
			switch t.State {
			case workflows.TenantFinished:
				if t.Outcome == workflows.OutcomeFailed {
					failed++
				} else {
					done++
				}
			case workflows.TenantRunning:
				if t.WaitingOn != "" && t.WaitingOn != workflows.Nobody {
					people++
				} else {
					running++
				}
			}
		}
		out = append(out, fmt.Sprintf("wave %-*s  %d/%d done  %d running  %d waiting on people  %d failed", width, wv.Name, done, wv.Size, running, people, failed))
	}
	return append(out, "fleet waits on: "+FleetWaitsOn(p))
}

// FleetWaitsOn says in plain words what the fleet itself waits on.
func FleetWaitsOn(p workflows.FleetProgress) string {
	switch {
	case p.Halted != "":
		return "halted (" + p.Halted + "): an operator resumes or cancels"
	case p.Paused:
		return "paused by an operator"
	case p.Phase == "done":
		return "nothing: every wave has finished"
	case p.Phase == "baking":
		return "bake time of wave " + p.Wave + " until " + p.BakeUntil.Local().Format("15:04:05")
	case p.Phase == "awaiting-approval":
		return "the operator's approval of wave " + p.Wave
	case p.Phase == "running-wave":
		return "the tenants of wave " + p.Wave
	}
	return p.Phase
}

// Simulated rescales the report's times to the rehearsal's simulated clock: each upgrade's
// stages keep their start, and every span is multiplied by the speed.
func Simulated(rows []ops.ReportRow, speed float64) []ops.ReportRow {
	if speed <= 0 || speed == 1 {
		return rows
	}
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * speed) }
	out := make([]ops.ReportRow, len(rows))
	for i, r := range rows {
		if len(r.Stages) > 0 {
			t0 := r.Stages[0].Started
			at := func(t time.Time) time.Time { return t0.Add(scale(t.Sub(t0))) }
			stages := make([]workflows.StageRecord, len(r.Stages))
			for j, s := range r.Stages {
				s.Started = at(s.Started)
				if s.Ended != nil {
					e := at(*s.Ended)
					s.Ended = &e
				}
				stages[j] = s
			}
			r.Stages = stages
			cs := make([]workflows.Confirmation, len(r.Confirmations))
			for j, c := range r.Confirmations {
				c.At = at(c.At)
				cs[j] = c
			}
			r.Confirmations = cs
		}
		r.HumanWait = scale(r.HumanWait)
		pcs := make([]workflows.PartnerCenterResult, len(r.PartnerCenters))
		for j, pc := range r.PartnerCenters {
			pc.HumanWait = scale(pc.HumanWait)
			pcs[j] = pc
		}
		r.PartnerCenters = pcs
		out[i] = r
	}
	return out
}

// writeReports writes report.md and report.csv into the state folder and returns their
// absolute paths.
func writeReports(dir, fleet string, speed float64, rows []ops.ReportRow) (string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	md, csvPath := filepath.Join(abs, "report.md"), filepath.Join(abs, "report.csv")
	write := func(path, format, header string) error {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
		_, _ = io.WriteString(f, header)
		err = ops.WriteReport(f, format, rows)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	header := fmt.Sprintf("# Rehearsal of fleet %s\n\nDurations in simulated (runbook) time: the rehearsal ran ×%g.\n\n", fleet, speed)
	if err := write(md, "markdown", header); err != nil {
		return "", "", err
	}
	if err := write(csvPath, "csv", ""); err != nil {
		return "", "", err
	}
	return md, csvPath, nil
}
