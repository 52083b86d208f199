package msauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

const (
	clientID  = "11111111-2222-3333-4444-555555555555"
	tenantA   = "aaaaaaaa-0000-0000-0000-000000000001"
	tenantB   = "bbbbbbbb-0000-0000-0000-000000000002"
	secret    = "s3cr3t-value"
	loginHost = "login.microsoftonline.com"
)

// fakeEntra is the part of Entra ID MSAL's client-credentials flow talks to: the tenant's
// OpenID discovery document and its token endpoint. Tenants listed in fail answer with an
// OAuth error instead of a token.
type fakeEntra struct {
	t    *testing.T
	pub  *rsa.PublicKey // set: a certificate credential is expected
	fail map[string]fakeFailure
	// roles, when set, makes issued tokens JWTs whose roles claim is roles(tenant).
	roles func(tenant string) []string

	mu       sync.Mutex
	requests map[string]int // "tenant scope" → token requests
	issued   []string
}

type fakeFailure struct {
	status int
	header http.Header
	body   string
	// discovery: fail the discovery document rather than the token request.
	discovery bool
}

func (f *fakeEntra) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	tenant := parts[0]
	fail, failing := f.fail[tenant]
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
		if failing && fail.discovery {
			w.WriteHeader(fail.status)
			_, _ = w.Write([]byte(fail.body))
			return
		}
		base := "https://" + loginHost + "/" + tenant
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":                 base + "/v2.0",
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		})
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		require.NoError(f.t, r.ParseForm())
		assert.Equal(f.t, "client_credentials", r.PostForm.Get("grant_type"))
		assert.Equal(f.t, clientID, r.PostForm.Get("client_id"))
		f.checkCredential(r.PostForm)
		scope := resourceScope(r.PostForm.Get("scope"))
		f.mu.Lock()
		f.requests[tenant+" "+scope]++
		n := f.requests[tenant+" "+scope]
		f.mu.Unlock()
		if failing && !fail.discovery {
			for k, v := range fail.header {
				w.Header()[k] = v
			}
			w.WriteHeader(fail.status)
			_, _ = w.Write([]byte(fail.body))
			return
		}
		token := fmt.Sprintf("at|%s|%s|%d", tenant, scope, n)
		if f.roles != nil {
			token = unsignedJWT(map[string]any{"tid": tenant, "aud": scope, "iat": 1767225600, "roles": f.roles(tenant), "n": n})
		}
		f.mu.Lock()
		f.issued = append(f.issued, token)
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token,
		})
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

// checkCredential verifies the client secret, or the client assertion's RS256/PS256
// signature against the test certificate's key.
func (f *fakeEntra) checkCredential(form url.Values) {
	if f.pub == nil {
		assert.Equal(f.t, secret, form.Get("client_secret"))
		return
	}
	assert.Empty(f.t, form.Get("client_secret"))
	assert.Equal(f.t, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", form.Get("client_assertion_type"))
	parts := strings.Split(form.Get("client_assertion"), ".")
	require.Len(f.t, parts, 3, "client_assertion is a JWT")
	var header struct{ Alg string }
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(f.t, err)
	require.NoError(f.t, json.Unmarshal(h, &header))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(f.t, err)
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch header.Alg {
	case "RS256":
		assert.NoError(f.t, rsa.VerifyPKCS1v15(f.pub, crypto.SHA256, digest[:], sig))
	case "PS256":
		assert.NoError(f.t, rsa.VerifyPSS(f.pub, crypto.SHA256, digest[:], sig, nil))
	default:
		f.t.Errorf("unexpected assertion algorithm %q", header.Alg)
	}
}

// resourceScope drops the OpenID scopes MSAL adds to every request
// ("https://graph.microsoft.com/.default openid offline_access profile").
func resourceScope(s string) string {
	var keep []string
	for _, f := range strings.Fields(s) {
		switch f {
		case "openid", "offline_access", "profile":
		default:
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

func (f *fakeEntra) count(tenant, scope string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[tenant+" "+scope]
}

// routeTo returns an http.Client that sends requests for login.microsoftonline.com to srv:
// the same technique rehearsals use to reach the simulator.
func routeTo(t *testing.T, srv *httptest.Server, down map[string]bool) *http.Client {
	target, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != loginHost {
			return nil, fmt.Errorf("test transport: unexpected host %s", r.URL.Host)
		}
		if down[strings.Split(strings.Trim(r.URL.Path, "/"), "/")[0]] {
			return nil, errors.New("dial tcp: connection refused")
		}
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		return srv.Client().Transport.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newFake(t *testing.T) (*fakeEntra, *httptest.Server) {
	f := &fakeEntra{t: t, requests: map[string]int{}, fail: map[string]fakeFailure{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func secretFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(secret+"\n"), 0o600))
	return p
}

func newProvider(t *testing.T, srv *httptest.Server, cfg Config, down map[string]bool) *TokenProvider {
	p, err := New(cfg, WithHTTPClient(routeTo(t, srv, down)), WithInstanceDiscovery(false))
	require.NoError(t, err)
	return p
}

func TestTokenPerTenantAndScopeWithCache(t *testing.T) {
	f, srv := newFake(t)
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, nil)
	ctx := context.Background()
	org := "https://contoso.crm.dynamics.com"

	ga1, err := p.Token(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	assert.Equal(t, "at|"+tenantA+"|"+GraphScope+"|1", ga1)

	ga2, err := p.Token(ctx, tenantA, GraphScope)
	require.NoError(t, err)
	assert.Equal(t, ga1, ga2, "second call is served from MSAL's cache")
	assert.Equal(t, 1, f.count(tenantA, GraphScope))

	gb, err := p.Token(ctx, tenantB, GraphScope)
	require.NoError(t, err)
	assert.Equal(t, "at|"+tenantB+"|"+GraphScope+"|1", gb, "another tenant gets its own token")

	da, err := p.Token(ctx, tenantA, DataverseScope(org+"/"))
	require.NoError(t, err)
	assert.Equal(t, "at|"+tenantA+"|"+org+"/.default|1", da, "another scope gets its own token")

	for range 3 {
		_, err = p.Token(ctx, tenantB, GraphScope)
		require.NoError(t, err)
		_, err = p.Token(ctx, tenantA, DataverseScope(org))
		require.NoError(t, err)
	}
	assert.Equal(t, 1, f.count(tenantA, GraphScope))
	assert.Equal(t, 1, f.count(tenantB, GraphScope))
	assert.Equal(t, 1, f.count(tenantA, org+"/.default"))
}

// TestTokenCachePerTenant: each tenant's tokens live in an MSAL client of its own (MSAL scans
// every token of a client to find one), reused for the tenant's later calls; past the bound one
// tenant's client is dropped and its next call acquires anew, while the others stay cached.
func TestTokenCachePerTenant(t *testing.T) {
	f, srv := newFake(t)
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, nil)
	ctx := context.Background()
	p.clients.max = 2

	for range 2 {
		for _, tn := range []string{tenantA, tenantB} {
			_, err := p.Token(ctx, tn, GraphScope)
			require.NoError(t, err)
		}
	}
	assert.Equal(t, 2, p.clients.size(), "one client per tenant")
	assert.Equal(t, 1, f.count(tenantA, GraphScope), "the tenant's client answers from its cache")
	assert.Equal(t, 1, f.count(tenantB, GraphScope))
	_, err := p.Token(ctx, strings.ToUpper(tenantA), GraphScope)
	require.NoError(t, err)
	assert.Equal(t, 2, p.clients.size(), "a tenant ID in another case is the same tenant")

	const tenantC = "cccccccc-0000-0000-0000-000000000003"
	_, err = p.Token(ctx, tenantC, GraphScope)
	require.NoError(t, err)
	assert.Equal(t, 2, p.clients.size(), "bounded: a client was dropped for the third tenant")
	var dropped string
	for _, tn := range []string{tenantA, tenantB} {
		if _, ok := p.clients.clients[tn]; !ok {
			dropped = tn
		}
	}
	require.NotEmpty(t, dropped, "one of the first two tenants' clients was dropped")
	before := f.count(dropped, GraphScope)
	_, err = p.Token(ctx, dropped, GraphScope)
	require.NoError(t, err)
	assert.Equal(t, before+1, f.count(dropped, GraphScope), "a dropped tenant acquires anew when next asked")

	s, err := p.NewSession()
	require.NoError(t, err)
	assert.Equal(t, 0, s.clients.size(), "a session starts with no cached client")
	assert.Equal(t, 2, p.clients.size(), "and leaves the provider's as they are")
}

func TestCertificateCredentialFromEnv(t *testing.T) {
	f, srv := newFake(t)
	pemData, pub := selfSignedPEM(t)
	f.pub = pub
	t.Setenv("W365_TEST_CERT", string(pemData))
	p := newProvider(t, srv, Config{ClientID: clientID, CertificateEnv: "W365_TEST_CERT"}, nil)
	tok, err := p.Token(context.Background(), tenantA, PartnerCenterScope)
	require.NoError(t, err)
	assert.Equal(t, "at|"+tenantA+"|"+PartnerCenterScope+"|1", tok)
}

func TestCertificateCredentialFromFileAndSecretFromEnv(t *testing.T) {
	pemData, _ := selfSignedPEM(t)
	path := filepath.Join(t.TempDir(), "app.pem")
	require.NoError(t, os.WriteFile(path, pemData, 0o600))
	_, err := New(Config{ClientID: clientID, CertificateFile: path})
	require.NoError(t, err)

	t.Setenv("W365_TEST_SECRET", secret)
	_, err = New(Config{ClientID: clientID, SecretEnv: "W365_TEST_SECRET"})
	require.NoError(t, err)
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	cases := map[string]struct {
		cfg  Config
		want string
	}{
		"no client id":    {Config{SecretFile: empty}, "clientId is required"},
		"no credential":   {Config{ClientID: clientID}, "exactly one of"},
		"two credentials": {Config{ClientID: clientID, SecretFile: empty, SecretEnv: "X"}, "exactly one of"},
		"missing file":    {Config{ClientID: clientID, SecretFile: filepath.Join(dir, "nope")}, "client secret file"},
		"empty secret":    {Config{ClientID: clientID, SecretFile: empty}, "is empty"},
		"unset env":       {Config{ClientID: clientID, SecretEnv: "W365_TEST_UNSET_VARIABLE"}, "W365_TEST_UNSET_VARIABLE is not set"},
		"not a PEM":       {Config{ClientID: clientID, CertificateFile: notPEM}, "PEM certificate"},
		"http authority":  {Config{ClientID: clientID, SecretFile: secretFile(t), Authority: "http://login.example/organizations"}, "authority"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(c.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func oauthError(code int, name, desc string) string {
	b, _ := json.Marshal(map[string]any{
		"error":             name,
		"error_description": desc + "\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2026-05-01 10:00:00Z",
		"error_codes":       []int{code},
	})
	return string(b)
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		tenant     string
		fail       fakeFailure
		code       string
		status     int
		retryable  bool
		retryAfter time.Duration
		hint       []string
	}{
		{tenant: "consent-missing", fail: fakeFailure{status: 400, body: oauthError(65001, "invalid_grant", "AADSTS65001: The user or administrator has not consented to use the application.")},
			code: "AADSTS65001", status: 401, hint: []string{"grant admin consent for app Orchestrator in tenant consent-missing", "https://login.microsoftonline.com/consent-missing/adminconsent?client_id=" + clientID}},
		{tenant: "app-absent", fail: fakeFailure{status: 400, body: oauthError(700016, "unauthorized_client", "AADSTS700016: Application with identifier was not found in the directory.")},
			code: "AADSTS700016", status: 401, hint: []string{"grant admin consent for app Orchestrator in tenant app-absent"}},
		{tenant: "no-sp", fail: fakeFailure{status: 400, body: oauthError(7000229, "invalid_client", "AADSTS7000229: The client application is missing service principal in the tenant.")},
			code: "AADSTS7000229", status: 401, hint: []string{"grant admin consent"}},
		{tenant: "ghost", fail: fakeFailure{discovery: true, status: 400, body: oauthError(90002, "invalid_tenant", "AADSTS90002: Tenant 'ghost' not found.")},
			code: "AADSTS90002", status: 401, hint: []string{"tenant ghost does not exist", "check the tenant ID"}},
		{tenant: "bad-secret", fail: fakeFailure{status: 401, body: oauthError(7000215, "invalid_client", "AADSTS7000215: Invalid client secret provided.")},
			code: "AADSTS7000215", status: 401, hint: []string{"check the client secret file"}},
		{tenant: "bad-cert", fail: fakeFailure{status: 401, body: oauthError(700027, "invalid_client", "AADSTS700027: Client assertion failed signature validation.")},
			code: "AADSTS700027", status: 401, hint: []string{"rejected the certificate"}},
		{tenant: "other", fail: fakeFailure{status: 400, body: oauthError(50059, "invalid_request", "AADSTS50059: No tenant-identifying information found.")},
			code: "AADSTS50059", status: 400, hint: []string{"login.microsoftonline.com/error?code=50059"}},
		{tenant: "busy", fail: fakeFailure{status: 429, header: http.Header{"Retry-After": {"12"}}, body: oauthError(50196, "temporarily_unavailable", "AADSTS50196: The server terminated an operation because it encountered a client request loop.")},
			code: "AADSTS50196", status: 429, retryable: true, retryAfter: 12 * time.Second},
		{tenant: "sick", fail: fakeFailure{status: 500, body: `{"error":"server_error","error_description":"AADSTS90033: A transient error has occurred."}`},
			code: "AADSTS90033", status: 500, retryable: true},
	}
	f, srv := newFake(t)
	for _, c := range cases {
		f.fail[c.tenant] = c.fail
	}
	p := newProvider(t, srv, Config{ClientID: clientID, AppName: "Orchestrator", SecretFile: secretFile(t)}, nil)
	for _, c := range cases {
		t.Run(c.tenant, func(t *testing.T) {
			_, err := p.Token(context.Background(), c.tenant, GraphScope)
			require.Error(t, err)
			var e *msapi.Error
			require.True(t, errors.As(err, &e), "%T %v", err, err)
			assert.Equal(t, "login", e.Service)
			assert.Equal(t, c.code, e.Code)
			assert.Equal(t, c.status, e.Status)
			assert.Equal(t, c.retryable, e.Retryable())
			assert.Equal(t, c.retryAfter, e.RetryAfter)
			for _, h := range c.hint {
				assert.Contains(t, e.Hint, h)
			}
			assert.NotContains(t, e.Message, "Trace ID", "only the first line of the description")
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

func TestNetworkFailureIsRetryable(t *testing.T) {
	_, srv := newFake(t)
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, map[string]bool{"down": true})
	_, err := p.Token(context.Background(), "down", GraphScope)
	var e *msapi.Error
	require.True(t, errors.As(err, &e), "%T %v", err, err)
	assert.Equal(t, 0, e.Status)
	assert.True(t, e.Retryable())
	assert.Contains(t, e.Message, "connection refused")
}

func TestIssuerMismatchIsPermanent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":                 "https://elsewhere.example/x/v2.0",
			"token_endpoint":         "https://" + loginHost + "/x/oauth2/v2.0/token",
			"authorization_endpoint": "https://" + loginHost + "/x/oauth2/v2.0/authorize",
		})
	}))
	defer srv.Close()
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, nil)
	_, err := p.Token(context.Background(), tenantA, GraphScope)
	var e *msapi.Error
	require.True(t, errors.As(err, &e), "%T %v", err, err)
	assert.False(t, e.Retryable())
	assert.Contains(t, e.Hint, "issuer")
}

func TestTokenRefusesNonSpecificTenantOrScope(t *testing.T) {
	_, srv := newFake(t)
	p := newProvider(t, srv, Config{ClientID: clientID, SecretFile: secretFile(t)}, nil)
	for _, tenant := range []string{"", "common", "organizations"} {
		_, err := p.Token(context.Background(), tenant, GraphScope)
		var e *msapi.Error
		require.True(t, errors.As(err, &e))
		assert.True(t, e.Local)
		assert.False(t, e.Retryable())
	}
	_, err := p.Token(context.Background(), tenantA, "")
	require.Error(t, err)
}

func TestScopes(t *testing.T) {
	assert.Equal(t, "https://graph.microsoft.com/.default", GraphScope)
	assert.Equal(t, "https://api.partnercenter.microsoft.com/.default", PartnerCenterScope)
	assert.Equal(t, "https://contoso.crm.dynamics.com/.default", DataverseScope("https://contoso.crm.dynamics.com"))
	assert.Equal(t, "https://contoso.crm.dynamics.com/.default", DataverseScope("https://contoso.crm.dynamics.com/"))
}

// selfSignedPEM makes a certificate and its PKCS#8 key, PEM-encoded in one file.
func selfSignedPEM(t *testing.T) ([]byte, *rsa.PublicKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "work365-upgrade test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	return out, &key.PublicKey
}

// The orchestrator's own credential failing is told apart from a tenant that lacks consent.
func TestOrchestratorFault(t *testing.T) {
	for code, want := range map[string]bool{
		"AADSTS7000215": true, "AADSTS7000222": true, "AADSTS700027": true, "AADSTS7000112": true, "AADSTS700024": true,
		"AADSTS65001": false, "AADSTS700016": false, "AADSTS90002": false,
	} {
		err := fmt.Errorf("wrapped: %w", &msapi.Error{Service: "login", Code: code, Status: http.StatusUnauthorized})
		if got := OrchestratorFault(err); got != want {
			t.Errorf("OrchestratorFault(%s) = %t, want %t", code, got, want)
		}
	}
	if OrchestratorFault(&msapi.Error{Service: "graph", Code: "AADSTS7000222"}) {
		t.Error("a Graph error is not a sign-in fault")
	}
	if OrchestratorFault(errors.New("AADSTS7000222")) {
		t.Error("only *msapi.Error from the login service counts")
	}
}
