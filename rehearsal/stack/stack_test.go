package stack

import (
	"context"
	"testing"
	"testing/synctest"

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

// A scenario without an orchestrator: section runs as sim.DefaultOrchestrator, the app the
// simulated cloud itself assumes, instead of stopping at "microsoft.clientId: required".
func TestScenarioWithoutOrchestratorUsesTheDefault(t *testing.T) {
	scn, err := sim.ParseScenario("no-orchestrator.yaml", []byte(`
tenants:
  - tenantId: 6d2b1f0e-8a43-4c5e-9b7a-0f1e2d3c4b5a
    name: Contoso
    orgUrl: https://contoso.crm.dynamics.com
    work365Version: 2.1.0.3
    admin: {upn: admin@contoso.onmicrosoft.com, objectId: 11111111-1111-4111-8111-111111111111, globalAdmin: true}
    serviceAccount: {upn: work365svc@contoso.onmicrosoft.com, objectId: 22222222-2222-4222-8222-222222222222}
`))
	require.NoError(t, err)
	require.Empty(t, scn.Orchestrator.ClientID, "the file names no orchestrator")
	s := &Stack{opts: Options{Scenario: scn, Namespace: "default", TaskQueue: "q"}, Cloud: sim.New(scn, sim.Options{})}
	cfg, err := s.workerConfig(t.TempDir())
	require.NoError(t, err, "the worker configuration of a scenario without orchestrator is valid")
	require.Equal(t, sim.DefaultOrchestrator().ClientID, cfg.Microsoft.ClientID)
}

func TestHeldPeopleWaitForTheHoldToOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hold := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- peopleSleep(hold, 60)(context.Background(), 0) }()
		synctest.Wait() // the person is blocked: on the hold, since a zero delay needs no timer
		select {
		case err := <-done:
			t.Fatalf("a held person acted before the hold opened (%v)", err)
		default:
		}
		close(hold)
		require.NoError(t, <-done)

		// A task that closes while its person is held ends the wait.
		ctx, cancel := context.WithCancel(context.Background())
		go func() { done <- peopleSleep(make(chan struct{}), 60)(ctx, 0) }()
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)

		require.NoError(t, peopleSleep(nil, 60)(context.Background(), 0), "no hold: people act after their delay")
	})
}
