package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.uber.org/zap"
)

// Observability serves Prometheus metrics at /metrics and liveness at /healthz.
type Observability struct {
	Handler client.MetricsHandler
	server  *http.Server
	addr    net.Addr
	closer  func() error
	ready   func() error
}

// Addr is where the endpoint listens (useful with port 0).
func (o *Observability) Addr() string { return o.addr.String() }

// StartObservability starts the metrics and health endpoint on addr; ready reports whether
// the worker is healthy (e.g. Temporal reachable).
func StartObservability(addr string, logger *zap.Logger, ready func() error) (*Observability, error) {
	reg := prom.NewRegistry()
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: reg})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	mux := http.NewServeMux()
	mux.Handle("/metrics", reporter.HTTPHandler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	o := &Observability{Handler: sdktally.NewMetricsHandler(scope), closer: closer.Close, ready: ready}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	o.addr = ln.Addr()
	o.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := o.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", zap.Error(err))
		}
	}()
	return o, nil
}

// Close stops the endpoint.
func (o *Observability) Close(ctx context.Context) error {
	return errors.Join(o.server.Shutdown(ctx), o.closer())
}
