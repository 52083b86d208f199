package sim

import (
	"errors"
	"slices"
	"testing"
)

// A tenant that consented fewer Graph permissions gets tokens without them and is refused
// the calls that need them; granting the permission shows in the next token.
func TestTenantConsentsFewerPermissionsThenGrants(t *testing.T) {
	e := newEnv(t, func(s *Scenario) {
		s.Tenants[0].OrchestratorPermissions = []string{"User.Read.All", "RoleManagement.Read.Directory"}
	})
	roles := func(tenant string) []string {
		cl, err := e.cloud.VerifyToken(e.token(tenant, GraphResource))
		if err != nil {
			t.Fatal(err)
		}
		return cl.Roles
	}
	if r := roles(tenantA); !slices.Equal(r, []string{"User.Read.All", "RoleManagement.Read.Directory"}) {
		t.Fatalf("tenant A's roles: %v", r)
	}
	if r := roles(tenantB); !slices.Contains(r, "Directory.Read.All") {
		t.Fatalf("tenant B keeps the scenario's permissions: %v", r)
	}
	e.graph(tenantA, "users/"+adminA+"/memberOf", 403)

	if err := e.cloud.GrantOrchestratorPermission(tenantA, "Directory.Read.All"); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.GrantOrchestratorPermission(tenantA, "nonsense"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("an unknown permission: %v", err)
	}
	delete(e.toks, tenantA+" "+GraphResource)
	if r := roles(tenantA); !slices.Contains(r, "Directory.Read.All") || len(r) != 3 {
		t.Fatalf("after the grant: %v", r)
	}
	e.graph(tenantA, "users/"+adminA+"/memberOf", 200)
}

// An organisation without the orchestrator's application user refuses it until an
// administrator creates one; the application user then reads itself with its role.
func TestCreateApplicationUser(t *testing.T) {
	e := newEnv(t, nil)
	e.dv(tenantB, orgB, "GET", "WhoAmI", nil, 403)
	if err := e.cloud.CreateApplicationUser(tenantB); err != nil {
		t.Fatal(err)
	}
	who := e.dv(tenantB, orgB, "GET", "WhoAmI", nil, 200)
	me := e.dv(tenantB, orgB, "GET", "systemusers("+who["UserId"].(string)+")?$select=systemuserid,accessmode&$expand=systemuserroles_association($select=name,roleid)", nil, 200)
	roles, _ := me["systemuserroles_association"].([]any)
	if me["accessmode"] != float64(4) || len(roles) != 1 || roles[0].(map[string]any)["name"] != "System Administrator" {
		t.Fatalf("application user: %v", me)
	}
}

// A Global Administrator through a group becomes a direct one.
func TestAssignGlobalAdminDirectly(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.Tenants[0].Admin.GlobalAdminVia = "group" })
	direct := func() int {
		return len(e.graphAll(tenantA, "roleManagement/directory/roleAssignments?$filter="+q("principalId eq '"+adminA+"' and roleDefinitionId eq '62e90394-69f5-4237-9190-012177145e10'")))
	}
	if n := direct(); n != 0 {
		t.Fatalf("group-only admin has %d direct assignments", n)
	}
	if err := e.cloud.AssignGlobalAdminDirectly(tenantA, "admin@contoso.onmicrosoft.com"); err != nil {
		t.Fatal(err)
	}
	if n := direct(); n != 1 {
		t.Fatalf("after the direct assignment: %d", n)
	}
}

// The same controls through the admin API (rehearsals driven from another process).
func TestPreflightActionsOverTheAdminAPI(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.Tenants[0].OrchestratorPermissions = []string{"User.Read.All"} })
	post := func(action string, body ActionRequest) int {
		st, _, _ := e.do("POST", "http://sim.local/actions/"+action, "", body)
		return st
	}
	if st := post("grant-orchestrator-permission", ActionRequest{Tenant: tenantA, Permission: "Directory.Read.All"}); st != 200 {
		t.Fatalf("grant: %d", st)
	}
	if st := post("grant-orchestrator-permission", ActionRequest{Tenant: tenantA, Permission: ""}); st != 409 {
		t.Fatalf("an empty permission: %d", st)
	}
	if st := post("create-application-user", ActionRequest{Tenant: tenantB}); st != 200 {
		t.Fatalf("create-application-user: %d", st)
	}
	if st := post("assign-global-admin-directly", ActionRequest{Tenant: tenantA, UPN: "nobody@contoso.onmicrosoft.com"}); st != 409 {
		t.Fatalf("an unknown user: %d", st)
	}
	e.dv(tenantB, orgB, "GET", "WhoAmI", nil, 200)
	cl, err := e.cloud.VerifyToken(e.token(tenantA, GraphResource))
	if err != nil || !slices.Equal(cl.Roles, []string{"User.Read.All", "Directory.Read.All"}) {
		t.Fatalf("roles after the grant: %v %v", cl.Roles, err)
	}
}
