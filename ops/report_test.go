package ops

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/workflows"
)

func sampleRows() []ReportRow {
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	end := func(d time.Duration) *time.Time { e := t0.Add(d); return &e }
	return []ReportRow{{
		WorkflowID: "work365-upgrade/t1/2.5.0.1", TenantID: "t1", TenantName: "Contoso | EU", Outcome: "upgraded",
		FromVersion: "2.1.0.3", ToVersion: "2.5.0.1", Stage: "done",
		Stages: []workflows.StageRecord{
			{Stage: workflows.StageImport, Started: t0, Ended: end(12 * time.Minute)},
			{Stage: workflows.StageRegistration, Started: t0, Ended: end(5 * time.Minute)},
			{Stage: workflows.StageRegistration, Started: t0, Ended: end(7 * time.Minute)},
			{Stage: workflows.StageCompletion, Started: t0},
		},
		Confirmations: []workflows.Confirmation{{TaskID: "drain-deadline-2", By: "alice", Decision: "proceed", At: t0}},
		Warnings:      []string{"proceeded with jobs pending"},
	}}
}

func TestReportFormats(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteReport(&b, "csv", sampleRows()))
	recs, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "stage_durations", recs[0][7])
	require.Equal(t, "import=12m0s; registration=12m0s", recs[1][7], "repeated stages add up; open ones are left out")
	require.Equal(t, "drain-deadline-2 by alice at 2026-12-05T22:00:00Z (proceed)", recs[1][8])

	b.Reset()
	require.NoError(t, WriteReport(&b, "json", sampleRows()))
	var rows []ReportRow
	require.NoError(t, json.Unmarshal(b.Bytes(), &rows))
	require.Equal(t, "Contoso | EU", rows[0].TenantName)

	b.Reset()
	require.NoError(t, WriteReport(&b, "markdown", sampleRows()))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 3)
	require.Contains(t, lines[2], `Contoso \| EU`, "pipes escaped in markdown cells")
	require.Contains(t, lines[2], "2.1.0.3 → 2.5.0.1")

	require.ErrorContains(t, WriteReport(&b, "xlsx", nil), `report format "xlsx": use csv, json or markdown`)
}

func TestStuckQuery(t *testing.T) {
	q := StuckQuery(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	require.Equal(t, "WorkflowType = 'TenantUpgrade' AND ExecutionStatus = 'Running' AND WorkStageSince < '2026-11-25T08:00:00Z'", q)
}
