package msgraph

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11 item 1: listing delegated grants needs Directory.Read.All, and a refusal says so.
func TestGrantsDeniedNamesDirectoryReadAll(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path: "servicePrincipals/sp1/oauth2PermissionGrants", status: 403,
		body: graphErr("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
	})
	_, err := c.ListOAuth2PermissionGrants(context.Background(), tenant, "sp1")
	e := asAPIError(t, err)
	assert.False(t, e.Retryable())
	assert.Contains(t, e.Hint, "Directory.Read.All")
}

// Issue 11 item 7: email (SSPR only) and a temporary access pass are not MFA.
func TestMFAFallbackEmailIsNotMFA(t *testing.T) {
	_, c := newFakeGraph(t, nonPremium(), route{
		path: "users/u1/authentication/methods",
		body: `{"value":[{"@odata.type":"#microsoft.graph.passwordAuthenticationMethod","id":"p"},
			{"@odata.type":"#microsoft.graph.emailAuthenticationMethod","id":"e","emailAddress":"x@fabrikam.com"},
			{"@odata.type":"#microsoft.graph.temporaryAccessPassAuthenticationMethod","id":"t"}]}`,
	})
	reg, err := c.GetMFARegistration(context.Background(), tenant, "u1")
	require.NoError(t, err)
	assert.False(t, reg.Registered, "email and a temporary access pass cannot satisfy MFA")
	assert.Empty(t, reg.Methods)
}

func TestMFAFallbackCountsMFAMethods(t *testing.T) {
	for _, m := range []string{"phone", "softwareOath", "windowsHelloForBusiness", "fido2", "microsoftAuthenticator"} {
		assert.True(t, CanSatisfyMFA("#microsoft.graph."+m+"AuthenticationMethod"), m)
	}
	for _, m := range []string{"password", "email", "temporaryAccessPass"} {
		assert.False(t, CanSatisfyMFA("#microsoft.graph."+m+"AuthenticationMethod"), m)
	}
}

// Issue 11 item 4: an authentication strength requires MFA; conditions say whom a policy covers.
func TestConditionalAccessStrengthAndScope(t *testing.T) {
	_, c := newFakeGraph(t, route{
		path: "identity/conditionalAccess/policies",
		body: `{"value":[
			{"id":"p1","displayName":"Phishing-resistant MFA for all","state":"enabled",
			 "conditions":{"users":{"includeUsers":["All"],"excludeUsers":["breakglass"],"includeGroups":[],"excludeGroups":[],"includeRoles":[],"excludeRoles":[]}},
			 "grantControls":{"operator":"OR","builtInControls":[],"authenticationStrength":{"id":"00000000-0000-0000-0000-000000000004","displayName":"Phishing-resistant MFA","requirementsSatisfied":"mfa"}}},
			{"id":"p2","displayName":"MFA for the pilot group","state":"enabled",
			 "conditions":{"users":{"includeUsers":[],"includeGroups":["g-pilot"],"excludeGroups":[]}},
			 "grantControls":{"operator":"OR","builtInControls":["mfa"]}},
			{"id":"p3","displayName":"Report only","state":"enabledForReportingButNotEnforced",
			 "conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"operator":"OR","builtInControls":["mfa"]}}]}`,
	})
	ps, err := c.ListConditionalAccessPolicies(context.Background(), tenant)
	require.NoError(t, err)
	require.Len(t, ps, 3)
	assert.True(t, ps[0].RequiresMFA(), "authentication strength requires MFA")
	assert.True(t, ps[0].TenantWide())
	assert.True(t, ps[0].Covers("u1", nil))
	assert.False(t, ps[0].Covers("breakglass", nil), "excluded user")
	assert.True(t, ps[1].RequiresMFA())
	assert.False(t, ps[1].TenantWide())
	assert.False(t, ps[1].Covers("u1", nil))
	assert.True(t, ps[1].Covers("u1", []string{"g-pilot"}))
	assert.False(t, ps[2].RequiresMFA(), "report-only does not enforce")
}

// Issue 11 item 8: Global Administrator through a group, or only eligible in PIM.
func TestDirectoryRoleStatus(t *testing.T) {
	const ga = GlobalAdministratorRoleTemplateID
	direct := url.Values{"$filter": {"principalId eq 'u1' and roleDefinitionId eq '" + ga + "'"}}
	byRole := url.Values{"$filter": {"roleDefinitionId eq '" + ga + "'"}}
	memberOf := url.Values{"$select": {"id,displayName,isAssignableToRole"}}
	_, c := newFakeGraph(t,
		route{path: "roleManagement/directory/roleAssignments", query: direct, body: `{"value":[]}`},
		route{path: "users/u1/memberOf", query: memberOf, body: `{"value":[
			{"@odata.type":"#microsoft.graph.directoryRole","id":"dr1","displayName":"Helpdesk"},
			{"@odata.type":"#microsoft.graph.group","id":"g-admins","displayName":"Tenant admins","isAssignableToRole":true}]}`},
		route{path: "roleManagement/directory/roleAssignments", query: byRole, body: `{"value":[
			{"id":"a1","principalId":"g-admins","roleDefinitionId":"` + ga + `","directoryScopeId":"/"}]}`},
	)
	st, err := c.DirectoryRoleStatus(context.Background(), tenant, "u1", ga)
	require.NoError(t, err)
	assert.Equal(t, RoleStatus{ViaGroups: []string{"Tenant admins"}}, st)
	assert.True(t, st.Active())

	eligible := url.Values{"$filter": {"principalId eq 'u1' and roleDefinitionId eq '" + ga + "'"}}
	_, c = newFakeGraph(t,
		route{path: "roleManagement/directory/roleAssignments", query: direct, body: `{"value":[]}`},
		route{path: "users/u1/memberOf", query: memberOf, body: `{"value":[]}`},
		route{path: "roleManagement/directory/roleEligibilityScheduleInstances", query: eligible, body: `{"value":[
			{"id":"e1","principalId":"u1","roleDefinitionId":"` + ga + `","directoryScopeId":"/","memberType":"Direct"}]}`},
	)
	st, err = c.DirectoryRoleStatus(context.Background(), tenant, "u1", ga)
	require.NoError(t, err)
	assert.Equal(t, RoleStatus{Eligible: true}, st)
	assert.False(t, st.Active())
}

// Issue 11 item 6: Dynamics licences are found by service plan, whatever the SKU is called.
func TestDynamicsLicenceByServicePlan(t *testing.T) {
	var skus []SubscribedSku
	require.NoError(t, json.Unmarshal([]byte(`[
		{"skuId":"s-sales","skuPartNumber":"D365_SALES_PRO","servicePlans":[
			{"servicePlanId":"88d83950-ff78-4e85-aa66-abfc787f8090","servicePlanName":"DYN365_SALES_PRO"},
			{"servicePlanId":"p-flow","servicePlanName":"FLOW_DYN_APPS"}]},
		{"skuId":"s-e3","skuPartNumber":"SPE_E3","servicePlans":[
			{"servicePlanId":"p-cds","servicePlanName":"DYN365_CDS_O365_P2"}]}]`), &skus))
	sales := User{AssignedLicenses: []AssignedLicense{{SkuID: "S-SALES"}}}
	assert.True(t, HasDynamicsLicence(sales, skus))
	e3 := User{AssignedLicenses: []AssignedLicense{{SkuID: "s-e3"}}}
	assert.False(t, HasDynamicsLicence(e3, skus), "the Dataverse plan of Microsoft 365 E3 is no Dynamics 365 licence")
	disabled := User{AssignedLicenses: []AssignedLicense{{SkuID: "s-sales", DisabledPlans: []string{"88d83950-ff78-4e85-aa66-abfc787f8090"}}}}
	assert.False(t, HasDynamicsLicence(disabled, skus), "a disabled plan gives no access")
	for _, p := range []string{"DYN365_ENTERPRISE_P1", "CRMSTANDARD", "DYN365_ENTERPRISE_SALES", "DYN365_TEAM_MEMBERS"} {
		assert.True(t, IsDynamicsServicePlan(p), p)
	}
}
