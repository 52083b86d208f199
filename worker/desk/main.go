// Command desk is the task desk: the web page a task notification links to, where the person
// the task is for signs in with Microsoft Entra ID and confirms. It reads the worker's
// configuration file (Temporal connection, payload codec, logging) and its desk: section; the
// desk app's client secret and the link key stay in the files that section names.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/ops/desk"
	"github.com/csp-ops/work365-upgrade/worker/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "desk:", err)
		os.Exit(1)
	}
}

func run() error {
	configPath := flag.String("config", app.DefaultConfigPath(), "the worker's configuration file, with its desk: section (env W365_CONFIG)")
	listen := flag.String("listen", "", "listen address (overrides desk.listen)")
	flag.Parse()

	cfg, err := app.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	d := cfg.Desk
	d.DeskDefaults()
	if *listen != "" {
		d.Listen = *listen
	}
	if err := d.ValidateServer(); err != nil {
		return fmt.Errorf("%s: %w", *configPath, err)
	}
	logger, err := app.NewLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, c, err := Build(ctx, cfg, d, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	hs := &http.Server{Addr: d.Listen, Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	logger.Info("task desk up", zap.String("listen", d.Listen), zap.String("publicURL", d.PublicURL),
		zap.String("namespace", cfg.Temporal.Namespace), zap.String("authority", d.Authority))
	select {
	case err := <-errc:
		return fmt.Errorf("serve the desk on %s: %w", d.Listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Build connects to Temporal with the worker's wiring (address, TLS or API key, payload codec)
// under the desk's own client identity, and makes the desk.
func Build(ctx context.Context, cfg app.Config, d app.DeskConfig, logger *zap.Logger) (*desk.Server, client.Client, error) {
	copts, err := app.ClientOptions(cfg.Temporal, logger)
	if err != nil {
		return nil, nil, err
	}
	if _, err := app.ApplyCodec(cfg.Codec, &copts, logger); err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	copts.Identity = desk.ClientName + "@" + host
	c, err := client.DialContext(ctx, copts)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.Temporal.Address, cfg.Temporal.Namespace, err)
	}
	links, err := d.Signer()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	secret, err := os.ReadFile(d.ClientSecretFile)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("desk.clientSecretFile: %w", err)
	}
	entra, err := desk.NewEntra(d.Authority, d.ClientID, strings.TrimSpace(string(secret)), desk.EntraOptions{})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	srv, err := desk.New(desk.Config{
		PublicURL: d.PublicURL, Namespace: cfg.Temporal.Namespace, Links: links, SignIn: entra, Logger: logger.Named("desk"),
		Backend: desk.TemporalBackend{Ops: ops.Ops{Client: c, TaskQueue: cfg.Temporal.TaskQueue}, DataConverter: copts.DataConverter,
			OperatorTenantID: d.OperatorTenantID, OperatorGroupID: d.OperatorGroupID},
	})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return srv, c, nil
}
