package app

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/csp-ops/work365-upgrade/internal/codec"
)

func TestCodecConfigValidation(t *testing.T) {
	base := `
microsoft: {clientId: "11111111-1111-1111-1111-111111111111", secretFile: /run/secrets/ms_client_secret}
work365: {appId: "2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99"}
packagesDir: /var/lib/work365/packages
`
	c, err := LoadConfig(write(t, base+`metrics: {address: ":9090"}
codec: {keysFile: /run/secrets/payload_keys, server: {path: /codec, origins: ["http://localhost:8080"], tokenFile: /run/secrets/codec_token}}
`))
	require.NoError(t, err)
	require.Equal(t, "/run/secrets/payload_keys", c.Codec.KeysFile)
	require.Equal(t, "/codec", c.Codec.Server.Path)

	_, err = LoadConfig(write(t, base+`codec: {keysFile: a, keysEnv: B, server: {path: codec/, origins: [localhost:8080], tokenFile: t, tokenEnv: T}}
`))
	for _, want := range []string{
		"codec: set keysFile or keysEnv, not both",
		`codec.server.path: "codec/" must start with /`,
		"codec.server: served on metrics.address, which is empty",
		"codec.server: set tokenFile or tokenEnv, not both",
		`codec.server.origins[0]: "localhost:8080" is not an origin`,
	} {
		require.ErrorContains(t, err, want)
	}
	_, err = LoadConfig(write(t, base+"codec: {server: {origins: [\"http://x\"]}}\n"))
	require.ErrorContains(t, err, "codec.server.path: required")
	_, err = LoadConfig(write(t, base+"codec: {keyfile: x}\n"))
	require.ErrorContains(t, err, "worker.yaml:5: codec.keyfile: unknown field")
}

// The worker's listener serves the codec endpoint beside /metrics and /healthz, with the
// client's data converter using the same keys.
func TestWorkerServesTheCodecEndpoint(t *testing.T) {
	k, err := codec.GenerateKey("k1")
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "payload_keys")
	require.NoError(t, os.WriteFile(file, []byte(codec.Format(k)), 0o600))
	t.Setenv("CODEC_TOKEN", "tok")
	cfg := CodecConfig{KeysFile: file, Server: CodecServerConfig{Path: "/codec", Origins: []string{"http://localhost:8080"}, TokenEnv: "CODEC_TOKEN"}}

	var copts client.Options
	keys, err := ApplyCodec(cfg, &copts, zap.NewNop())
	require.NoError(t, err)
	p, err := copts.DataConverter.ToPayload(map[string]string{"orgUrl": "https://contoso.crm.dynamics.com"})
	require.NoError(t, err)
	require.True(t, codec.Encrypted(p))

	obs, err := StartObservability("127.0.0.1:0", zap.NewNop(), func() error { return nil })
	require.NoError(t, err)
	t.Cleanup(func() { _ = obs.Close(t.Context()) })
	require.NoError(t, obs.ServeCodec(cfg, keys, zap.NewNop()))

	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+obs.Addr()+"/codec/default/decode", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", "http://localhost:8080")
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "http://localhost:8080", resp.Header.Get("Access-Control-Allow-Origin"))
	var out commonpb.Payloads
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	require.NoError(t, err)
	require.NoError(t, protojson.Unmarshal(buf.Bytes(), &out))
	var got map[string]string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(out.Payloads[0], &got))
	require.Equal(t, "https://contoso.crm.dynamics.com", got["orgUrl"])

	// Without keys there is nothing to serve, and the error says what to set.
	_, err = CodecHandler(cfg, nil)
	require.ErrorContains(t, err, "needs payload keys")
	t.Setenv("EMPTY_TOKEN", "")
	_, err = CodecHandler(CodecConfig{Server: CodecServerConfig{Path: "/codec", TokenEnv: "EMPTY_TOKEN"}}, keys)
	require.ErrorContains(t, err, "EMPTY_TOKEN is empty")
}
