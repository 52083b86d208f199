package dataverse

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
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

func TestDiscoverTenantsRefusesRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri=https://login.microsoftonline.com/66666666-6666-6666-6666-666666666666/oauth2/authorize`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer other.Close()
	org := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+APIPath+"?token=x", http.StatusFound)
	}))
	defer org.Close()

	hc := org.Client() // trusts both test servers' certificate
	resolve := DiscoverTenants(hc)
	_, err := resolve(context.Background(), org.URL)
	require.Error(t, err)
	var me *msapi.Error
	require.ErrorAs(t, err, &me)
	require.True(t, me.Local, "a wrong orgUrl is fixed by a person, not by retrying")
	require.Contains(t, err.Error(), "redirect to \""+other.URL+"\"")
	require.Contains(t, err.Error(), "set orgUrl to the Dataverse environment URL")
	require.NotContains(t, err.Error(), "token=x")
	require.Zero(t, elsewhere.Load(), "the redirect was not followed")
	require.Nil(t, hc.CheckRedirect, "the caller's client is not changed")
}

func TestDiscoverTenantsHasATimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	hc := srv.Client()
	hc.Timeout = 50 * time.Millisecond // the caller's timeout is kept; a client without one gets DiscoveryTimeout
	start := time.Now()
	_, err := DiscoverTenants(hc)(context.Background(), srv.URL)
	require.Less(t, time.Since(start), 5*time.Second)
	var me *msapi.Error
	require.ErrorAs(t, err, &me)
	require.True(t, me.Retryable())
	require.Contains(t, err.Error(), "Client.Timeout")
}
