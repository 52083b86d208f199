// Command worker runs the Work 365 upgrade workflows and activities against real Microsoft
// endpoints. Configuration comes from a YAML file (W365_CONFIG or --config); Microsoft
// credentials come from files or environment variables the file names, never from flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	configPath := flag.String("config", envOr("W365_CONFIG", "worker.yaml"), "worker configuration file (env W365_CONFIG)")
	address := flag.String("address", "", "Temporal address host:port (overrides the file; env TEMPORAL_ADDRESS)")
	namespace := flag.String("namespace", "", "Temporal namespace (overrides the file; env TEMPORAL_NAMESPACE)")
	logFormat := flag.String("log-format", "", "json or console (overrides the file)")
	flag.Parse()

	cfg, err := app.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if *address != "" {
		cfg.Temporal.Address = *address
	}
	if *namespace != "" {
		cfg.Temporal.Namespace = *namespace
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	logger, err := app.NewLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	copts, err := app.ClientOptions(cfg.Temporal, logger)
	if err != nil {
		return err
	}
	keys, err := app.ApplyCodec(cfg.Codec, &copts, logger)
	if err != nil {
		return err
	}
	// /healthz is served from its own goroutines while the client is dialled below.
	health := &app.TemporalHealth{}
	if cfg.Metrics.Address != "" {
		obs, err := app.StartObservability(cfg.Metrics.Address, logger, health.Check)
		if err != nil {
			return fmt.Errorf("metrics endpoint %s: %w", cfg.Metrics.Address, err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = obs.Close(sctx)
		}()
		copts.MetricsHandler = obs.Handler
		logger.Info("metrics and health endpoint up", zap.String("address", cfg.Metrics.Address))
		if err := obs.ServeCodec(cfg.Codec, keys, logger); err != nil {
			return err
		}
	}
	c, err := client.DialContext(ctx, copts)
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.Temporal.Address, cfg.Temporal.Namespace, err)
	}
	defer c.Close()
	health.Set(c)
	if err := searchattr.Register(ctx, c, cfg.Temporal.Namespace); err != nil {
		return err
	}
	acts, err := app.BuildActivities(cfg, app.Options{Logger: logger})
	if err != nil {
		return err
	}
	// Without a stop timeout every deploy would cancel the activities in flight at once.
	w := worker.New(c, cfg.Temporal.TaskQueue, worker.Options{WorkerStopTimeout: cfg.Worker.StopTimeout})
	app.Register(w, acts)
	logger.Info("worker starting", zap.String("address", cfg.Temporal.Address), zap.String("namespace", cfg.Temporal.Namespace),
		zap.String("taskQueue", cfg.Temporal.TaskQueue), zap.Duration("stopTimeout", cfg.Worker.StopTimeout))
	// Run stops on the interrupt channel: in-flight activities get the worker's stop timeout.
	if err := w.Run(interrupt(ctx)); err != nil {
		return err
	}
	logger.Info("worker stopped")
	return nil
}

func interrupt(ctx context.Context) <-chan any {
	ch := make(chan any, 1)
	go func() {
		<-ctx.Done()
		ch <- struct{}{}
	}()
	return ch
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
