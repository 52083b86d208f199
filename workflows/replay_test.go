package workflows

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	for _, f := range recordedHistories(t) {
		name, _ := filepath.Rel(filepath.Join("testdata", "histories"), f)
		t.Run(name, func(t *testing.T) {
			require.NoError(t, replay(t, f, TenantUpgrade))
		})
	}
}

// TestUngatedChangeBreaksReplay is the other half of the versioning strategy: the same safe
// runbook without its workflow.GetVersion gate cannot replay the upgrades that started before
// it, so a worker running it would fail their workflow tasks (non-determinism). The gated code
// (TestReplayRecordedHistories) replays them all.
func TestUngatedChangeBreaksReplay(t *testing.T) {
	ungated := func(ctx workflow.Context, in Input) (Result, error) {
		return tenantUpgrade(ctx, in, func(workflow.Context) bool { return true })
	}
	broken := 0
	for _, f := range recordedHistories(t) {
		if !strings.HasPrefix(filepath.Base(f), TenantUpgradeWorkflow+"_") {
			continue
		}
		err := replay(t, f, ungated)
		if err != nil {
			require.Contains(t, err.Error(), "TMPRL1100", "%s: not a non-determinism error", filepath.Base(f)) // the SDK's non-determinism error code
			broken++
		}
	}
	require.Positive(t, broken, "the ungated change replayed every old history: the test no longer shows what the gate is for")
}

// recordedHistories lists testdata/histories and its folders: histories recorded before a
// version gate stay at the top, those recorded after it in a folder named after the change.
func recordedHistories(t *testing.T) []string {
	var files []string
	err := filepath.WalkDir(filepath.Join("testdata", "histories"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			files = append(files, path)
		}
		return err
	})
	require.NoError(t, err)
	require.NotEmpty(t, files, "recorded histories are kept under testdata/histories")
	return files
}

// replay replays one recorded history with tenantUpgrade as the TenantUpgrade workflow.
func replay(t *testing.T, file string, tenantUpgrade func(workflow.Context, Input) (Result, error)) error {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(tenantUpgrade, workflow.RegisterOptions{Name: TenantUpgradeWorkflow})
	r.RegisterWorkflowWithOptions(PartnerCenterReconsent, workflow.RegisterOptions{Name: PartnerCenterWorkflow})
	r.RegisterWorkflowWithOptions(FleetUpgrade, workflow.RegisterOptions{Name: FleetWorkflow})
	in, err := os.Open(file)
	require.NoError(t, err)
	defer in.Close()
	h, err := client.HistoryFromJSON(in, client.HistoryJSONOptions{})
	require.NoError(t, err)
	started := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	// The original ID matters: child workflow IDs and import job IDs derive from it.
	return r.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: started.GetWorkflowId(), RunID: started.GetOriginalExecutionRunId()},
	})
}
