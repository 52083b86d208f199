package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/worker/app"
)

// Environment of the worker process. W365_CONFIG is the production worker's own variable.
const (
	envRole         = "W365_CRASHTEST_ROLE"
	envSimURL       = "W365_CRASHTEST_SIM_URL"
	envPollInterval = "W365_CRASHTEST_POLL_INTERVAL"
	roleWorker      = "worker"
)

// isWorker reports whether this process was started as the rehearsal's worker.
func isWorker() bool { return os.Getenv(envRole) == roleWorker }

// workerMain is the worker process: the production worker (app.Run with the configuration
// file named by W365_CONFIG), its Microsoft hosts routed to the simulated cloud. It is what
// the rehearsal kills.
func workerMain() int {
	if err := runWorker(); err != nil {
		fmt.Fprintln(os.Stderr, "crashtest worker:", err)
		return 1
	}
	return 0
}

func runWorker() error {
	cfg, err := app.LoadConfig(os.Getenv("W365_CONFIG"))
	if err != nil {
		return err
	}
	simURL := os.Getenv(envSimURL)
	if simURL == "" {
		return fmt.Errorf("%s: the simulated cloud's URL is required", envSimURL)
	}
	poll, err := time.ParseDuration(os.Getenv(envPollInterval))
	if err != nil {
		return fmt.Errorf("%s: %w", envPollInterval, err)
	}
	logger, err := app.NewLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hc := &http.Client{Transport: sim.Transport(simURL), Timeout: 2 * time.Minute}
	return app.Run(ctx, cfg, app.Options{HTTPClient: hc, NoInstanceDiscovery: true, Logger: logger, PollInterval: poll})
}
