package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
)

// TestGraphRefusesWhatTheManifestDoesNotAllow: for every Graph call of the permissions
// manifest, a token holding every other permission but none the manifest accepts for that call
// gets Graph's 403; a token holding only the call's granted permission does not. (The
// simulator used to accept GroupMember.Read.All for memberOf, which Graph does not for apps.)
func TestGraphRefusesWhatTheManifestDoesNotAllow(t *testing.T) {
	paths := map[string]string{
		permissions.OpGraphGetUser:                "users/" + adminA,
		permissions.OpGraphListRoleAssignments:    "roleManagement/directory/roleAssignments?$filter=" + q("principalId eq '"+adminA+"'"),
		permissions.OpGraphListRoleEligibilities:  "roleManagement/directory/roleEligibilityScheduleInstances",
		permissions.OpGraphListGroupMemberships:   "users/" + adminA + "/memberOf",
		permissions.OpGraphListSubscribedSkus:     "subscribedSkus",
		permissions.OpGraphGetRegistrationDetails: "reports/authenticationMethods/userRegistrationDetails/" + adminA,
		permissions.OpGraphListAuthMethods:        "users/" + adminA + "/authentication/methods",
		permissions.OpGraphGetSecurityDefaults:    "policies/identitySecurityDefaultsEnforcementPolicy",
		permissions.OpGraphListCAPolicies:         "identity/conditionalAccess/policies",
		permissions.OpGraphFindServicePrincipal:   "servicePrincipals",
		permissions.OpGraphListDelegatedGrants:    "servicePrincipals/{sp}/oauth2PermissionGrants",
		permissions.OpGraphListAppRoleAssignments: "servicePrincipals/{sp}/appRoleAssignments",
	}
	everything := append(permissions.AppRoles(), "GroupMember.Read.All", "Organization.Read.All", "User.ReadBasic.All", "Group.Read.All")
	for _, e := range permissions.Manifest() {
		if e.Kind != permissions.AppRole {
			continue
		}
		path, ok := paths[e.Operation]
		if !ok {
			t.Errorf("no request for manifest entry %s", e.Operation)
			continue
		}
		var without []string
		for _, p := range everything {
			if !slices.ContainsFunc(e.Accepted, func(a string) bool { return strings.EqualFold(a, p) }) {
				without = append(without, p)
			}
		}
		for _, tc := range []struct {
			roles  []string
			denied bool
		}{{without, true}, {[]string{e.Grant}, false}} {
			env := newEnv(t, func(s *Scenario) { s.Orchestrator.Permissions = tc.roles })
			p := strings.ReplaceAll(path, "{sp}", env.cloud.tenantByID(tenantA).orchestratorSPID)
			st, m, _ := env.do("GET", "https://graph.microsoft.com/v1.0/"+p, env.token(tenantA, GraphResource), nil)
			denied := st == 403 && strings.Contains(fmt.Sprint(m["error"]), "Authorization_RequestDenied")
			if denied != tc.denied {
				t.Errorf("%s with %v: %d %v, denied=%v want %v", e.Operation, tc.roles, st, m, denied, tc.denied)
			}
		}
	}
}
