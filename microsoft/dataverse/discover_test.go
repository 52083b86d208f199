package dataverse

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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
	hc := routedTo(srv)
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

// routedTo is a client that sends every request, whatever its host, to srv.
func routedTo(srv *httptest.Server) *http.Client {
	target, _ := url.Parse(srv.URL)
	hc := srv.Client()
	base := hc.Transport
	hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Host = target.Host
		return base.RoundTrip(r)
	})
	return hc
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

// TestGuardRefusesHostsAndForeignTenantsBeforeAnyToken drives the real client: an organisation
// outside the allow-list is never contacted, and one that reports another tenant than the
// inventory's gets no token.
func TestGuardRefusesHostsAndForeignTenantsBeforeAnyToken(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		require.Empty(t, r.Header.Get("Authorization"), "no token is ever sent here")
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri=https://login.microsoftonline.com/66666666-6666-6666-6666-666666666666/oauth2/authorize`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	hc := routedTo(srv)
	var tokens atomic.Int32
	src := msapi.TokenSource(func(ctx context.Context, tenantID, scope string) (string, error) {
		tokens.Add(1)
		return "token", nil
	})
	allow := func(orgURL string) error {
		if !strings.HasSuffix(orgURL, ".crm.dynamics.com") {
			return fmt.Errorf("%s is not a Dataverse host allowed here", orgURL)
		}
		return nil
	}
	c := New(src, Guard(allow, DiscoverTenants(hc)), msapi.WithHTTPClient(hc))

	ctx := ExpectTenant(context.Background(), "11111111-1111-1111-1111-111111111111")
	_, err := c.WhoAmI(ctx, "https://attacker.example.com")
	require.ErrorContains(t, err, "orgUrl https://attacker.example.com is not a Dataverse host allowed here")
	require.Zero(t, requests.Load(), "a host off the allow-list is not even asked which tenant it is")

	_, err = c.WhoAmI(ctx, "https://contoso.crm.dynamics.com")
	require.ErrorContains(t, err, "the organisation https://contoso.crm.dynamics.com belongs to tenant 66666666-6666-6666-6666-666666666666, not to the inventory's tenantId 11111111-1111-1111-1111-111111111111")
	var me *msapi.Error
	require.ErrorAs(t, err, &me)
	require.False(t, me.Retryable(), "a person fixes the inventory")
	require.Equal(t, int32(1), requests.Load(), "only the anonymous discovery request")
	require.Zero(t, tokens.Load(), "no token was minted")
}
