// Command devstack is the one-command rehearsal: an embedded Temporal server (SQLite under a
// local state folder) with its Web UI, the simulated Microsoft cloud, the worker and the human
// autopilot in one process. It launches the example fleet, shows live progress until every
// tenant finishes, prints the report, and keeps the UI up until Ctrl-C (or exits, --headless).
// A rerun with the same state folder resumes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/csp-ops/work365-upgrade/internal/codec"
	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/worker/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	state := flag.String("state", ".devstack", "state folder (SQLite file of the embedded Temporal server); a rerun resumes")
	uiPort := flag.Int("ui-port", 8233, "Temporal Web UI port")
	scenarioPath := flag.String("scenario", "examples/sim-scenario.yaml", "simulated cloud scenario (its tenants are the fleet)")
	tenants := flag.Int("tenants", 0, "generate this many tenants instead of reading --scenario")
	seed := flag.Int64("seed", 1, "seed for --tenants")
	speed := flag.Float64("speed", 60, "simulated time runs this many times faster than real time")
	headless := flag.Bool("headless", false, "exit when every tenant has finished instead of keeping the UI up")
	temporalAddr := flag.String("temporal-address", "", "use this Temporal server instead of embedding one")
	fleet := flag.String("fleet", "example", "fleet name (search attribute WorkFleet)")
	namespace := flag.String("namespace", stack.DefaultNamespace, "Temporal namespace (\"default\" is refused with --temporal-address unless --force-production-names)")
	taskQueue := flag.String("task-queue", stack.DefaultTaskQueue, "task queue of the rehearsal's worker (the production queue is refused with --temporal-address unless --force-production-names)")
	force := flag.Bool("force-production-names", false, "allow namespace \"default\" and the production task queue on --temporal-address (only for a server that serves no real tenant)")
	logFormat := flag.String("log-format", "console", "worker log format: console or json")
	logLevel := flag.String("log-level", "info", "worker log level")
	logFile := flag.String("log-file", "", "worker log file (default: worker.log in the state folder; - for stderr)")
	keysFile := flag.String("payload-keys-file", "", "payload encryption keys (id=base64 lines, the first encrypts; default: payload-keys in the state folder, created)")
	faultList := flag.String("faults", "", "faults on every Microsoft API call, e.g. 429=10%,503=2%,latency=20ms,retry-after=1s (replaces the scenario's)")
	compare := flag.Bool("compare-faultfree", false, "also run the same fleet without faults, side by side, and print the slowdown (implies --headless)")
	flag.Parse()
	if *compare {
		*headless = true
	}

	if *logFile == "" {
		*logFile = filepath.Join(*state, "worker.log")
	}
	if err := os.MkdirAll(*state, 0o755); err != nil {
		return err
	}
	logger, err := app.NewLogger(app.LogConfig{Format: *logFormat, Level: *logLevel, File: *logFile})
	if err != nil {
		return err
	}
	var scn *sim.Scenario
	if *tenants > 0 {
		scn = sim.Generate(*tenants, *seed)
	} else if scn, err = sim.LoadScenario(*scenarioPath); err != nil {
		return err
	}
	if *faultList != "" {
		f, err := sim.ParseFaults(*faultList)
		if err != nil {
			return fmt.Errorf("--faults: %w", err)
		}
		scn.Faults = f
		for i := range scn.Tenants {
			scn.Tenants[i].Faults = nil
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	fmt.Printf("Starting the rehearsal stack (%d tenants, simulated time x%.0f)…\n", len(scn.Tenants), *speed)
	opts := stack.Options{TemporalAddress: *temporalAddr, Namespace: *namespace, TaskQueue: *taskQueue, ForceProductionNames: *force,
		StateDir: *state, Scenario: scn, Speed: *speed, Logger: logger}
	if *temporalAddr == "" {
		opts.UIPort = *uiPort
	} else {
		opts.StateDir = ""
	}
	if *keysFile != "" {
		if opts.PayloadKeys, err = codec.Load(*keysFile, ""); err != nil {
			return err
		}
	}
	s, err := stack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Stop()
	if s.Server != nil {
		fmt.Printf("Temporal %s   Web UI %s\n", s.Server.FrontendAddress(), s.Server.UIURL())
	}
	keys := "a new key in memory"
	switch {
	case *keysFile != "":
		keys = *keysFile
	case opts.StateDir != "":
		keys = filepath.Join(opts.StateDir, stack.PayloadKeysFile)
	}
	fmt.Printf("Payloads encrypted (keys: %s); the Web UI decodes them through the codec server %s\n", keys, s.CodecURL)
	fmt.Printf("Simulated Microsoft cloud %s\nWorker log %s\n\n", s.Cloud.URL(), *logFile)

	// The fault-free twin runs beside the rehearsal, on its own embedded server, so that both
	// see the same machine (a loaded machine slows both alike).
	twin := make(chan twinResult, 1)
	if *compare {
		ff := cloneScenario(scn)
		ff.Faults = sim.Faults{}
		go func() {
			t, err := stack.Start(ctx, stack.Options{Namespace: *namespace, StateDir: filepath.Join(*state, "fault-free"), Scenario: ff, Speed: *speed, Logger: logger.Named("fault-free")})
			if err != nil {
				twin <- twinResult{err: fmt.Errorf("start the fault-free twin: %w", err)}
				return
			}
			defer t.Stop()
			f, err := t.LaunchAndWait(ctx, *fleet, nil)
			twin <- twinResult{f, err}
		}()
	}
	figures, err := s.LaunchAndWait(ctx, *fleet, progressBar(len(scn.Tenants)))
	if err != nil {
		return err
	}
	fmt.Println()
	if err := ops.WriteReport(os.Stdout, "markdown", figures.Rows); err != nil {
		return err
	}
	var faultFree stack.Figures
	if *compare {
		fmt.Println("\nWaiting for the fault-free twin…")
		t := <-twin
		if t.err != nil {
			return t.err
		}
		faultFree = t.figures
	}
	fmt.Printf("\nFaults: %s\n%s", faultsText(scn.Faults), figures.Summary(faultFree))
	if figures.Waits.Early > 0 {
		return fmt.Errorf("%d callers came back before the Retry-After they were given", figures.Waits.Early)
	}
	if *compare && figures.Done() < faultFree.Done() {
		return fmt.Errorf("with faults %d upgrades reached their goal, without faults %d", figures.Done(), faultFree.Done())
	}
	if *headless {
		return nil
	}
	fmt.Println("\nEvery tenant has finished. The Web UI stays up until Ctrl-C.")
	<-ctx.Done()
	logger.Info("stopping")
	return nil
}

// progressBar shows finished upgrades and how many others wait on people.
func progressBar(total int) stack.Progress {
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetDescription("upgrades finished"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(500*time.Millisecond),
	)
	return func(done, waiting, total int) {
		bar.Describe(fmt.Sprintf("finished (%d waiting on people)", waiting))
		_ = bar.Set(done)
		if done >= total {
			_ = bar.Finish()
		}
	}
}

type twinResult struct {
	figures stack.Figures
	err     error
}

// cloneScenario copies a scenario deeply enough for a second cloud (each cloud keeps its own
// state; the tenants' own fault overrides are pointers).
func cloneScenario(s *sim.Scenario) *sim.Scenario {
	c := *s
	c.Tenants = append([]sim.Tenant(nil), s.Tenants...)
	for i := range c.Tenants {
		c.Tenants[i].Faults = nil
	}
	return &c
}

func faultsText(f sim.Faults) string {
	if f == (sim.Faults{}) {
		return "none"
	}
	ra := f.RetryAfter
	if ra <= 0 {
		ra = time.Second
	}
	return fmt.Sprintf("429 %.0f%%, 503 %.0f%% (Retry-After %s), latency %s", f.ThrottleRate*100, f.UnavailableRate*100, ra, f.Latency)
}
