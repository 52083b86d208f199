package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

// Observability serves Prometheus metrics at /metrics and liveness at /healthz.
type Observability struct {
	Handler client.MetricsHandler
	server  *http.Server
	mux     *http.ServeMux
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
	// The Go runtime's and the process's own figures (go_memstats_*, process_resident_memory_bytes)
	// beside the SDK's: a worker's memory is read where its other metrics are.
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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
	o := &Observability{Handler: sdktally.NewMetricsHandler(scope), mux: mux, closer: closer.Close, ready: ready}
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

// healthCheckTimeout bounds one Temporal health check of /healthz.
const healthCheckTimeout = 5 * time.Second

// TemporalHealth is a worker's /healthz check: unhealthy until the Temporal client is set,
// then whatever Temporal's health check says. The endpoint starts before the client is dialled
// and serves requests on its own goroutines, so the client is published atomically.
type TemporalHealth struct {
	c atomic.Pointer[client.Client]
}

// Set publishes the connected client.
func (h *TemporalHealth) Set(c client.Client) { h.c.Store(&c) }

// Check reports whether Temporal is reachable through the published client.
func (h *TemporalHealth) Check() error {
	c := h.c.Load()
	if c == nil || *c == nil {
		return errors.New("not connected to Temporal yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthCheckTimeout)
	defer cancel()
	_, err := (*c).CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// Close stops the endpoint.
func (o *Observability) Close(ctx context.Context) error {
	return errors.Join(o.server.Shutdown(ctx), o.closer())
}

// Metrics of the Microsoft calls, on the SDK's metrics handler (so /metrics) with the
// activity's tags and the service ("graph", "dataverse", "partnercenter").
const (
	metricMicrosoftResends = "work365_microsoft_resends"
	metricMicrosoftWait    = "work365_microsoft_retry_wait"
)

// microsoftHooks are the msapi options the worker gives every adapter: heartbeats while a
// call waits out throttling, and a log line and metrics for every call that had to be resent.
// The hooks live here, not in msapi, because only the worker knows that the adapters run
// inside Temporal activities.
func microsoftHooks(logger *zap.Logger) []msapi.ClientOption {
	return []msapi.ClientOption{
		msapi.WithWaitHook(heartbeatWhileWaiting),
		msapi.WithStatsHook(func(ctx context.Context, s msapi.CallStats) { recordMicrosoftCall(ctx, logger, s) }),
	}
}

// heartbeatWhileWaiting records an activity heartbeat naming the wait, so an activity with a
// heartbeat timeout (import, uninstall) is not taken for lost while a call waits out
// throttling, and on-call reads why it is slow. An activity that keeps what it has read in its
// heartbeat (activities.Progress) keeps it: its progress is the first detail, the wait message
// the second, so the next attempt still starts where this one stopped. Outside an activity it
// does nothing.
func heartbeatWhileWaiting(ctx context.Context, w msapi.Wait) {
	if !activity.IsActivity(ctx) {
		return
	}
	msg := fmt.Sprintf("%s: %s answered %s; sending it again in %s (attempt %d failed)",
		w.Service, w.Operation, statusText(w.Status), w.Remaining.Round(time.Second), w.Attempt)
	if p, ok := activities.Progress(ctx); ok {
		activity.RecordHeartbeat(ctx, p, msg)
		return
	}
	activity.RecordHeartbeat(ctx, msg)
}

// recordMicrosoftCall logs a call that was resent (operation, path, counts: never a token or
// a body) and counts resends and waiting time.
func recordMicrosoftCall(ctx context.Context, logger *zap.Logger, s msapi.CallStats) {
	if s.Attempts <= 1 {
		return
	}
	fields := []zap.Field{zap.String("service", s.Service), zap.String("operation", s.Operation),
		zap.String("method", s.Method), zap.String("path", s.Path),
		zap.Int("attempts", s.Attempts), zap.Duration("waited", s.Waited)}
	if s.Err != nil {
		fields = append(fields, zap.Error(s.Err))
	}
	logger.Info("microsoft call resent in place", fields...)
	if activity.IsActivity(ctx) {
		h := activity.GetMetricsHandler(ctx).WithTags(map[string]string{"service": s.Service})
		h.Counter(metricMicrosoftResends).Inc(int64(s.Attempts - 1))
		h.Timer(metricMicrosoftWait).Record(s.Waited)
	}
}

func statusText(status int) string {
	if status == 0 {
		return "nothing (no answer)"
	}
	return fmt.Sprintf("HTTP %d", status)
}
