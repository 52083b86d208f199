package integration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// TestAuditTrailOutlivesRetention: a fleet writes its final report (JSON and CSV) when it
// ends; once the namespace's retention (shortened to 15 s) has passed and Temporal deleted
// the upgrades, the confirmations — who confirmed what, when — are read back from the archived
// history (filestore), found by the workflow and run IDs the report keeps.
func TestAuditTrailOutlivesRetention(t *testing.T) {
	ctx := context.Background()
	archive, reports := t.TempDir(), t.TempDir()
	scn := sim.Generate(3, 5)
	scn.Faults = sim.Faults{}
	s, err := stack.Start(ctx, stack.Options{Scenario: scn, Speed: 120, ReportsDir: reports,
		Archival: &devserver.Archival{Dir: archive, Retention: 15 * time.Second}})
	require.NoError(t, err)
	t.Cleanup(s.Stop)

	inv := s.Inventory("audit")
	inv.Waves = []workflows.WaveSpec{{Name: "all", Concurrency: 3}}
	id, _, err := s.Ops.LaunchFleet(ctx, inv)
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	var res workflows.FleetResult
	require.NoError(t, s.Client.GetWorkflow(wctx, id, "").Get(wctx, &res))

	// The final report, in both formats, names every tenant with its run ID.
	jsons, _ := filepath.Glob(filepath.Join(reports, "audit-*.json"))
	csvs, _ := filepath.Glob(filepath.Join(reports, "audit-*.csv"))
	require.Len(t, jsons, 1, "one JSON report; fleet events: %v", res.Events)
	require.Len(t, csvs, 1, "one CSV report")
	data, err := os.ReadFile(jsons[0])
	require.NoError(t, err)
	var report activities.FleetReport
	require.NoError(t, json.Unmarshal(data, &report))
	require.Len(t, report.Tenants, len(inv.Tenants))
	csvData, err := os.ReadFile(csvs[0])
	require.NoError(t, err)

	// Before retention: each upgrade's confirmations from its result.
	before := map[string][]workflows.Confirmation{}
	total := 0
	for _, tn := range report.Tenants {
		require.Equal(t, string(workflows.OutcomeUpgraded), tn.Outcome, tn.Name)
		require.NotEmpty(t, tn.RunID, tn.Name)
		require.Contains(t, string(csvData), tn.RunID)
		var r workflows.Result
		require.NoError(t, s.Client.GetWorkflow(ctx, tn.WorkflowID, tn.RunID).Get(ctx, &r))
		before[tn.WorkflowID] = r.Confirmations
		total += len(r.Confirmations)
	}
	require.Positive(t, total, "people confirmed tasks")

	// Retention passes: Temporal deletes the upgrades.
	for _, tn := range report.Tenants {
		require.Eventually(t, func() bool {
			_, err := s.Client.DescribeWorkflowExecution(ctx, tn.WorkflowID, tn.RunID)
			var nf *serviceerror.NotFound
			return errors.As(err, &nf)
		}, 3*time.Minute, time.Second, "%s deleted after retention", tn.WorkflowID)
	}

	// The documented path: the history by workflow and run ID (temporal workflow show -w … -r …)
	// comes from the archive; its completion event carries the confirmations.
	for _, tn := range report.Tenants {
		it := s.Client.GetWorkflowHistory(ctx, tn.WorkflowID, tn.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var got *workflows.Result
		events := 0
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err, "%s: archived history", tn.WorkflowID)
			events++
			if c := ev.GetWorkflowExecutionCompletedEventAttributes(); c != nil {
				var r workflows.Result
				// Payloads are encrypted (as in production): the stack's codec reads them.
				require.NoError(t, converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), s.Codec).FromPayloads(c.GetResult(), &r))
				got = &r
			}
		}
		require.NotNil(t, got, "%s: completion event in the archived history (%d events)", tn.WorkflowID, events)
		require.Equal(t, before[tn.WorkflowID], got.Confirmations, "%s: the confirmations outlive retention", tn.WorkflowID)
	}
}
