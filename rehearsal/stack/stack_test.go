package stack

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/worker/app"
)

func TestRehearsalNamesDifferFromProduction(t *testing.T) {
	require.NotEqual(t, "default", DefaultNamespace)
	require.NotEqual(t, app.TaskQueue, DefaultTaskQueue)
}

// TestProductionNamesAreRefusedOnAnExistingServer: nothing is dialled (the address is
// unreachable), the refusal comes first.
func TestProductionNamesAreRefusedOnAnExistingServer(t *testing.T) {
	scn := sim.Generate(1, 1)
	_, err := Start(context.Background(), Options{Scenario: scn, TemporalAddress: "127.0.0.1:1", Namespace: "default"})
	require.ErrorContains(t, err, `namespace "default" on the Temporal server at 127.0.0.1:1 is where production upgrades run`)
	_, err = Start(context.Background(), Options{Scenario: scn, TemporalAddress: "127.0.0.1:1", TaskQueue: app.TaskQueue})
	require.ErrorContains(t, err, `task queue "work365-upgrade" on the Temporal server at 127.0.0.1:1 is the production worker's`)

	o := Options{TemporalAddress: "127.0.0.1:1", Namespace: "default", TaskQueue: app.TaskQueue, ForceProductionNames: true}
	require.NoError(t, o.checkNames(), "forced")
	o = Options{Namespace: "default", TaskQueue: app.TaskQueue}
	require.NoError(t, o.checkNames(), "an embedded server serves no real tenant")
}
