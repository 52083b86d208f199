package app

import (
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
)

// DefaultTemporalAddress and DefaultNamespace are used when neither the worker
// configuration, the flags, the environment nor the Temporal CLI profile name them.
const (
	DefaultTemporalAddress = "localhost:7233"
	DefaultNamespace       = "default"
)

// profileOptions loads the Temporal CLI's environment configuration (temporal.toml, then the
// TEMPORAL_* environment variables on top, as the CLI does) through the SDK's envconfig
// package, so that an operator who already uses the Temporal CLI needs no new configuration.
//
// The file is cfg.ConfigFile, else TEMPORAL_CONFIG_FILE, else the CLI's default
// (~/.config/temporalio/temporal.toml); a missing default file is not an error. The profile is
// cfg.Profile, else TEMPORAL_PROFILE, else "default"; a profile that was named but is missing
// is an error.
func profileOptions(cfg TemporalConfig) (client.Options, error) {
	prof, err := loadProfile(cfg)
	if err != nil {
		return client.Options{}, err
	}
	o, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal.profile %s: %w — fix its tls settings", orText(cfg.Profile, "default"), err)
	}
	return o, nil
}

// loadProfile loads the Temporal CLI profile profileOptions reads.
func loadProfile(cfg TemporalConfig) (envconfig.ClientConfigProfile, error) {
	prof, err := envconfig.LoadClientConfigProfile(envconfig.LoadClientConfigProfileOptions{
		ConfigFilePath:    cfg.ConfigFile,
		ConfigFileProfile: cfg.Profile,
		// Unknown keys are refused in a file or profile named here (a typo must not pass
		// silently), tolerated in the CLI's own file, which newer CLIs may extend.
		ConfigFileStrict: cfg.ConfigFile != "" || cfg.Profile != "",
	})
	if err != nil {
		return prof, fmt.Errorf("temporal.profile: load the Temporal CLI configuration (file %s, profile %s): %w — fix the file or the profile name (temporal config list)",
			orText(cfg.ConfigFile, "TEMPORAL_CONFIG_FILE or "+envconfig.DefaultConfigFilePath()), orText(cfg.Profile, "TEMPORAL_PROFILE or default"), err)
	}
	return prof, nil
}

// applyProfile fills what cfg leaves empty (address, namespace) from the profile and returns
// the profile's client options, whose TLS, API key and gRPC headers apply when cfg names none.
func (c *TemporalConfig) applyProfile() (client.Options, error) {
	po, err := profileOptions(*c)
	if err != nil {
		return po, err
	}
	if c.Address == "" {
		c.Address = po.HostPort
	}
	if c.Namespace == "" {
		c.Namespace = po.Namespace
	}
	return po, nil
}

// tlsConfigured reports whether the worker configuration (or flags) set any TLS key.
func (c TemporalConfig) tlsConfigured() bool {
	t := c.TLS
	return t.Enabled || t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" || t.ServerName != ""
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
