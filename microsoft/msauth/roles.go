package msauth

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
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

// FreshRoles acquires a new app-only token for scope in tenantID, bypassing every cache, and
// returns its roles claim. A new confidential client (with an empty cache) is used: the
// worker's cached tokens keep the roles of when they were issued, so a permission granted a
// minute ago shows only in a token issued after it. The worker's own cache is left as it is.
// Failures are *msapi.Error with Service "login", like Token's.
func (p *TokenProvider) FreshRoles(ctx context.Context, tenantID, scope string) (GrantedRoles, error) {
	op := fmt.Sprintf("acquire a fresh token for %s in tenant %s", scope, tenantID)
	if err := checkTenant(op, tenantID, scope); err != nil {
		return GrantedRoles{}, err
	}
	client, err := confidential.New(p.authority, p.clientID, p.cred, p.clientOptions...)
	if err != nil {
		return GrantedRoles{}, msapi.LocalError("login", op, err.Error(), "check the orchestrator's authority and client ID in the worker config")
	}
	res, err := client.AcquireTokenByCredential(ctx, []string{scope}, confidential.WithTenantID(tenantID))
	if err != nil {
		return GrantedRoles{}, p.mapError(err, op, tenantID, scope)
	}
	return RolesOf(res.AccessToken)
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
