package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

func scenarioInventory(n int) *inventory.Inventory {
	inv := &inventory.Inventory{Fleet: "example"}
	for i, t := range sim.Generate(n, 1).Tenants {
		inv.Tenants = append(inv.Tenants, inventory.Entry{Tenant: stack.TenantSpec(t, time.Now()), Line: i + 1})
	}
	return inv
}

// The rehearsal runs the example inventory's waves: its canary (one tenant, or 1% of a large
// fleet) behind the approval gate, with the bake time in rehearsal time, then the bulk.
func TestFleetInventoryTakesTheExampleWaves(t *testing.T) {
	example, err := inventory.Load("../../examples/fleet.yaml")
	require.NoError(t, err)
	require.Equal(t, 30*time.Minute, example.Waves[0].BakeTime)

	inv := FleetInventory(scenarioInventory(2), example, 60)
	require.Len(t, inv.Waves, 2)
	require.Equal(t, "canary", inv.Waves[0].Name)
	require.True(t, inv.Waves[0].Approval)
	require.Equal(t, 30*time.Second, inv.Waves[0].BakeTime, "30m of runbook time at ×60")
	require.Equal(t, 30*time.Minute, example.Waves[0].BakeTime, "the example is not changed")
	byWave := inv.ByWave()
	require.Len(t, byWave[0], 1)
	require.Len(t, byWave[1], 1)

	big := FleetInventory(scenarioInventory(500), example, 60)
	byWave = big.ByWave()
	require.Len(t, byWave[0], 5, "1% of the fleet is the canary")
	require.Len(t, byWave[1], 495)
	in, err := big.FleetInput()
	require.NoError(t, err, "the fleet input packs")
	require.Equal(t, 5, in.Waves[0].Size)
}

func TestFleetLinesSayWhatEachWaveAndTheFleetWaitOn(t *testing.T) {
	p := workflows.FleetProgress{Phase: "awaiting-approval", Wave: "canary", Waves: []workflows.WaveProgress{{Name: "canary", Size: 1}, {Name: "bulk", Size: 4}}}
	ts := []workflows.FleetTenant{
		{Wave: 0, State: workflows.TenantFinished, Outcome: workflows.OutcomeUpgraded},
		{Wave: 1, State: workflows.TenantRunning, WaitingOn: workflows.GlobalAdmin},
		{Wave: 1, State: workflows.TenantRunning, WaitingOn: workflows.Nobody},
		{Wave: 1, State: workflows.TenantFinished, Outcome: workflows.OutcomeFailed},
		{Wave: 1, State: workflows.TenantPending},
	}
	lines := FleetLines(p, ts)
	require.Equal(t, []string{
		"wave canary  1/1 done  0 running  0 waiting on people  0 failed",
		"wave bulk    0/4 done  1 running  1 waiting on people  1 failed",
		"fleet waits on: the operator's approval of wave canary",
	}, lines)
	for _, l := range lines {
		require.LessOrEqual(t, len(l)+30, 120, "fits a terminal with the time in front")
	}
	require.Equal(t, "halted (wave bulk: 2 tenants failed): an operator resumes or cancels", FleetWaitsOn(workflows.FleetProgress{Halted: "wave bulk: 2 tenants failed"}))
	require.True(t, strings.HasPrefix(FleetWaitsOn(workflows.FleetProgress{Phase: "baking", Wave: "canary", BakeUntil: time.Now()}), "bake time of wave canary until "))
	require.Equal(t, "nothing: every wave has finished", FleetWaitsOn(workflows.FleetProgress{Phase: "done"}))
}

// Reports of a rehearsal read in runbook time.
func TestSimulatedReportTimes(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	e1, e2 := t0.Add(15*time.Second), t0.Add(90*time.Second)
	rows := []ops.ReportRow{{
		Stages:         []workflows.StageRecord{{Stage: workflows.StageImport, Started: t0, Ended: &e1}, {Stage: workflows.StageDone, Started: e1, Ended: &e2}},
		HumanWait:      30 * time.Second,
		PartnerCenters: []workflows.PartnerCenterResult{{Name: "pc", HumanWait: 10 * time.Second}},
	}}
	out := Simulated(rows, 60)
	require.Equal(t, 90*time.Minute, out[0].Duration())
	require.Equal(t, 15*time.Minute, out[0].Stages[0].Ended.Sub(out[0].Stages[0].Started))
	require.Equal(t, 30*time.Minute, out[0].HumanWait)
	require.Equal(t, 10*time.Minute, out[0].PartnerCenters[0].HumanWait)
	require.Equal(t, 90*time.Second, rows[0].Duration(), "the input rows are not changed")
}
