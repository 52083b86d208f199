// Package integration runs upgrades end to end: a real Temporal server (embedded), the
// production worker wiring with real MSAL and HTTP, the simulated Microsoft cloud and the human
// autopilot.
package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

const speed = 60

func startStack(t *testing.T, scenarioPath string) *stack.Stack {
	t.Helper()
	return startStackWith(t, scenarioPath, stack.Options{Speed: speed})
}

// startStackWith starts a rehearsal of the scenario file with opts (its Scenario is set here).
func startStackWith(t *testing.T, scenarioPath string, opts stack.Options) *stack.Stack {
	t.Helper()
	scn, err := sim.LoadScenario(scenarioPath)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.Scenario = scn
	s, err := stack.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s
}

func waitAll(t *testing.T, s *stack.Stack, ids []string, limit time.Duration) map[string]workflows.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out := map[string]workflows.Result{}
	for _, id := range ids {
		r, err := s.Ops.Result(ctx, id)
		require.NoError(t, err, "upgrade %s", id)
		out[id] = r
	}
	return out
}

func TestFleetOfTenantsEndToEnd(t *testing.T) {
	s := startStack(t, "testdata/scenario.yaml")
	ctx := context.Background()
	inv := s.Inventory("integration")
	launched, err := s.Ops.Launch(ctx, inv)
	require.NoError(t, err)
	var ids []string
	for _, l := range launched {
		require.Equal(t, "started", l.State)
		ids = append(ids, l.WorkflowID)
	}
	results := waitAll(t, s, ids, 8*time.Minute)

	byName := map[string]workflows.Result{}
	for _, r := range results {
		byName[r.TenantName] = r
		require.Equal(t, workflows.OutcomeUpgraded, r.Outcome, "%s: %s %v", r.TenantName, r.Error, r.Warnings)
		require.Equal(t, stack.TargetVersion, r.ToVersion)
	}
	require.Equal(t, "2.1.0.3", byName["Contoso from 2.1"].FromVersion)
	require.Equal(t, "", byName["Northwind new install"].FromVersion)
	require.Equal(t, 2, byName["Woodgrove link expires once"].LinkRounds, "the first link expired")
	require.Len(t, byName["Tailspin direct"].PartnerCenters, 2)
	for _, pc := range byName["Tailspin direct"].PartnerCenters {
		require.True(t, pc.Verified, "%s: %s", pc.Name, pc.Detail)
	}
	kinds := func(r workflows.Result) []workflows.TaskKind {
		var out []workflows.TaskKind
		for _, c := range r.Confirmations {
			out = append(out, c.Kind)
		}
		return out
	}
	require.Contains(t, kinds(byName["Northwind new install"]), workflows.TaskSubmitRegistration)
	require.Contains(t, kinds(byName["Fabrikam 2.0 with portal"]), workflows.TaskRegisterMFAService)

	// The simulator saw each change exactly once.
	for _, e := range inv.Tenants {
		c := s.Cloud.TenantCounters(e.Tenant.TenantID)
		wantHolding, wantImports := 1, 1
		switch e.Tenant.DisplayName {
		case "Northwind new install":
			wantHolding = 0 // installed, not staged
		case "Fabrikam 2.0 with portal":
			wantImports = 2 // Work 365 staged + the portal reinstalled
		}
		require.Equal(t, wantHolding, c.HoldingImports, "%s: staged imports", e.Tenant.DisplayName)
		require.Equal(t, wantImports, c.Imports, "%s: exactly one import of each solution", e.Tenant.DisplayName)
		st, ok := s.Cloud.State(e.Tenant.TenantID)
		require.True(t, ok)
		require.False(t, st.Frozen, "%s left unfrozen", e.Tenant.DisplayName)
		require.Equal(t, stack.TargetVersion, st.Work365Version)
	}
	fab := s.Cloud.TenantCounters(inv.Tenants[1].Tenant.TenantID)
	require.Equal(t, 1, fab.Uninstalls, "portal uninstalled once")
	require.Equal(t, 1, fab.PortalInstalls, "portal reinstalled once")
	st, _ := s.Cloud.State(inv.Tenants[1].Tenant.TenantID)
	require.Equal(t, "2.5.0.0", st.PortalVersion, "latest portal reinstalled")

	// A worker restart registers the search attributes again: idempotent.
	require.NoError(t, searchattr.Register(ctx, s.Client, s.Namespace()))

	// Launching the same inventory again starts nothing.
	again, err := s.Ops.Launch(ctx, inv)
	require.NoError(t, err)
	for _, l := range again {
		require.Equal(t, "already finished", l.State)
	}

	// No secret in any history: client secret, bearer tokens, link tokens, licence keys.
	secrets := []string{s.Cloud.Scenario().Orchestrator.ClientSecret, "Bearer ", "client_secret", "linkToken"}
	histories := allHistories(t, s)
	require.GreaterOrEqual(t, len(histories), len(ids)+2, "upgrades and Partner Center children")
	for id, h := range histories {
		require.True(t, strings.Contains(h, "json/plain"), "payloads of %s decoded for the search", id)
		for _, secret := range secrets {
			require.False(t, strings.Contains(h, secret), "history of %s contains %q", id, secret)
		}
		require.False(t, jwtRE.MatchString(h), "history of %s contains a bearer token", id)
	}
	if dir := os.Getenv("RECORD_HISTORIES"); dir != "" {
		recordHistories(t, s, dir)
	}
}

// recordHistories saves every history as JSON for the replay tests (workflows/testdata):
// RECORD_HISTORIES=$PWD/workflows/testdata/histories go test ./integration -run EndToEnd
func recordHistories(t *testing.T, s *stack.Stack, dir string) {
	ctx := context.Background()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000})
	require.NoError(t, err)
	for _, e := range resp.GetExecutions() {
		it := s.Client.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		h := &historypb.History{}
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			h.Events = append(h.Events, ev)
		}
		j, err := protojson.MarshalOptions{Indent: " "}.Marshal(h)
		require.NoError(t, err)
		name := strings.NewReplacer("/", "_", ".", "-").Replace(e.GetExecution().GetWorkflowId()) + ".json"
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.GetType().GetName()+"_"+name), j, 0o644))
	}
}

func allHistories(t *testing.T, s *stack.Stack) map[string]string {
	t.Helper()
	ctx := context.Background()
	resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000})
	require.NoError(t, err)
	out := map[string]string{}
	for _, e := range resp.GetExecutions() {
		it := s.Client.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var b strings.Builder
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			j, err := protojson.Marshal(ev)
			require.NoError(t, err)
			var generic any
			require.NoError(t, json.Unmarshal(j, &generic))
			b.WriteString(searchable(generic))
		}
		out[e.GetExecution().GetWorkflowId()+"/"+e.GetExecution().GetRunId()] = b.String()
	}
	return out
}
