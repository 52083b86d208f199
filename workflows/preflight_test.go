package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/csp-ops/work365-upgrade/activities"
)

// The Preflight reports every tenant in order, at most Concurrency at a time, and a tenant
// whose checks keep failing is not ready with the error instead of failing the whole run.
func TestPreflightReportsEveryTenant(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Preflight)
	env.RegisterActivity(&activities.Preflight{})
	var mu sync.Mutex
	running, most := 0, 0
	env.OnActivity(pre.CheckReadiness, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReadinessInput) (activities.Readiness, error) {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			defer func() { mu.Lock(); running--; mu.Unlock() }()
			if in.TenantID == "t3" {
				return activities.Readiness{}, errors.New("graph: 503 Service Unavailable")
			}
			return activities.Readiness{TenantID: in.TenantID, DisplayName: in.DisplayName, Ready: in.TenantID != "t2", Path: "new install"}, nil
		})
	in := PreflightInput{Concurrency: 2}
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5"} {
		in.Tenants = append(in.Tenants, activities.ReadinessInput{TenantID: id, DisplayName: "Tenant " + id})
	}
	env.ExecuteWorkflow(Preflight, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res PreflightResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Len(t, res.Tenants, 5)
	for i, id := range []string{"t1", "t2", "t3", "t4", "t5"} {
		require.Equal(t, id, res.Tenants[i].TenantID)
	}
	require.True(t, res.Tenants[0].Ready)
	require.False(t, res.Tenants[1].Ready)
	require.False(t, res.Tenants[2].Ready)
	require.Equal(t, PreflightCheckError, res.Tenants[2].Checks[0].ID)
	require.Contains(t, res.Tenants[2].Checks[0].Detail, "503")
	require.LessOrEqual(t, most, 2)
}
