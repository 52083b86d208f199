package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/ops/desk"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// The people confirm every task through the task desk, as in production: each notification
// carries a desk link, they sign in with Microsoft (the simulated Entra ID, real MSAL and
// go-oidc in the desk) and the desk sends the Update with their verified identity.
func TestPeopleConfirmThroughTheDesk(t *testing.T) {
	s := startStackWith(t, "testdata/desk.yaml", stack.Options{Speed: speed, DeskConfirms: true})
	require.NotEmpty(t, s.DeskURL)
	ctx := context.Background()
	inv := s.Inventory("desk")
	launched, err := s.Ops.Launch(ctx, inv)
	require.NoError(t, err)
	var ids []string
	for _, l := range launched {
		ids = append(ids, l.WorkflowID)
	}
	results := waitAll(t, s, ids, 8*time.Minute)

	scn := s.Cloud.Scenario()
	tenantOf := map[string]string{} // tenant name → tenant ID
	for _, tn := range scn.Tenants {
		tenantOf[tn.Name] = strings.ToLower(tn.TenantID)
	}
	audiences := map[workflows.Audience]int{}
	check := func(tenant string, cs []workflows.Confirmation, wantTenant string) {
		for _, c := range cs {
			require.NotNil(t, c.Identity, "%s: %s %s has no identity", tenant, c.Kind, c.TaskID)
			id := c.Identity
			require.True(t, id.Verified, "%s: %s not verified: %+v", tenant, c.TaskID, id)
			require.Equal(t, "entra-id-token", id.Via)
			require.Equal(t, desk.ClientName, id.Client)
			require.NotEmpty(t, id.ObjectID)
			require.Contains(t, c.By, id.UPN, "by is the verified name")
			switch c.Audience {
			case workflows.Operator:
				require.Equal(t, strings.ToLower(scn.Partner.TenantID), id.TenantID, "operators sign in to the partner's tenant")
				require.Equal(t, strings.ToLower(scn.Partner.Operators[0].UPN), strings.ToLower(id.UPN))
			default:
				require.Equal(t, wantTenant, id.TenantID, "%s: %s confirmed from another tenant", tenant, c.TaskID)
			}
			audiences[c.Audience]++
		}
	}
	for _, r := range results {
		require.Equal(t, workflows.OutcomeUpgraded, r.Outcome, "%s: %s %v", r.TenantName, r.Error, r.Warnings)
		require.NotEmpty(t, r.Confirmations, r.TenantName)
		check(r.TenantName, r.Confirmations, tenantOf[r.TenantName])
		for _, pc := range r.PartnerCenters {
			require.True(t, pc.Verified, "%s: %s", pc.Name, pc.Detail)
			want := tenantOf[r.TenantName]
			for _, tn := range scn.Tenants {
				for _, c := range tn.PartnerCenters {
					if c.Name == pc.Name {
						want = strings.ToLower(c.TenantID)
					}
				}
			}
			check(r.TenantName+"/"+pc.Name, pc.Confirmations, want)
		}
	}
	for _, a := range []workflows.Audience{workflows.GlobalAdmin, workflows.ServiceAccount, workflows.PartnerAdmin, workflows.Operator} {
		require.Positive(t, audiences[a], "no %s confirmed through the desk", a)
	}
	for _, e := range s.Autopilot.Log() {
		if e.Confirmed {
			require.Equal(t, "desk", e.Via, "%s %s confirmed around the desk", e.WorkflowID, e.TaskID)
		}
	}
	t.Logf("confirmed through the desk: %v", audiences)

	// Neither a desk link's token nor the link key is in any history.
	key, err := os.ReadFile(s.DeskLinkKeyFile)
	require.NoError(t, err)
	for id, h := range allHistories(t, s) {
		require.False(t, strings.Contains(h, s.DeskURL), "history of %s contains a desk link", id)
		require.False(t, strings.Contains(h, "/t/ey"), "history of %s contains a desk link token", id)
		require.False(t, strings.Contains(h, strings.TrimSpace(string(key))), "history of %s contains the link key", id)
		require.False(t, strings.Contains(h, scn.Desk.ClientSecret), "history of %s contains the desk's client secret", id)
		require.False(t, jwtRE.MatchString(h), "history of %s contains a token", id)
	}
}
