package partnercenter

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
)

const partnerTenant = "cccccccc-0000-0000-0000-000000000003"

func newClient(t *testing.T, h http.HandlerFunc) *Client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tokens := func(_ context.Context, tenantID, scope string) (string, error) {
		assert.Equal(t, partnerTenant, tenantID)
		assert.Equal(t, msauth.PartnerCenterScope, scope)
		return "pc-token", nil
	}
	return New(tokens, msapi.WithBaseURL(srv.URL+"/"))
}

func TestGetOrganizationProfile(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Equal(t, "/v1/profiles/organization", r.URL.Path)
		assert.Empty(t, r.URL.RawQuery)
		assert.Equal(t, "Bearer pc-token", r.Header.Get("Authorization"))
		assert.Equal(t, "application/json", r.Header.Get("Accept"))
		// Partner Center answers with a UTF-8 byte order mark.
		_, _ = io.WriteString(w, "\xef\xbb\xbf"+`{"id":"p1","companyName":"Fabrikam CSP","tenantId":"`+partnerTenant+`",
			"attributes":{"objectType":"OrganizationProfile"}}`)
	})
	p, err := c.GetOrganizationProfile(context.Background(), partnerTenant)
	require.NoError(t, err)
	assert.Equal(t, OrganizationProfile{ID: "p1", CompanyName: "Fabrikam CSP", TenantID: partnerTenant}, p)
}

func apiErr(t *testing.T, err error) *msapi.Error {
	t.Helper()
	var e *msapi.Error
	require.True(t, errors.As(err, &e), "%T %v", err, err)
	assert.Equal(t, "partnercenter", e.Service)
	return e
}

func TestDenied(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":"900420","description":"Unauthorized: Invalid Authorization header","errorName":"Unauthorized"}`)
	})
	_, err := c.GetOrganizationProfile(context.Background(), partnerTenant)
	e := apiErr(t, err)
	assert.False(t, e.Retryable())
	assert.Equal(t, "900420", e.Code)
	assert.Contains(t, e.Message, "Invalid Authorization header")
	assert.Contains(t, e.Hint, "App+User")
}

func TestThrottled(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "20")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // the 20s wait does not fit: back to Temporal at once
	defer cancel()
	_, err := c.GetOrganizationProfile(ctx, partnerTenant)
	e := apiErr(t, err)
	assert.True(t, e.Retryable())
	assert.Equal(t, 20*time.Second, e.RetryAfter)
}

func TestDefaultBaseURL(t *testing.T) {
	var seen string
	hc := &http.Client{Transport: rt(func(r *http.Request) (*http.Response, error) {
		seen = r.URL.String()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(io.MultiReader()), Request: r}, nil
	})}
	c := New(func(context.Context, string, string) (string, error) { return "t", nil }, msapi.WithHTTPClient(hc))
	_, _ = c.GetOrganizationProfile(context.Background(), partnerTenant)
	assert.Equal(t, "https://api.partnercenter.microsoft.com/v1/profiles/organization", seen)
}

type rt func(*http.Request) (*http.Response, error)

func (f rt) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
