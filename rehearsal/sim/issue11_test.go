package sim

import "testing"

// Issue 11 item 1: without Directory.Read.All, Graph refuses the delegated grants list with
// its 403 Authorization_RequestDenied, whatever else was consented.
func TestGraphRefusesGrantsWithoutDirectoryReadAll(t *testing.T) {
	e := newEnv(t, func(s *Scenario) {
		s.Orchestrator.Permissions = []string{"User.Read.All", "Application.Read.All", "Policy.Read.All"}
	})
	sps := e.graphAll(tenantA, "servicePrincipals")
	if len(sps) == 0 {
		t.Fatal("no service principals")
	}
	id := sps[0]["id"].(string)
	m := e.graph(tenantA, "servicePrincipals/"+id+"/oauth2PermissionGrants", 403)
	body := m["error"].(map[string]any)
	if body["code"] != "Authorization_RequestDenied" || body["message"] != "Insufficient privileges to complete the operation." || body["innerError"] == nil {
		t.Fatalf("Graph's error body: %v", m)
	}
	e.graph(tenantA, "roleManagement/directory/roleAssignments?$filter="+q("roleDefinitionId eq '"+globalAdminRole+"'"), 403)

	d := newEnv(t, nil) // the default consent has every permission the README asks for
	d.graph(tenantA, "servicePrincipals/"+d.graphAll(tenantA, "servicePrincipals")[0]["id"].(string)+"/oauth2PermissionGrants", 200)
}
