package workflows

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/activities"
)

// fleetSignals runs an upgrade from 2.1 as a fleet's child and returns what it told the fleet.
func fleetSignals(t *testing.T, lean bool) []activities.FleetSignal {
	h := newHarness(t, upgradeFrom21())
	var mu sync.Mutex
	var got []activities.FleetSignal
	h.env.OnActivity(a.SignalFleet, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FleetSignal) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, in)
		return nil
	})
	h.env.ExecuteWorkflow(TenantUpgrade, Input{Tenant: testTenant(), ReportTo: "work365-fleet/test", LeanReports: lean})
	require.True(t, h.env.IsWorkflowCompleted())
	r, err := h.result()
	require.NoError(t, err)
	require.Equal(t, OutcomeUpgraded, r.Outcome)
	return got
}

// TestLeanReportsTellTheFleetOnlyWhatItDecidesOn: a fleet's child with LeanReports signals
// only when its slot (machine work, a person, the window) or fault changes, then its end;
// without it, at every wait.
func TestLeanReportsTellTheFleetOnlyWhatItDecidesOn(t *testing.T) {
	full, lean := fleetSignals(t, false), fleetSignals(t, true)
	progress := func(ss []activities.FleetSignal) []TenantProgress {
		var out []TenantProgress
		for _, s := range ss {
			require.Equal(t, "work365-fleet/test", s.WorkflowID)
			if s.Signal == SignalTenantProgress {
				var p TenantProgress
				require.NoError(t, json.Unmarshal(s.Payload, &p))
				out = append(out, p)
			}
		}
		return out
	}
	fullP, leanP := progress(full), progress(lean)
	t.Logf("progress signals: %d without lean reports, %d with", len(fullP), len(leanP))
	require.Less(t, len(leanP), len(fullP), "lean reports send fewer progress signals")
	require.NotEmpty(t, leanP, "a person's wait is told: it frees the tenant's slot")
	kind := func(p TenantProgress) string { return slotKind(p.WaitingOn, p.Stage) }
	prev := "machine"
	for _, p := range leanP {
		require.NotEqual(t, prev, kind(p)+"|"+p.Fault, "each lean report changes the slot or the fault: %+v", p)
		prev = kind(p) + "|" + p.Fault
	}
	// Every slot change the full reports show is in the lean ones too.
	changes, prev := 0, "machine|"
	for _, p := range fullP {
		if k := kind(p) + "|" + p.Fault; k != prev {
			changes++
			prev = k
		}
	}
	require.Equal(t, changes, len(leanP))
	for _, ss := range [][]activities.FleetSignal{full, lean} {
		require.Equal(t, SignalTenantFinished, ss[len(ss)-1].Signal, "the end is always told")
	}
}

// TestNoSlotReportsTellOnlyFaultsAndTheEnd: in a wave whose concurrency covers all its
// tenants, a child tells its fleet nothing until its end.
func TestNoSlotReportsTellOnlyFaultsAndTheEnd(t *testing.T) {
	h := newHarness(t, upgradeFrom21())
	var mu sync.Mutex
	var got []string
	h.env.OnActivity(a.SignalFleet, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FleetSignal) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, in.Signal)
		return nil
	})
	h.env.ExecuteWorkflow(TenantUpgrade, Input{Tenant: testTenant(), ReportTo: "work365-fleet/test", LeanReports: true, NoSlotReports: true})
	require.True(t, h.env.IsWorkflowCompleted())
	_, err := h.result()
	require.NoError(t, err)
	require.Equal(t, []string{SignalTenantFinished}, got)
}

// TestFleetAsksForSlotReportsOnlyWhereConcurrencyBinds: children of a wave narrower than
// its tenants report slot changes; children of a wave whose concurrency covers them do not.
func TestFleetAsksForSlotReportsOnlyWhereConcurrencyBinds(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "narrow", Concurrency: 2}, {Name: "wide", Concurrency: 3}}, 4, 3)
	fx.env.ExecuteWorkflow(FleetUpgrade, in)
	require.Equal(t, 7, fx.result().Total)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	require.Len(t, fx.inputs, 7)
	for id, ci := range fx.inputs {
		require.True(t, ci.LeanReports, id)
		require.Equal(t, ci.Wave == "wide", ci.NoSlotReports, "%s in wave %s", id, ci.Wave)
	}
}

// TestFleetCallsNoUnreportedTenantStuck: past StuckAfter, a running tenant of a bounded wave
// is listed stuck (it reports its slot changes); one of a wave whose concurrency covers it
// reports no stage, so the fleet does not call it stuck from its start time.
func TestFleetCallsNoUnreportedTenantStuck(t *testing.T) {
	for _, tc := range []struct {
		concurrency int
		stuck       int
	}{{concurrency: 1, stuck: 1}, {concurrency: 2, stuck: 0}} {
		fx := newFleetFixture(t)
		in := fx.input([]WaveSpec{{Name: "w", Concurrency: tc.concurrency}}, 2)
		in.StuckAfter = 2 * time.Hour
		for _, ts := range fleetTenants(0, 2) {
			fx.plans[ts.TenantID] = childPlan{dur: 5 * time.Hour}
		}
		var p FleetProgress
		fx.env.RegisterDelayedCallback(func() { p = fx.progress() }, 3*time.Hour)
		fx.env.ExecuteWorkflow(FleetUpgrade, in)
		require.Equal(t, 2, fx.result().Total)
		require.Len(t, p.Stuck, tc.stuck, "concurrency %d", tc.concurrency)
	}
}
