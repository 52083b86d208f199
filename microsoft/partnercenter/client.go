package partnercenter

import (
	"context"
	"fmt"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
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
	api *msapi.Client
}

// New returns a Partner Center client taking tokens for msauth.PartnerCenterScope from tokens.
// Options are msapi's (msapi.WithHTTPClient, msapi.WithBaseURL).
func New(tokens msapi.TokenSource, opts ...msapi.ClientOption) *Client {
	return &Client{api: msapi.NewClient("partnercenter", tokens, append([]msapi.ClientOption{msapi.WithBaseURL(DefaultBaseURL)}, opts...)...)}
}

// GetOrganizationProfile reads the partner's organisation profile: a cheap authenticated
// probe of the connection in partnerTenantID.
func (c *Client) GetOrganizationProfile(ctx context.Context, partnerTenantID string) (OrganizationProfile, error) {
	req := msapi.Request{
		Operation: "read the organization profile of partner tenant " + partnerTenantID,
		URL:       c.api.URL("v1/profiles/organization", nil),
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
