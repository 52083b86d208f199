package devserver

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// TestMemoryVisibilityKeepsOnlyUsefulIndexes: the memory visibility database of a running
// server lacks the unused indexes and keeps those our queries use; a query over a column
// whose index went still answers.
func TestMemoryVisibilityKeepsOnlyUsefulIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{LogLevel: "off", SearchAttributes: map[string]enumspb.IndexedValueType{"WorkUpgradeStage": enumspb.INDEXED_VALUE_TYPE_KEYWORD}})
	require.NoError(t, err)
	defer s.Stop()
	require.NotNil(t, s.visibility)
	db, err := openVisibility(s.visibility)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility'")
	require.NoError(t, err)
	var have []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		have = append(have, n)
	}
	require.NoError(t, rows.Err())
	for _, gone := range unusedVisibilityIndexes {
		require.NotContains(t, have, gone)
	}
	for _, kept := range []string{"default_idx", "by_workflow_type", "by_status", "by_workflow_id", "by_keyword_01", "by_datetime_01", "by_int_01", "by_temporal_namespace_division"} {
		require.True(t, slices.Contains(have, kept), "%s kept: %v", kept, have)
	}
	t.Logf("%d visibility indexes left, %d dropped", len(have), len(unusedVisibilityIndexes))
	c, err := client.DialContext(ctx, client.Options{HostPort: s.FrontendAddress(), Namespace: s.Namespace()})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: s.Namespace(), Query: "HistoryLength > 10 AND WorkUpgradeStage = 'import'"})
	require.NoError(t, err)
}
