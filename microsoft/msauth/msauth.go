// Package msauth acquires app-only tokens for the orchestrator's multi-tenant app registration
// in customer and partner tenants, with MSAL for Go's confidential client.
//
// The credential (a certificate, preferred, or a client secret) is read from a file or an
// environment variable whose name the configuration gives: configuration never holds the
// secret itself. Tokens are never logged and never appear in errors.
//
// To reach something other than Entra ID (a rehearsal simulator), pass an *http.Client whose
// transport routes Microsoft hosts elsewhere and turn instance discovery off; the package
// itself knows of no simulator.
package msauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

// Defaults of Config.
const (
	// DefaultAuthorityHost is Entra ID's public-cloud login host.
	DefaultAuthorityHost = "https://login.microsoftonline.com"
	// DefaultTenant is the authority's tenant segment; every call names its own tenant.
	DefaultTenant = "organizations"
)

// Scopes of the APIs the orchestrator calls (app-only: the ".default" of each resource).
const (
	// GraphScope is Microsoft Graph.
	GraphScope = "https://graph.microsoft.com/.default"
	// PartnerCenterScope is the Partner Center API.
	PartnerCenterScope = "https://api.partnercenter.microsoft.com/.default"
)

// DataverseScope is the scope of one Dataverse environment, e.g.
// "https://contoso.crm.dynamics.com/.default" for "https://contoso.crm.dynamics.com".
func DataverseScope(orgURL string) string {
	return strings.TrimRight(orgURL, "/") + "/.default"
}

// Config is the orchestrator's app registration. Exactly one of CertificateFile,
// CertificateEnv, SecretFile and SecretEnv is set.
type Config struct {
	// ClientID is the application (client) ID of the multi-tenant app registration.
	ClientID string `json:"clientId" yaml:"clientId"`
	// AppName is how operators know the app, used in hints; defaults to the client ID.
	AppName string `json:"appName,omitempty" yaml:"appName,omitempty"`
	// CertificateFile is the path of a PEM file holding the certificate and its unencrypted
	// private key.
	CertificateFile string `json:"certificateFile,omitempty" yaml:"certificateFile,omitempty"`
	// CertificateEnv is the name of an environment variable holding that PEM.
	CertificateEnv string `json:"certificateEnv,omitempty" yaml:"certificateEnv,omitempty"`
	// SecretFile is the path of a file holding the client secret (surrounding whitespace is
	// ignored).
	SecretFile string `json:"secretFile,omitempty" yaml:"secretFile,omitempty"`
	// SecretEnv is the name of an environment variable holding the client secret.
	SecretEnv string `json:"secretEnv,omitempty" yaml:"secretEnv,omitempty"`
	// AuthorityHost is Entra ID's login host; default DefaultAuthorityHost.
	AuthorityHost string `json:"authorityHost,omitempty" yaml:"authorityHost,omitempty"`
	// Authority is the MSAL authority; default AuthorityHost + "/organizations".
	Authority string `json:"authority,omitempty" yaml:"authority,omitempty"`
}

// Option adjusts how the token provider talks to Entra ID.
type Option func(*options)

type options struct {
	httpClient        *http.Client
	instanceDiscovery bool
}

// WithHTTPClient makes MSAL send its requests through hc (confidential.WithHTTPClient).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.httpClient = hc }
}

// WithInstanceDiscovery turns MSAL's authority validation (instance discovery) on or off
// (confidential.WithInstanceDiscovery). It is on by default; rehearsals turn it off.
func WithInstanceDiscovery(enabled bool) Option {
	return func(o *options) { o.instanceDiscovery = enabled }
}

// TokenProvider acquires app-only tokens per tenant and scope. It is safe for concurrent use.
type TokenProvider struct {
	clients       *tenantClients
	clientID      string
	appName       string
	authorityHost string
	credSource    string // "client secret file /path", for hints; never the secret
	certificate   bool
	// authority, cred and clientOptions build each tenant's client (and NewSession's).
	authority     string
	cred          confidential.Credential
	clientOptions []confidential.Option
}

// New builds a TokenProvider from cfg, reading the credential now so that a missing or
// unreadable credential fails at start-up rather than in the middle of an upgrade.
func New(cfg Config, opts ...Option) (*TokenProvider, error) {
	o := options{instanceDiscovery: true}
	for _, opt := range opts {
		opt(&o)
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return nil, errors.New("msauth: clientId is required: set it to the application (client) ID of the orchestrator's app registration")
	}
	host := strings.TrimRight(cfg.AuthorityHost, "/")
	if host == "" {
		host = DefaultAuthorityHost
	}
	authority := cfg.Authority
	if authority == "" {
		authority = host + "/" + DefaultTenant
	}
	cred, source, isCert, err := loadCredential(cfg)
	if err != nil {
		return nil, err
	}
	var copts []confidential.Option
	if o.httpClient != nil {
		copts = append(copts, confidential.WithHTTPClient(o.httpClient))
	}
	if !o.instanceDiscovery {
		copts = append(copts, confidential.WithInstanceDiscovery(false))
	}
	// One client now, so that a bad authority fails at start-up; tenants get theirs when asked.
	if _, err := confidential.New(authority, cfg.ClientID, cred, copts...); err != nil {
		return nil, fmt.Errorf("msauth: create the MSAL client for authority %q: %w", authority, err)
	}
	name := cfg.AppName
	if name == "" {
		name = cfg.ClientID
	}
	p := &TokenProvider{
		clientID:      cfg.ClientID,
		appName:       name,
		authorityHost: host,
		credSource:    source,
		certificate:   isCert,
		authority:     authority,
		cred:          cred,
		clientOptions: copts,
	}
	p.clients = p.newTenantClients()
	return p, nil
}

// loadCredential reads the one configured credential source.
func loadCredential(cfg Config) (cred confidential.Credential, source string, isCert bool, err error) {
	set := 0
	for _, s := range []string{cfg.CertificateFile, cfg.CertificateEnv, cfg.SecretFile, cfg.SecretEnv} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return cred, "", false, fmt.Errorf("msauth: set exactly one of certificateFile, certificateEnv, secretFile, secretEnv (%d set): the credential is read from a file or an environment variable, never written in the configuration", set)
	}
	var raw []byte
	switch {
	case cfg.CertificateFile != "":
		source, isCert = "certificate file "+cfg.CertificateFile, true
		raw, err = os.ReadFile(cfg.CertificateFile)
	case cfg.CertificateEnv != "":
		source, isCert = "certificate environment variable "+cfg.CertificateEnv, true
		raw, err = readEnv(cfg.CertificateEnv)
	case cfg.SecretFile != "":
		source = "client secret file " + cfg.SecretFile
		raw, err = os.ReadFile(cfg.SecretFile)
	default:
		source = "client secret environment variable " + cfg.SecretEnv
		raw, err = readEnv(cfg.SecretEnv)
	}
	if err != nil {
		return cred, "", false, fmt.Errorf("msauth: read the %s: %w", source, err)
	}
	if isCert {
		certs, key, err := confidential.CertFromPEM(raw, "")
		if err != nil {
			return cred, "", false, fmt.Errorf("msauth: the %s must hold a PEM certificate and its unencrypted private key: %w", source, err)
		}
		cred, err = confidential.NewCredFromCert(certs, key)
		if err != nil {
			return cred, "", false, fmt.Errorf("msauth: use the %s: %w", source, err)
		}
		return cred, source, true, nil
	}
	secret := strings.TrimSpace(string(raw))
	if secret == "" {
		return cred, "", false, fmt.Errorf("msauth: the %s is empty: put the app registration's client secret in it", source)
	}
	cred, err = confidential.NewCredFromSecret(secret)
	if err != nil {
		return cred, "", false, fmt.Errorf("msauth: use the %s: %w", source, err)
	}
	return cred, source, false, nil
}

func readEnv(name string) ([]byte, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("environment variable %s is not set or empty", name)
	}
	return []byte(v), nil
}

// Token returns an app-only access token for scope in tenantID. It asks MSAL every time;
// MSAL answers from its cache until the token nears expiry. A failure is an *msapi.Error with
// Service "login".
func (p *TokenProvider) Token(ctx context.Context, tenantID, scope string) (string, error) {
	op := fmt.Sprintf("acquire a token for %s in tenant %s", scope, tenantID)
	if err := checkTenant(op, tenantID, scope); err != nil {
		return "", err
	}
	client, err := p.clients.get(tenantID)
	if err != nil {
		return "", p.mapError(err, op, tenantID, scope)
	}
	res, err := client.AcquireTokenByCredential(ctx, []string{scope}, confidential.WithTenantID(tenantID))
	if err != nil {
		return "", p.mapError(err, op, tenantID, scope)
	}
	return res.AccessToken, nil
}

// maxTenantClients bounds the tenants whose MSAL client (and token cache) a provider keeps;
// past it, one is dropped and acquires its tokens anew when next asked.
const maxTenantClients = 10000

// tenantClients gives each tenant an MSAL client of its own, so that its token cache holds
// only that tenant's tokens. MSAL finds a cached token by scanning every token of the client
// (storage.Manager.readAccessToken); with one client for every tenant each lookup grew with
// the fleet: 7.7 % of the worker's CPU at 1,000 tenants, five times that per call at 5,000.
type tenantClients struct {
	mu      sync.Mutex
	clients map[string]confidential.Client // by lower-cased tenant ID or domain
	max     int
	create  func() (confidential.Client, error)
}

func (p *TokenProvider) newTenantClients() *tenantClients {
	return &tenantClients{
		clients: map[string]confidential.Client{},
		max:     maxTenantClients,
		create: func() (confidential.Client, error) {
			return confidential.New(p.authority, p.clientID, p.cred, p.clientOptions...)
		},
	}
}

// get returns tenantID's client, creating it on first use.
func (c *tenantClients) get(tenantID string) (confidential.Client, error) {
	key := strings.ToLower(tenantID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if client, ok := c.clients[key]; ok {
		return client, nil
	}
	client, err := c.create()
	if err != nil {
		return confidential.Client{}, fmt.Errorf("msauth: create the MSAL client for tenant %s: %w", tenantID, err)
	}
	if len(c.clients) >= c.max {
		for k := range c.clients { // any one: its tokens are acquired again when next asked
			delete(c.clients, k)
			break
		}
	}
	c.clients[key] = client
	return client, nil
}

// size is the number of tenants with a client.
func (c *tenantClients) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.clients)
}

// checkTenant refuses a call that names no specific tenant or no scope.
func checkTenant(op, tenantID, scope string) error {
	if tenantID == "" || strings.EqualFold(tenantID, "common") || strings.EqualFold(tenantID, "organizations") || strings.EqualFold(tenantID, "consumers") {
		return msapi.LocalError("login", op, fmt.Sprintf("tenant %q is not a specific tenant", tenantID),
			"give the customer's tenant ID (a GUID) or verified domain")
	}
	if scope == "" {
		return msapi.LocalError("login", op, "no scope given", "ask for a resource's .default scope")
	}
	return nil
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

// AsTokenSource returns p.Token as an msapi.TokenSource for the adapters.
func (p *TokenProvider) AsTokenSource() msapi.TokenSource { return p.Token }
