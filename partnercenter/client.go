package partnercenter

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/csp-ops/work365-upgrade/msapi"
	"github.com/csp-ops/work365-upgrade/msauth"
)

// DefaultBaseURL is the Partner Center REST API.
const DefaultBaseURL = "https://api.partnercenter.microsoft.com"

// Client probes a direct partner's Partner Center connection. It implements
// activities.PartnerCenter; failures are *msapi.Error with Service "partnercenter".
//
// Assumption: the probe uses an app-only token of the orchestrator app in the partner tenant
// (scope msauth.PartnerCenterScope). Getting one proves the app is consented there and the
// profile read proves Partner Center accepts it. The delegated App+User flow (Admin Agent
// with MFA) that Work 365's own connection uses is Work 365's, done in its web pages; this
// client does not exercise it.
type Client struct {
	api  *msapi.Client
	base string
}

// Option configures a Client.
type Option func(*config)

type config struct {
	base       string
	httpClient *http.Client
	apiOpts    []msapi.ClientOption
}

// WithBaseURL replaces DefaultBaseURL.
func WithBaseURL(u string) Option { return func(c *config) { c.base = strings.TrimRight(u, "/") } }

// WithHTTPClient sends requests through hc.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithAPIOptions passes options to the underlying msapi.Client.
func WithAPIOptions(opts ...msapi.ClientOption) Option {
	return func(c *config) { c.apiOpts = append(c.apiOpts, opts...) }
}

// New returns a Partner Center client taking tokens for msauth.PartnerCenterScope from tokens.
func New(tokens msapi.TokenSource, opts ...Option) *Client {
	cfg := config{base: DefaultBaseURL}
	for _, o := range opts {
		o(&cfg)
	}
	apiOpts := append([]msapi.ClientOption{msapi.WithHTTPClient(cfg.httpClient)}, cfg.apiOpts...)
	return &Client{api: msapi.NewClient("partnercenter", tokens, apiOpts...), base: cfg.base}
}

// GetOrganizationProfile reads the partner's organisation profile: a cheap authenticated
// probe of the connection in partnerTenantID.
func (c *Client) GetOrganizationProfile(ctx context.Context, partnerTenantID string) (OrganizationProfile, error) {
	req := msapi.Request{
		Operation: "read the organization profile of partner tenant " + partnerTenantID,
		URL:       msapi.JoinURL(c.base, "v1/profiles/organization", nil),
		TenantID:  partnerTenantID,
		Scope:     msauth.PartnerCenterScope,
		DeniedHint: fmt.Sprintf("Partner Center refused the orchestrator app in partner tenant %s: "+
			"grant it admin consent there and register it in Partner Center (Account settings > App management)", partnerTenantID),
		NotFoundHint: fmt.Sprintf("tenant %s has no Partner Center account: check the connection's tenant ID, "+
			"and that the partner bills directly (indirect resellers have no Partner Center API)", partnerTenantID),
	}
	var p OrganizationProfile
	err := c.api.Do(ctx, req, &p)
	return p, err
}
