package dataverse

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
)

const (
	tenant = "aaaaaaaa-0000-0000-0000-000000000001"
	jobID  = "11111111-2222-3333-4444-555555555555"
	opID   = "99999999-8888-7777-6666-555555555555"
)

// exchange is one expected request and its answer.
type exchange struct {
	method string
	path   string     // after /api/data/v9.2/
	query  url.Values // exact
	header http.Header
	body   string // JSON the request body must equal; empty: no body

	status     int
	respHeader http.Header
	resp       string
}

// fakeOrg is a Dataverse organisation over TLS that expects the exchanges in order.
type fakeOrg struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	exp []exchange
	n   int
}

func newFakeOrg(t *testing.T, exp ...exchange) (*fakeOrg, *Client) {
	f := &fakeOrg{t: t, exp: exp}
	f.srv = httptest.NewTLSServer(f)
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		assert.Equal(t, len(f.exp), f.n, "all expected calls made")
	})
	tokens := func(_ context.Context, tenantID, scope string) (string, error) {
		assert.Equal(t, tenant, tenantID)
		assert.Equal(t, f.srv.URL+"/.default", scope)
		return "dv-token", nil
	}
	c := New(tokens, TenantsByOrg(map[string]string{f.srv.URL: tenant}), msapi.WithHTTPClient(f.srv.Client()))
	return f, c
}

func (f *fakeOrg) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.n >= len(f.exp) {
		f.mu.Unlock()
		f.t.Errorf("unexpected call %s %s", r.Method, r.URL.RequestURI())
		w.WriteHeader(http.StatusTeapot)
		return
	}
	e := f.exp[f.n]
	f.n++
	f.mu.Unlock()

	assert.Equal(f.t, e.method, r.Method)
	assert.Equal(f.t, "/api/data/v9.2/"+e.path, r.URL.Path)
	want := e.query
	if want == nil {
		want = url.Values{}
	}
	assert.Equal(f.t, want, r.URL.Query())
	assert.Equal(f.t, "Bearer dv-token", r.Header.Get("Authorization"))
	assert.Equal(f.t, "application/json", r.Header.Get("Accept"))
	assert.Equal(f.t, "4.0", r.Header.Get("OData-Version"))
	assert.Equal(f.t, "4.0", r.Header.Get("OData-MaxVersion"))
	for k := range e.header {
		assert.Equal(f.t, e.header.Get(k), r.Header.Get(k), k)
	}
	b, _ := io.ReadAll(r.Body)
	if e.body == "" {
		assert.Empty(f.t, b)
	} else {
		assert.JSONEq(f.t, e.body, string(b))
		assert.Equal(f.t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
	}
	for k, v := range e.respHeader {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	w.Header().Set("OData-Version", "4.0")
	if e.status != 0 {
		w.WriteHeader(e.status)
	}
	_, _ = io.WriteString(w, strings.ReplaceAll(e.resp, "{{base}}", f.srv.URL))
}

func dvErr(code, msg string) string {
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, msg)
}

func apiErr(t *testing.T, err error) *msapi.Error {
	t.Helper()
	var e *msapi.Error
	require.True(t, errors.As(err, &e), "want *msapi.Error, got %T %v", err, err)
	assert.Equal(t, "dataverse", e.Service)
	return e
}

var ctx = context.Background()

func TestWhoAmI(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "GET", path: "WhoAmI",
		resp: `{"@odata.context":"x","BusinessUnitId":"b","UserId":"u","OrganizationId":"o"}`})
	r, err := c.WhoAmI(ctx, f.srv.URL+"/")
	require.NoError(t, err)
	assert.Equal(t, WhoAmIResponse{UserID: "u", BusinessUnitID: "b", OrganizationID: "o"}, r)
}

func TestWhoAmIDenied(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "GET", path: "WhoAmI", status: 403,
		resp: dvErr("0x80072560", "The user is not a member of the organization.")})
	_, err := c.WhoAmI(ctx, f.srv.URL)
	e := apiErr(t, err)
	assert.Equal(t, 403, e.Status)
	assert.False(t, e.Retryable())
	assert.Equal(t, "0x80072560", e.Code)
	assert.Contains(t, e.Hint, "application user with a security role in "+f.srv.URL)
}

func TestThrottled(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "GET", path: "WhoAmI", status: 429,
		respHeader: http.Header{"Retry-After": {"5"}},
		resp:       dvErr("0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")})
	short, cancel := context.WithTimeout(ctx, time.Second) // the 5s wait does not fit: back to Temporal at once
	defer cancel()
	_, err := c.WhoAmI(short, f.srv.URL)
	e := apiErr(t, err)
	assert.True(t, e.Retryable())
	assert.Equal(t, 5*time.Second, e.RetryAfter)
}

func TestGetSolution(t *testing.T) {
	q := url.Values{
		"$filter": {"uniquename eq 'Work365'"},
		"$select": {"solutionid,uniquename,version,ismanaged,installedon"},
	}
	f, c := newFakeOrg(t,
		exchange{method: "GET", path: "solutions", query: q,
			resp: `{"value":[{"solutionid":"s1","uniquename":"Work365","version":"2.1.0.4","ismanaged":true,"installedon":"2019-02-10T08:00:00Z"}]}`},
		exchange{method: "GET", path: "solutions", query: url.Values{
			"$filter": {"uniquename eq 'Work365_Upgrade'"}, "$select": q["$select"]},
			resp: `{"value":[]}`})
	s, err := c.GetSolution(ctx, f.srv.URL, "Work365")
	require.NoError(t, err)
	require.NotNil(t, s)
	assert.Equal(t, "2.1.0.4", s.Version)
	assert.True(t, s.IsManaged)
	require.NotNil(t, s.InstalledOn)
	assert.Equal(t, time.Date(2019, 2, 10, 8, 0, 0, 0, time.UTC), *s.InstalledOn)

	s, err = c.GetSolution(ctx, f.srv.URL, "Work365_Upgrade")
	require.NoError(t, err)
	assert.Nil(t, s)
}

func TestImportSolutionAsync(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "POST", path: "ImportSolutionAsync",
		body: `{"CustomizationFile":"UEsDBA==","OverwriteUnmanagedCustomizations":false,"PublishWorkflows":true,
			"ImportJobId":"` + jobID + `","HoldingSolution":true}`,
		resp: `{"@odata.context":"x","AsyncOperationId":"` + opID + `","ImportJobKey":"k1"}`})
	r, err := c.ImportSolutionAsync(ctx, f.srv.URL, ImportSolutionAsyncRequest{
		CustomizationFile: "UEsDBA==", PublishWorkflows: true, ImportJobID: jobID, HoldingSolution: true,
	})
	require.NoError(t, err)
	assert.Equal(t, ImportSolutionAsyncResponse{AsyncOperationID: opID, ImportJobKey: "k1"}, r)
}

func TestImportSolutionAsyncRefusesBadInput(t *testing.T) {
	f, c := newFakeOrg(t)
	_, err := c.ImportSolutionAsync(ctx, f.srv.URL, ImportSolutionAsyncRequest{CustomizationFile: "x", ImportJobID: "job-1"})
	e := apiErr(t, err)
	assert.True(t, e.Local)
	assert.False(t, e.Retryable())
	_, err = c.ImportSolutionAsync(ctx, f.srv.URL, ImportSolutionAsyncRequest{ImportJobID: jobID})
	assert.True(t, apiErr(t, err).Local)
}

func TestImportSolutionAsyncDeniedNamesRole(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "POST", path: "ImportSolutionAsync", status: 403,
		body: `{"CustomizationFile":"eA==","OverwriteUnmanagedCustomizations":false,"PublishWorkflows":false,"ImportJobId":"` + jobID + `","HoldingSolution":false}`,
		resp: dvErr("0x80040220", "Principal user is missing prvImportCustomization privilege")})
	_, err := c.ImportSolutionAsync(ctx, f.srv.URL, ImportSolutionAsyncRequest{CustomizationFile: "eA==", ImportJobID: jobID})
	e := apiErr(t, err)
	assert.Contains(t, e.Hint, "System Customizer")
	assert.Equal(t, "Principal user is missing prvImportCustomization privilege", e.Message)
}

func TestUninstallSolutionAsync(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "POST", path: "UninstallSolutionAsync",
		body: `{"SolutionUniqueName":"Work365Portal"}`,
		resp: `{"AsyncOperationId":"` + opID + `"}`})
	r, err := c.UninstallSolutionAsync(ctx, f.srv.URL, "Work365Portal")
	require.NoError(t, err)
	assert.Equal(t, opID, r.AsyncOperationID)
}

func TestGetAsyncOperation(t *testing.T) {
	f, c := newFakeOrg(t,
		exchange{method: "GET", path: "asyncoperations(" + opID + ")",
			query: url.Values{"$select": {asyncOpSelect}},
			resp:  `{"statecode":3,"statuscode":31,"message":"Import failed","asyncoperationid":"` + opID + `"}`},
		exchange{method: "GET", path: "asyncoperations(" + opID + ")",
			query: url.Values{"$select": {asyncOpSelect}},
			resp:  `{"statecode":2,"statuscode":20,"message":null}`},
		exchange{method: "GET", path: "asyncoperations(" + opID + ")",
			query:  url.Values{"$select": {asyncOpSelect}},
			status: 404, resp: dvErr("0x80040217", "asyncoperation With Id = "+opID+" Does Not Exist")})
	o, err := c.GetAsyncOperation(ctx, f.srv.URL, opID)
	require.NoError(t, err)
	assert.True(t, o.Done())
	assert.False(t, o.Succeeded())
	assert.Equal(t, "Import failed", o.Message)

	o, err = c.GetAsyncOperation(ctx, f.srv.URL, opID)
	require.NoError(t, err)
	assert.Equal(t, AsyncOperation{AsyncOperationID: opID, StateCode: StateLocked, StatusCode: StatusInProgress}, o)

	_, err = c.GetAsyncOperation(ctx, f.srv.URL, opID)
	e := apiErr(t, err)
	assert.True(t, e.NotFound())
	assert.Contains(t, e.Hint, "no async operation")
}

func TestGetAsyncOperationRefusesNonGUID(t *testing.T) {
	f, c := newFakeOrg(t)
	_, err := c.GetAsyncOperation(ctx, f.srv.URL, "1)/../../x")
	assert.True(t, apiErr(t, err).Local)
}

func TestGetImportJob(t *testing.T) {
	q := url.Values{"$select": {"importjobid,solutionname,progress,startedon,completedon"}}
	f, c := newFakeOrg(t,
		exchange{method: "GET", path: "importjobs(" + jobID + ")", query: q,
			resp: `{"importjobid":"` + jobID + `","solutionname":"Work365","progress":42.5,"startedon":"2026-05-01T10:00:00Z","completedon":null}`},
		exchange{method: "GET", path: "importjobs(" + jobID + ")", query: q,
			status: 404, resp: dvErr("0x80040217", "importjob With Id = "+jobID+" Does Not Exist")})
	j, err := c.GetImportJob(ctx, f.srv.URL, jobID)
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, 42.5, j.Progress)
	assert.Nil(t, j.CompletedOn)
	require.NotNil(t, j.StartedOn)

	j, err = c.GetImportJob(ctx, f.srv.URL, jobID)
	require.NoError(t, err)
	assert.Nil(t, j)
}

func TestRetrieveFormattedImportJobResults(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "GET", path: "RetrieveFormattedImportJobResults(ImportJobId=@p1)",
		query: url.Values{"@p1": {jobID}},
		resp:  `{"@odata.context":"x","FormattedResults":"<?xml version=\"1.0\"?><Workbook/>"}`})
	s, err := c.RetrieveFormattedImportJobResults(ctx, f.srv.URL, jobID)
	require.NoError(t, err)
	assert.Equal(t, `<?xml version="1.0"?><Workbook/>`, s)
}

func TestFindSystemUser(t *testing.T) {
	q := url.Values{
		"$filter": {"domainname eq 'o''neil@contoso.com'"},
		"$select": {"systemuserid,domainname,islicensed,isdisabled,accessmode"},
		"$expand": {"systemuserroles_association($select=name,roleid,_roletemplateid_value)"},
	}
	f, c := newFakeOrg(t,
		exchange{method: "GET", path: "systemusers", query: q,
			resp: `{"value":[{"systemuserid":"su1","domainname":"o'neil@contoso.com","islicensed":true,"isdisabled":false,"accessmode":0,
				"systemuserroles_association":[
					{"name":"System Administrator","roleid":"r1","_roletemplateid_value":"` + SystemAdministratorRoleTemplateID + `"},
					{"name":"Work 365 Service","roleid":"r2","_roletemplateid_value":null}]}]}`},
		exchange{method: "GET", path: "systemusers", query: url.Values{
			"$filter": {"domainname eq 'nobody@contoso.com'"}, "$select": q["$select"], "$expand": q["$expand"]},
			resp: `{"value":[]}`})
	u, err := c.FindSystemUser(ctx, f.srv.URL, "o'neil@contoso.com")
	require.NoError(t, err)
	require.NotNil(t, u)
	assert.True(t, u.IsLicensed)
	assert.True(t, u.HasRoleTemplate(SystemAdministratorRoleTemplateID))
	assert.True(t, u.HasRoleNamed("Work 365 Service"))

	u, err = c.FindSystemUser(ctx, f.srv.URL, "nobody@contoso.com")
	require.NoError(t, err)
	assert.Nil(t, u)
}

func TestGetSystemUserByID(t *testing.T) {
	const id = "6a1d2c3b-0000-4000-8000-0000000000a5"
	q := url.Values{
		"$select": {"systemuserid,domainname,islicensed,isdisabled,accessmode"},
		"$expand": {"systemuserroles_association($select=name,roleid,_roletemplateid_value)"},
	}
	f, c := newFakeOrg(t,
		exchange{method: "GET", path: "systemusers(" + id + ")", query: q,
			resp: `{"systemuserid":"` + id + `","domainname":"","isdisabled":false,"accessmode":4,
				"systemuserroles_association":[{"name":"Work 365 Upgrade Orchestrator","roleid":"r9","_roletemplateid_value":null}]}`},
		exchange{method: "GET", path: "systemusers(" + id + ")", query: q,
			status: 404, resp: dvErr("0x80040217", "systemuser With Id = "+id+" Does Not Exist")})
	u, err := c.GetSystemUser(ctx, f.srv.URL, id)
	require.NoError(t, err)
	require.NotNil(t, u)
	assert.Equal(t, 4, u.AccessMode, "non-interactive: an application user")
	assert.True(t, u.HasRoleNamed("Work 365 Upgrade Orchestrator"))

	u, err = c.GetSystemUser(ctx, f.srv.URL, id)
	require.NoError(t, err)
	assert.Nil(t, u)

	_, err = c.GetSystemUser(ctx, f.srv.URL, "not-a-guid")
	require.ErrorContains(t, err, "is not a GUID")
}

func TestCount(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "GET", path: "w365_jobs",
		query:  url.Values{"$count": {"true"}, "$select": {"w365_jobid"}, "$filter": {"statecode eq 0 and w365_jobstatus ne 3"}},
		header: http.Header{"Prefer": {"odata.maxpagesize=1"}},
		resp:   `{"@odata.count":17,"value":[{"w365_jobid":"j"}],"@odata.nextLink":"{{base}}/api/data/v9.2/w365_jobs?$skiptoken=x"}`})
	n, err := c.Count(ctx, f.srv.URL, "w365_jobs", "w365_jobid", "statecode eq 0 and w365_jobstatus ne 3")
	require.NoError(t, err)
	assert.Equal(t, 17, n)
}

func TestCountUnknownTable(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "GET", path: "w365_jobs", query: url.Values{"$count": {"true"}},
		status: 404, resp: dvErr("0x8006088a", "Resource not found for the segment 'w365_jobs'.")})
	_, err := c.Count(ctx, f.srv.URL, "w365_jobs", "", "")
	e := apiErr(t, err)
	assert.True(t, e.NotFound())
	assert.Contains(t, e.Hint, "entity set name w365_jobs")
}

func TestListRowsPages(t *testing.T) {
	f, c := newFakeOrg(t,
		exchange{method: "GET", path: "w365_settings",
			query: url.Values{"$select": {"w365_settingid,w365_activityfreeze"}, "$filter": {"statecode eq 0"}, "$orderby": {"createdon"}},
			resp:  `{"value":[{"w365_settingid":"s1","w365_activityfreeze":true}],"@odata.nextLink":"{{base}}/api/data/v9.2/w365_settings?$skiptoken=2"}`},
		exchange{method: "GET", path: "w365_settings", query: url.Values{"$skiptoken": {"2"}},
			resp: `{"value":[{"w365_settingid":"s2","w365_activityfreeze":null}]}`})
	rows, err := c.ListRows(ctx, f.srv.URL, "w365_settings", RowQuery{
		Select: []string{"w365_settingid", "w365_activityfreeze"}, Filter: "statecode eq 0", OrderBy: "createdon"})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	id, ok := rows[0].String("w365_settingid")
	assert.True(t, ok)
	assert.Equal(t, "s1", id)
	b, err := rows[0].Bool("w365_activityfreeze")
	require.NoError(t, err)
	assert.True(t, b)
	b, err = rows[1].Bool("w365_activityfreeze")
	require.NoError(t, err)
	assert.False(t, b, "null reads as false")
	_, err = rows[1].Bool("missing")
	assert.Error(t, err)
}

func TestPatchRow(t *testing.T) {
	f, c := newFakeOrg(t, exchange{method: "PATCH", path: "w365_settings(" + jobID + ")",
		header: http.Header{"If-Match": {"*"}},
		body:   `{"w365_activityfreeze":true}`,
		status: 204})
	require.NoError(t, c.PatchRow(ctx, f.srv.URL, "w365_settings", jobID, map[string]any{"w365_activityfreeze": true}))
}

func TestOrgAndTenantResolution(t *testing.T) {
	f, c := newFakeOrg(t)
	for _, org := range []string{"http://contoso.crm.dynamics.com", "https://contoso.crm.dynamics.com/main.aspx", "not a url", ""} {
		_, err := c.WhoAmI(ctx, org)
		e := apiErr(t, err)
		assert.True(t, e.Local, org)
		assert.Contains(t, e.Hint, "https://contoso.crm.dynamics.com")
	}
	_, err := c.WhoAmI(ctx, "https://unknown.crm.dynamics.com")
	e := apiErr(t, err)
	assert.True(t, e.Local)
	assert.False(t, e.Retryable())
	assert.Contains(t, e.Message, "add the tenant")
	assert.Zero(t, f.n)

	resolve := TenantsByOrg(map[string]string{"https://Contoso.crm.dynamics.com/": "t1"})
	got, err := resolve(ctx, "https://contoso.CRM.dynamics.com")
	require.NoError(t, err)
	assert.Equal(t, "t1", got)
}
