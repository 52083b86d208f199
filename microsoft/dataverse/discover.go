package dataverse

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

// challengeRE finds the tenant in the bearer challenge Dataverse answers an anonymous request
// with: WWW-Authenticate: Bearer authorization_uri=https://login.microsoftonline.com/{tenant}/oauth2/authorize, resource_id=…
var challengeRE = regexp.MustCompile(`authorization_uri="?https://[^/]+/([0-9a-fA-F-]{36})/`)

// DiscoveryTimeout bounds one discovery request when the given client has no timeout of its own.
const DiscoveryTimeout = 30 * time.Second

// DiscoverTenants resolves an organisation's tenant the way Microsoft documents for Dataverse
// clients: an anonymous request to the Web API is refused with a bearer challenge naming the
// tenant's authority. Answers are remembered per organisation.
//
// Requests go through hc (nil: a new client), with DiscoveryTimeout when hc has no timeout,
// and never follow a redirect: the challenge must come from the organisation named in the
// inventory, not from wherever it points (hc itself is not changed).
func DiscoverTenants(hc *http.Client) TenantResolver {
	client := http.Client{}
	if hc != nil {
		client = *hc
	}
	if client.Timeout <= 0 {
		client.Timeout = DiscoveryTimeout
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
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
		op := "discover the tenant of " + org
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, org+APIPath, nil)
		if err != nil {
			return "", msapi.LocalError("dataverse", op, "build request: "+err.Error(), "")
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", &msapi.Error{Service: "dataverse", Operation: op, Method: http.MethodGet, Path: APIPath, Message: err.Error(),
				Hint: "the organisation did not answer (network, DNS or timeout); it is retried"}
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return "", msapi.LocalError("dataverse", op,
				fmt.Sprintf("HTTP %d redirect to %q instead of a bearer challenge; redirects are not followed", resp.StatusCode, redirectTarget(resp)),
				"set orgUrl to the Dataverse environment URL itself (Power Platform admin center > Environment > Environment URL)")
		}
		m := challengeRE.FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
		if resp.StatusCode != http.StatusUnauthorized || m == nil {
			e := &msapi.Error{Service: "dataverse", Operation: op, Method: http.MethodGet, Path: APIPath, Status: resp.StatusCode,
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

// redirectTarget names where a redirect points, scheme and host only (a query could carry
// anything).
func redirectTarget(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return "(no Location)"
	}
	return loc.Scheme + "://" + loc.Host
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
