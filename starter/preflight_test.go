package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// fakeTemporal answers the starter's workflow starts: Preflight runs return the readiness
// the test sets per tenant; any other call panics (the embedded nil client), so a test that
// passes also shows nothing else was called. started records every start.
type fakeTemporal struct {
	client.Client
	ready   map[string]bool // tenant ID → ready
	started []string        // workflow types
}

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	name := fmt.Sprint(wf)
	f.started = append(f.started, name)
	if name != workflows.PreflightWorkflow {
		return nil, errors.New("fake: only the preflight may start in this test, not " + name)
	}
	in := args[0].(workflows.PreflightInput)
	var res workflows.PreflightResult
	for _, t := range in.Tenants {
		r := activities.Readiness{TenantID: t.TenantID, DisplayName: t.DisplayName, Ready: f.ready[t.TenantID], Path: "upgrade from 2.1.0.3",
			Checks: []activities.ReadinessCheck{{ID: activities.ReadyOrchestratorConsent, Status: activities.ReadyPass}}}
		if !r.Ready {
			r.Checks = append(r.Checks, activities.ReadinessCheck{ID: activities.ReadyOrchestratorPermissions, Status: activities.ReadyFail,
				Detail: "the orchestrator's Microsoft Graph token in this tenant lacks Directory.Read.All",
				Fix:    "Entra admin center › Applications › App registrations › orchestrator › API permissions › add Directory.Read.All (Application) and grant admin consent"})
		}
		res.Tenants = append(res.Tenants, r)
	}
	return fakeRun{id: o.ID, res: res}, nil
}

type fakeRun struct {
	id  string
	res workflows.PreflightResult
}

func (r fakeRun) GetID() string    { return r.id }
func (r fakeRun) GetRunID() string { return "run-" + r.id }
func (r fakeRun) GetFirstExecutionRunID() string {
	return r.GetRunID()
}
func (r fakeRun) Get(_ context.Context, v any) error {
	*(v.(*workflows.PreflightResult)) = r.res
	return nil
}
func (r fakeRun) GetWithOptions(ctx context.Context, v any, _ client.WorkflowRunGetOptions) error {
	return r.Get(ctx, v)
}

const inventoryYAML = `fleet: pf
defaults:
  timeZone: UTC
  window: {start: "2026-12-05T22:00", length: 6h}
  targetVersion: 2.5.0.1
  solutionPackage: work365/Work365_2_5_0_1_managed.zip
  partnerType: indirect
tenants:
  - tenantId: 1b0c2a52-5a1e-4d55-9f3e-000000000001
    displayName: Contoso
    orgUrl: https://contoso.crm.dynamics.com
    globalAdminUpn: admin@contoso.onmicrosoft.com
    serviceAccountUpn: svc@contoso.onmicrosoft.com
  - tenantId: 1b0c2a52-5a1e-4d55-9f3e-000000000002
    displayName: Fabrikam
    orgUrl: https://fabrikam.crm.dynamics.com
    globalAdminUpn: admin@fabrikam.onmicrosoft.com
    serviceAccountUpn: svc@fabrikam.onmicrosoft.com
`

func runWith(t *testing.T, f *fakeTemporal, args ...string) (string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(p, []byte(inventoryYAML), 0o600))
	root := newRootWith(&globals{dialFn: func(context.Context) (ops.Ops, func(), error) {
		return ops.Ops{Client: f, TaskQueue: "q"}, func() {}, nil
	}})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	for i, a := range args {
		if a == "INVENTORY" {
			args[i] = p
		}
	}
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestPreflightAllReadyExitsZero(t *testing.T) {
	f := &fakeTemporal{ready: map[string]bool{"1b0c2a52-5a1e-4d55-9f3e-000000000001": true, "1b0c2a52-5a1e-4d55-9f3e-000000000002": true}}
	out, err := runWith(t, f, "preflight", "INVENTORY")
	require.NoError(t, err)
	require.Contains(t, out, "TENANT")
	require.Contains(t, out, "Contoso   upgrade from 2.1.0.3  ready")
	require.Contains(t, out, "All 2 tenants are ready. The preflight changed nothing.")
	require.Equal(t, []string{workflows.PreflightWorkflow}, f.started)
}

func TestPreflightNotReadyExitsTwoWithTheFix(t *testing.T) {
	f := &fakeTemporal{ready: map[string]bool{"1b0c2a52-5a1e-4d55-9f3e-000000000001": true}}
	out, err := runWith(t, f, "preflight", "INVENTORY")
	require.Error(t, err)
	require.Equal(t, 2, exitCode(err))
	require.ErrorIs(t, err, ops.ErrNotReady)
	require.Contains(t, out, "Fabrikam  upgrade from 2.1.0.3  NOT READY")
	require.Contains(t, out, "Fabrikam (1b0c2a52-5a1e-4d55-9f3e-000000000002):\n  ✗ orchestrator-permissions: the orchestrator's Microsoft Graph token in this tenant lacks Directory.Read.All\n    fix: Entra admin center › Applications › App registrations › orchestrator › API permissions › add Directory.Read.All (Application) and grant admin consent")
	require.Contains(t, out, "1 of 2 tenants are not ready")
	require.NotContains(t, out, "Contoso (", "a ready tenant lists no checks")

	out, err = runWith(t, f, "preflight", "INVENTORY", "--format", "json")
	require.Equal(t, 2, exitCode(err))
	var rep ops.PreflightReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.False(t, rep.Ready)
	require.Len(t, rep.Tenants, 2)
	require.False(t, rep.Tenants[1].Ready)
	require.Equal(t, activities.ReadyFail, rep.Tenants[1].Checks[1].Status)
	require.Len(t, rep.Workflows, 1)
	require.True(t, strings.HasPrefix(rep.Workflows[0], "work365-preflight/pf/"))

	_, err = runWith(t, f, "preflight", "INVENTORY", "--format", "yaml")
	require.ErrorContains(t, err, `--format "yaml"`)
	require.Equal(t, 1, exitCode(err))
}

// With --preflight, a launch whose preflight finds a tenant not ready starts nothing: the only
// workflow started is the read-only Preflight.
func TestLaunchWithPreflightStartsNothingWhenNotReady(t *testing.T) {
	for _, args := range [][]string{{"launch", "INVENTORY", "--preflight"}, {"fleet", "launch", "INVENTORY", "--preflight"}} {
		f := &fakeTemporal{ready: map[string]bool{"1b0c2a52-5a1e-4d55-9f3e-000000000002": true}}
		out, err := runWith(t, f, args...)
		require.Error(t, err, args)
		require.Equal(t, 2, exitCode(err))
		require.Contains(t, err.Error(), "nothing was started")
		require.Contains(t, out, "Contoso (1b0c2a52-5a1e-4d55-9f3e-000000000001):")
		require.Equal(t, []string{workflows.PreflightWorkflow}, f.started, "%v: nothing but the preflight started", args)
	}
}
