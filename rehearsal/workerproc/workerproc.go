// Package workerproc runs the production worker binary (go build ./worker) in processes of
// its own against a rehearsal's simulated cloud, as an operator would run it: Microsoft's
// hosts reached through an HTTPS proxy the worker trusts (HTTPS_PROXY, SSL_CERT_FILE), its
// notifications sent by JSON webhook (notify.webhooks, W365_AUTOPILOT_URL) to the simulated
// people, its settings in a generated worker.yaml. What such a process does — and its memory
// — is the production worker's, without the rehearsal's server or cloud beside it in the same
// address space. pgrehearsal (workers stopped and killed on PostgreSQL) and the bench (the
// worker's resident set) use it.
package workerproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/activities/notify"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/worker/app"
)

// hookEnv names the variable that holds the webhook's URL: a secret in production, so the
// configuration names the variable, not the URL.
const hookEnv = "W365_AUTOPILOT_URL"

// Options say what the worker processes serve and where their files go.
type Options struct {
	// Dir receives the proxy's CA, the client secret, the solution files, each worker's
	// configuration and logs, and (by default) the fleets' reports. It must exist.
	Dir string
	// Cloud is the simulated Microsoft cloud, started (its URL is set).
	Cloud *sim.Cloud
	// People receive the workers' notifications (the rehearsal's autopilot).
	People activities.Notifier
	// Temporal is where the workers connect: address, namespace, task queue.
	Temporal app.TemporalConfig
	// Bin is a built worker binary; empty: Start builds ./worker into Dir.
	Bin string
	// Worker tunes the workers (worker.yaml's worker block); StopTimeout defaults to 20s.
	Worker app.WorkerConfig
	// PayloadKeysFile, when set, is the workers' codec.keysFile: they encrypt payloads with
	// the rehearsal's keys. Empty: W365_PAYLOAD_KEYS from the caller's environment, if any.
	PayloadKeysFile string
	// ReportsDir is the workers' reports.dir (default Dir/reports).
	ReportsDir string
	// ExtraEnv is added to every worker's environment (e.g. GOMEMLIMIT=250MiB, as a
	// container's deployment would set it).
	ExtraEnv []string
	// Logf, when set, receives the proxy's and webhook's addresses, the build's time and a
	// line per worker started.
	Logf func(format string, args ...any)
}

// Host is the simulated cloud as production workers see it: the proxy, the webhook, the
// environment and configuration every worker process it starts shares.
type Host struct {
	o       Options
	proxy   *sim.Proxy
	hook    *http.Server
	env     []string
	cfg     app.Config
	cleanup []func()
}

// Start builds the worker binary when Options.Bin is empty, starts the HTTPS proxy in front of
// the cloud and the webhook to the people, and writes what every worker reads (the proxy's
// CA, the client secret, the solution files). Close stops them and every worker still running.
func Start(ctx context.Context, o Options) (_ *Host, err error) {
	if o.Cloud == nil || o.Cloud.URL() == "" || o.People == nil || o.Dir == "" {
		return nil, errors.New("workerproc: a started cloud, the people and a folder are required")
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Worker.StopTimeout == 0 {
		o.Worker.StopTimeout = 20 * time.Second
	}
	if o.ReportsDir == "" {
		o.ReportsDir = filepath.Join(o.Dir, "reports")
	}
	h := &Host{o: o}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if h.o.Bin == "" {
		t0 := time.Now()
		if h.o.Bin, err = Build(ctx, o.Dir); err != nil {
			return nil, err
		}
		o.Logf("built the production worker binary in %.1fs", time.Since(t0).Seconds())
	}
	if h.proxy, err = sim.NewProxy(o.Cloud); err != nil {
		return nil, err
	}
	proxyURL, err := h.proxy.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h.cleanup = append(h.cleanup, h.proxy.Close)
	hookURL, err := h.startWebhook()
	if err != nil {
		return nil, err
	}
	ca := filepath.Join(o.Dir, "proxy-ca.pem")
	if err := os.WriteFile(ca, h.proxy.CAPEM(), 0o644); err != nil {
		return nil, err
	}
	h.env = append(Env(os.Environ(), proxyURL, ca, hookURL), o.ExtraEnv...)
	o.Logf("workers reach the simulated cloud %s through HTTPS proxy %s; their notifications go to %s", o.Cloud.URL(), proxyURL, hookURL)
	if h.cfg, err = stack.WorkerConfig(o.Dir, o.Cloud, o.Temporal); err != nil {
		return nil, err
	}
	h.cfg.Worker = o.Worker
	h.cfg.Notify = app.NotifyConfig{Webhooks: []notify.Target{{Name: "autopilot", URLEnv: hookEnv, Format: "json"}}}
	h.cfg.Reports = app.ReportsConfig{Dir: o.ReportsDir}
	h.cfg.Codec = app.CodecConfig{KeysFile: o.PayloadKeysFile}
	return h, nil
}

// Build compiles the production worker into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/csp-ops/work365-upgrade/worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./worker: %w: %s", err, LastLines(out, 10))
	}
	return bin, nil
}

// startWebhook receives the workers' notifications (notify.webhooks, format json) and hands
// them to the people; it returns its URL.
func (h *Host) startWebhook() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	h.hook = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var n activities.Notification
		if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := h.o.People.Notify(req.Context(), n); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = h.hook.Serve(ln) }()
	h.cleanup = append(h.cleanup, func() { _ = h.hook.Close() })
	return "http://" + ln.Addr().String() + "/notify", nil
}

// Env is a worker's environment: the caller's without TEMPORAL_* (the configuration file says
// where Temporal is), proxies, CA settings or W365_CONFIG; Microsoft's hosts through the
// proxy whose CA it trusts; the webhook's URL.
func Env(environ []string, proxyURL, caFile, hookURL string) []string {
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TEMPORAL_") || strings.EqualFold(k, "HTTPS_PROXY") || strings.EqualFold(k, "HTTP_PROXY") ||
			strings.EqualFold(k, "NO_PROXY") || k == "SSL_CERT_FILE" || k == "SSL_CERT_DIR" || k == "W365_CONFIG" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HTTPS_PROXY="+proxyURL, "NO_PROXY=127.0.0.1,localhost", "SSL_CERT_FILE="+caFile, hookEnv+"="+hookURL)
}

// Worker is one production worker process with its own configuration file.
type Worker struct {
	// N numbers the worker (its files are worker-N.yaml, worker-N.log).
	N int
	// Health is its /healthz URL; Metrics its /metrics URL.
	Health, Metrics string
	// Config and Log are its configuration file and log file (stdout and stderr: Log.stderr).
	Config, Log string
	cmd         *exec.Cmd
	done        chan error
	stopped     string
	exit        error
}

// StartWorker starts worker n and waits until its /healthz answers (at most 2 minutes).
func (h *Host) StartWorker(ctx context.Context, n int) (*Worker, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	w := &Worker{N: n, Health: fmt.Sprintf("http://127.0.0.1:%d/healthz", port), Metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port),
		Config: filepath.Join(h.o.Dir, fmt.Sprintf("worker-%d.yaml", n)), Log: filepath.Join(h.o.Dir, fmt.Sprintf("worker-%d.log", n)), done: make(chan error, 1)}
	cfg := h.cfg
	cfg.Log = app.LogConfig{Format: "json", Level: "info", File: w.Log}
	cfg.Metrics.Address = fmt.Sprintf("127.0.0.1:%d", port)
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.Config, data, 0o600); err != nil {
		return nil, err
	}
	w.cmd = exec.Command(h.o.Bin, "--config", w.Config)
	w.cmd.Env = h.env
	stderr, err := os.Create(w.Log + ".stderr")
	if err != nil {
		return nil, err
	}
	w.cmd.Stdout, w.cmd.Stderr = stderr, stderr
	if err := w.cmd.Start(); err != nil {
		stderr.Close()
		return nil, fmt.Errorf("start worker %d: %w", n, err)
	}
	go func() {
		w.done <- w.cmd.Wait()
		stderr.Close()
	}()
	h.cleanup = append(h.cleanup, func() { _ = w.Stop(syscall.SIGKILL, "end", time.Second) })
	if err := w.waitHealthy(ctx); err != nil {
		return nil, err
	}
	h.o.Logf("worker %d (pid %d) healthy: %s, config %s", n, w.Pid(), w.Health, w.Config)
	return w, nil
}

func (w *Worker) waitHealthy(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := hc.Get(w.Health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-w.done:
			w.done <- err
			return fmt.Errorf("worker %d exited at start (%v); see %s and %s.stderr", w.N, err, w.Log, w.Log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("worker %d not healthy after 2m; see %s", w.N, w.Log)
		}
	}
}

// Pid is the worker's process ID.
func (w *Worker) Pid() int { return w.cmd.Process.Pid }

// Stopped says why the worker was stopped ("" while it runs as far as Stop knows).
func (w *Worker) Stopped() string { return w.stopped }

// Stop signals the worker and waits up to wait for it to exit; it returns the exit error
// (a second call returns the first's). why is what Stopped reports afterwards.
func (w *Worker) Stop(sig syscall.Signal, why string, wait time.Duration) error {
	if w.stopped != "" {
		return w.exit
	}
	w.stopped = why
	_ = w.cmd.Process.Signal(sig)
	select {
	case w.exit = <-w.done:
	case <-time.After(wait):
		_ = w.cmd.Process.Kill()
		w.exit = fmt.Errorf("did not exit within %s of %s; killed", wait, sig)
		<-w.done
	}
	return w.exit
}

// Close kills every worker still running and stops the proxy and the webhook.
func (h *Host) Close() {
	for i := len(h.cleanup) - 1; i >= 0; i-- {
		h.cleanup[i]()
	}
	h.cleanup = nil
}

// FreePort is a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// LastLines is the last n lines of a command's output on one line, for an error message.
func LastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
