package dataverse

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiscoverTenantsFromBearerChallenge(t *testing.T) {
	calls := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		require.Equal(t, "/api/data/v9.2/", r.URL.Path)
		require.Empty(t, r.Header.Get("Authorization"))
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri=https://login.microsoftonline.com/2f8c1f8e-1111-4c3d-9e7a-123456789abc/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	hc := srv.Client()
	base := hc.Transport
	hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Host = target.Host
		return base.RoundTrip(r)
	})
	resolve := DiscoverTenants(hc)
	for i := 0; i < 2; i++ {
		tenant, err := resolve(context.Background(), "https://Contoso.crm.dynamics.com/")
		require.NoError(t, err)
		require.Equal(t, "2f8c1f8e-1111-4c3d-9e7a-123456789abc", tenant)
	}
	require.Equal(t, 1, calls, "remembered per organisation")
	_, err := resolve(context.Background(), "http://contoso")
	require.Error(t, err)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
