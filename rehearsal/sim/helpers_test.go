package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	tenantA  = "6d2b1f0e-8a43-4c5e-9b7a-0f1e2d3c4b5a"
	tenantB  = "8f4d3b2a-0c65-4e7a-9d9c-2b3c4d5e6f70"
	partnerX = "7e3c2a1f-9b54-4d6f-8c8b-1a2b3c4d5e6f"
	adminA   = "11111111-1111-4111-8111-111111111111"
	svcA     = "22222222-2222-4222-8222-222222222222"
	adminB   = "33333333-3333-4333-8333-333333333333"
	orgA     = "https://contoso.crm.dynamics.com"
	orgB     = "https://fabrikam.crm4.dynamics.com"
)

// testScenario has tenant A (P1, Work 365 2.1 with portal, direct with two Partner Center
// connections) and tenant B (no P1, security defaults, 2.3, indirect).
// Imports start at once (StartDelay -1) so timings read simply; issue11_test.go covers the
// queued start.
func testScenario() *Scenario {
	no := false
	s := &Scenario{
		Seed:     1,
		PageSize: 2,
		Tenants: []Tenant{
			{
				TenantID: tenantA, Name: "Contoso", OrgURL: orgA, Work365Version: "2.1.0.3", Portal: true, PartnerType: "direct",
				Admin:          User{UPN: "admin@contoso.onmicrosoft.com", ObjectID: adminA, GlobalAdmin: true, SystemAdministrator: true, DynamicsLicence: true},
				ServiceAccount: User{UPN: "svc@contoso.onmicrosoft.com", ObjectID: svcA, DynamicsLicence: true},
				EntraP1:        true,
				Jobs:           Jobs{Pending: 10, DrainPerMinute: 1},
				Import:         Operation{Duration: 10 * time.Minute},
				Uninstall:      Operation{Duration: 4 * time.Minute},
				Upgrade:        Operation{Duration: 5 * time.Minute},
				PartnerCenters: []PartnerConnection{
					{Name: "contoso-pc", TenantID: tenantA, Primary: true},
					{Name: "contoso-eu", TenantID: partnerX},
				},
			},
			{
				TenantID: tenantB, Name: "Fabrikam", OrgURL: orgB, Work365Version: "2.3.0.0", PartnerType: "indirect",
				Admin:            User{UPN: "admin@fabrikam.onmicrosoft.com", ObjectID: adminB, GlobalAdmin: true, MFARegistered: true},
				ServiceAccount:   User{UPN: "svc@fabrikam.onmicrosoft.com", ObjectID: "44444444-4444-4444-8444-444444444444"},
				SecurityDefaults: true,
				Work365Consented: true,
				DataverseAppUser: &no,
			},
		},
	}
	for i := range s.Tenants {
		s.Tenants[i].Import.StartDelay = -1
	}
	return s
}

type env struct {
	t     *testing.T
	cloud *Cloud
	clock *FakeClock
	hc    *http.Client
	toks  map[string]string
}

func newEnv(t *testing.T, mod func(*Scenario)) *env {
	t.Helper()
	s := testScenario()
	if mod != nil {
		mod(s)
	}
	clock := s.NewClock()
	c := New(s, Options{Clock: clock})
	t.Cleanup(c.Close)
	return &env{t: t, cloud: c, clock: clock, hc: c.HTTPClient(), toks: map[string]string{}}
}

// tokenResponse posts a client-credentials request and returns status and JSON.
func (e *env) tokenResponse(tenant string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	resp, err := e.hc.PostForm("https://login.microsoftonline.com/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (e *env) secretForm(scope string) url.Values {
	app := e.cloud.Scenario().Orchestrator
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "scope": {scope}}
}

// token returns a token for the orchestrator in tenant for resource.
func (e *env) token(tenant, resource string) string {
	e.t.Helper()
	k := tenant + " " + resource
	if tok, ok := e.toks[k]; ok {
		return tok
	}
	st, m := e.tokenResponse(tenant, e.secretForm(resource+"/.default"))
	if st != 200 {
		e.t.Fatalf("token for %s in %s: %d %v", resource, tenant, st, m)
	}
	e.toks[k] = m["access_token"].(string)
	return e.toks[k]
}

// do sends a request with a bearer token (empty: none) and returns status, JSON body and headers.
func (e *env) do(method, u, tok string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, r)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %s", method, u, raw)
		}
	}
	return resp.StatusCode, m, resp.Header
}

// graph GETs a Graph v1.0 path in tenant and fails the test unless wantStatus.
func (e *env) graph(tenant, path string, wantStatus int) map[string]any {
	e.t.Helper()
	st, m, _ := e.do("GET", "https://graph.microsoft.com/v1.0/"+path, e.token(tenant, GraphResource), nil)
	if st != wantStatus {
		e.t.Fatalf("GET %s: %d %v, want %d", path, st, m, wantStatus)
	}
	return m
}

// dv calls a Dataverse path of org and fails the test unless wantStatus.
func (e *env) dv(tenant, org, method, path string, body any, wantStatus int) map[string]any {
	e.t.Helper()
	st, m, _ := e.do(method, org+"/api/data/v9.2/"+path, e.token(tenant, org), body)
	if st != wantStatus {
		e.t.Fatalf("%s %s: %d %v, want %d", method, path, st, m, wantStatus)
	}
	return m
}

// graphAll follows @odata.nextLink and returns every item.
func (e *env) graphAll(tenant, path string) []map[string]any {
	e.t.Helper()
	var all []map[string]any
	u := "https://graph.microsoft.com/v1.0/" + path
	for pages := 0; u != ""; pages++ {
		if pages > 20 {
			e.t.Fatal("too many pages")
		}
		st, m, _ := e.do("GET", u, e.token(tenant, GraphResource), nil)
		if st != 200 {
			e.t.Fatalf("GET %s: %d %v", u, st, m)
		}
		for _, v := range m["value"].([]any) {
			all = append(all, v.(map[string]any))
		}
		u, _ = m["@odata.nextLink"].(string)
	}
	return all
}

func errCode(m map[string]any) string {
	if e, ok := m["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func q(s string) string { return url.QueryEscape(s) }

func contains2(s, sub string) bool { return strings.Contains(s, sub) }
