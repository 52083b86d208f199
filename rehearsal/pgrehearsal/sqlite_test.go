package main

import (
	"context"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// The visibility checks the PostgreSQL rehearsal makes — the on-call queries and visibility
// agreeing with each upgrade's own search attributes — pass on the embedded server's SQLite
// visibility too: both stores answer the same queries alike.
func TestVisibilityChecksOnSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fleet on an embedded server: skipped with -short")
	}
	ctx := context.Background()
	scn := sim.Generate(5, 15)
	scn.Faults = sim.Faults{}
	s, err := stack.Start(ctx, stack.Options{Scenario: scn, Speed: 120, Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	inv := s.Inventory(fleetName)
	inv.Waves = []workflows.WaveSpec{{Name: "all", Concurrency: 5}}
	id, _, err := s.Ops.LaunchFleet(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	var res workflows.FleetResult
	if err := s.Client.GetWorkflow(wctx, id, "").Get(wctx, &res); err != nil {
		t.Fatal(err)
	}
	r := &rehearsal{o: options{tenants: len(inv.Tenants)}, logf: t.Logf, client: s.Client, ops: s.Ops, cloud: s.Cloud}
	fig := &figures{}
	r.onCallQueries(ctx, fig, "final")
	r.checkFinalVisibility(ctx)
	for _, l := range fig.lines {
		t.Log(l)
	}
	for _, err := range r.failures {
		t.Error(err)
	}
}
