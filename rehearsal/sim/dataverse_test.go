package sim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
)

func pkg(name, version string) string {
	return base64.StdEncoding.EncodeToString(SolutionPackage(name, version))
}

func importBody(name, version, jobID string, holding bool) map[string]any {
	return map[string]any{"CustomizationFile": pkg(name, version), "OverwriteUnmanagedCustomizations": false, "PublishWorkflows": true, "ImportJobId": jobID, "HoldingSolution": holding}
}

const (
	job1 = "aaaaaaaa-0000-4000-8000-000000000001"
	job2 = "aaaaaaaa-0000-4000-8000-000000000002"
	job3 = "aaaaaaaa-0000-4000-8000-000000000003"
)

func (e *env) solution(name string) map[string]any {
	e.t.Helper()
	m := e.dv(tenantA, orgA, "GET", "solutions?$filter="+q("uniquename eq '"+name+"'")+"&$select=version,ismanaged,installedon", nil, 200)
	v := m["value"].([]any)
	if len(v) == 0 {
		return nil
	}
	return v[0].(map[string]any)
}

func TestDataverseWhoAmIAndSolutions(t *testing.T) {
	e := newEnv(t, nil)
	who := e.dv(tenantA, orgA, "GET", "WhoAmI", nil, 200)
	if who["UserId"] == nil || who["BusinessUnitId"] == nil || who["OrganizationId"] == nil {
		t.Fatalf("WhoAmI: %v", who)
	}
	s := e.solution("Work365")
	if s["version"] != "2.1.0.3" || s["ismanaged"] != true || s["solutionid"] == nil || s["friendlyname"] != nil {
		t.Fatalf("solution: %v", s)
	}
	if e.solution("Work365_Upgrade") != nil {
		t.Fatal("nothing is staged yet")
	}
}

func TestImportProgressAndStaging(t *testing.T) {
	e := newEnv(t, nil)
	res := e.dv(tenantA, orgA, "POST", "ImportSolutionAsync", importBody("Work365", "2.5.0.1", job1, true), 200)
	opID, _ := res["AsyncOperationId"].(string)
	if opID == "" || res["ImportJobKey"] == nil {
		t.Fatalf("import: %v", res)
	}
	op := e.dv(tenantA, orgA, "GET", "asyncoperations("+opID+")?$select=statecode,statuscode,message", nil, 200)
	if op["statecode"].(float64) != 0 || op["statuscode"].(float64) != 20 || op["asyncoperationid"] != opID {
		t.Fatalf("in progress: %v", op)
	}
	// A second import with the same ImportJobId is refused, and so is any import while one runs.
	if st, m, _ := e.do("POST", orgA+"/api/data/v9.2/ImportSolutionAsync", e.token(tenantA, orgA), importBody("Work365", "2.5.0.1", job1, true)); st != 400 || !strings.Contains(m["error"].(map[string]any)["message"].(string), job1) {
		t.Fatalf("double ImportJobId: %d %v", st, m)
	}
	if st, m, _ := e.do("POST", orgA+"/api/data/v9.2/ImportSolutionAsync", e.token(tenantA, orgA), importBody("Work365", "2.5.0.1", job2, true)); st != 400 || errCode(m) != "0x80071151" {
		t.Fatalf("concurrent import: %d %v", st, m)
	}

	e.clock.Advance(5 * time.Minute)
	j := e.dv(tenantA, orgA, "GET", "importjobs("+job1+")?$select=progress,completedon", nil, 200)
	if j["progress"].(float64) != 50 || j["completedon"] != nil {
		t.Fatalf("half way: %v", j)
	}
	e.dv(tenantA, orgA, "GET", "importjobs("+job2+")", nil, 404)

	e.clock.Advance(5 * time.Minute)
	op = e.dv(tenantA, orgA, "GET", "asyncoperations("+opID+")?$select=statecode,statuscode,message", nil, 200)
	if op["statecode"].(float64) != 3 || op["statuscode"].(float64) != 30 {
		t.Fatalf("done: %v", op)
	}
	j = e.dv(tenantA, orgA, "GET", "importjobs("+job1+")", nil, 200)
	if j["progress"].(float64) != 100 || j["completedon"] == nil {
		t.Fatalf("job done: %v", j)
	}
	if s := e.solution("Work365_Upgrade"); s == nil || s["version"] != "2.5.0.1" {
		t.Fatalf("staged: %v", s)
	}
	if s := e.solution("Work365"); s["version"] != "2.1.0.3" {
		t.Fatalf("main unchanged until Begin Upgrade: %v", s)
	}
	fr := e.dv(tenantA, orgA, "GET", "RetrieveFormattedImportJobResults(ImportJobId=@p1)?@p1="+job1, nil, 200)
	if !strings.Contains(fr["FormattedResults"].(string), `result="success"`) {
		t.Fatalf("formatted results: %v", fr)
	}
	c := e.cloud.TenantCounters(tenantA)
	if c.Imports != 1 || c.ImportsRefused != 2 || c.ImportsSucceeded != 1 || c.HoldingImports != 1 {
		t.Fatalf("counters: %+v", c)
	}
}

func TestImportFailureFromScenario(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.Tenants[0].Import.Failures = 1; s.Tenants[0].Import.FailMessage = "boom" })
	res := e.dv(tenantA, orgA, "POST", "ImportSolutionAsync", importBody("Work365", "2.5.0.1", job1, true), 200)
	e.clock.Advance(10 * time.Minute)
	op := e.dv(tenantA, orgA, "GET", "asyncoperations("+res["AsyncOperationId"].(string)+")", nil, 200)
	if op["statecode"].(float64) != 3 || op["statuscode"].(float64) != 31 || op["friendlymessage"] != "boom" || !strings.Contains(op["message"].(string), "boom") {
		t.Fatalf("failed op: %v", op)
	}
	if j := e.dv(tenantA, orgA, "GET", "importjobs("+job1+")", nil, 200); j["progress"].(float64) != 40 || j["completedon"] == nil {
		t.Fatalf("failed job: %v", j)
	}
	fr := e.dv(tenantA, orgA, "GET", "RetrieveFormattedImportJobResults(ImportJobId=@p1)?@p1="+job1, nil, 200)
	if !strings.Contains(fr["FormattedResults"].(string), "boom") {
		t.Fatalf("formatted: %v", fr)
	}
	if e.solution("Work365_Upgrade") != nil {
		t.Fatal("a failed import stages nothing")
	}
	// The retry with a new ImportJobId succeeds.
	e.dv(tenantA, orgA, "POST", "ImportSolutionAsync", importBody("Work365", "2.5.0.1", job2, true), 200)
	e.clock.Advance(10 * time.Minute)
	if e.solution("Work365_Upgrade") == nil {
		t.Fatal("retry staged nothing")
	}
	if c := e.cloud.TenantCounters(tenantA); c.ImportsFailed != 1 || c.ImportsSucceeded != 1 {
		t.Fatalf("counters: %+v", c)
	}
}

func TestUninstallAndPortalInstall(t *testing.T) {
	e := newEnv(t, nil)
	res := e.dv(tenantA, orgA, "POST", "UninstallSolutionAsync", map[string]any{"SolutionUniqueName": "Work365Portal"}, 200)
	e.clock.Advance(2 * time.Minute)
	if e.solution("Work365Portal") == nil {
		t.Fatal("portal removed too early")
	}
	e.clock.Advance(2 * time.Minute)
	op := e.dv(tenantA, orgA, "GET", "asyncoperations("+res["AsyncOperationId"].(string)+")", nil, 200)
	if op["statuscode"].(float64) != 30 || e.solution("Work365Portal") != nil {
		t.Fatalf("uninstall: %v", op)
	}
	e.dv(tenantA, orgA, "POST", "UninstallSolutionAsync", map[string]any{"SolutionUniqueName": "Work365Portal"}, 404)
	e.dv(tenantA, orgA, "POST", "ImportSolutionAsync", importBody("Work365Portal", "2.5.0.0", job3, false), 200)
	e.clock.Advance(10 * time.Minute)
	if s := e.solution("Work365Portal"); s == nil || s["version"] != "2.5.0.0" {
		t.Fatalf("portal reinstalled: %v", s)
	}
	c := e.cloud.TenantCounters(tenantA)
	if c.Uninstalls != 1 || c.UninstallsRefused != 1 || c.PortalUninstalls != 1 || c.PortalInstalls != 1 {
		t.Fatalf("counters: %+v", c)
	}
}

func TestSystemUsers(t *testing.T) {
	e := newEnv(t, nil)
	m := e.dv(tenantA, orgA, "GET", "systemusers?$filter="+q("domainname eq 'admin@contoso.onmicrosoft.com'")+"&$select=systemuserid,domainname,islicensed,isdisabled,accessmode&$expand="+q("systemuserroles_association($select=name,roleid,_roletemplateid_value)"), nil, 200)
	v := m["value"].([]any)
	if len(v) != 1 {
		t.Fatalf("users: %v", v)
	}
	u := v[0].(map[string]any)
	roles := u["systemuserroles_association"].([]any)
	found := false
	for _, r := range roles {
		if r.(map[string]any)["_roletemplateid_value"] == dataverse.SystemAdministratorRoleTemplateID {
			found = true
		}
	}
	if !found || u["islicensed"] != true || u["fullname"] != nil {
		t.Fatalf("admin: %v", u)
	}
	// The service account has no 'Work 365 Service' role; it can't get one before 2.5 is imported.
	if err := e.cloud.AssignRole(tenantA, "svc@contoso.onmicrosoft.com", RoleWork365Service); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("role before import: %v", err)
	}
	// A user by ID (the preflight reads its own application user so) answers the same row.
	byID := e.dv(tenantA, orgA, "GET", "systemusers("+u["systemuserid"].(string)+")", nil, 200)
	if byID["domainname"] != "admin@contoso.onmicrosoft.com" {
		t.Fatalf("user by ID: %v", byID)
	}
	// The worker never reads accounts: the permissions manifest has no entry for it, so the
	// simulated Dataverse refuses it, naming the call.
	other := e.dv(tenantA, orgA, "GET", "accounts", nil, 400)
	if msg := fmt.Sprint(other["error"]); !strings.Contains(msg, "NotInPermissionsManifest") || !strings.Contains(msg, "accounts") {
		t.Fatalf("a call without a manifest entry: %v", other)
	}
}

func TestJobsDrainAndFreeze(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.Tenants[0].Jobs = Jobs{Pending: 10, DrainPerMinute: 1, ArrivePerMinute: 0.5} })
	n := e.cloud.Names()
	count := func() int {
		m := e.dv(tenantA, orgA, "GET", n.JobsEntitySet+"?$filter="+q(n.PendingJobsFilter)+"&$count=true&$select="+n.JobsIDColumn, nil, 200)
		return int(m["@odata.count"].(float64))
	}
	if c := count(); c != 10 {
		t.Fatalf("start: %d", c)
	}
	e.clock.Advance(4 * time.Minute) // net -0.5/min while unfrozen
	if c := count(); c != 8 {
		t.Fatalf("unfrozen: %d", c)
	}
	set := e.dv(tenantA, orgA, "GET", n.SettingsEntitySet+"?$select="+n.SettingsIDColumn+","+n.FreezeColumn+"&$top=1", nil, 200)
	row := set["value"].([]any)[0].(map[string]any)
	if row[n.FreezeColumn] != false {
		t.Fatalf("settings: %v", row)
	}
	id := row[n.SettingsIDColumn].(string)
	e.dv(tenantA, orgA, "PATCH", n.SettingsEntitySet+"("+id+")", map[string]any{n.FreezeColumn: true}, 204)
	e.dv(tenantA, orgA, "PATCH", n.SettingsEntitySet+"("+id+")", map[string]any{n.FreezeColumn: true}, 204)
	e.clock.Advance(4 * time.Minute) // -1/min while frozen
	if c := count(); c != 4 {
		t.Fatalf("frozen: %d", c)
	}
	e.clock.Advance(10 * time.Minute)
	if c := count(); c != 0 {
		t.Fatalf("drained: %d", c)
	}
	e.dv(tenantA, orgA, "PATCH", n.SettingsEntitySet+"(00000000-0000-0000-0000-000000000000)", map[string]any{n.FreezeColumn: true}, 404)
	e.dv(tenantA, orgA, "PATCH", n.SettingsEntitySet+"("+id+")", map[string]any{"nonsense": 1}, 400)
	e.dv(tenantA, orgA, "PATCH", n.SettingsEntitySet+"("+id+")", map[string]any{n.FreezeColumn: false}, 204)
	c := e.cloud.TenantCounters(tenantA)
	if c.Freezes != 1 || c.Unfreezes != 1 || c.FreezeWrites != 3 {
		t.Fatalf("freeze counters: %+v", c)
	}
	e.dv(tenantA, orgA, "GET", n.JobsEntitySet+"?$filter="+q("statecode eq 1"), nil, 400)
}

// TestQueriesDataverseRefuses: like Dataverse, a $select of a column the table lacks (names are
// case-sensitive) and an unsupported query option are 400, naming them.
func TestQueriesDataverseRefuses(t *testing.T) {
	e := newEnv(t, nil)
	m := e.dv(tenantA, orgA, "GET", "solutions?$select=uniquename,Version", nil, 400)
	if fmt.Sprint(m["error"]) != fmt.Sprint(map[string]any{"code": "0x0", "message": "Could not find a property named 'Version' on type 'Microsoft.Dynamics.CRM.solution'."}) {
		t.Fatalf("unknown column: %v", m)
	}
	m = e.dv(tenantA, orgA, "GET", "solutions?$skip=1", nil, 400)
	if !strings.Contains(fmt.Sprint(m["error"]), "$skip") {
		t.Fatalf("unsupported option: %v", m)
	}
	if m := e.dv(tenantA, orgA, "GET", "solutions?$select=uniquename,version", nil, 200); len(m["value"].([]any)) == 0 {
		t.Fatalf("known columns: %v", m)
	}
}
