package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/csp-ops/work365-upgrade/internal/codec"
	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
)

// TestWorkerBinaryServesTheCodecEndpoint runs the production worker binary with payload keys
// and codec.server: its metrics listener answers the Web UI's preflight and decodes what the
// keys encrypted, behind the bearer token; the keys never reach the log.
func TestWorkerBinaryServesTheCodecEndpoint(t *testing.T) {
	ctx := context.Background()
	srv, err := devserver.Start(ctx, devserver.Options{LogLevel: "off"})
	require.NoError(t, err)
	defer srv.Stop()

	dir := t.TempDir()
	bin := filepath.Join(dir, "worker")
	out, err := exec.Command("go", "build", "-o", bin, "../worker").CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("not-a-real-secret"), 0o600))
	key, err := codec.GenerateKey("prod-2026-11")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "payload_keys"), []byte(codec.Format(key)), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	metrics := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`microsoft: {clientId: 00000000-0000-0000-0000-0000000000aa, secretFile: %s}
work365: {appId: 5b3e7d1c-0a65-4c1e-9d39-5131a0000365}
packagesDir: %s
metrics: {address: %q}
codec:
  keysFile: %s
  server: {path: /codec, origins: ["http://localhost:8080"], tokenEnv: CODEC_TOKEN}
`, filepath.Join(dir, "secret"), dir, metrics, filepath.Join(dir, "payload_keys"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "worker.yaml"), []byte(cfg), 0o600))

	cmd := exec.Command(bin, "--config", filepath.Join(dir, "worker.yaml"))
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+srv.FrontendAddress(), "TEMPORAL_NAMESPACE="+srv.Namespace(), "CODEC_TOKEN=codec-token-5e1f")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	endpoint := "http://" + metrics + "/codec/" + srv.Namespace()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + metrics + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 200*time.Millisecond, "worker healthy; logs:\n%s", &logs)

	do := func(method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, endpoint+path, bytes.NewReader(body))
		require.NoError(t, err)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
	// The Web UI's preflight.
	resp, _ := do(http.MethodOptions, "/decode", nil, map[string]string{"Origin": "http://localhost:8080",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace,authorization"})
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "http://localhost:8080", resp.Header.Get("Access-Control-Allow-Origin"))

	// What a process with the same keys encrypted, the endpoint decodes.
	dc, err := codec.DataConverter(mustKeys(t, key))
	require.NoError(t, err)
	sealed, err := dc.ToPayloads(map[string]string{"orgUrl": "https://fabrikam.crm4.dynamics.com"})
	require.NoError(t, err)
	body, err := protojson.Marshal(sealed)
	require.NoError(t, err)
	hdr := map[string]string{"Content-Type": "application/json", "X-Namespace": srv.Namespace(), "Origin": "http://localhost:8080"}
	resp, b := do(http.MethodPost, "/decode", body, hdr)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the bearer token is required: %s", b)
	hdr["Authorization"] = "Bearer codec-token-5e1f"
	resp, b = do(http.MethodPost, "/decode", body, hdr)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(b, &decoded))
	var got map[string]string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(&decoded, &got))
	require.Equal(t, "https://fabrikam.crm4.dynamics.com", got["orgUrl"])

	require.Contains(t, logs.String(), "payloads encrypted")
	require.Contains(t, logs.String(), "codec endpoint up")
	require.NotContains(t, logs.String(), strings.TrimSpace(strings.SplitN(codec.Format(key), "=", 2)[1]), "the key never reaches the logs")
	require.NotContains(t, logs.String(), "codec-token-5e1f", "nor the token")
}

func mustKeys(t *testing.T, ks ...codec.Key) *codec.Keys {
	t.Helper()
	k, err := codec.NewKeys(ks...)
	require.NoError(t, err)
	return k
}
