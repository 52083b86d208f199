package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// TestPreflightThenUpgrade is the preflight rehearsal (integration/testdata/preflight.yaml) on
// a real server, through real MSAL and HTTP: the preflight names each tenant's problem with
// its fix and starts nothing; once the simulated cloud is fixed the way an administrator
// would, the launch with a passing preflight upgrades all three, one import each.
func TestPreflightThenUpgrade(t *testing.T) {
	s := startStack(t, "testdata/preflight.yaml")
	ctx := context.Background()
	inv := s.Inventory("preflight")
	const alpine, bayside, cobalt = "2c0d3b63-6b2f-4e66-8a4f-000000000001", "2c0d3b63-6b2f-4e66-8a4f-000000000002", "2c0d3b63-6b2f-4e66-8a4f-000000000003"

	pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	rep, err := s.Ops.RequireReady(pctx, inv)
	require.ErrorIs(t, err, ops.ErrNotReady)
	require.False(t, rep.Ready)
	require.Len(t, rep.Tenants, 3)
	byID := map[string]activities.Readiness{}
	for _, r := range rep.Tenants {
		byID[r.TenantID] = r
		require.False(t, r.Ready, "%s is not ready", r.DisplayName)
		wantPath := "upgrade from 2.3.0.0"
		if r.TenantID == bayside {
			wantPath = "unknown" // without an application user, Dynamics cannot be read
		}
		require.Equal(t, wantPath, r.Path, r.DisplayName)
	}
	failed := func(tenant, check string) activities.ReadinessCheck {
		t.Helper()
		for _, c := range byID[tenant].Failed() {
			if c.ID == check {
				return c
			}
		}
		t.Fatalf("%s: %s did not fail: %+v", byID[tenant].DisplayName, check, byID[tenant].Checks)
		return activities.ReadinessCheck{}
	}
	c := failed(alpine, activities.ReadyOrchestratorPermissions)
	require.Contains(t, c.Detail, "lacks Directory.Read.All")
	require.Contains(t, c.Fix, "Entra admin center › Applications › App registrations › CSP Work 365 Upgrade Orchestrator › API permissions › add Directory.Read.All (Application) and grant admin consent")
	c = failed(bayside, activities.ReadyDataverseAppUser)
	require.Contains(t, c.Fix, "Power Platform admin center › Environments › bayside.crm4.dynamics.com › Settings › Users + permissions › Application users › New app user")
	failedIDs := func(cs []activities.ReadinessCheck) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID+":"+c.Status)
		}
		return out
	}
	require.Equal(t, []string{"dataverse-application-user:fail", "work365-version:skip"}, failedIDs(byID[bayside].Failed()))
	c = failed(cobalt, activities.ReadyGlobalAdminRole)
	require.Contains(t, c.Detail, "only through group")
	require.Contains(t, c.Fix, "Entra admin center › Roles & admins › Global Administrator › Add assignments › admin@cobalt.onmicrosoft.com")
	require.Equal(t, []string{"global-admin-role:fail"}, failedIDs(byID[cobalt].Failed()))

	// Nothing was started but the read-only preflight, and nothing changed in the tenants.
	kinds := executionsByType(t, s)
	require.Empty(t, kinds[workflows.TenantUpgradeWorkflow], "no TenantUpgrade workflow exists")
	require.Len(t, kinds[workflows.PreflightWorkflow], 1, "the preflight ran as one read-only workflow")
	for _, id := range []string{alpine, bayside, cobalt} {
		cnt := s.Cloud.TenantCounters(id)
		require.Zero(t, cnt.Imports, "no import in %s", byID[id].DisplayName)
		st, ok := s.Cloud.State(id)
		require.True(t, ok)
		require.False(t, st.Frozen)
	}

	// The administrators fix what the preflight named.
	require.NoError(t, s.Cloud.GrantOrchestratorPermission(alpine, "Directory.Read.All"))
	require.NoError(t, s.Cloud.CreateApplicationUser(bayside))
	require.NoError(t, s.Cloud.AssignGlobalAdminDirectly(cobalt, "admin@cobalt.onmicrosoft.com"))

	// launch --preflight: the preflight passes, then the upgrades start.
	rep, err = s.Ops.RequireReady(pctx, inv)
	require.NoError(t, err, "%+v", rep.NotReady())
	require.True(t, rep.Ready)
	launched, err := s.Ops.Launch(ctx, inv)
	require.NoError(t, err)
	var ids []string
	for _, l := range launched {
		require.Equal(t, "started", l.State)
		ids = append(ids, l.WorkflowID)
	}
	for _, r := range waitAll(t, s, ids, 8*time.Minute) {
		require.Equal(t, workflows.OutcomeUpgraded, r.Outcome, "%s: %s %v", r.TenantName, r.Error, r.Warnings)
	}
	for _, id := range []string{alpine, bayside, cobalt} {
		cnt := s.Cloud.TenantCounters(id)
		require.Equal(t, 1, cnt.Imports, "exactly one import in %s", byID[id].DisplayName)
		st, _ := s.Cloud.State(id)
		require.Equal(t, stack.TargetVersion, st.Work365Version)
		require.False(t, st.Frozen)
	}

	// The preflight's histories hold no token and no secret.
	secret := s.Cloud.Scenario().Orchestrator.ClientSecret
	preflights := 0
	for id, h := range allHistories(t, s) {
		if !strings.HasPrefix(id, "work365-preflight/") {
			continue
		}
		preflights++
		require.Contains(t, h, "orchestrator-permissions", "the history holds the report")
		require.NotContains(t, h, secret)
		require.NotContains(t, h, "Bearer ")
		require.False(t, jwtRE.MatchString(h), "history of %s contains a bearer token", id)
	}
	require.Equal(t, 2, preflights)
}

// executionsByType lists every workflow execution's ID by workflow type.
func executionsByType(t *testing.T, s *stack.Stack) map[string][]string {
	t.Helper()
	resp, err := s.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000})
	require.NoError(t, err)
	out := map[string][]string{}
	for _, e := range resp.GetExecutions() {
		out[e.GetType().GetName()] = append(out[e.GetType().GetName()], e.GetExecution().GetWorkflowId())
	}
	return out
}
