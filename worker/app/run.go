package app

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// Run is the worker: it connects to Temporal, registers the search attributes, builds the
// activities with opts and serves the task queue until ctx ends, then lets running activities
// finish for cfg.Worker.StopTimeout. The worker binary calls it with empty Options; a
// rehearsal runs the same code in its own process with Options routing Microsoft's hosts to
// the simulated cloud, so killing that process is killing a production worker.
func Run(ctx context.Context, cfg Config, opts Options) error {
	cfg.Defaults()
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
		opts.Logger = logger
	}
	copts, err := ClientOptions(cfg.Temporal, logger)
	if err != nil {
		return err
	}
	keys, err := ApplyCodec(cfg.Codec, &copts, logger)
	if err != nil {
		return err
	}
	// /healthz is served from its own goroutines while the client is dialled below.
	health := &TemporalHealth{}
	if cfg.Metrics.Address != "" {
		obs, err := StartObservability(cfg.Metrics.Address, logger, health.Check)
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
		if ctx.Err() != nil { // asked to stop (SIGTERM) while registering: a clean stop
			logger.Info("worker stopped before it polled", zap.Error(err))
			return nil
		}
		return err
	}
	acts, err := BuildActivities(cfg, opts)
	if err != nil {
		return err
	}
	acts.Workflows = c
	if opts.PollInterval > 0 {
		acts.PollInterval = opts.PollInterval
	}
	// Without a stop timeout every deploy would cancel the activities in flight at once.
	cfg.Worker.ApplyStickyCache()
	w := worker.New(c, cfg.Temporal.TaskQueue, cfg.Worker.Options())
	Register(w, acts)
	logger.Info("worker starting", zap.String("address", cfg.Temporal.Address), zap.String("namespace", cfg.Temporal.Namespace),
		zap.String("taskQueue", cfg.Temporal.TaskQueue), zap.Duration("stopTimeout", cfg.Worker.StopTimeout), zap.Stringer("tuning", cfg.Worker))
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
