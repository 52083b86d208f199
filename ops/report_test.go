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
			{Stage: workflows.StageImport, Started: t0, Ended: end(12 * time.Minute), Note: "staged upgrade 2.5.0.1 present"},
			{Stage: workflows.StageRegistration, Started: t0, Ended: end(5 * time.Minute)},
			{Stage: workflows.StageRegistration, Started: t0, Ended: end(7 * time.Minute)},
			{Stage: workflows.StageCompletion, Started: t0},
		},
		Confirmations: []workflows.Confirmation{{TaskID: "drain-deadline-2", By: "alice", Decision: "proceed", At: t0}},
		Warnings:      []string{"proceeded with jobs pending"},
		HumanWait:     150 * time.Minute,
		PartnerCenters: []workflows.PartnerCenterResult{
			{Name: "contoso-pc", Verified: true, Detail: "grant found", Confirmations: []workflows.Confirmation{{Kind: workflows.TaskPartnerReconsent, By: "Jane"}}},
			{Name: "contoso-eu", Detail: "no grant"},
		},
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

	require.Equal(t, "partner_centers", recs[0][14])
	require.Equal(t, "contoso-pc: re-consent verified (grant found) by Jane | contoso-eu: re-consent not verified (no grant)", recs[1][14])
	require.Equal(t, "2h30m", recs[1][13], "human wait")
	require.Equal(t, "import: staged upgrade 2.5.0.1 present", recs[1][15], "stage notes")

	b.Reset()
	require.NoError(t, WriteReport(&b, "json", sampleRows()))
	var rows []ReportRow
	require.NoError(t, json.Unmarshal(b.Bytes(), &rows))
	require.Equal(t, "Contoso | EU", rows[0].TenantName)

	b.Reset()
	require.NoError(t, WriteReport(&b, "markdown", sampleRows()))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Contains(t, lines[2], `Contoso \| EU`, "pipes escaped in markdown cells")
	require.Contains(t, lines[2], "2.1.0.3 → 2.5.0.1")
	require.Contains(t, b.String(), "| import | 12m | staged upgrade 2.5.0.1 present |", "each stage with what it did")
	require.Contains(t, b.String(), "- contoso-eu: re-consent not verified (no grant)", "Partner Center per connection")

	require.ErrorContains(t, WriteReport(&b, "xlsx", nil), `report format "xlsx": use csv, json, markdown or table`)
}

// The terminal table fits 120 columns whatever the names, and its columns line up.
func TestReportTableFits120Columns(t *testing.T) {
	rows := sampleRows()
	long := rows[0]
	long.TenantName = "Tailspin Toys with a very long legal name that goes on and on (direct, two Partner Centers)"
	long.Outcome, long.FromVersion, long.HumanWait = "already-current", "", 0
	rows = append(rows, long)
	var b bytes.Buffer
	require.NoError(t, WriteReport(&b, "table", rows))
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	for _, l := range lines {
		require.LessOrEqual(t, len([]rune(l)), 120, "%q", l)
	}
	require.True(t, strings.HasPrefix(lines[0], "TENANT "))
	col := strings.Index(lines[0], "OUTCOME")
	require.Equal(t, "upgraded", strings.Fields(string([]rune(lines[1])[col:]))[0], "columns line up")
	require.Contains(t, lines[1], "2.1.0.3 → 2.5.0.1")
	require.Contains(t, lines[1], "2h30m (1 tasks)")
	require.Contains(t, lines[1], "1/2", "Partner Center connections verified")
	require.Contains(t, lines[2], "…", "a long name is cut")
	require.Contains(t, lines[2], "none → 2.5.0.1")
}

func TestStuckQuery(t *testing.T) {
	q := StuckQuery(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	require.Equal(t, "WorkflowType = 'TenantUpgrade' AND ExecutionStatus = 'Running' AND WorkStageSince < '2026-11-25T08:00:00Z'", q)
}

func TestWebUILinks(t *testing.T) {
	ui := WebUI{BaseURL: "http://localhost:8233/", Namespace: "default"}
	require.Equal(t, "http://localhost:8233/namespaces/default/workflows/work365-upgrade%2F1b0c2a52-5a1e-4d55-9f3e-000000000001%2F2.5.0.1",
		ui.Workflow("work365-upgrade/1b0c2a52-5a1e-4d55-9f3e-000000000001/2.5.0.1"))
	require.Equal(t, "http://localhost:8233/namespaces/default/workflows?query=ExecutionStatus+%3D+%27Running%27+AND+WorkWaitingOn+%3D+%27global-admin%27",
		ui.List("ExecutionStatus = 'Running' AND WorkWaitingOn = 'global-admin'"))
}

// TestReportSaysWhoStandsBehindAConfirmation: desk confirmations show the verified account,
// operator ones for someone else "operator X on behalf of Y", in every format.
func TestReportSaysWhoStandsBehindAConfirmation(t *testing.T) {
	rows := sampleRows()
	t0 := rows[0].Confirmations[0].At
	rows[0].Confirmations = []workflows.Confirmation{
		{TaskID: "get-consent-1", By: "admin@contoso.onmicrosoft.com", At: t0, Identity: &workflows.Identity{Verified: true, Via: "entra-id-token",
			TenantID: "1b0c2a52-5a1e-4d55-9f3e-000000000001", UPN: "admin@contoso.onmicrosoft.com", Name: "Contoso Admin", Client: "work365-desk"}},
		{TaskID: "grant-app-1", By: "alice.ops@partner.example", OnBehalfOf: "Jane (Contoso)", At: t0, Identity: &workflows.Identity{Via: "client-certificate", Name: "alice.ops@partner.example"}},
		{TaskID: "drain-deadline-2", By: "alice", Decision: "proceed", At: t0},
	}
	verified := "get-consent-1 by verified: admin@contoso.onmicrosoft.com (Entra ID, tenant 1b0c2a52-5a1e-4d55-9f3e-000000000001)"
	behalf := "grant-app-1 by operator alice.ops@partner.example on behalf of Jane (Contoso) (client-certificate)"
	var b bytes.Buffer
	require.NoError(t, WriteReport(&b, "csv", rows))
	recs, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Equal(t, verified+" at 2026-12-05T22:00:00Z; "+behalf+" at 2026-12-05T22:00:00Z; drain-deadline-2 by alice at 2026-12-05T22:00:00Z (proceed)", recs[1][8])
	b.Reset()
	require.NoError(t, WriteReport(&b, "markdown", rows))
	require.Contains(t, b.String(), verified)
	require.Contains(t, b.String(), behalf)

	require.Equal(t, "operator bob on behalf of Jane", ConfirmedBy(workflows.Confirmation{By: "bob", OnBehalfOf: "Jane"}))
	require.Equal(t, "bob (declared)", ConfirmedBy(workflows.Confirmation{By: "bob", Identity: &workflows.Identity{Via: "declared", Name: "bob"}}))
}

// The Partner Center column names who confirmed the re-consent the same way.
func TestReportPartnerCenterSaysWhoConfirmed(t *testing.T) {
	rows := sampleRows()
	rows[0].PartnerCenters[0].Confirmations = []workflows.Confirmation{{Kind: workflows.TaskPartnerReconsent, By: "pc-admin@tailspin.example",
		Identity: &workflows.Identity{Verified: true, Via: "entra-id-token", TenantID: "1b0c2a52-5a1e-4d55-9f3e-0000000000e4", UPN: "pc-admin@tailspin.example"}}}
	var b bytes.Buffer
	require.NoError(t, WriteReport(&b, "csv", rows))
	recs, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Contains(t, recs[1][14], "contoso-pc: re-consent verified (grant found) by verified: pc-admin@tailspin.example (Entra ID, tenant 1b0c2a52-5a1e-4d55-9f3e-0000000000e4)")
}
