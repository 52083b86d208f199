package workflows

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays the histories recorded from real runs (testdata/histories,
// recorded by the integration test with RECORD_HISTORIES). A change to workflow code that breaks
// one must be version-gated (workflow.GetVersion) instead.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "recorded histories are kept under testdata/histories")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(TenantUpgrade, workflow.RegisterOptions{Name: TenantUpgradeWorkflow})
			r.RegisterWorkflowWithOptions(PartnerCenterReconsent, workflow.RegisterOptions{Name: PartnerCenterWorkflow})
			r.RegisterWorkflowWithOptions(FleetUpgrade, workflow.RegisterOptions{Name: FleetWorkflow})
			in, err := os.Open(f)
			require.NoError(t, err)
			defer in.Close()
			h, err := client.HistoryFromJSON(in, client.HistoryJSONOptions{})
			require.NoError(t, err)
			started := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
			// The original ID matters: child workflow IDs and import job IDs derive from it.
			require.NoError(t, r.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: started.GetWorkflowId(), RunID: started.GetOriginalExecutionRunId()},
			}))
		})
	}
}
