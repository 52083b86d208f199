package desk

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// idp is a minimal OpenID provider over TLS: per-tenant discovery and one signing key.
type idp struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: key}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/keys" {
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
			return
		}
		tid, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/v2.0/.well-known/openid-configuration")
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.srv.URL + "/" + tid + "/v2.0", "jwks_uri": p.srv.URL + "/keys",
			"authorization_endpoint": p.srv.URL + "/" + tid + "/oauth2/v2.0/authorize", "id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEntraValidatesIDTokens(t *testing.T) {
	p := newIDP(t)
	e, err := NewEntra(p.srv.URL+"/organizations", "desk-app", "secret", EntraOptions{HTTPClient: p.srv.Client(), NoInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": p.srv.URL + "/" + contosoTID + "/v2.0", "aud": "desk-app", "tid": contosoTID, "oid": "oid-1",
			"preferred_username": "admin@contoso.onmicrosoft.com", "name": "Ada", "nonce": "n1", "groups": []string{opsGroup},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ver": "2.0"}
	}
	c, err := e.Validate(context.Background(), p.sign(t, p.key, good()), "n1")
	if err != nil {
		t.Fatal(err)
	}
	if c.TenantID != contosoTID || c.UPN != "admin@contoso.onmicrosoft.com" || c.ObjectID != "oid-1" || c.Name != "Ada" || len(c.Groups) != 1 {
		t.Fatalf("claims %+v", c)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, bad := range map[string]struct {
		mutate func(map[string]any)
		key    *rsa.PrivateKey
		nonce  string
		want   string
	}{
		"another audience":         {func(m map[string]any) { m["aud"] = "another-app" }, p.key, "n1", "audience"},
		"another nonce":            {func(map[string]any) {}, p.key, "n2", "nonce"},
		"expired":                  {func(m map[string]any) { m["exp"] = now.Add(-time.Hour).Unix() }, p.key, "n1", "expired"},
		"signed by another key":    {func(map[string]any) {}, other, "n1", "signature"},
		"issuer of another tenant": {func(m map[string]any) { m["iss"] = p.srv.URL + "/" + fabrikamTID + "/v2.0" }, p.key, "n1", "different provider"},
		"tid of another tenant":    {func(m map[string]any) { m["tid"] = fabrikamTID }, p.key, "n1", "different provider"},
		"no tenant":                {func(m map[string]any) { delete(m, "tid") }, p.key, "n1", "names no tenant"},
		"groups overage is remembered": {func(m map[string]any) {
			m["_claim_names"] = map[string]string{"groups": "src1"}
			m["_claim_sources"] = map[string]any{"src1": map[string]string{"endpoint": "https://graph.microsoft.com/v1.0/users/oid-1/getMemberObjects"}}
		}, p.key, "n1", ""},
	} {
		m := good()
		bad.mutate(m)
		c, err := e.Validate(context.Background(), p.sign(t, bad.key, m), bad.nonce)
		if bad.want == "" {
			if err != nil || !c.GroupsOverage {
				t.Errorf("%s: %v %+v", name, err, c)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err %v, want one mentioning %q", name, err, bad.want)
		}
	}
}
