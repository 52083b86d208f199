package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// TestWorkerBinary runs the production worker binary against a real server: it registers the
// search attributes, answers /healthz and /metrics, and stops cleanly on SIGTERM.
func TestWorkerBinary(t *testing.T) {
	ctx := context.Background()
	w := startWorkerBinary(t, "")
	srv, metrics, cmd, done, logs := w.srv, w.metrics, w.cmd, w.done, w.logs
	resp, err := http.Get("http://" + metrics + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	defer c.Close()
	attrs, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: srv.Namespace()})
	require.NoError(t, err)
	for name := range searchattr.All() {
		require.Contains(t, attrs.GetCustomAttributes(), name, "registered by the worker at start")
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "clean exit on SIGTERM; logs:\n%s", logs.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("worker did not stop on SIGTERM; logs:\n%s", logs.String())
	}
	require.Contains(t, logs.String(), "worker stopped")
	require.NotContains(t, logs.String(), "not-a-real-secret", "the secret never reaches the logs")
}

// workerBinary is the production worker binary running against an embedded server.
type workerBinary struct {
	srv     *devserver.Server
	dir     string // holds the binary, the config and the secret
	metrics string // host:port of /healthz and /metrics
	cmd     *exec.Cmd
	done    chan error    // the exit, once
	exited  chan struct{} // closed at the exit
	logs    *strings.Builder
}

// startWorkerBinary builds the worker, writes its config (extraConfig appended) and starts it
// with env added to the environment; it returns once /healthz answers. The caller stops it
// (the test's cleanup kills it if still running).
func startWorkerBinary(t *testing.T, extraConfig string, env ...string) *workerBinary {
	t.Helper()
	srv, err := devserver.Start(context.Background(), devserver.Options{LogLevel: "off"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	w := &workerBinary{srv: srv, dir: t.TempDir(), logs: &strings.Builder{}, done: make(chan error, 1), exited: make(chan struct{})}
	bin := filepath.Join(w.dir, "worker")
	out, err := exec.Command("go", "build", "-o", bin, "../worker").CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, os.WriteFile(filepath.Join(w.dir, "secret"), []byte("not-a-real-secret"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	w.metrics = ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("microsoft: {clientId: 00000000-0000-0000-0000-0000000000aa, secretFile: %s}\nwork365: {appId: 5b3e7d1c-0a65-4c1e-9d39-5131a0000365}\npackagesDir: %s\nmetrics: {address: %q}\n",
		filepath.Join(w.dir, "secret"), w.dir, w.metrics) + extraConfig
	require.NoError(t, os.WriteFile(filepath.Join(w.dir, "worker.yaml"), []byte(cfg), 0o600))

	w.cmd = exec.Command(bin, "--config", filepath.Join(w.dir, "worker.yaml"))
	w.cmd.Env = append(append(os.Environ(), "TEMPORAL_ADDRESS="+srv.FrontendAddress(), "TEMPORAL_NAMESPACE="+srv.Namespace()), env...)
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	require.NoError(t, w.cmd.Start())
	go func() {
		w.done <- w.cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			_ = w.cmd.Process.Kill()
			<-w.exited
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + w.metrics + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 200*time.Millisecond, "worker healthy; logs:\n%s", w.logs)
	return w
}
