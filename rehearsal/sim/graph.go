package sim

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
	"net/http"
	"strings"
	"time"
)

func (c *Cloud) serveGraph(w http.ResponseWriter, r *http.Request) {
	svc := service{
		name: "graph", api: permissions.Graph, prefix: "/v1.0/", unauthorizedCode: "InvalidAuthenticationToken",
		audiences: []string{GraphResource, graphAppID},
		tenant: func(w http.ResponseWriter, cl Claims) *tenantState {
			t := c.tenantByID(cl.Tid)
			if t == nil || !t.orchestratorConsented {
				writeChallenge(w, "", "InvalidAuthenticationToken", "The identity of the calling application could not be established in tenant "+cl.Tid+".")
				return nil
			}
			return t
		},
		throttleCode:    "TooManyRequests",
		throttleMessage: "Too many requests to Microsoft Graph; retry after the delay in Retry-After.",
	}
	// The permissions manifest says which application permissions each call accepts; a token
	// without any of them gets Graph's 403 (call.forbidden).
	c.serveAPI(w, r, svc, handlers{
		permissions.OpGraphGetUser:                (*call).graphUser,
		permissions.OpGraphListAuthMethods:        (*call).graphAuthMethods,
		permissions.OpGraphListGroupMemberships:   (*call).graphMemberOf,
		permissions.OpGraphListRoleAssignments:    (*call).graphRoleAssignments,
		permissions.OpGraphListRoleEligibilities:  (*call).graphRoleEligibilities,
		permissions.OpGraphListSubscribedSkus:     (*call).graphSubscribedSkus,
		permissions.OpGraphGetRegistrationDetails: (*call).graphRegistrationDetails,
		permissions.OpGraphGetSecurityDefaults:    (*call).graphSecurityDefaults,
		permissions.OpGraphListCAPolicies:         (*call).graphCAPolicies,
		permissions.OpGraphFindServicePrincipal:   (*call).graphServicePrincipals,
		permissions.OpGraphListDelegatedGrants:    (*call).graphGrants,
		permissions.OpGraphListAppRoleAssignments: (*call).graphAppRoleAssignments,
	})
}

// forbidden answers a call the token's roles do not allow: Graph's 403
// Authorization_RequestDenied with its error body.
func (k *call) forbidden() {
	k.t.counters.Unauthorized++
	writeJSON(k.w, http.StatusForbidden, map[string]any{"error": map[string]any{
		"code":    "Authorization_RequestDenied",
		"message": "Insufficient privileges to complete the operation.",
		"innerError": map[string]any{
			"date": k.now.UTC().Format("2006-01-02T15:04:05"), "request-id": "5c4ae0c1-0000-4000-8000-00000000403a",
			"client-request-id": "5c4ae0c1-0000-4000-8000-00000000403a",
		},
	}})
}

func (k *call) graphNotFound(id string) {
	writeAPIError(k.w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

func (k *call) graphBadRequest(msg string) {
	writeAPIError(k.w, http.StatusBadRequest, "BadRequest", msg)
}

func (k *call) graphUser() {
	u := k.t.user(k.p[0])
	if u == nil {
		k.graphNotFound(k.p[0])
		return
	}
	lic := []map[string]any{}
	if u.dynamics {
		lic = append(lic, map[string]any{"skuId": SkuDynamics, "disabledPlans": []string{}})
	}
	if u.entraP1 {
		lic = append(lic, map[string]any{"skuId": SkuEntraP1, "disabledPlans": []string{}})
	}
	lic = append(lic, map[string]any{"skuId": SkuOffice, "disabledPlans": []string{}})
	m := map[string]any{
		"@odata.context":    "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
		"id":                u.id,
		"userPrincipalName": u.upn,
		"displayName":       u.display,
		"mail":              u.upn,
		"accountEnabled":    !u.disabled,
		"assignedLicenses":  lic,
	}
	sel := k.q.Get("$select")
	if sel == "" {
		delete(m, "assignedLicenses") // Graph's default property set has no licences
		delete(m, "accountEnabled")
	}
	writeJSON(k.w, http.StatusOK, selectFields(m, sel))
}

func (k *call) graphAuthMethods() {
	u := k.t.user(k.p[0])
	if u == nil {
		k.graphNotFound(k.p[0])
		return
	}
	items := []map[string]any{{"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490"}}
	if u.mfa {
		items = append(items,
			map[string]any{"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": "6a0d1cf1-0f6e-4b51-9fb5-" + u.id[len(u.id)-12:], "displayName": "Phone"},
			map[string]any{"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "3179e48a-750b-4051-897c-87b9720928f7", "phoneType": "mobile"},
		)
	}
	k.writePage(fmt.Sprintf("users('%s')/authentication/methods", u.id), items)
}

func (k *call) graphRoleAssignments() {
	f, err := parseEqFilter(k.q.Get("$filter"))
	if err != nil || f["principalid"] == "" && f["roledefinitionid"] == "" {
		k.graphBadRequest("A $filter on principalId or roleDefinitionId is required; the simulator supports \"principalId eq '{id}' and roleDefinitionId eq '{roleDefinitionId}'\".")
		return
	}
	items := []map[string]any{}
	if rd := f["roledefinitionid"]; rd != "" && !strings.EqualFold(rd, globalAdminRole) {
		k.writePage("roleManagement/directory/roleAssignments", items)
		return
	}
	assign := func(principal string) {
		if p := f["principalid"]; p != "" && !strings.EqualFold(p, principal) {
			return
		}
		items = append(items, map[string]any{
			"id":               "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1-" + principal[:8],
			"principalId":      principal,
			"roleDefinitionId": globalAdminRole,
			"directoryScopeId": "/",
		})
	}
	groupAssigned := false
	for _, id := range sortedKeys(k.t.users) {
		u := k.t.users[id]
		switch {
		case !u.globalAdmin:
		case u.gaVia == "group":
			groupAssigned = true
		default:
			assign(u.id)
		}
	}
	if groupAssigned {
		assign(k.t.adminsGroupID)
	}
	k.writePage("roleManagement/directory/roleAssignments", items)
}

// graphRoleEligibilities lists PIM eligibilities (roleEligibilityScheduleInstances) of users
// whose Global Administrator role is eligible and not active.
func (k *call) graphRoleEligibilities() {
	f, err := parseEqFilter(k.q.Get("$filter"))
	if err != nil {
		k.graphBadRequest(err.Error())
		return
	}
	items := []map[string]any{}
	for _, id := range sortedKeys(k.t.users) {
		u := k.t.users[id]
		if u.gaVia != "eligible" || u.globalAdmin {
			continue
		}
		if p := f["principalid"]; p != "" && !strings.EqualFold(p, u.id) {
			continue
		}
		if rd := f["roledefinitionid"]; rd != "" && !strings.EqualFold(rd, globalAdminRole) {
			continue
		}
		items = append(items, map[string]any{
			"id": "e" + u.id[:8], "principalId": u.id, "roleDefinitionId": globalAdminRole, "directoryScopeId": "/",
			"appScopeId": nil, "startDateTime": isoTime(k.now.Add(-24 * time.Hour)), "endDateTime": nil,
			"memberType": "Direct", "roleEligibilityScheduleId": "s" + u.id[:8],
		})
	}
	k.writePage("roleManagement/directory/roleEligibilityScheduleInstances", items)
}

// graphMemberOf lists a user's direct memberships: the role-assignable admins group and the
// conditional access pilot group, when the scenario has them.
func (k *call) graphMemberOf() {
	u := k.t.user(k.p[0])
	if u == nil {
		k.graphNotFound(k.p[0])
		return
	}
	items := []map[string]any{}
	if u.globalAdmin && u.gaVia == "group" && k.t.adminsGroupID != "" {
		items = append(items, selectFields(map[string]any{"@odata.type": "#microsoft.graph.group", "id": k.t.adminsGroupID,
			"displayName": "Tenant administrators", "isAssignableToRole": true, "securityEnabled": true}, k.q.Get("$select")))
	}
	if k.t.caGroup && k.t.caGroupID != "" {
		items = append(items, selectFields(map[string]any{"@odata.type": "#microsoft.graph.group", "id": k.t.caGroupID,
			"displayName": "MFA pilot", "isAssignableToRole": false, "securityEnabled": true}, k.q.Get("$select")))
	}
	k.writePage("directoryObjects", items)
}

func (k *call) graphSubscribedSkus() {
	count := func(pred func(*userState) bool) int {
		n := 0
		for _, u := range k.t.users {
			if pred(u) {
				n++
			}
		}
		return n
	}
	sku := func(skuID, part string, consumed int, plans ...[2]string) map[string]any {
		sp := []map[string]any{}
		for _, p := range plans {
			sp = append(sp, map[string]any{"servicePlanId": p[0], "servicePlanName": p[1], "provisioningStatus": "Success", "appliesTo": "User"})
		}
		return map[string]any{
			"id": k.t.id + "_" + skuID, "skuId": skuID, "skuPartNumber": part,
			"capabilityStatus": "Enabled", "appliesTo": "User", "consumedUnits": consumed,
			"prepaidUnits": map[string]any{"enabled": 25, "suspended": 0, "warning": 0},
			"servicePlans": sp,
		}
	}
	items := []map[string]any{
		sku(SkuOffice, "ENTERPRISEPACK", len(k.t.users), [2]string{planExchange, "EXCHANGE_S_ENTERPRISE"}),
	}
	if k.t.org != nil {
		items = append(items, sku(SkuDynamics, "DYN365_ENTERPRISE_PLAN1", count(func(u *userState) bool { return u.dynamics }), [2]string{planDynamics, "DYN365_ENTERPRISE_P1"}))
	}
	if k.t.entraP1 {
		items = append(items, sku(SkuEntraP1, "AAD_PREMIUM", count(func(u *userState) bool { return u.entraP1 }), [2]string{planEntraP1, "AAD_PREMIUM"}))
	}
	k.writePage("subscribedSkus", items)
}

func (k *call) graphRegistrationDetails() {
	if !k.t.entraP1 {
		writeAPIError(k.w, http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Tenant does not have a SKU required for this operation.")
		return
	}
	u := k.t.user(k.p[0])
	if u == nil {
		k.graphNotFound(k.p[0])
		return
	}
	methods := []string{}
	if u.mfa {
		methods = []string{"microsoftAuthenticatorPush", "mobilePhone"}
	}
	writeJSON(k.w, http.StatusOK, selectFields(map[string]any{
		"@odata.context":        "https://graph.microsoft.com/v1.0/$metadata#reports/authenticationMethods/userRegistrationDetails/$entity",
		"id":                    u.id,
		"userPrincipalName":     u.upn,
		"userDisplayName":       u.display,
		"userType":              "member",
		"isAdmin":               u.globalAdmin,
		"isMfaRegistered":       u.mfa,
		"isMfaCapable":          u.mfa && !u.disabled,
		"isSsprRegistered":      u.mfa,
		"isSsprEnabled":         false,
		"isSsprCapable":         false,
		"isPasswordlessCapable": false,
		"methodsRegistered":     methods,
		"userPreferredMethodForSecondaryAuthentication": map[bool]string{true: "push", false: "none"}[u.mfa],
		"systemPreferredAuthenticationMethods":          []string{},
		"lastUpdatedDateTime":                           isoTime(k.now),
		"isSystemPreferredAuthenticationMethodEnabled":  false,
	}, k.q.Get("$select")))
}

func (k *call) graphSecurityDefaults() {
	writeJSON(k.w, http.StatusOK, selectFields(map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#policies/identitySecurityDefaultsEnforcementPolicy/$entity",
		"id":             "00000000-0000-0000-0000-000000000005",
		"displayName":    "Security Defaults",
		"description":    "Security defaults is a set of basic identity security mechanisms recommended by Microsoft.",
		"isEnabled":      k.t.securityDefaults,
	}, k.q.Get("$select")))
}

func (k *call) graphCAPolicies() {
	items := []map[string]any{}
	if k.t.entraP1 {
		items = append(items, map[string]any{
			"id": "1f1d2b0c-0000-4000-8000-00000000b10c", "displayName": "Block legacy authentication", "state": "enabled",
			"conditions":    map[string]any{"clientAppTypes": []string{"exchangeActiveSync", "other"}, "users": map[string]any{"includeUsers": []string{"All"}}},
			"grantControls": map[string]any{"operator": "OR", "builtInControls": []string{"block"}},
		})
	}
	if k.t.caMFA {
		users := map[string]any{"includeUsers": []string{"All"}, "excludeUsers": []string{}, "includeGroups": []string{},
			"excludeGroups": []string{}, "includeRoles": []string{}, "excludeRoles": []string{}}
		name := "Require MFA for all users"
		if k.t.caGroup {
			users["includeUsers"], users["includeGroups"] = []string{}, []string{k.t.caGroupID}
			name = "Require MFA for the MFA pilot group"
		}
		grant := map[string]any{"operator": "OR", "builtInControls": []string{"mfa"}, "authenticationStrength": nil}
		if k.t.caStrength {
			grant["builtInControls"] = []string{}
			grant["authenticationStrength"] = map[string]any{"id": "00000000-0000-0000-0000-000000000002",
				"displayName": "Multifactor authentication", "policyType": "builtIn", "requirementsSatisfied": "mfa"}
		}
		items = append(items, map[string]any{
			"id": k.t.caPolicyID, "displayName": name, "state": "enabled",
			"conditions":    map[string]any{"clientAppTypes": []string{"all"}, "users": users, "applications": map[string]any{"includeApplications": []string{"All"}}},
			"grantControls": grant,
		})
	}
	k.writePage("identity/conditionalAccess/policies", items)
}

type spInfo struct{ id, appID, name string }

func (k *call) servicePrincipals() []spInfo {
	t := k.t
	sps := []spInfo{
		{t.graphSPID, graphAppID, "Microsoft Graph"},
		{t.dynamicsSPID, dynamicsAppID, "Dynamics CRM"},
	}
	if t.orchestratorConsented {
		sps = append(sps, spInfo{t.orchestratorSPID, k.c.scn.Orchestrator.ClientID, k.c.scn.Orchestrator.DisplayName})
	}
	if t.work365Consented || t.pcConsented() {
		sps = append(sps, spInfo{t.work365SPID, k.c.names.AppID, "Work 365"})
	}
	if t.pc != nil {
		sps = append(sps, spInfo{t.pcSPID, PartnerCenterAppID, "Microsoft Partner Center"})
	}
	return sps
}

func (k *call) findSP(id string) *spInfo {
	for _, sp := range k.servicePrincipals() {
		if strings.EqualFold(sp.id, id) {
			return &sp
		}
	}
	return nil
}

func (k *call) graphServicePrincipals() {
	f, err := parseEqFilter(k.q.Get("$filter"))
	if err != nil {
		k.graphBadRequest(err.Error())
		return
	}
	items := []map[string]any{}
	for _, sp := range k.servicePrincipals() {
		if a := f["appid"]; a != "" && !strings.EqualFold(a, sp.appID) {
			continue
		}
		items = append(items, selectFields(map[string]any{
			"id": sp.id, "appId": sp.appID, "displayName": sp.name, "accountEnabled": true,
			"servicePrincipalType": "Application", "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
		}, k.q.Get("$select"), "id"))
	}
	k.writePage("servicePrincipals", items)
}

func (k *call) graphGrants() {
	sp := k.findSP(k.p[0])
	if sp == nil {
		k.graphNotFound(k.p[0])
		return
	}
	items := []map[string]any{}
	if sp.id == k.t.work365SPID && k.t.work365Consented {
		items = append(items,
			map[string]any{"id": k.t.work365GrantIDs[0], "clientId": sp.id, "consentType": "AllPrincipals", "principalId": nil, "resourceId": k.t.graphSPID, "scope": "User.Read offline_access openid profile Directory.Read.All"},
			map[string]any{"id": k.t.work365GrantIDs[1], "clientId": sp.id, "consentType": "AllPrincipals", "principalId": nil, "resourceId": k.t.dynamicsSPID, "scope": "user_impersonation"},
		)
	}
	// Work 365's Partner Center connection (Secure Application Model): its app holds the
	// delegated Partner Center permission while the connection is consented.
	if sp.id == k.t.work365SPID && k.t.pcConsented() {
		items = append(items, map[string]any{"id": k.t.pcGrantID, "clientId": sp.id, "consentType": "AllPrincipals", "principalId": nil, "resourceId": k.t.pcSPID, "scope": "user_impersonation"})
	}
	k.writePage("oauth2PermissionGrants", items)
}

// graphAppRoleIDs are the Graph app role IDs of the application permissions the simulator
// knows (https://learn.microsoft.com/en-us/graph/permissions-reference).
var graphAppRoleIDs = map[string]string{
	"User.Read.All":                     "df021288-bdef-4463-88db-98f22de89214",
	"RoleManagement.Read.Directory":     "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
	"Organization.Read.All":             "498476ce-e0fe-48b0-b801-37ba7e2685c6",
	"AuditLog.Read.All":                 "b0afded3-3588-46d8-8b3d-9842eff778da",
	"Policy.Read.All":                   "246dd0d5-5bd0-4def-940b-0421030a5b68",
	"UserAuthenticationMethod.Read.All": "38d9df27-64da-44fd-b7c5-a6fbac20248f",
	"Application.Read.All":              "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
	"Directory.Read.All":                "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
}

// orchestratorAppRoles are the application permissions (Graph app role IDs) the simulator
// shows granted to the orchestrator: the scenario's consented permissions.
func (k *call) orchestratorAppRoles() []string {
	var out []string
	for _, p := range k.c.consentedRoles(k.t) {
		id, ok := graphAppRoleIDs[p]
		if !ok {
			// Not listed above: a stable simulated ID (the real one is Graph's appRoles of
			// its service principal).
			sum := sha1.Sum([]byte("graph-app-role:" + p))
			h := hex.EncodeToString(sum[:16])
			id = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
		}
		out = append(out, id)
	}
	return out
}

func (k *call) graphAppRoleAssignments() {
	sp := k.findSP(k.p[0])
	if sp == nil {
		k.graphNotFound(k.p[0])
		return
	}
	items := []map[string]any{}
	var roles []string
	switch sp.id {
	case k.t.orchestratorSPID:
		roles = k.orchestratorAppRoles()
	case k.t.work365SPID:
		roles = []string{"7ab1d382-f21e-4acd-a863-ba3e13f7da61"} // Directory.Read.All
	}
	for i, role := range roles {
		items = append(items, map[string]any{
			"id": fmt.Sprintf("%s-%02d", sp.id[:8], i), "appRoleId": role, "principalId": sp.id,
			"principalType": "ServicePrincipal", "principalDisplayName": sp.name,
			"resourceId": k.t.graphSPID, "resourceDisplayName": "Microsoft Graph",
		})
	}
	k.writePage(fmt.Sprintf("servicePrincipals('%s')/appRoleAssignments", sp.id), items)
}
