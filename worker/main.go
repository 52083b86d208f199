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

	"github.com/csp-ops/work365-upgrade/worker/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	configPath := flag.String("config", app.DefaultConfigPath(), "worker configuration file (env W365_CONFIG)")
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
	return app.Run(ctx, cfg, app.Options{Logger: logger})
}
