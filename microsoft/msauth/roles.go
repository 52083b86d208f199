package msauth

import (
	"context"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

// GrantedRoles is what a freshly issued app-only token says the tenant granted the
// orchestrator app: its roles claim (the application permissions admin-consented in that
// tenant) and when it was issued. The token itself is never returned.
// https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
type GrantedRoles struct {
	Roles    []string  `json:"roles"`
	IssuedAt time.Time `json:"issuedAt"`
}

// Has reports whether role is among the granted roles (case-insensitive, as Entra compares).
func (g GrantedRoles) Has(role string) bool {
	return slices.ContainsFunc(g.Roles, func(r string) bool { return equalFold(r, role) })
}

// NewSession returns a provider with the same app registration and credential but an empty
// token cache of its own: what it acquires is issued now, and the worker's cache is left as
// it is. A preflight uses one session per check, so a permission granted a minute ago shows
// in its tokens while the worker's running upgrades keep theirs.
func (p *TokenProvider) NewSession() (*TokenProvider, error) {
	s := *p // New checked that its authority, client ID and credential make a client
	s.clients = s.newTenantClients()
	return &s, nil
}

// GrantedRoles returns the roles claim of this provider's token for scope in tenantID (from
// its cache: in a NewSession, a token issued during the session).
func (p *TokenProvider) GrantedRoles(ctx context.Context, tenantID, scope string) (GrantedRoles, error) {
	tok, err := p.Token(ctx, tenantID, scope)
	if err != nil {
		return GrantedRoles{}, err
	}
	return RolesOf(tok)
}

// RolesOf reads the roles and issue time of an access token without verifying it: the worker
// just received it from Entra ID over TLS, and only reads what it was granted. Microsoft
// Graph's tokens are JWTs; a token that is not (an encrypted or opaque one) is an error
// saying so, never the token.
func RolesOf(token string) (GrantedRoles, error) {
	var cl struct {
		jwt.RegisteredClaims
		Roles []string `json:"roles"`
	}
	if _, _, err := jwt.NewParser().ParseUnverified(token, &cl); err != nil {
		return GrantedRoles{}, msapi.LocalError("login", "read the roles of an access token", "the access token is not a readable JWT",
			"the roles cannot be checked from the token; check the app's API permissions in the tenant instead")
	}
	g := GrantedRoles{Roles: cl.Roles}
	if cl.IssuedAt != nil {
		g.IssuedAt = cl.IssuedAt.UTC()
	}
	return g, nil
}
