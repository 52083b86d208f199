package permissions_test

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
)

// TestREADMETableIsTheManifest fails when the README's permission table differs from the
// manifest; UPDATE_README=1 rewrites it.
func TestREADMETableIsTheManifest(t *testing.T) {
	const path = "../../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	begin := strings.Index(readme, permissions.ReadmeBegin)
	end := strings.Index(readme, permissions.ReadmeEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s has no generated permission table between %q and %q", path, permissions.ReadmeBegin, permissions.ReadmeEnd)
	}
	got := readme[begin+len(permissions.ReadmeBegin) : end]
	want := "\n" + permissions.Markdown()
	if got == want {
		return
	}
	if os.Getenv("UPDATE_README") == "1" {
		readme = readme[:begin+len(permissions.ReadmeBegin)] + want + readme[end:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the permission table of %s", path)
		return
	}
	t.Errorf("the README's permission table differs from the manifest (microsoft/permissions); run UPDATE_README=1 go test ./microsoft/permissions -run README\nwant:\n%s", want)
}

func TestManifestEntriesAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range permissions.Manifest() {
		if seen[e.Operation] {
			t.Errorf("operation %s appears twice", e.Operation)
		}
		seen[e.Operation] = true
		if e.Grant == "" || e.UsedFor == "" || e.Method == "" {
			t.Errorf("%s: grant, used-for and method are required: %+v", e.Operation, e)
		}
		if !strings.HasPrefix(e.Doc, "https://learn.microsoft.com/") {
			t.Errorf("%s: the doc URL must be a learn.microsoft.com page, got %q", e.Operation, e.Doc)
		}
		if e.Kind == permissions.AppRole {
			if len(e.Accepted) == 0 || !e.Allows([]string{e.Grant}) {
				t.Errorf("%s: the granted permission %s must be among the accepted %v", e.Operation, e.Grant, e.Accepted)
			}
			if e.Least != "" && e.Accepted[0] != e.Least || e.Least == "" && e.Accepted[0] != e.Grant {
				t.Errorf("%s: Accepted must start with the least privileged permission", e.Operation)
			}
		}
	}
}

func TestLookupURL(t *testing.T) {
	vars := map[string]string{permissions.VarJobsTable: "w365_jobs", permissions.VarSettingsTable: "w365_settings"}
	cases := []struct {
		method, url, op string
	}{
		{"GET", "https://graph.microsoft.com/v1.0/users/admin%40contoso.com?$select=id", permissions.OpGraphGetUser},
		{"GET", "https://graph.microsoft.com/v1.0/users/1234/memberOf", permissions.OpGraphListGroupMemberships},
		{"GET", "https://graph.microsoft.com/v1.0/servicePrincipals?$filter=appId%20eq%20'x'", permissions.OpGraphFindServicePrincipal},
		{"POST", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", permissions.OpLoginToken},
		{"GET", "https://contoso.crm.dynamics.com/api/data/v9.2/", permissions.OpDataverseDiscoverTenant},
		{"GET", "https://contoso.crm4.dynamics.com/api/data/v9.2/asyncoperations(0f0e5b4e-0000-4000-8000-000000000001)?$select=name", permissions.OpDataverseReadAsyncOperation},
		{"GET", "https://contoso.crm.dynamics.com/api/data/v9.2/RetrieveFormattedImportJobResults(ImportJobId=@p1)?@p1=x", permissions.OpDataverseReadImportLog},
		{"PATCH", "https://contoso.crm.dynamics.com/api/data/v9.2/w365_settings(0f0e5b4e-0000-4000-8000-000000000001)", permissions.OpWork365WriteSettings},
		{"GET", "https://api.partnercenter.microsoft.com/v1/profiles/organization", permissions.OpPartnerCenterOrganizationProf},
	}
	for _, c := range cases {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := permissions.LookupURL(c.method, u, vars)
		if !ok || e.Operation != c.op {
			t.Errorf("%s %s: got %q %v, want %s", c.method, c.url, e.Operation, ok, c.op)
		}
	}
	for _, c := range []struct{ method, url string }{
		{"DELETE", "https://graph.microsoft.com/v1.0/users/1234"},
		{"GET", "https://graph.microsoft.com/v1.0/groups"},
		{"GET", "https://graph.microsoft.com/beta/users/1234"},
		{"GET", "https://contoso.crm.dynamics.com/api/data/v9.2/accounts"},
		{"PATCH", "https://contoso.crm.dynamics.com/api/data/v9.2/w365_jobs(0f0e5b4e-0000-4000-8000-000000000001)"},
		{"GET", "https://example.com/v1.0/users/1"},
	} {
		u, _ := url.Parse(c.url)
		if e, ok := permissions.LookupURL(c.method, u, vars); ok {
			t.Errorf("%s %s has no manifest entry, matched %s", c.method, c.url, e.Operation)
		}
	}
}

func TestAppRolesAndMissing(t *testing.T) {
	roles := permissions.AppRoles()
	want := []string{"Application.Read.All", "AuditLog.Read.All", "Directory.Read.All", "LicenseAssignment.Read.All",
		"Policy.Read.All", "RoleManagement.Read.Directory", "User.Read.All", "UserAuthenticationMethod.Read.All"}
	if strings.Join(roles, ",") != strings.Join(want, ",") {
		t.Fatalf("AppRoles = %v, want %v", roles, want)
	}
	if m := permissions.Missing(roles); len(m) != 0 {
		t.Fatalf("a token with every app role misses %v", m)
	}
	var without []string
	for _, r := range roles {
		if r != "Directory.Read.All" {
			without = append(without, r)
		}
	}
	var ops []string
	for _, e := range permissions.Missing(without) {
		ops = append(ops, e.Operation)
	}
	if strings.Join(ops, ",") != permissions.OpGraphListGroupMemberships+","+permissions.OpGraphListDelegatedGrants {
		t.Fatalf("without Directory.Read.All the missing calls are %v", ops)
	}
	// A broader permission Microsoft documents is accepted in place of the granted one.
	e, _ := permissions.Get(permissions.OpGraphListSubscribedSkus)
	if !e.Allows([]string{"Organization.Read.All"}) || e.Allows([]string{"User.Read.All"}) {
		t.Fatal("subscribedSkus accepts Organization.Read.All and refuses User.Read.All")
	}
}
