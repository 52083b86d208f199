package sdkcontract_test

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go/serialization"
	jsonser "github.com/microsoft/kiota-serialization-json-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// graphGet fetches a simulated Graph answer over HTTP and parses it with the SDK's model.
func graphGet(t *testing.T, cloud *sim.Cloud, hc *http.Client, tenantID, path string, ctor abs.ParsableFactory) abs.Parsable {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://graph.microsoft.com/v1.0/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+cloud.IssueToken(tenantID, sim.GraphResource, time.Hour))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	node, err := jsonser.NewJsonParseNode(body)
	if err != nil {
		t.Fatalf("GET %s: kiota cannot read the answer: %v", path, err)
	}
	v, err := node.GetObjectValue(ctor)
	if err != nil {
		t.Fatalf("GET %s: the SDK model cannot parse the answer: %v\n%s", path, err, body)
	}
	return v
}

// unknown fails for properties the SDK's model does not know (kiota keeps them in
// AdditionalData): a property the simulator invented or misspelt. OData annotations are allowed.
func unknown(t *testing.T, what string, holders ...abs.AdditionalDataHolder) {
	t.Helper()
	for _, h := range holders {
		var extra []string
		for k := range h.GetAdditionalData() {
			if !strings.HasPrefix(k, "@") {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			t.Errorf("%s: properties Microsoft's model does not have: %v", what, extra)
		}
	}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestMicrosoftGraphSDKReadsTheSimulatedGraph parses every Graph answer the adapters rely on
// with msgraph-sdk-go's models and checks the fields they read.
func TestMicrosoftGraphSDKReadsTheSimulatedGraph(t *testing.T) {
	scn, err := sim.LoadScenario("../../../examples/sim-scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := &scn.Tenants[0], &scn.Tenants[1]
	// Tenant A: the MFA policy requires an authentication strength and is scoped to a group;
	// its admin holds Global Administrator through a role-assignable group.
	a.ConditionalAccessMFA, a.ConditionalAccessStrength, a.ConditionalAccessGroup = true, true, true
	a.Admin.GlobalAdminVia = "group"
	cloud := sim.New(scn, sim.Options{Clock: scn.NewClock(), NoFaults: true})
	defer cloud.Close()
	if err := cloud.GrantAdminConsent(a.TenantID); err != nil {
		t.Fatal(err)
	}
	hc := cloud.HTTPClient()

	// users/{id} with the adapter's $select.
	u := graphGet(t, cloud, hc, a.TenantID, "users/"+a.Admin.UPN+"?$select=id,userPrincipalName,displayName,accountEnabled,assignedLicenses",
		models.CreateUserFromDiscriminatorValue).(models.Userable)
	if str(u.GetId()) != a.Admin.ObjectID || !strings.EqualFold(str(u.GetUserPrincipalName()), a.Admin.UPN) ||
		u.GetAccountEnabled() == nil || !*u.GetAccountEnabled() || len(u.GetAssignedLicenses()) == 0 || u.GetAssignedLicenses()[0].GetSkuId() == nil {
		t.Errorf("user: id %q upn %q enabled %v licences %d", str(u.GetId()), str(u.GetUserPrincipalName()), u.GetAccountEnabled(), len(u.GetAssignedLicenses()))
	}
	unknown(t, "user", u)
	for _, l := range u.GetAssignedLicenses() {
		unknown(t, "assignedLicense", l)
	}

	// roleManagement/directory/roleAssignments: the group holding Global Administrator.
	ras := graphGet(t, cloud, hc, a.TenantID, "roleManagement/directory/roleAssignments?$filter="+
		"roleDefinitionId%20eq%20'"+msgraph.GlobalAdministratorRoleTemplateID+"'",
		models.CreateUnifiedRoleAssignmentCollectionResponseFromDiscriminatorValue).(models.UnifiedRoleAssignmentCollectionResponseable)
	if len(ras.GetValue()) == 0 || str(ras.GetValue()[0].GetRoleDefinitionId()) != msgraph.GlobalAdministratorRoleTemplateID || str(ras.GetValue()[0].GetPrincipalId()) == "" {
		t.Errorf("role assignments: %d", len(ras.GetValue()))
	}
	for _, r := range ras.GetValue() {
		unknown(t, "unifiedRoleAssignment", r)
	}

	// users/{id}/memberOf: the role-assignable group, as a microsoft.graph.group.
	mo := graphGet(t, cloud, hc, a.TenantID, "users/"+a.Admin.ObjectID+"/memberOf?$select=id,displayName,isAssignableToRole",
		models.CreateDirectoryObjectCollectionResponseFromDiscriminatorValue).(models.DirectoryObjectCollectionResponseable)
	assignable := 0
	for _, o := range mo.GetValue() {
		g, ok := o.(models.Groupable)
		if !ok {
			t.Errorf("memberOf: %T is not a group", o)
			continue
		}
		if g.GetIsAssignableToRole() != nil && *g.GetIsAssignableToRole() {
			assignable++
		}
		unknown(t, "group", g)
	}
	if assignable != 1 {
		t.Errorf("memberOf: %d role-assignable groups, want 1", assignable)
	}

	// roleEligibilityScheduleInstances (an empty list is still Microsoft's shape).
	el := graphGet(t, cloud, hc, a.TenantID, "roleManagement/directory/roleEligibilityScheduleInstances?$filter=principalId%20eq%20'"+a.Admin.ObjectID+"'",
		models.CreateUnifiedRoleEligibilityScheduleInstanceCollectionResponseFromDiscriminatorValue).(models.UnifiedRoleEligibilityScheduleInstanceCollectionResponseable)
	for _, e := range el.GetValue() {
		unknown(t, "unifiedRoleEligibilityScheduleInstance", e)
	}

	// subscribedSkus with their service plans.
	skus := graphGet(t, cloud, hc, a.TenantID, "subscribedSkus", models.CreateSubscribedSkuCollectionResponseFromDiscriminatorValue).(models.SubscribedSkuCollectionResponseable)
	plans := 0
	for _, s := range skus.GetValue() {
		if s.GetSkuId() == nil || str(s.GetSkuPartNumber()) == "" {
			t.Errorf("subscribedSku without skuId or skuPartNumber")
		}
		unknown(t, "subscribedSku", s)
		for _, p := range s.GetServicePlans() {
			if p.GetServicePlanId() != nil && str(p.GetServicePlanName()) != "" {
				plans++
			}
			unknown(t, "servicePlanInfo", p)
		}
	}
	if len(skus.GetValue()) < 2 || plans < len(skus.GetValue()) {
		t.Errorf("subscribedSkus: %d SKUs, %d named service plans", len(skus.GetValue()), plans)
	}

	// reports/authenticationMethods/userRegistrationDetails/{id} (tenant A has P1).
	rd := graphGet(t, cloud, hc, a.TenantID, "reports/authenticationMethods/userRegistrationDetails/"+a.Admin.ObjectID,
		models.CreateUserRegistrationDetailsFromDiscriminatorValue).(models.UserRegistrationDetailsable)
	if rd.GetIsMfaRegistered() == nil || rd.GetMethodsRegistered() == nil || str(rd.GetId()) != a.Admin.ObjectID {
		t.Errorf("registration details: registered %v methods %v", rd.GetIsMfaRegistered(), rd.GetMethodsRegistered())
	}
	unknown(t, "userRegistrationDetails", rd)

	// users/{id}/authentication/methods (tenant B: no P1, MFA registered): derived types by
	// @odata.type.
	am := graphGet(t, cloud, hc, b.TenantID, "users/"+b.Admin.ObjectID+"/authentication/methods",
		models.CreateAuthenticationMethodCollectionResponseFromDiscriminatorValue).(models.AuthenticationMethodCollectionResponseable)
	kinds := map[string]bool{}
	for _, m := range am.GetValue() {
		kinds[fmt.Sprintf("%T", m)] = true
		unknown(t, "authenticationMethod", m)
		if !msgraph.CanSatisfyMFA(str(m.GetOdataType())) && str(m.GetOdataType()) != "#microsoft.graph.passwordAuthenticationMethod" {
			t.Errorf("method %q", str(m.GetOdataType()))
		}
	}
	if !kinds["*models.MicrosoftAuthenticatorAuthenticationMethod"] || !kinds["*models.PhoneAuthenticationMethod"] || !kinds["*models.PasswordAuthenticationMethod"] {
		t.Errorf("authentication methods parsed as %v", kinds)
	}

	// policies/identitySecurityDefaultsEnforcementPolicy.
	sd := graphGet(t, cloud, hc, b.TenantID, "policies/identitySecurityDefaultsEnforcementPolicy",
		models.CreateIdentitySecurityDefaultsEnforcementPolicyFromDiscriminatorValue).(models.IdentitySecurityDefaultsEnforcementPolicyable)
	if sd.GetIsEnabled() == nil || !*sd.GetIsEnabled() {
		t.Errorf("security defaults: %v", sd.GetIsEnabled())
	}
	unknown(t, "identitySecurityDefaultsEnforcementPolicy", sd)

	// identity/conditionalAccess/policies: state, users, grant controls, authentication strength.
	ca := graphGet(t, cloud, hc, a.TenantID, "identity/conditionalAccess/policies",
		models.CreateConditionalAccessPolicyCollectionResponseFromDiscriminatorValue).(models.ConditionalAccessPolicyCollectionResponseable)
	strength := false
	for _, p := range ca.GetValue() {
		unknown(t, "conditionalAccessPolicy", p)
		if p.GetState() == nil || p.GetConditions() == nil || p.GetConditions().GetUsers() == nil || p.GetGrantControls() == nil {
			t.Errorf("policy %q lacks state, users or grant controls", str(p.GetDisplayName()))
			continue
		}
		unknown(t, "conditionalAccessUsers", p.GetConditions().GetUsers())
		unknown(t, "conditionalAccessGrantControls", p.GetGrantControls())
		if s := p.GetGrantControls().GetAuthenticationStrength(); s != nil {
			strength = str(s.GetId()) != "" && len(p.GetConditions().GetUsers().GetIncludeGroups()) == 1 &&
				p.GetState().String() == "enabled"
			unknown(t, "authenticationStrengthPolicy", s)
		}
	}
	if !strength {
		t.Errorf("no enabled, group-scoped policy requiring an authentication strength among %d", len(ca.GetValue()))
	}

	// servicePrincipals?$filter=appId eq …, its delegated grants and app role assignments.
	sps := graphGet(t, cloud, hc, a.TenantID, "servicePrincipals?$filter=appId%20eq%20'"+cloud.Names().AppID+"'",
		models.CreateServicePrincipalCollectionResponseFromDiscriminatorValue).(models.ServicePrincipalCollectionResponseable)
	if len(sps.GetValue()) != 1 || !strings.EqualFold(str(sps.GetValue()[0].GetAppId()), cloud.Names().AppID) {
		t.Fatalf("service principal of Work 365: %d", len(sps.GetValue()))
	}
	unknown(t, "servicePrincipal", sps.GetValue()[0])
	spID := str(sps.GetValue()[0].GetId())
	gr := graphGet(t, cloud, hc, a.TenantID, "servicePrincipals/"+spID+"/oauth2PermissionGrants",
		models.CreateOAuth2PermissionGrantCollectionResponseFromDiscriminatorValue).(models.OAuth2PermissionGrantCollectionResponseable)
	if len(gr.GetValue()) == 0 || str(gr.GetValue()[0].GetConsentType()) != "AllPrincipals" || str(gr.GetValue()[0].GetClientId()) != spID || str(gr.GetValue()[0].GetScope()) == "" {
		t.Errorf("grants: %d", len(gr.GetValue()))
	}
	for _, g := range gr.GetValue() {
		unknown(t, "oAuth2PermissionGrant", g)
	}
	ar := graphGet(t, cloud, hc, a.TenantID, "servicePrincipals/"+spID+"/appRoleAssignments",
		models.CreateAppRoleAssignmentCollectionResponseFromDiscriminatorValue).(models.AppRoleAssignmentCollectionResponseable)
	if len(ar.GetValue()) == 0 || ar.GetValue()[0].GetAppRoleId() == nil || ar.GetValue()[0].GetResourceId() == nil {
		t.Errorf("app role assignments: %d", len(ar.GetValue()))
	}
	for _, r := range ar.GetValue() {
		unknown(t, "appRoleAssignment", r)
	}
}
