package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/csp-ops/work365-upgrade/internal/codec"
)

// TestWorkerBinaryServesTheCodecEndpoint runs the production worker binary with payload keys
// and codec.server: its metrics listener answers the Web UI's preflight and decodes what the
// keys encrypted, behind the bearer token; the keys never reach the log.
func TestWorkerBinaryServesTheCodecEndpoint(t *testing.T) {
	ctx := context.Background()
	key, err := codec.GenerateKey("prod-2026-11")
	require.NoError(t, err)
	keysFile := filepath.Join(t.TempDir(), "payload_keys")
	require.NoError(t, os.WriteFile(keysFile, []byte(codec.Format(key)), 0o600))
	w := startWorkerBinary(t, fmt.Sprintf(`codec:
  keysFile: %s
  server: {path: /codec, origins: ["http://localhost:8080"], tokenEnv: CODEC_TOKEN}
`, keysFile), "CODEC_TOKEN=codec-token-5e1f")
	srv, logs := w.srv, w.logs
	endpoint := "http://" + w.metrics + "/codec/" + srv.Namespace()

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
