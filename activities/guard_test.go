package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
)

// expecting records which tenant each Dataverse call was told to expect (dataverse.Guard refuses
// an organisation reporting another one before a token is minted).
type expecting struct {
	*fakes
	seen []string
}

func (e *expecting) WhoAmI(ctx context.Context, org string) (dataverse.WhoAmIResponse, error) {
	e.seen = append(e.seen, dataverse.ExpectedTenant(ctx))
	return e.fakes.WhoAmI(ctx, org)
}

func (e *expecting) GetSolution(ctx context.Context, org, name string) (*dataverse.Solution, error) {
	e.seen = append(e.seen, dataverse.ExpectedTenant(ctx))
	return e.fakes.GetSolution(ctx, org, name)
}

func (e *expecting) FindSystemUser(ctx context.Context, org, upn string) (*dataverse.SystemUser, error) {
	e.seen = append(e.seen, dataverse.ExpectedTenant(ctx))
	return e.fakes.FindSystemUser(ctx, org, upn)
}

func TestDataverseCallsExpectTheInventorysTenant(t *testing.T) {
	f := newFakes()
	e := &expecting{fakes: f}
	a := newActs(f)
	a.Dataverse = e
	_, err := a.Discover(context.Background(), ref)
	require.NoError(t, err)
	_, _ = a.CheckServiceRole(context.Background(), PrerequisiteInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service})
	_, _ = a.FinalCheck(context.Background(), UpgradeCheck{Tenant: ref, TargetVersion: "2.5.0.1"})
	require.NotEmpty(t, e.seen)
	for _, s := range e.seen {
		require.Equal(t, tenant, s, "every call carries the inventory's tenantId")
	}
}
