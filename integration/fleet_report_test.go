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
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// TestFleetWritesItsReportAsItGoes runs the five-tenant scenario as a fleet on the real server
// that continues as new every 20 events: before continuing, a run writes the report
// lines of the tenants that finished as parts in reports.dir (gate fleet-report-as-it-goes),
// and the final report joins them with the rest, each tenant once with its run ID. With
// RECORD_HISTORIES it records a run that wrote a part and continued as new.
func TestFleetWritesItsReportAsItGoes(t *testing.T) {
	reports := t.TempDir()
	s := startStackWith(t, "testdata/scenario.yaml", stack.Options{Speed: speed, ReportsDir: reports})
	ctx := context.Background()
	inv := s.Inventory("asitgoes")
	inv.Waves = []workflows.WaveSpec{{Name: "all", Concurrency: 2}}
	in, err := inv.FleetInput()
	require.NoError(t, err)
	in.ContinueAfterEvents = 20
	id := inventory.FleetWorkflowID(inv.Fleet)
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.Ops.TaskQueue,
		Priority: temporal.Priority{PriorityKey: workflows.FleetPriorityKey}}, workflows.FleetWorkflow, in)
	require.NoError(t, err)
	first := run.GetRunID() // Get follows the runs, and GetRunID with it
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var res workflows.FleetResult
	require.NoError(t, run.Get(wctx, &res)) // follows the runs to the last
	require.Equal(t, map[workflows.Outcome]int{workflows.OutcomeUpgraded: 5}, res.Outcomes, "failed: %v", res.Failed)

	// The runs, followed from the first: one that wrote a part before continuing as new.
	var wrote *historypb.History
	runs := 0
	for runID := first; runID != ""; runs++ {
		h := history(t, s, id, runID)
		require.EqualValues(t, workflows.FleetPriorityKey, h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetPriority().GetPriorityKey(), "run %d keeps the fleet's priority", runs+1)
		runID = h.Events[len(h.Events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
		for _, ev := range h.Events {
			if runID != "" && wrote == nil && ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "WriteFleetReportPart" {
				wrote = h
			}
		}
	}
	require.Greater(t, runs, 1, "the fleet continued as new")
	require.NotNil(t, wrote, "a run wrote the finished tenants' lines before continuing as new (%d runs)", runs)

	entries, err := os.ReadDir(reports)
	require.NoError(t, err)
	var jsonName string
	for _, e := range entries {
		require.NotContains(t, e.Name(), ".part-", "parts are deleted once joined")
		if strings.HasSuffix(e.Name(), ".json") {
			jsonName = e.Name()
		}
	}
	require.NotEmpty(t, jsonName, "the final report is written")
	data, err := os.ReadFile(filepath.Join(reports, jsonName))
	require.NoError(t, err)
	var rep activities.FleetReport
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Len(t, rep.Tenants, 5, "every tenant once")
	seen := map[string]bool{}
	for _, tn := range rep.Tenants {
		require.False(t, seen[tn.WorkflowID], "%s twice", tn.WorkflowID)
		seen[tn.WorkflowID] = true
		require.Equal(t, string(workflows.OutcomeUpgraded), tn.Outcome, tn.WorkflowID)
		d, err := s.Client.DescribeWorkflowExecution(ctx, tn.WorkflowID, tn.RunID)
		require.NoError(t, err, "%s: the report's run ID finds the upgrade", tn.WorkflowID)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.GetWorkflowExecutionInfo().GetStatus())
		require.EqualValues(t, workflows.TenantPriorityKey, d.GetWorkflowExecutionInfo().GetPriority().GetPriorityKey(), "%s: a tenant does not inherit the fleet's priority", tn.WorkflowID)
	}

	if dir := os.Getenv("RECORD_HISTORIES"); dir != "" {
		// Recorded in the clear, so the replay tests need no keys.
		decodePayloads(t, s, wrote)
		j, err := protojson.MarshalOptions{Indent: " "}.Marshal(wrote)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, workflows.FleetWorkflow+"_"+strings.NewReplacer("/", "_", ".", "-").Replace(id)+"_continued.json"), j, 0o644))
	}
}

// history reads one run's history.
func history(t *testing.T, s *stack.Stack, id, runID string) *historypb.History {
	t.Helper()
	it := s.Client.GetWorkflowHistory(context.Background(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	return h
}
