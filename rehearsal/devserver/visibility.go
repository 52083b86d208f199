package devserver

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/server/common/config"
)

// unusedVisibilityIndexes are indexes of the SQLite visibility schema (schema/sqlite/v3/
// visibility) over columns nothing of this project's filters or sorts by: system columns the
// Web UI does not list by, the typed columns no search attribute of ours maps to (booleans,
// doubles, the Temporal* ones of schedules, deployments, pauses and batches). Every
// visibility write is a REPLACE that deletes and reinserts the row in all 58 indexes;
// visibility was 39 % of the embedded server's CPU at 1,000 tenants. Queries over these
// columns still work (a scan), as on any store without the index.
var unusedVisibilityIndexes = []string{
	"by_history_length", "by_history_size_bytes", "by_execution_duration", "by_state_transition_count",
	"by_batcher_user", "by_temporal_scheduled_start_time", "by_temporal_scheduled_by_id", "by_temporal_schedule_paused",
	"by_temporal_pause_info", "by_temporal_worker_deployment_version", "by_temporal_workflow_versioning_behavior",
	"by_temporal_worker_deployment",
	"by_bool_01", "by_bool_02", "by_bool_03", "by_double_01", "by_double_02", "by_double_03",
	"by_temporal_bool_01", "by_temporal_bool_02", "by_temporal_datetime_01", "by_temporal_datetime_02",
	"by_temporal_double_01", "by_temporal_double_02", "by_temporal_int_01", "by_temporal_int_02",
	"by_temporal_keyword_01", "by_temporal_keyword_02", "by_temporal_keyword_03", "by_temporal_keyword_04",
	"by_temporal_low_cardinality_keyword_01",
}

// trimVisibility drops unusedVisibilityIndexes from a memory visibility database the
// running server has created (a second connection to the same shared-cache database).
func trimVisibility(ctx context.Context, c *config.SQL) error {
	db, err := openVisibility(c)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, idx := range unusedVisibilityIndexes {
		for {
			_, err := db.ExecContext(ctx, "DROP INDEX IF EXISTS "+idx)
			if err == nil {
				break
			}
			// Shared-cache table locks: the server's connection is writing; try again.
			if !strings.Contains(err.Error(), "locked") || ctx.Err() != nil {
				return fmt.Errorf("devserver: drop visibility index %s: %w", idx, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility'").Scan(&n); err != nil {
		return fmt.Errorf("devserver: count visibility indexes: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("devserver: the visibility database %s has no index: not the server's (DSN mismatch?)", c.DatabaseName)
	}
	return nil
}

// openVisibility opens a connection of its own to a memory visibility database.
func openVisibility(c *config.SQL) (*sql.DB, error) {
	q := url.Values{}
	for k, v := range c.ConnectAttributes {
		q.Set(k, v)
	}
	db, err := sql.Open("sqlite", "file:"+c.DatabaseName+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("devserver: open the visibility database: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
