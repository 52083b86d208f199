package msgraph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
)

const tenant = "aaaaaaaa-0000-0000-0000-000000000001"

// route is one expected call and its answer.
type route struct {
	path    string     // decoded path after /v1.0
	rawPath string     // when set, the escaped path must match exactly
	query   url.Values // exact query
	status  int
	header  http.Header
	body    string
}

// fakeGraph answers the routes given, in any order, and fails the test on anything else.
type fakeGraph struct {
	t      *testing.T
	srv    *httptest.Server
	routes []route
	mu     sync.Mutex
	calls  []string
}

func newFakeGraph(t *testing.T, routes ...route) (*fakeGraph, *Client) {
	f := &fakeGraph{t: t, routes: routes}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	tokens := func(_ context.Context, tenantID, scope string) (string, error) {
		assert.Equal(t, tenant, tenantID)
		assert.Equal(t, msauth.GraphScope, scope)
		return "graph-token", nil
	}
	return f, New(tokens, msapi.WithBaseURL(f.srv.URL+"/v1.0/"))
}

func (f *fakeGraph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	assert.Equal(f.t, http.MethodGet, r.Method)
	assert.Equal(f.t, "Bearer graph-token", r.Header.Get("Authorization"))
	assert.Equal(f.t, "application/json", r.Header.Get("Accept"))
	f.mu.Lock()
	f.calls = append(f.calls, r.URL.RequestURI())
	f.mu.Unlock()
	for _, rt := range f.routes {
		if "/v1.0/"+rt.path != r.URL.Path || !sameQuery(rt.query, r.URL.Query()) {
			continue
		}
		if rt.rawPath != "" {
			assert.Equal(f.t, "/v1.0/"+rt.rawPath, r.URL.EscapedPath())
		}
		for k, v := range rt.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		if rt.status != 0 {
			w.WriteHeader(rt.status)
		}
		_, _ = io.WriteString(w, strings.ReplaceAll(rt.body, "{{base}}", f.srv.URL))
		return
	}
	f.t.Errorf("unexpected call %s %s", r.Method, r.URL.RequestURI())
	w.WriteHeader(http.StatusTeapot)
}

func sameQuery(want, got url.Values) bool {
	if len(want) == 0 && len(got) == 0 {
		return true
	}
	return fmt.Sprint(want) == fmt.Sprint(got)
}

func (f *fakeGraph) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func graphErr(code, msg string) string {
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q,"innerError":{"request-id":"r"}}}`, code, msg)
}

func asAPIError(t *testing.T, err error) *msapi.Error {
	t.Helper()
	var e *msapi.Error
	require.True(t, errors.As(err, &e), "want *msapi.Error, got %T %v", err, err)
	assert.Equal(t, "graph", e.Service)
	return e
}

func TestGetUser(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path:    "users/adele@contoso.com",
		rawPath: "users/adele@contoso.com",
		query:   url.Values{"$select": {"id,userPrincipalName,displayName,accountEnabled,assignedLicenses"}},
		body: `{"id":"u1","userPrincipalName":"adele@contoso.com","displayName":"Adele","accountEnabled":true,
			"assignedLicenses":[{"skuId":"078d2b04-f1bd-4111-bbd4-b4b1b354cef4","disabledPlans":[]}]}`,
	})
	u, err := c.GetUser(context.Background(), tenant, "adele@contoso.com")
	require.NoError(t, err)
	assert.Equal(t, "u1", u.ID)
	require.NotNil(t, u.AccountEnabled)
	assert.True(t, *u.AccountEnabled)
	assert.Equal(t, []AssignedLicense{{SkuID: "078d2b04-f1bd-4111-bbd4-b4b1b354cef4", DisabledPlans: []string{}}}, u.AssignedLicenses)
}

func TestGetUserEscapesGuestUPN(t *testing.T) {
	upn := "o'neil_fabrikam.com#EXT#@contoso.onmicrosoft.com"
	_, c := newFakeGraph(t, route{
		path:    "users/" + upn,
		rawPath: "users/o%27neil_fabrikam.com%23EXT%23@contoso.onmicrosoft.com",
		query:   url.Values{"$select": {userSelect}},
		body:    `{"id":"g1","userPrincipalName":"x"}`,
	})
	u, err := c.GetUser(context.Background(), tenant, upn)
	require.NoError(t, err)
	assert.Equal(t, "g1", u.ID)
}

func TestGetUserNotFound(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path: "users/ghost@contoso.com", query: url.Values{"$select": {userSelect}},
		status: 404, body: graphErr("Request_ResourceNotFound", "Resource 'ghost@contoso.com' does not exist."),
	})
	_, err := c.GetUser(context.Background(), tenant, "ghost@contoso.com")
	e := asAPIError(t, err)
	assert.True(t, e.NotFound())
	assert.False(t, e.Retryable())
	assert.Equal(t, "Request_ResourceNotFound", e.Code)
	assert.Contains(t, e.Hint, "check the UPN")
}

func TestGetUserRefusesEmptyID(t *testing.T) {
	f, c := newFakeGraph(t)
	_, err := c.GetUser(context.Background(), tenant, " ")
	e := asAPIError(t, err)
	assert.False(t, e.Retryable())
	assert.Zero(t, f.callCount())
}

func TestListRoleAssignmentsFiltersAndPages(t *testing.T) {
	filter := "principalId eq 'u1' and roleDefinitionId eq '" + GlobalAdministratorRoleTemplateID + "'"
	_, c := newFakeGraph(t,
		route{
			path: "roleManagement/directory/roleAssignments", query: url.Values{"$filter": {filter}},
			body: `{"value":[{"id":"a1","principalId":"u1","roleDefinitionId":"` + GlobalAdministratorRoleTemplateID + `","directoryScopeId":"/"}],
				"@odata.nextLink":"{{base}}/v1.0/roleManagement/directory/roleAssignments?$filter=x&$skiptoken=2"}`,
		},
		route{
			path: "roleManagement/directory/roleAssignments", query: url.Values{"$filter": {"x"}, "$skiptoken": {"2"}},
			body: `{"value":[{"id":"a2","principalId":"u1","roleDefinitionId":"r","directoryScopeId":"/administrativeUnits/1"}]}`,
		})
	got, err := c.ListRoleAssignments(context.Background(), tenant, "u1", GlobalAdministratorRoleTemplateID)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "a1", got[0].ID)
	assert.Equal(t, "/administrativeUnits/1", got[1].DirectoryScopeID)
}

func TestListRoleAssignmentsDoublesQuotes(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path:  "roleManagement/directory/roleAssignments",
		query: url.Values{"$filter": {"principalId eq 'x'' or ''1''=''1' and roleDefinitionId eq 'r'"}},
		body:  `{"value":[]}`,
	})
	got, err := c.ListRoleAssignments(context.Background(), tenant, "x' or '1'='1", "r")
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestListRoleAssignmentsDenied(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path:   "roleManagement/directory/roleAssignments",
		query:  url.Values{"$filter": {"principalId eq 'u1' and roleDefinitionId eq 'r'"}},
		status: 403, body: graphErr("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
	})
	_, err := c.ListRoleAssignments(context.Background(), tenant, "u1", "r")
	e := asAPIError(t, err)
	assert.True(t, e.Unauthorized())
	assert.False(t, e.Retryable())
	assert.Contains(t, e.Hint, "RoleManagement.Read.Directory")
	assert.Contains(t, e.Hint, tenant)
}

func TestListSubscribedSkus(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path: "subscribedSkus",
		body: `{"value":[{"id":"t_078d","skuId":"078d2b04-f1bd-4111-bbd4-b4b1b354cef4","skuPartNumber":"AAD_PREMIUM",
			"servicePlans":[{"servicePlanId":"41781fb2-bc02-4b7c-bd55-b576c07bb09d","servicePlanName":"AAD_PREMIUM"}]}]}`,
	})
	skus, err := c.ListSubscribedSkus(context.Background(), tenant)
	require.NoError(t, err)
	require.Len(t, skus, 1)
	assert.Equal(t, "AAD_PREMIUM", skus[0].SkuPartNumber)
	assert.Equal(t, "41781fb2-bc02-4b7c-bd55-b576c07bb09d", skus[0].ServicePlans[0].ServicePlanID)
}

func TestListSubscribedSkusThrottled(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path: "subscribedSkus", status: 429, header: http.Header{"Retry-After": {"30"}},
		body: graphErr("TooManyRequests", "Too many requests"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // the 30s wait does not fit: back to Temporal at once
	defer cancel()
	_, err := c.ListSubscribedSkus(ctx, tenant)
	e := asAPIError(t, err)
	assert.True(t, e.Retryable())
	assert.Equal(t, 30*time.Second, e.RetryAfter)
}

func TestMFAFromReport(t *testing.T) {
	f, c := newFakeGraph(t, route{
		path: "reports/authenticationMethods/userRegistrationDetails/u1",
		body: `{"id":"u1","userPrincipalName":"adele@contoso.com","isMfaRegistered":true,"isMfaCapable":true,
			"methodsRegistered":["microsoftAuthenticatorPush","mobilePhone"]}`,
	})
	reg, err := c.GetMFARegistration(context.Background(), tenant, "u1")
	require.NoError(t, err)
	assert.Equal(t, MFARegistration{Registered: true, Methods: []string{"microsoftAuthenticatorPush", "mobilePhone"}, Source: "userRegistrationDetails"}, reg)
	assert.Equal(t, 1, f.callCount())
}

func nonPremium() route {
	return route{
		path: "reports/authenticationMethods/userRegistrationDetails/u1", status: 403,
		body: graphErr("Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Tenant does not have a SKU required for this feature"),
	}
}

func TestMFAFallbackWithoutP1(t *testing.T) {
	f, c := newFakeGraph(t, nonPremium(), route{
		path: "users/u1/authentication/methods",
		body: `{"value":[{"@odata.type":"#microsoft.graph.passwordAuthenticationMethod","id":"p"},
			{"@odata.type":"#microsoft.graph.microsoftAuthenticatorAuthenticationMethod","id":"m"}],
			"@odata.nextLink":"{{base}}/v1.0/users/u1/authentication/methods?$skiptoken=2"}`,
	}, route{
		path: "users/u1/authentication/methods", query: url.Values{"$skiptoken": {"2"}},
		body: `{"value":[{"@odata.type":"#microsoft.graph.fido2AuthenticationMethod","id":"f"}]}`,
	})
	reg, err := c.GetMFARegistration(context.Background(), tenant, "u1")
	require.NoError(t, err)
	assert.Equal(t, MFARegistration{Registered: true, Methods: []string{"microsoftAuthenticator", "fido2"}, Source: "authenticationMethods"}, reg)
	assert.Equal(t, 3, f.callCount())
}

func TestMFAFallbackPasswordOnly(t *testing.T) {
	_, c := newFakeGraph(t, nonPremium(), route{
		path: "users/u1/authentication/methods",
		body: `{"value":[{"@odata.type":"#microsoft.graph.passwordAuthenticationMethod","id":"p"}]}`,
	})
	reg, err := c.GetMFARegistration(context.Background(), tenant, "u1")
	require.NoError(t, err)
	assert.False(t, reg.Registered)
	assert.Empty(t, reg.Methods)
	assert.Equal(t, "authenticationMethods", reg.Source)
}

func TestMFAFallbackDenied(t *testing.T) {
	_, c := newFakeGraph(t, nonPremium(), route{
		path: "users/u1/authentication/methods", status: 403,
		body: graphErr("accessDenied", "Request Authorization failed"),
	})
	_, err := c.GetMFARegistration(context.Background(), tenant, "u1")
	e := asAPIError(t, err)
	assert.Contains(t, e.Hint, "UserAuthenticationMethod.Read.All")
}

func TestMFAReportDeniedOtherwiseIsNoFallback(t *testing.T) {
	f, c := newFakeGraph(t, route{
		path: "reports/authenticationMethods/userRegistrationDetails/u1", status: 403,
		body: graphErr("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
	})
	_, err := c.GetMFARegistration(context.Background(), tenant, "u1")
	e := asAPIError(t, err)
	assert.Contains(t, e.Hint, "AuditLog.Read.All")
	assert.Equal(t, 1, f.callCount())
}

func TestSecurityDefaultsAndConditionalAccess(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path: "policies/identitySecurityDefaultsEnforcementPolicy",
		body: `{"id":"00000000-0000-0000-0000-000000000005","displayName":"Security Defaults","isEnabled":true}`,
	}, route{
		path: "identity/conditionalAccess/policies",
		body: `{"value":[{"id":"p1","displayName":"Require MFA for admins","state":"enabled",
			"grantControls":{"operator":"OR","builtInControls":["mfa"]}},
			{"id":"p2","displayName":"Report only","state":"enabledForReportingButNotEnforced","grantControls":{"operator":"OR","builtInControls":["mfa"]}}]}`,
	})
	sd, err := c.GetSecurityDefaults(context.Background(), tenant)
	require.NoError(t, err)
	assert.True(t, sd.IsEnabled)
	ps, err := c.ListConditionalAccessPolicies(context.Background(), tenant)
	require.NoError(t, err)
	require.Len(t, ps, 2)
	assert.True(t, ps[0].RequiresMFA())
	assert.False(t, ps[1].RequiresMFA())
}

func TestSecurityDefaultsDenied(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path: "policies/identitySecurityDefaultsEnforcementPolicy", status: 401,
		body: graphErr("InvalidAuthenticationToken", "Access token validation failure."),
	})
	_, err := c.GetSecurityDefaults(context.Background(), tenant)
	e := asAPIError(t, err)
	assert.Equal(t, 401, e.Status)
	assert.Contains(t, e.Hint, "Policy.Read.All")
}

func TestFindServicePrincipal(t *testing.T) {
	appID := "5b3e7d1c-0a65-4c1e-9d39-365000000365"
	_, c := newFakeGraph(t, route{
		path: "servicePrincipals", query: url.Values{"$filter": {"appId eq '" + appID + "'"}},
		body: `{"value":[{"id":"sp1","appId":"` + appID + `","displayName":"Work 365"}]}`,
	}, route{
		path: "servicePrincipals", query: url.Values{"$filter": {"appId eq 'absent'"}},
		body: `{"value":[]}`,
	})
	sp, err := c.FindServicePrincipal(context.Background(), tenant, appID)
	require.NoError(t, err)
	require.NotNil(t, sp)
	assert.Equal(t, ServicePrincipal{ID: "sp1", AppID: appID, DisplayName: "Work 365"}, *sp)

	sp, err = c.FindServicePrincipal(context.Background(), tenant, "absent")
	require.NoError(t, err)
	assert.Nil(t, sp)
}

func TestGrantsAndAppRoleAssignments(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path: "servicePrincipals/sp1/oauth2PermissionGrants",
		body: `{"value":[{"id":"g1","clientId":"sp1","consentType":"AllPrincipals","resourceId":"r1","scope":"User.Read offline_access"}]}`,
	}, route{
		path: "servicePrincipals/sp1/appRoleAssignments",
		body: `{"value":[{"id":"a1","appRoleId":"df021288-bdef-4463-88db-98f22de89214","principalId":"sp1","resourceId":"r1"}]}`,
	}, route{
		path: "servicePrincipals/gone/appRoleAssignments", status: 404,
		body: graphErr("Request_ResourceNotFound", "Resource 'gone' does not exist."),
	})
	gs, err := c.ListOAuth2PermissionGrants(context.Background(), tenant, "sp1")
	require.NoError(t, err)
	assert.Equal(t, []OAuth2PermissionGrant{{ID: "g1", ClientID: "sp1", ConsentType: "AllPrincipals", ResourceID: "r1", Scope: "User.Read offline_access"}}, gs)
	as, err := c.ListAppRoleAssignments(context.Background(), tenant, "sp1")
	require.NoError(t, err)
	assert.Equal(t, "df021288-bdef-4463-88db-98f22de89214", as[0].AppRoleID)

	_, err = c.ListAppRoleAssignments(context.Background(), tenant, "gone")
	assert.True(t, asAPIError(t, err).NotFound())
}

func TestDefaultBaseURL(t *testing.T) {
	var seen string
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		seen = r.URL.String()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"isEnabled":false}`)), Request: r}, nil
	})}
	c := New(func(context.Context, string, string) (string, error) { return "t", nil }, msapi.WithHTTPClient(hc))
	_, err := c.GetSecurityDefaults(context.Background(), tenant)
	require.NoError(t, err)
	assert.Equal(t, "https://graph.microsoft.com/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", seen)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDeniedHintsNameTheManifestPermission: a 403 names the permission the permissions manifest
// grants for that call (LicenseAssignment.Read.All for the SKUs, not Organization.Read.All).
func TestDeniedHintsNameTheManifestPermission(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path:   "subscribedSkus",
		status: 403, body: graphErr("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
	})
	_, err := c.ListSubscribedSkus(context.Background(), tenant)
	e := asAPIError(t, err)
	assert.Contains(t, e.Hint, "LicenseAssignment.Read.All")
	assert.NotContains(t, e.Hint, "Organization.Read.All")
}
