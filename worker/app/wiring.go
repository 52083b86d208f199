package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/activities/notify"
	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
	"github.com/csp-ops/work365-upgrade/microsoft/partnercenter"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Options change how the adapters reach Microsoft. Production leaves them empty; rehearsals
// pass an HTTP client whose transport routes Microsoft's hosts to the simulator, and turn off
// MSAL's instance discovery. Nothing else differs.
type Options struct {
	HTTPClient          *http.Client
	NoInstanceDiscovery bool
	Notifier            activities.Notifier
	Logger              *zap.Logger
	// PollInterval, when set, is how often a running import or uninstall is read (rehearsals
	// at high simulated speed read more often; activities.Activities.PollInterval).
	PollInterval time.Duration
	// RetrySleep replaces how the Microsoft clients wait before resending a throttled
	// request (default: real time). Rehearsals whose simulated time runs N times faster pass
	// one that sleeps d/N, so a Retry-After in simulated seconds is waited in simulated time.
	RetrySleep func(ctx context.Context, d time.Duration) error
}

// BuildActivities makes the activities with the real adapters.
func BuildActivities(cfg Config, opts Options) (*activities.Activities, error) {
	cfg.Defaults()
	if opts.HTTPClient == nil {
		// One pool for MSAL and every adapter, keeping enough connections per host for a
		// fleet's concurrency (msapi.NewHTTPClient).
		opts.HTTPClient = msapi.NewHTTPClient()
	}
	authOpts := []msauth.Option{msauth.WithHTTPClient(opts.HTTPClient)}
	if opts.NoInstanceDiscovery {
		authOpts = append(authOpts, msauth.WithInstanceDiscovery(false))
	}
	tokens, err := msauth.New(cfg.Microsoft, authOpts...)
	if err != nil {
		return nil, err
	}
	src := tokens.AsTokenSource()
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	api := append([]msapi.ClientOption{msapi.WithHTTPClient(opts.HTTPClient)}, microsoftHooks(logger.Named("microsoft"))...)
	hosts, err := cfg.Dataverse.Suffixes()
	if err != nil {
		return nil, fmt.Errorf("dataverse: %w", err)
	}
	allow := func(orgURL string) error { _, err := spec.CheckOrgURL(orgURL, hosts); return err }
	if opts.RetrySleep != nil {
		api = append(api, msapi.WithSleep(opts.RetrySleep))
	}
	dv := dataverse.New(src, dataverse.Guard(allow, dataverse.DiscoverTenants(opts.HTTPClient)), api...)
	notifier := opts.Notifier
	switch {
	case notifier != nil:
	case len(cfg.Notify.Webhooks) > 0:
		// Webhooks get their own client (10s timeout): opts.HTTPClient routes Microsoft's hosts.
		w, err := notify.New(cfg.Notify.Webhooks, notify.WithLogger(logger.Named("notify")))
		if err != nil {
			return nil, err
		}
		notifier = w
	default:
		notifier = LogNotifier{Logger: logger}
	}
	signer, err := cfg.Desk.Signer()
	if err != nil {
		return nil, err
	}
	var deskLinks func(namespace, workflowID, taskID string) string
	if signer != nil {
		deskLinks = func(namespace, workflowID, taskID string) string {
			return signer.URL(cfg.Desk.PublicURL, namespace, workflowID, taskID)
		}
	}
	var reports activities.ReportStore
	if cfg.Reports.Dir != "" {
		reports = activities.DirReports{Dir: cfg.Reports.Dir}
	}
	return &activities.Activities{
		Reports:       reports,
		Graph:         msgraph.New(src, api...),
		Dataverse:     dv,
		Work365:       work365.NewStore(dv, *cfg.Work365),
		PartnerCenter: partnercenter.New(src, api...),
		Notifier:      notifier,
		Packages:      DirPackages{Dir: cfg.PackagesDir},
		Names:         *cfg.Work365,
		WebUIURL:      cfg.Notify.WebUIURL,
		Namespace:     cfg.Temporal.Namespace,
		DeskLinks:     deskLinks,
		Preflight: &activities.Preflight{
			// Each tenant's checks get tokens of their own (the worker's cache is untouched).
			Connect: func(context.Context) (activities.PreflightSession, error) {
				session, err := tokens.NewSession()
				if err != nil {
					return activities.PreflightSession{}, err
				}
				src := session.AsTokenSource()
				sdv := dataverse.New(src, dataverse.Guard(allow, dataverse.DiscoverTenants(opts.HTTPClient)), api...)
				return activities.PreflightSession{Graph: msgraph.New(src, api...), Dataverse: sdv, AppUsers: sdv, Roles: session}, nil
			},
			Names: *cfg.Work365,
			App:   activities.OrchestratorApp{ClientID: cfg.Microsoft.ClientID, Name: cfg.Microsoft.AppName},
		},
	}, nil
}

// Register registers the workflows and activities on a worker, the read-only Preflight and
// its activity included.
func Register(r worker.Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.TenantUpgrade, workflow.RegisterOptions{Name: workflows.TenantUpgradeWorkflow})
	r.RegisterWorkflowWithOptions(workflows.PartnerCenterReconsent, workflow.RegisterOptions{Name: workflows.PartnerCenterWorkflow})
	r.RegisterWorkflowWithOptions(workflows.FleetUpgrade, workflow.RegisterOptions{Name: workflows.FleetWorkflow})
	r.RegisterWorkflowWithOptions(workflows.Preflight, workflow.RegisterOptions{Name: workflows.PreflightWorkflow})
	r.RegisterActivity(acts)
	if acts.Preflight != nil {
		r.RegisterActivity(acts.Preflight)
	}
}

// ClientOptions builds Temporal client options from the configuration: address, namespace,
// TLS/mTLS and API key (Temporal Cloud), logging through zap. What the configuration leaves
// empty comes from the Temporal CLI's profile (temporal.toml and TEMPORAL_* variables).
func ClientOptions(cfg TemporalConfig, logger *zap.Logger) (client.Options, error) {
	po, err := cfg.applyProfile()
	if err != nil {
		return client.Options{}, err
	}
	o := client.Options{HostPort: orText(cfg.Address, DefaultTemporalAddress), Namespace: orText(cfg.Namespace, DefaultNamespace),
		Logger: NewTemporalLogger(logger), HeadersProvider: po.HeadersProvider}
	o.ConnectionOptions.Authority = po.ConnectionOptions.Authority
	if !cfg.tlsConfigured() {
		o.ConnectionOptions.TLS = po.ConnectionOptions.TLS
		o.ConnectionOptions.TLSDisabled = po.ConnectionOptions.TLSDisabled
	} else {
		tc := &tls.Config{ServerName: cfg.TLS.ServerName, MinVersion: tls.VersionTLS12}
		if cfg.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
			if err != nil {
				return o, fmt.Errorf("temporal.tls: load client certificate %s: %w", cfg.TLS.CertFile, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if cfg.TLS.CAFile != "" {
			pem, err := os.ReadFile(cfg.TLS.CAFile)
			if err != nil {
				return o, fmt.Errorf("temporal.tls: read CA %s: %w", cfg.TLS.CAFile, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("temporal.tls: %s holds no PEM certificate", cfg.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		o.ConnectionOptions.TLS = tc
	}
	key, err := secretFrom(cfg.APIKeyFile, cfg.APIKeyEnv, "TEMPORAL_API_KEY")
	if err != nil {
		return o, err
	}
	switch {
	case key != "":
		o.Credentials = client.NewAPIKeyStaticCredentials(key)
		if o.ConnectionOptions.TLS == nil && !o.ConnectionOptions.TLSDisabled {
			o.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	case po.Credentials != nil:
		// The profile's API key (envconfig turns TLS on with it unless the profile disables it).
		o.Credentials = po.Credentials
		if o.ConnectionOptions.TLS == nil && !o.ConnectionOptions.TLSDisabled {
			o.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return o, nil
}

// DirPackages serves solution files from a folder; references are paths relative to it.
type DirPackages struct{ Dir string }

// Read returns the referenced file, refusing references that leave the folder.
func (p DirPackages) Read(_ context.Context, ref string) ([]byte, error) {
	clean := filepath.Clean(ref)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("package reference %q must be a path inside the packages folder", ref)
	}
	return os.ReadFile(filepath.Join(p.Dir, clean))
}

// LogNotifier writes notifications to the log; the worker uses it when no webhook is
// configured (notify.webhooks).
type LogNotifier struct{ Logger *zap.Logger }

// Notify logs the notification's fields (no secret is ever in them).
func (n LogNotifier) Notify(_ context.Context, x activities.Notification) error {
	n.Logger.Info("notification",
		zap.String("key", x.Key), zap.String("event", x.Event), zap.String("workflowId", x.WorkflowID),
		zap.String("tenantId", x.TenantID), zap.String("tenantName", x.TenantName), zap.String("stage", x.Stage),
		zap.String("taskId", x.TaskID), zap.String("audience", x.Audience), zap.String("title", x.Title),
		zap.String("command", x.Command), zap.String("outcome", x.Outcome), zap.String("link", x.Link),
		// The desk link's token opens the task's page: it is delivered, never logged.
		zap.Bool("deskLink", x.DeskLink != ""))
	return nil
}

func secretFrom(file, env, defaultEnv string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file %s: %w", file, err)
		}
		return strings.TrimSpace(string(b)), nil
	case env != "":
		return strings.TrimSpace(os.Getenv(env)), nil
	default:
		return strings.TrimSpace(os.Getenv(defaultEnv)), nil
	}
}
