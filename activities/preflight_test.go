package activities

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
)

// preflightFakes adds to the fakes what the preflight reads besides them: the fresh token's
// roles, WhoAmI that can be refused, and the application user.
type preflightFakes struct {
	*fakes
	roles    []string
	rolesErr error
	whoErr   error
	appUser  *dataverse.SystemUser
	appErr   error
	solErr   error
	calls    []string
}

func (f *preflightFakes) GrantedRoles(_ context.Context, tenantID, scope string) (msauth.GrantedRoles, error) {
	f.calls = append(f.calls, "roles "+tenantID+" "+scope)
	return msauth.GrantedRoles{Roles: f.roles}, f.rolesErr
}
func (f *preflightFakes) WhoAmI(ctx context.Context, org string) (dataverse.WhoAmIResponse, error) {
	if f.whoErr != nil {
		return dataverse.WhoAmIResponse{}, f.whoErr
	}
	return f.fakes.WhoAmI(ctx, org)
}
func (f *preflightFakes) GetSystemUser(_ context.Context, _, id string) (*dataverse.SystemUser, error) {
	f.calls = append(f.calls, "appuser "+id)
	return f.appUser, f.appErr
}
func (f *preflightFakes) GetSolution(ctx context.Context, org, name string) (*dataverse.Solution, error) {
	if f.solErr != nil {
		return nil, f.solErr
	}
	return f.fakes.GetSolution(ctx, org, name)
}

var allPerms = permissions.AppRoles()

func without(perm string) []string {
	var out []string
	for _, p := range allPerms {
		if p != perm {
			out = append(out, p)
		}
	}
	return out
}

func newPreflight(t *testing.T) (*Preflight, *preflightFakes) {
	t.Helper()
	f := &preflightFakes{fakes: newFakes(), roles: append([]string(nil), allPerms...),
		appUser: &dataverse.SystemUser{SystemUserID: "app", AccessMode: 4, Roles: []dataverse.Role{{Name: "Work 365 Upgrade Orchestrator"}}}}
	names := work365.DefaultNames()
	names.AppID = "5b3e7d1c-0a65-4c1e-9d39-5131a0000365"
	f.spsByApp = map[string]*msgraph.ServicePrincipal{names.AppID: {ID: "sp-w365", AppID: names.AppID, DisplayName: "Work 365"}}
	p := &Preflight{Connect: func(context.Context) (PreflightSession, error) {
		f.calls = append(f.calls, "session")
		return PreflightSession{Graph: f, Dataverse: f, AppUsers: f, Roles: f}, nil
	}, Names: names,
		App: OrchestratorApp{ClientID: "0c1a5e00-0000-4000-8000-00000000c5b0", Name: "CSP Upgrade Orchestrator"}}
	return p, f
}

var readyIn = ReadinessInput{TenantID: tenant, DisplayName: "Contoso", OrgURL: org, GlobalAdminUPN: admin, ServiceAccountUPN: service, TargetVersion: "2.5.0.1"}

func check(t *testing.T, r Readiness, id string) ReadinessCheck {
	t.Helper()
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", id, r.Checks)
	return ReadinessCheck{}
}

func TestReadinessAllPass(t *testing.T) {
	p, f := newPreflight(t)
	r, err := p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.True(t, r.Ready, "%+v", r.Failed())
	require.Equal(t, "upgrade from 2.1.0.3", r.Path)
	require.Equal(t, "2.1.0.3", r.InstalledVersion)
	require.Len(t, r.Checks, 8)
	for _, c := range r.Checks {
		require.Equal(t, ReadyPass, c.Status, "%s: %s", c.ID, c.Detail)
		require.Empty(t, c.Fix)
	}
	require.Equal(t, []string{"session", "roles " + tenant + " " + msauth.GraphScope, "appuser app"}, f.calls, "a session of its own, its Graph token's roles; the app user WhoAmI names")
	require.Contains(t, check(t, r, ReadyWork365App).Detail, `service principal "Work 365"`)
}

func TestReadinessPaths(t *testing.T) {
	p, f := newPreflight(t)
	f.solutions = map[string]dataverse.Solution{}
	r, err := p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.Equal(t, "new install", r.Path)
	require.True(t, r.Ready)

	f.solutions = map[string]dataverse.Solution{"Work365": {UniqueName: "Work365", Version: "2.5.0.1"}}
	r, err = p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.Equal(t, "already current (2.5.0.1)", r.Path)

	// Work 365 installed but its app has no service principal: advice, not a block.
	f.solutions = map[string]dataverse.Solution{"Work365": {UniqueName: "Work365", Version: "2.1.0.3"}}
	f.spsByApp = nil
	r, err = p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.True(t, r.Ready)
	c := check(t, r, ReadyWork365App)
	require.Equal(t, ReadyWarn, c.Status)
	require.Contains(t, c.Fix, "work365.appId")
}

func TestReadinessMissingGraphPermission(t *testing.T) {
	p, f := newPreflight(t)
	f.roles = without("Directory.Read.All")
	r, err := p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.False(t, r.Ready)
	require.Len(t, r.Failed(), 1)
	c := check(t, r, ReadyOrchestratorPermissions)
	require.Equal(t, ReadyFail, c.Status)
	require.Contains(t, c.Detail, "lacks Directory.Read.All, needed by GET users/{id}/memberOf, GET servicePrincipals/{id}/oauth2PermissionGrants")

	// A broader permission Microsoft documents for a call counts: Directory.Read.All also
	// lists service principals, so Application.Read.All alone is not missed.
	f.roles = without("Application.Read.All")
	r, err = p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.True(t, r.Ready, "%+v", r.Failed())
	require.Contains(t, c.Fix, "Entra admin center › Applications › App registrations › CSP Upgrade Orchestrator › API permissions › add Directory.Read.All (Application) and grant admin consent")
	require.Contains(t, c.Fix, "https://login.microsoftonline.com/"+tenant+"/adminconsent?client_id=0c1a5e00-0000-4000-8000-00000000c5b0")
}

func TestReadinessNotConsentedSkipsTheRest(t *testing.T) {
	p, f := newPreflight(t)
	f.rolesErr = &msapi.Error{Service: "login", Status: http.StatusUnauthorized, Code: "AADSTS700016", Message: "Application not found in the directory"}
	r, err := p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.False(t, r.Ready)
	c := check(t, r, ReadyOrchestratorConsent)
	require.Equal(t, ReadyFail, c.Status)
	require.Contains(t, c.Fix, "Grant admin consent")
	require.Equal(t, ReadySkip, check(t, r, ReadyGlobalAdminRole).Status)
	require.Len(t, r.Failed(), 8)

	// The orchestrator's own expired secret is said to be the worker's to fix.
	f.rolesErr = &msapi.Error{Service: "login", Status: http.StatusUnauthorized, Code: "AADSTS7000222", Hint: "create a new client secret"}
	r, err = p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.Contains(t, check(t, r, ReadyOrchestratorConsent).Fix, "orchestrator's own credential")
}

func TestReadinessDataverseApplicationUser(t *testing.T) {
	p, f := newPreflight(t)
	f.whoErr = &msapi.Error{Service: "dataverse", Status: http.StatusForbidden, Code: "0x80072560", Message: "The user is not a member of the organization"}
	r, err := p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.False(t, r.Ready)
	c := check(t, r, ReadyDataverseAppUser)
	require.Equal(t, ReadyFail, c.Status)
	require.Equal(t, "Power Platform admin center › Environments › contoso.crm.dynamics.com › Settings › Users + permissions › Application users › New app user › add CSP Upgrade Orchestrator (0c1a5e00-0000-4000-8000-00000000c5b0) with a security role that reads solutions, users and roles and imports solutions (e.g. System Administrator)", c.Fix)
	require.Equal(t, ReadySkip, check(t, r, ReadyWork365Version).Status)
	require.Equal(t, "unknown", r.Path)

	f.whoErr = nil
	f.appUser.Roles = nil
	r, err = p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	c = check(t, r, ReadyDataverseAppUser)
	require.Equal(t, ReadyFail, c.Status)
	require.Contains(t, c.Detail, "no security role")
	require.Contains(t, c.Fix, "Edit security roles")
}

func TestReadinessAccountsAndGlobalAdministrator(t *testing.T) {
	p, f := newPreflight(t)
	no := false
	svc := f.users[service]
	svc.AccountEnabled = &no
	f.users[service] = svc
	delete(f.globalAdmins, "u-admin")
	f.roleStatus = map[string]msgraph.RoleStatus{"u-admin": {ViaGroups: []string{"Tenant Admins"}}}
	r, err := p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.False(t, r.Ready)
	require.Equal(t, ReadyPass, check(t, r, ReadyGlobalAdminAccount).Status)
	c := check(t, r, ReadyServiceAccount)
	require.Equal(t, ReadyFail, c.Status)
	require.Contains(t, c.Fix, "Unblock sign-in")
	c = check(t, r, ReadyGlobalAdminRole)
	require.Equal(t, ReadyFail, c.Status)
	require.Contains(t, c.Detail, "only through group Tenant Admins")
	require.Equal(t, "Entra admin center › Roles & admins › Global Administrator › Add assignments › "+admin+" (assignment type Active)", c.Fix)

	f.roleStatus = map[string]msgraph.RoleStatus{"u-admin": {Eligible: true}}
	r, err = p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.Contains(t, check(t, r, ReadyGlobalAdminRole).Fix, "Privileged Identity Management")

	delete(f.users, admin)
	r, err = p.CheckReadiness(context.Background(), readyIn)
	require.NoError(t, err)
	require.Contains(t, check(t, r, ReadyGlobalAdminAccount).Detail, "does not exist")
	require.Equal(t, ReadySkip, check(t, r, ReadyGlobalAdminRole).Status)
}

func TestReadinessTransientFailureRetries(t *testing.T) {
	p, f := newPreflight(t)
	f.solErr = &msapi.Error{Service: "dataverse", Status: http.StatusServiceUnavailable, Message: "unavailable"}
	_, err := p.CheckReadiness(context.Background(), readyIn)
	ae := appErr(t, err)
	require.Equal(t, ErrMicrosoftTransient, ae.Type())
	require.False(t, ae.NonRetryable())
}
