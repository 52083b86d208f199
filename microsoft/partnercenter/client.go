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
// Partner Center's profile endpoints accept App+User tokens only (an Admin Agent signed in
// with MFA, the Secure Application Model); app-only tokens are refused with 401/403. The
// orchestrator runs app-only, so the upgrade verifies a re-consent through Graph instead
// (activities.ProbePartnerCenter); this client needs a token source that yields App+User
// tokens to succeed.
// https://learn.microsoft.com/en-us/partner-center/developer/partner-center-authentication
type Client struct {
	api *msapi.Client
}

// New returns a Partner Center client taking tokens for msauth.PartnerCenterScope from tokens.
// Options are msapi's (msapi.WithHTTPClient, msapi.WithBaseURL).
func New(tokens msapi.TokenSource, opts ...msapi.ClientOption) *Client {
	return &Client{api: msapi.NewClient("partnercenter", tokens, append([]msapi.ClientOption{msapi.WithBaseURL(DefaultBaseURL)}, opts...)...)}
}

// GetOrganizationProfile reads the partner's organisation profile: a cheap authenticated
// probe of the connection in partnerTenantID. It needs an App+User token.
// https://learn.microsoft.com/en-us/partner-center/developer/get-an-organization-profile
func (c *Client) GetOrganizationProfile(ctx context.Context, partnerTenantID string) (OrganizationProfile, error) {
	req := msapi.Request{
		Operation: "read the organization profile of partner tenant " + partnerTenantID,
		URL:       c.api.URL("v1/profiles/organization", nil),
		TenantID:  partnerTenantID,
		Scope:     msauth.PartnerCenterScope,
		DeniedHint: fmt.Sprintf("Partner Center refused the token in partner tenant %s: this endpoint takes App+User tokens "+
			"only (an Admin Agent signed in with MFA); app-only tokens are always refused", partnerTenantID),
		NotFoundHint: fmt.Sprintf("tenant %s has no Partner Center account: check the connection's tenant ID, "+
			"and that the partner bills directly (indirect resellers have no Partner Center API)", partnerTenantID),
	}
	var p OrganizationProfile
	err := c.api.Do(ctx, req, &p)
	return p, err
}
