package dataverse

import (
	"context"
	"fmt"
	"strings"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

type expectedTenantKey struct{}

// ExpectTenant returns ctx carrying the tenant the inventory names for the organisation the
// calls made with it address; a Guard resolver refuses an organisation that reports another.
func ExpectTenant(ctx context.Context, tenantID string) context.Context {
	return context.WithValue(ctx, expectedTenantKey{}, tenantID)
}

// ExpectedTenant is the tenant ExpectTenant put in ctx, or "".
func ExpectedTenant(ctx context.Context) string {
	t, _ := ctx.Value(expectedTenantKey{}).(string)
	return t
}

// Guard wraps a resolver with the two checks that come before any token is minted for an
// organisation: allow (the worker's allow-list of Dataverse hosts) must accept its URL — checked
// before r is asked, so not even the anonymous discovery request reaches a host that is not
// Dataverse's — and the tenant the organisation reports must be the one ExpectTenant put in
// the context, so a token of one customer is never sent to another customer's organisation.
func Guard(allow func(orgURL string) error, r TenantResolver) TenantResolver {
	return func(ctx context.Context, orgURL string) (string, error) {
		const op = "check the organisation"
		if allow != nil {
			if err := allow(orgURL); err != nil {
				return "", msapi.LocalError("dataverse", op, "orgUrl "+err.Error(),
					"fix orgUrl in the inventory, or allow the organisation's cloud in the worker config (dataverse.clouds)")
			}
		}
		tenant, err := r(ctx, orgURL)
		if err != nil {
			return "", err
		}
		if want := ExpectedTenant(ctx); want != "" && !strings.EqualFold(want, tenant) {
			return "", msapi.LocalError("dataverse", op,
				fmt.Sprintf("the organisation %s belongs to tenant %s, not to the inventory's tenantId %s", orgURL, tenant, want),
				"fix orgUrl or tenantId in the inventory: nothing was sent to the organisation")
		}
		return tenant, nil
	}
}
