package sim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
)

func TestGraphPaths(t *testing.T) {
	e := newEnv(t, nil)

	u := e.graph(tenantA, "users/admin@contoso.onmicrosoft.com?$select=id,userPrincipalName,assignedLicenses,accountEnabled", 200)
	if u["id"] != adminA || u["displayName"] != nil {
		t.Fatalf("user (select honoured): %v", u)
	}
	if lic := u["assignedLicenses"].([]any); len(lic) != 3 {
		t.Fatalf("licences: %v", lic) // Dynamics, P1, Office
	}
	if m := e.graph(tenantA, "users/nobody@contoso.onmicrosoft.com", 404); errCode(m) != "Request_ResourceNotFound" {
		t.Fatalf("unknown user: %v", m)
	}

	ra := e.graphAll(tenantA, "roleManagement/directory/roleAssignments?$filter="+q("principalId eq '"+adminA+"' and roleDefinitionId eq '"+msgraph.GlobalAdministratorRoleTemplateID+"'"))
	if len(ra) != 1 || ra[0]["principalId"] != adminA || ra[0]["roleDefinitionId"] != msgraph.GlobalAdministratorRoleTemplateID {
		t.Fatalf("role assignments: %v", ra)
	}
	if ra := e.graphAll(tenantA, "roleManagement/directory/roleAssignments?$filter="+q("principalId eq '"+svcA+"' and roleDefinitionId eq '"+msgraph.GlobalAdministratorRoleTemplateID+"'")); len(ra) != 0 {
		t.Fatalf("service account is no global admin: %v", ra)
	}
	e.graph(tenantA, "roleManagement/directory/roleAssignments", 400)

	skus := e.graphAll(tenantA, "subscribedSkus") // 3 SKUs over pages of 2
	parts := []string{}
	for _, s := range skus {
		parts = append(parts, s["skuPartNumber"].(string))
	}
	if strings.Join(parts, ",") != "ENTERPRISEPACK,DYN365_ENTERPRISE_PLAN1,AAD_PREMIUM" {
		t.Fatalf("skus: %v", parts)
	}
	if skusB := e.graphAll(tenantB, "subscribedSkus"); len(skusB) != 2 {
		t.Fatalf("tenant B has no P1: %v", skusB)
	}

	rd := e.graph(tenantA, "reports/authenticationMethods/userRegistrationDetails/"+adminA, 200)
	if rd["isMfaRegistered"] != false || rd["userPrincipalName"] != "admin@contoso.onmicrosoft.com" {
		t.Fatalf("registration details: %v", rd)
	}
	if m := e.graph(tenantB, "reports/authenticationMethods/userRegistrationDetails/"+adminB, 403); errCode(m) != "Authentication_RequestFromNonPremiumTenantOrB2CTenant" {
		t.Fatalf("non-premium: %v", m)
	}
	if ms := e.graphAll(tenantB, "users/"+adminB+"/authentication/methods"); len(ms) != 3 {
		t.Fatalf("methods of an MFA-registered user: %v", ms)
	}
	if ms := e.graphAll(tenantA, "users/"+adminA+"/authentication/methods"); len(ms) != 1 || ms[0]["@odata.type"] != "#microsoft.graph.passwordAuthenticationMethod" {
		t.Fatalf("methods without MFA: %v", ms)
	}

	if sd := e.graph(tenantA, "policies/identitySecurityDefaultsEnforcementPolicy", 200); sd["isEnabled"] != false {
		t.Fatalf("security defaults A: %v", sd)
	}
	if sd := e.graph(tenantB, "policies/identitySecurityDefaultsEnforcementPolicy", 200); sd["isEnabled"] != true {
		t.Fatalf("security defaults B: %v", sd)
	}
	ca := e.graphAll(tenantA, "identity/conditionalAccess/policies")
	if len(ca) != 1 || ca[0]["grantControls"].(map[string]any)["builtInControls"].([]any)[0] != "block" {
		t.Fatalf("CA policies: %v", ca)
	}

	// Work 365 not consented in A: no service principal; consented in B.
	appID := e.cloud.Names().AppID
	if sps := e.graphAll(tenantA, "servicePrincipals?$filter="+q("appId eq '"+appID+"'")); len(sps) != 0 {
		t.Fatalf("A has no Work 365 SP: %v", sps)
	}
	sps := e.graphAll(tenantB, "servicePrincipals?$filter="+q("appId eq '"+appID+"'"))
	if len(sps) != 1 || sps[0]["appId"] != appID {
		t.Fatalf("B's Work 365 SP: %v", sps)
	}
	id := sps[0]["id"].(string)
	grants := e.graphAll(tenantB, "servicePrincipals/"+id+"/oauth2PermissionGrants")
	if len(grants) != 2 || grants[0]["consentType"] != "AllPrincipals" || grants[0]["clientId"] != id {
		t.Fatalf("grants: %v", grants)
	}
	if ar := e.graphAll(tenantB, "servicePrincipals/"+id+"/appRoleAssignments"); len(ar) != 1 {
		t.Fatalf("app roles: %v", ar)
	}
	orch := e.graphAll(tenantA, "servicePrincipals?$filter="+q("appId eq '"+e.cloud.Scenario().Orchestrator.ClientID+"'"))
	if len(orch) != 1 {
		t.Fatalf("orchestrator SP: %v", orch)
	}
	if ar := e.graphAll(tenantA, "servicePrincipals/"+orch[0]["id"].(string)+"/appRoleAssignments"); len(ar) != len(DefaultPermissions()) {
		t.Fatalf("orchestrator app roles over pages: %d", len(ar))
	}
	e.graph(tenantA, "servicePrincipals/00000000-0000-0000-0000-000000000000/oauth2PermissionGrants", 404)
	e.graph(tenantA, "me", 400) // no permissions-manifest entry: the worker never calls it

	c := e.cloud.TenantCounters(tenantA)
	if c.Calls["GET graph /v1.0/subscribedSkus"] != 2 || c.Calls["GET graph /v1.0/users/{}"] != 2 {
		t.Fatalf("calls: %v", c.Calls)
	}
}

func TestGraphPagingRespectsTop(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.PageSize = 100 })
	m := e.graph(tenantA, "servicePrincipals?$top=1", 200)
	next, _ := m["@odata.nextLink"].(string)
	if len(m["value"].([]any)) != 1 || !strings.HasPrefix(next, "https://graph.microsoft.com/v1.0/servicePrincipals?") {
		t.Fatalf("page: %v", m)
	}
	if all := e.graphAll(tenantA, "servicePrincipals?$top=1"); len(all) != 4 { // Graph, Dynamics CRM, the orchestrator, Partner Center
		t.Fatalf("all: %d", len(all))
	}
}

// TestQueriesGraphRefuses: like Graph, $select of a property the type lacks and a query option
// the call does not support are 400 BadRequest, naming them.
func TestQueriesGraphRefuses(t *testing.T) {
	e := newEnv(t, nil)
	m := e.graph(tenantA, "users/admin@contoso.onmicrosoft.com?$select=id,nickname", 400)
	if fmt.Sprint(m["error"]) != fmt.Sprint(map[string]any{"code": "BadRequest", "message": "Could not find a property named 'nickname' on type 'microsoft.graph.user'."}) {
		t.Fatalf("unknown property: %v", m)
	}
	m = e.graph(tenantA, "subscribedSkus?$orderby=skuPartNumber", 400)
	if !strings.Contains(fmt.Sprint(m["error"]), "Query option 'orderby' is not allowed") {
		t.Fatalf("unsupported option: %v", m)
	}
	// Graph's property names are not case-sensitive.
	if u := e.graph(tenantA, "users/admin@contoso.onmicrosoft.com?$select=ID,AccountEnabled", 200); u["accountEnabled"] == nil && u["AccountEnabled"] == nil {
		t.Fatalf("case-insensitive select: %v", u)
	}
}
