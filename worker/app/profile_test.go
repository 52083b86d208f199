package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// A Temporal CLI profile fills what the worker configuration leaves empty; what the
// configuration sets wins.
func TestClientOptionsFromTemporalCLIProfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	for _, k := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE", "TEMPORAL_TLS"} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
	toml := filepath.Join(dir, "temporal.toml")
	require.NoError(t, os.WriteFile(toml, []byte(`[profile.cloud]
address = "work365.a1b2c.tmprl.cloud:7233"
namespace = "work365.a1b2c"
api_key = "profile-key"
`), 0o600))

	o, err := ClientOptions(TemporalConfig{Profile: "cloud", ConfigFile: toml}, zap.NewNop())
	require.NoError(t, err)
	require.Equal(t, "work365.a1b2c.tmprl.cloud:7233", o.HostPort)
	require.Equal(t, "work365.a1b2c", o.Namespace)
	require.NotNil(t, o.Credentials, "the profile's API key")
	require.NotNil(t, o.ConnectionOptions.TLS, "an API key turns TLS on")

	o, err = ClientOptions(TemporalConfig{Profile: "cloud", ConfigFile: toml, Address: "temporal:7233", Namespace: "default"}, zap.NewNop())
	require.NoError(t, err)
	require.Equal(t, "temporal:7233", o.HostPort, "the worker configuration wins")
	require.Equal(t, "default", o.Namespace)

	// Without any profile: the defaults, plaintext, no credentials.
	o, err = ClientOptions(TemporalConfig{}, zap.NewNop())
	require.NoError(t, err)
	require.Equal(t, DefaultTemporalAddress, o.HostPort)
	require.Equal(t, DefaultNamespace, o.Namespace)
	require.Nil(t, o.Credentials)
	require.Nil(t, o.ConnectionOptions.TLS)

	_, err = ClientOptions(TemporalConfig{Profile: "missing", ConfigFile: toml}, zap.NewNop())
	require.ErrorContains(t, err, "missing")

	// LoadConfig: the profile fills temporal.address before the default would.
	cfgFile := filepath.Join(dir, "worker.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("temporal: {profile: cloud, configFile: "+toml+"}\nmicrosoft: {clientId: c, secretEnv: X}\npackagesDir: /tmp\nwork365: {appId: 5b3e7d1c-0a65-4c1e-9d39-5131a0000365}\n"), 0o600))
	cfg, err := LoadConfig(cfgFile)
	require.NoError(t, err)
	require.Equal(t, "work365.a1b2c.tmprl.cloud:7233", cfg.Temporal.Address)
}
