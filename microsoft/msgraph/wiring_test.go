package msgraph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
)

// TestRehearsalWiring runs the production wiring (msauth → msgraph with real hosts) against
// local servers through one routing http.Client, as a rehearsal against a simulator does.
func TestRehearsalWiring(t *testing.T) {
	const tenant = "aaaaaaaa-0000-0000-0000-000000000001"
	var tokenRequests atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := "https://login.microsoftonline.com/" + r.PathValue("tenant")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": base + "/v2.0", "token_endpoint": base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		})
	})
	mux.HandleFunc("POST login.microsoftonline.com/{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3600, "access_token": "graph-at-" + r.PathValue("tenant")})
	})
	mux.HandleFunc("GET graph.microsoft.com/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "Bearer graph-at-"+tenant, r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"isEnabled":true}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	route := &http.Client{Transport: routeFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Host = r.URL.Host // the mux matches on the original Microsoft host
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		return http.DefaultTransport.RoundTrip(r)
	})}

	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s"), 0o600))
	tp, err := msauth.New(msauth.Config{ClientID: "11111111-2222-3333-4444-555555555555", SecretFile: secret},
		msauth.WithHTTPClient(route), msauth.WithInstanceDiscovery(false))
	require.NoError(t, err)
	g := msgraph.New(tp.Token, msapi.WithHTTPClient(route))

	for range 3 {
		sd, err := g.GetSecurityDefaults(context.Background(), tenant)
		require.NoError(t, err)
		assert.True(t, sd.IsEnabled)
	}
	assert.EqualValues(t, 1, tokenRequests.Load(), "MSAL's cache serves the later calls")
}

type routeFunc func(*http.Request) (*http.Response, error)

func (f routeFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
