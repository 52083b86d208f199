package dataverse

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sync"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

// challengeRE finds the tenant in the bearer challenge Dataverse answers an anonymous request
// with: WWW-Authenticate: Bearer authorization_uri=https://login.microsoftonline.com/{tenant}/oauth2/authorize, resource_id=…
var challengeRE = regexp.MustCompile(`authorization_uri="?https://[^/]+/([0-9a-fA-F-]{36})/`)

// DiscoverTenants resolves an organisation's tenant the way Microsoft documents for Dataverse
// clients: an anonymous request to the Web API is refused with a bearer challenge naming the
// tenant's authority. Answers are remembered per organisation.
func DiscoverTenants(hc *http.Client) TenantResolver {
	if hc == nil {
		hc = http.DefaultClient
	}
	var mu sync.Mutex
	known := map[string]string{}
	return func(ctx context.Context, orgURL string) (string, error) {
		org, err := normalizeOrgURL(orgURL)
		if err != nil {
			return "", err
		}
		mu.Lock()
		t, ok := known[org]
		mu.Unlock()
		if ok {
			return t, nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, org+APIPath, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", &msapi.Error{Service: "dataverse", Operation: "discover the tenant of " + org, Method: http.MethodGet, Path: APIPath, Message: err.Error()}
		}
		resp.Body.Close()
		m := challengeRE.FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
		if resp.StatusCode != http.StatusUnauthorized || m == nil {
			e := &msapi.Error{Service: "dataverse", Operation: "discover the tenant of " + org, Method: http.MethodGet, Path: APIPath, Status: resp.StatusCode,
				Message: "no bearer challenge naming the tenant", Hint: "check that orgUrl " + org + " is a Dataverse environment URL"}
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				e.Local = true
			}
			return "", e
		}
		mu.Lock()
		known[org] = m[1]
		mu.Unlock()
		return m[1], nil
	}
}

// FirstOf tries resolvers in order and returns the first answer.
func FirstOf(resolvers ...TenantResolver) TenantResolver {
	return func(ctx context.Context, orgURL string) (string, error) {
		var errs []error
		for _, r := range resolvers {
			t, err := r(ctx, orgURL)
			if err == nil {
				return t, nil
			}
			errs = append(errs, err)
		}
		return "", fmt.Errorf("find the tenant of %s: %v", orgURL, errs)
	}
}
