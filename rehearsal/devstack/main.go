// Command devstack is the one-command rehearsal: an embedded Temporal server (SQLite under a
// local state folder) with its Web UI, the simulated Microsoft cloud, the worker and the human
// autopilot in one process. It launches the example fleet, shows live progress until every
// tenant finishes, prints the report, and keeps the UI up until Ctrl-C (or exits, --headless).
// A rerun with the same state folder resumes.
package main

import (
	"context"
	"errors"
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
	"github.com/csp-ops/work365-upgrade/workflows"
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
	flag.Parse()

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

	inv := s.Inventory(*fleet)
	launched, err := s.Ops.Launch(ctx, inv)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(launched))
	for _, l := range launched {
		fmt.Printf("  %-40s %s\n", l.TenantName, l.State)
		ids = append(ids, l.WorkflowID)
	}
	fmt.Println()
	if err := follow(ctx, s.Ops, *fleet, len(ids)); err != nil {
		return err
	}
	rows, err := s.Ops.Report(ctx, fmt.Sprintf("WorkflowType = '%s' AND WorkFleet = '%s'", workflows.TenantUpgradeWorkflow, *fleet))
	if err != nil {
		return err
	}
	fmt.Println()
	if err := ops.WriteReport(os.Stdout, "markdown", rows); err != nil {
		return err
	}
	if *headless {
		return nil
	}
	fmt.Println("\nEvery tenant has finished. The Web UI stays up until Ctrl-C.")
	<-ctx.Done()
	logger.Info("stopping")
	return nil
}

// follow shows a progress bar of finished upgrades and the stages of the others.
func follow(ctx context.Context, o ops.Ops, fleet string, total int) error {
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetDescription("upgrades finished"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(500*time.Millisecond),
	)
	q := fmt.Sprintf("WorkflowType = '%s' AND WorkFleet = '%s'", workflows.TenantUpgradeWorkflow, fleet)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		us, err := o.List(ctx, q)
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		done, waiting := 0, 0
		for _, u := range us {
			if u.Status != "Running" {
				done++
			} else if u.WaitingOn != "" && u.WaitingOn != string(workflows.Nobody) {
				waiting++
			}
		}
		bar.Describe(fmt.Sprintf("finished (%d waiting on people)", waiting))
		_ = bar.Set(done)
		if done >= total && len(us) >= total {
			_ = bar.Finish()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
