package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestOpenIDConfiguration(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct{ tenant, issuer string }{
		{tenantA, "https://login.microsoftonline.com/" + tenantA + "/v2.0"},
		{"organizations", "https://login.microsoftonline.com/{tenantid}/v2.0"},
	} {
		st, m, _ := e.do("GET", "https://login.microsoftonline.com/"+tc.tenant+"/v2.0/.well-known/openid-configuration", "", nil)
		if st != 200 || m["issuer"] != tc.issuer {
			t.Fatalf("%s: %d issuer %v", tc.tenant, st, m["issuer"])
		}
		if m["token_endpoint"] != "https://login.microsoftonline.com/"+tc.tenant+"/oauth2/v2.0/token" ||
			m["authorization_endpoint"] != "https://login.microsoftonline.com/"+tc.tenant+"/oauth2/v2.0/authorize" ||
			m["jwks_uri"] != "https://login.microsoftonline.com/"+tc.tenant+"/discovery/v2.0/keys" {
			t.Fatalf("endpoints: %v", m)
		}
		// The keys name the issuer they sign for and carry the RSA public key.
		st, m, _ = e.do("GET", m["jwks_uri"].(string), "", nil)
		keys, _ := m["keys"].([]any)
		if st != 200 || len(keys) != 1 {
			t.Fatalf("%s keys: %d %v", tc.tenant, st, m)
		}
		k := keys[0].(map[string]any)
		if k["kty"] != "RSA" || k["use"] != "sig" || k["issuer"] != tc.issuer || k["n"] == "" || k["e"] != "AQAB" || k["kid"] == "" {
			t.Fatalf("%s key: %v", tc.tenant, k)
		}
	}
	// The partner's own tenant (no customer) has its discovery document too.
	partner := e.cloud.Scenario().Partner.TenantID
	if st, m, _ := e.do("GET", "https://login.microsoftonline.com/"+partner+"/v2.0/.well-known/openid-configuration", "", nil); st != 200 || m["issuer"] != "https://login.microsoftonline.com/"+partner+"/v2.0" {
		t.Fatalf("partner tenant: %d %v", st, m)
	}
	st, m, _ := e.do("GET", "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration", "", nil)
	if st != 400 || !strings.HasPrefix(m["error_description"].(string), "AADSTS90002") {
		t.Fatalf("unknown tenant: %d %v", st, m)
	}
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not header.payload.signature", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t, func(s *Scenario) {
		no := false
		s.Tenants[1].OrchestratorConsented = &no
	})
	st, m := e.tokenResponse(tenantA, e.secretForm("https://graph.microsoft.com/.default"))
	if st != 200 || m["token_type"] != "Bearer" || m["expires_in"].(float64) != 3600 {
		t.Fatalf("token: %d %v", st, m)
	}
	cl := decodeClaims(t, m["access_token"].(string))
	if cl["tid"] != tenantA || cl["aud"] != GraphResource || cl["appid"] != e.cloud.Scenario().Orchestrator.ClientID {
		t.Fatalf("claims: %v", cl)
	}
	if int64(cl["exp"].(float64)) != e.clock.Now().Add(time.Hour).Unix() || int64(cl["iat"].(float64)) != e.clock.Now().Unix() {
		t.Fatalf("exp/iat not on the cloud's clock: %v", cl)
	}
	// Dataverse audience is the org URL.
	_, m = e.tokenResponse(tenantA, e.secretForm(orgA+"/.default"))
	if cl := decodeClaims(t, m["access_token"].(string)); cl["aud"] != orgA {
		t.Fatalf("dataverse aud: %v", cl["aud"])
	}

	aadsts := func(m map[string]any) string {
		s, _ := m["error_description"].(string)
		code, _, _ := strings.Cut(s, ":")
		return code
	}
	bad := e.secretForm("https://graph.microsoft.com/.default")
	bad.Set("client_secret", "wrong")
	st, m = e.tokenResponse(tenantA, bad)
	if st != 401 || m["error"] != "invalid_client" || aadsts(m) != "AADSTS7000215" {
		t.Fatalf("wrong secret: %d %v", st, m)
	}
	if codes, _ := m["error_codes"].([]any); len(codes) != 1 || codes[0].(float64) != 7000215 {
		t.Fatalf("error_codes missing: %v", m)
	}
	if st, m := e.tokenResponse(tenantB, e.secretForm("https://graph.microsoft.com/.default")); st != 401 || aadsts(m) != "AADSTS7000229" {
		t.Fatalf("not consented: %d %v", st, m)
	}
	other := e.secretForm("https://graph.microsoft.com/.default")
	other.Set("client_id", "99999999-9999-4999-8999-999999999999")
	if st, m := e.tokenResponse(tenantA, other); st != 400 || aadsts(m) != "AADSTS700016" {
		t.Fatalf("unknown client: %d %v", st, m)
	}
	if st, m := e.tokenResponse(tenantA, e.secretForm("https://graph.microsoft.com/User.Read")); st != 400 || aadsts(m) != "AADSTS1002012" {
		t.Fatalf("non-.default scope: %d %v", st, m)
	}
	if st, m := e.tokenResponse(tenantA, e.secretForm("https://example.com/.default")); st != 400 || aadsts(m) != "AADSTS500011" {
		t.Fatalf("unknown resource: %d %v", st, m)
	}
	// A well-formed client assertion is accepted for a client registered with a certificate.
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	app := e.cloud.Scenario().Orchestrator
	assertion := enc(map[string]any{"alg": "RS256", "x5t": "abc"}) + "." + enc(map[string]any{"iss": app.ClientID, "sub": app.ClientID, "aud": "https://login.microsoftonline.com/" + tenantA + "/oauth2/v2.0/token"}) + ".c2ln"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "scope": {"https://graph.microsoft.com/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	if st, m := e.tokenResponse(tenantA, form); st != 200 {
		t.Fatalf("client assertion: %d %v", st, m)
	}
	form.Set("client_assertion", "not-a-jwt")
	if st, _ := e.tokenResponse(tenantA, form); st != 401 {
		t.Fatalf("malformed assertion: %d", st)
	}

	c := e.cloud.TenantCounters(tenantA)
	if c.TokenRequests[GraphResource] != 6 || c.TokenRequests[orgA] != 1 || c.TokensIssued != 3 {
		t.Fatalf("token counters: %+v issued %d", c.TokenRequests, c.TokensIssued)
	}
}

func TestAPIAuthChecks(t *testing.T) {
	e := newEnv(t, nil)
	u := "https://graph.microsoft.com/v1.0/subscribedSkus"
	if st, m, h := e.do("GET", u, "", nil); st != 401 || errCode(m) != "InvalidAuthenticationToken" || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %v", st, m)
	}
	// Forged: right shape, wrong signature.
	good := e.token(tenantA, GraphResource)
	parts := strings.Split(good, ".")
	if st, _, _ := e.do("GET", u, parts[0]+"."+parts[1]+".AAAA", nil); st != 401 {
		t.Fatalf("forged token: %d", st)
	}
	// Wrong audience: a Dataverse token at Graph.
	if st, m, _ := e.do("GET", u, e.token(tenantA, orgA), nil); st != 401 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "audience") {
		t.Fatalf("wrong audience: %d %v", st, m)
	}
	// Expired on the cloud's clock.
	e.clock.Advance(61 * time.Minute)
	if st, m, _ := e.do("GET", u, good, nil); st != 401 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "expired") {
		t.Fatalf("expired token: %d %v", st, m)
	}
	// Dataverse: a token of another tenant for this org's audience.
	tok := e.cloud.IssueToken(tenantB, orgA, time.Hour)
	if st, m, _ := e.do("GET", orgA+"/api/data/v9.2/WhoAmI", tok, nil); st != 401 || errCode(m) == "" {
		t.Fatalf("wrong tenant: %d %v", st, m)
	}
	// Dataverse: the api host accepts the org URL audience.
	tok = e.cloud.IssueToken(tenantA, orgA, time.Hour)
	if st, m, _ := e.do("GET", "https://contoso.api.crm.dynamics.com/api/data/v9.2/WhoAmI", tok, nil); st != 200 || m["UserId"] == nil {
		t.Fatalf("api host: %d %v", st, m)
	}
	// No application user in tenant B's org.
	tok = e.cloud.IssueToken(tenantB, orgB, time.Hour)
	if st, _, _ := e.do("GET", orgB+"/api/data/v9.2/WhoAmI", tok, nil); st != 403 {
		t.Fatalf("no app user: %d", st)
	}
	if c := e.cloud.TenantCounters(tenantA); c.Unauthorized != 2 {
		t.Fatalf("unauthorized not counted: %d", c.Unauthorized)
	}
}

func TestTransportRefusesRealHosts(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.hc.Get("https://example.com/"); err == nil || !strings.Contains(err.Error(), "not a simulated host") {
		t.Fatalf("got %v", err)
	}
}

func TestDataverseChallengeNamesTheTenant(t *testing.T) {
	e := newEnv(t, nil)
	for _, u := range []string{orgA + "/api/data/v9.2/", "https://contoso.api.crm.dynamics.com/api/data/v9.2/nonsense"} {
		st, _, h := e.do("GET", u, "", nil)
		if st != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "authorization_uri=https://login.microsoftonline.com/"+tenantA+"/oauth2/authorize") {
			t.Fatalf("%s: %d %q", u, st, h.Get("WWW-Authenticate"))
		}
	}
	if m := e.dv(tenantA, orgA, "GET", "", nil, 200); len(m["value"].([]any)) == 0 {
		t.Fatalf("service document: %v", m)
	}
	// A path the worker never calls has no permissions-manifest entry: refused, named.
	if m := e.dv(tenantA, orgA, "GET", "nonsense", nil, 400); !strings.Contains(fmt.Sprint(m["error"]), "NotInPermissionsManifest") {
		t.Fatalf("a call without a manifest entry: %v", m)
	}
	if st, _, _ := e.do("GET", "https://unknown.crm.dynamics.com/api/data/v9.2/WhoAmI", "", nil); st != 404 {
		t.Fatalf("unknown org: %d", st)
	}
}
