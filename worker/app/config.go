// Package app wires the product together: the worker's configuration file, the Microsoft
// adapters behind the activities, the Temporal client, logging and metrics. The worker, the
// rehearsal stack and the integration tests share it, so they run the same wiring.
package app

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/csp-ops/work365-upgrade/activities/notify"
	"github.com/csp-ops/work365-upgrade/internal/yamlfile"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// TaskQueue is where upgrades run unless configured otherwise.
const TaskQueue = "work365-upgrade"

// Config is the worker's configuration file. Secrets are never in it: it names the files or
// environment variables that hold them.
type Config struct {
	Temporal  TemporalConfig `yaml:"temporal"`
	Microsoft msauth.Config  `yaml:"microsoft"`
	// Work365 overrides Work 365's private names (work365.DefaultNames otherwise).
	Work365 *work365.Names `yaml:"work365,omitempty"`
	// PackagesDir holds the solution files that specs reference by relative path.
	PackagesDir string `yaml:"packagesDir"`
	Metrics     struct {
		// Address serves /metrics (Prometheus) and /healthz; empty disables.
		Address string `yaml:"address"`
	} `yaml:"metrics"`
	Log LogConfig `yaml:"log"`
	// Worker tunes the Temporal worker itself.
	Worker WorkerConfig `yaml:"worker,omitempty"`
	// Notify says where notifications go; without webhooks they are only logged.
	Notify NotifyConfig `yaml:"notify,omitempty"`
	// Dataverse says which organisations the worker may call.
	Dataverse DataverseConfig `yaml:"dataverse,omitempty"`
	// Reports says where fleets write their final reports.
	Reports ReportsConfig `yaml:"reports,omitempty"`
	// Codec encrypts payloads and serves the codec endpoint (codec.go).
	Codec CodecConfig `yaml:"codec,omitempty"`
	// Desk is the task desk (desk.go): the worker signs its links into notifications.
	Desk DeskConfig `yaml:"desk,omitempty"`
}

// DataverseConfig is the allow-list of Dataverse hosts: an orgUrl elsewhere is refused before
// the worker asks it which tenant it is or mints a token for it.
type DataverseConfig struct {
	// Clouds are the Microsoft clouds whose Dataverse hosts are allowed (spec.Clouds; default
	// public: *.crm[N].dynamics.com).
	Clouds []string `yaml:"clouds,omitempty"`
	// HostSuffixes are further allowed host suffixes, e.g. ".crm.dynamics.com" ('*': digits).
	HostSuffixes []string `yaml:"hostSuffixes,omitempty"`
}

// Suffixes is the allow-list the configuration stands for.
func (c DataverseConfig) Suffixes() ([]string, error) {
	return spec.HostSuffixesFor(c.Clouds, c.HostSuffixes)
}

// NotifyConfig says where notifications (human tasks, reminders, escalations, outcomes,
// fleet events) go. Without webhooks, the worker writes them to its log.
type NotifyConfig struct {
	// Webhooks receive every notification their filters let through.
	Webhooks []notify.Target `yaml:"webhooks,omitempty"`
	// WebUIURL is the Temporal Web UI's base URL: each notification then links to its
	// upgrade's page (e.g. https://temporal-ui.example.com).
	WebUIURL string `yaml:"webUIURL,omitempty"`
}

// validate reports every problem of the notify block, naming the key.
func (c NotifyConfig) validate() []error {
	var errs []error
	if c.WebUIURL != "" {
		if u, err := url.Parse(c.WebUIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("notify.webUIURL: %q is not an http(s) URL: give the Web UI's base URL, e.g. https://temporal-ui.example.com", c.WebUIURL))
		}
	}
	audiences := []string{string(workflows.GlobalAdmin), string(workflows.ServiceAccount), string(workflows.Operator),
		string(workflows.PartnerAdmin), string(workflows.Nobody)}
	seen := map[string]int{}
	for i, t := range c.Webhooks {
		at := fmt.Sprintf("notify.webhooks[%d]", i)
		for _, p := range t.Problems() {
			key := at
			if p.Field != "" {
				key += "." + p.Field
			}
			errs = append(errs, fmt.Errorf("%s: %s", key, p.Message))
		}
		for j, a := range t.Audiences {
			if !slices.Contains(audiences, a) {
				errs = append(errs, fmt.Errorf("%s.audiences[%d]: %q is not an audience: use %s", at, j, a, strings.Join(audiences, ", ")))
			}
		}
		if first, dup := seen[t.Name]; dup && t.Name != "" {
			errs = append(errs, fmt.Errorf("%s.name: %q is already the name of notify.webhooks[%d]: names must be unique", at, t.Name, first))
		} else {
			seen[t.Name] = i
		}
	}
	return errs
}

// DefaultWorkerStopTimeout is how long a stopping worker lets running activities finish:
// longer than a read's 2-minute start-to-close timeout, so a deploy does not cut calls short.
const DefaultWorkerStopTimeout = 2 * time.Minute

// WorkerConfig tunes the Temporal worker.
type WorkerConfig struct {
	// StopTimeout is how long the worker waits, on SIGTERM, for running activities before it
	// cancels them (they are retried by the next worker). The container's stop grace period
	// must be longer, or the process is killed first.
	StopTimeout time.Duration `yaml:"stopTimeout,omitempty"`
	// WorkflowPollers and ActivityPollers are how many long polls the worker keeps open per
	// task queue for workflow and activity tasks (0: the SDK's default, 2 each): one poll
	// hands out one task, so a worker serving hundreds of upgrades needs more than two.
	WorkflowPollers int `yaml:"workflowPollers,omitempty"`
	ActivityPollers int `yaml:"activityPollers,omitempty"`
	// WorkflowTaskSlots and ActivitySlots bound the workflow tasks and activities running at
	// once in this worker (0: the SDK's default, 1,000 each).
	WorkflowTaskSlots int `yaml:"workflowTaskSlots,omitempty"`
	ActivitySlots     int `yaml:"activitySlots,omitempty"`
	// StickyCacheSize is how many workflows the worker keeps in memory between their tasks
	// (0: the SDK's default, 10,000). An evicted workflow is replayed from its history at its
	// next task: smaller saves memory, larger saves replays.
	StickyCacheSize int `yaml:"stickyCacheSize,omitempty"`
}

// TemporalConfig says how to reach Temporal (self-hosted or Temporal Cloud).
type TemporalConfig struct {
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	TaskQueue string `yaml:"taskQueue"`
	// APIKeyFile or APIKeyEnv name where a Temporal Cloud API key is kept.
	APIKeyFile string    `yaml:"apiKeyFile,omitempty"`
	APIKeyEnv  string    `yaml:"apiKeyEnv,omitempty"`
	TLS        TLSConfig `yaml:"tls,omitempty"`
	// Profile and ConfigFile take the connection from the Temporal CLI's environment
	// configuration (temporal.toml): what this block leaves empty comes from the profile.
	Profile    string `yaml:"profile,omitempty"`
	ConfigFile string `yaml:"configFile,omitempty"`
}

// TLSConfig enables TLS or mTLS to Temporal.
type TLSConfig struct {
	Enabled    bool   `yaml:"enabled,omitempty"`
	CertFile   string `yaml:"certFile,omitempty"`
	KeyFile    string `yaml:"keyFile,omitempty"`
	CAFile     string `yaml:"caFile,omitempty"`
	ServerName string `yaml:"serverName,omitempty"`
}

// LogConfig chooses the log format: json (production) or console (development).
type LogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
	// File writes logs to this file instead of stderr ("" or "-": stderr).
	File string `yaml:"file,omitempty"`
}

// Defaults fills what was left empty.
func (c *Config) Defaults() {
	if c.Temporal.Address == "" {
		c.Temporal.Address = DefaultTemporalAddress
	}
	if c.Temporal.Namespace == "" {
		c.Temporal.Namespace = DefaultNamespace
	}
	if c.Temporal.TaskQueue == "" {
		c.Temporal.TaskQueue = TaskQueue
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Worker.StopTimeout == 0 {
		c.Worker.StopTimeout = DefaultWorkerStopTimeout
	}
	names := work365.DefaultNames()
	if c.Work365 != nil {
		names = c.Work365.Or(names)
	}
	c.Work365 = &names
}

// Validate reports every problem, naming the key.
func (c Config) Validate() error {
	var errs []error
	if c.Microsoft.ClientID == "" {
		errs = append(errs, errors.New("microsoft.clientId: required (the orchestrator app registration's client ID)"))
	}
	n := 0
	for _, s := range []string{c.Microsoft.CertificateFile, c.Microsoft.CertificateEnv, c.Microsoft.SecretFile, c.Microsoft.SecretEnv} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, errors.New("microsoft: set exactly one of certificateFile, certificateEnv, secretFile, secretEnv"))
	}
	if c.PackagesDir == "" {
		errs = append(errs, errors.New("packagesDir: required (the folder of Work 365 solution files)"))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q must be json or console", c.Log.Format))
	}
	if c.Worker.StopTimeout < 0 {
		errs = append(errs, fmt.Errorf("worker.stopTimeout: %v must not be negative (e.g. 2m)", c.Worker.StopTimeout))
	}
	errs = append(errs, c.Worker.validate()...)
	if (c.Temporal.TLS.CertFile == "") != (c.Temporal.TLS.KeyFile == "") {
		errs = append(errs, errors.New("temporal.tls: certFile and keyFile go together"))
	}
	names := work365.DefaultNames()
	if c.Work365 != nil {
		names = *c.Work365
	}
	if err := names.CheckAppID(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Notify.validate()...)
	for i, cloud := range c.Dataverse.Clouds {
		if _, ok := spec.CloudHostSuffixes(strings.ToLower(strings.TrimSpace(cloud))); !ok {
			errs = append(errs, fmt.Errorf("dataverse.clouds[%d]: %q is not one of %s", i, cloud, strings.Join(spec.Clouds(), ", ")))
		}
	}
	for i, suffix := range c.Dataverse.HostSuffixes {
		if err := spec.CheckHostSuffix(suffix); err != nil {
			errs = append(errs, fmt.Errorf("dataverse.hostSuffixes[%d]: %w", i, err))
		}
	}
	errs = append(errs, c.Codec.validate(c.Metrics.Address)...)
	errs = append(errs, c.Desk.validate()...)
	return errors.Join(errs...)
}

// LoadConfig reads a YAML configuration file; errors name file:line. Environment variables
// TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE override the file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read worker config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig of data read from path.
func ParseConfig(path string, data []byte) (Config, error) {
	var c Config
	if err := yamlfile.Decode(path, data, &c); err != nil {
		return c, err
	}
	root, err := yamlfile.Parse(path, data)
	if err != nil {
		return c, err
	}
	if v := os.Getenv("TEMPORAL_ADDRESS"); v != "" {
		c.Temporal.Address = v
	}
	if v := os.Getenv("TEMPORAL_NAMESPACE"); v != "" {
		c.Temporal.Namespace = v
	}
	// Before the defaults, so that the Temporal CLI profile fills what the file leaves empty.
	if _, err := c.Temporal.applyProfile(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return c, located(path, root, err)
	}
	return c, nil
}

// located prefixes each "key: problem" of a validation error with path and, where the key is
// in the file, its line.
func located(path string, root *yaml.Node, err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		key, _, _ := strings.Cut(e.Error(), ": ")
		if line := yamlfile.LineOf(root, key); line > 0 {
			out = append(out, fmt.Errorf("%s:%d: %w", path, line, e))
		} else {
			out = append(out, fmt.Errorf("%s: %w", path, e))
		}
	}
	return errors.Join(out...)
}

// DefaultConfigPath is where the worker and the desk read their configuration file: the
// W365_CONFIG environment variable, or worker.yaml.
func DefaultConfigPath() string {
	if v := os.Getenv("W365_CONFIG"); v != "" {
		return v
	}
	return "worker.yaml"
}
