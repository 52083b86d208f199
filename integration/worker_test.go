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
	srv, err := devserver.Start(ctx, devserver.Options{LogLevel: "off"})
	require.NoError(t, err)
	defer srv.Stop()

	dir := t.TempDir()
	bin := filepath.Join(dir, "worker")
	out, err := exec.Command("go", "build", "-o", bin, "../worker").CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("not-a-real-secret"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	metrics := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("microsoft: {clientId: 00000000-0000-0000-0000-0000000000aa, secretFile: %s}\nwork365: {appId: 5b3e7d1c-0a65-4c1e-9d39-5131a0000365}\npackagesDir: %s\nmetrics: {address: %q}\n",
		filepath.Join(dir, "secret"), dir, metrics)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "worker.yaml"), []byte(cfg), 0o600))

	cmd := exec.Command(bin, "--config", filepath.Join(dir, "worker.yaml"))
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+srv.FrontendAddress(), "TEMPORAL_NAMESPACE="+srv.Namespace())
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + metrics + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 200*time.Millisecond, "worker healthy; logs:\n%s", &logs)
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
