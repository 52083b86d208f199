package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
)

// The demo on a real embedded Temporal server, as `go run ./rehearsal/devstack --headless`
// runs it: the example scenario as a fleet, the canary baked and approved by the operator
// (autopilot), the bulk wave finishing, a table that fits 120 columns, and the full reports.
func TestDemoRunsTheExampleFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a rehearsal of about two minutes")
	}
	const speed = 120
	scn, err := sim.LoadScenario("../../examples/sim-scenario.yaml")
	require.NoError(t, err)
	example, err := inventory.Load("../../examples/fleet.yaml")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// As devstack runs it: the people confirm through the task desk.
	s, err := stack.Start(ctx, stack.Options{Scenario: scn, Speed: speed, DeskConfirms: true})
	require.NoError(t, err)
	defer s.Stop()

	var out bytes.Buffer
	state := t.TempDir()
	md, csvPath, err := demo(ctx, s, example, demoOptions{fleet: "example", state: state, address: s.Server.FrontendAddress(), namespace: "default", speed: speed, out: &out})
	text := out.String()
	require.NoError(t, err, text)
	t.Log("\n" + text)

	for _, want := range []string{
		"wave canary     1 tenants (1 at a time, bake 30m, then approval): Contoso",
		"wave bulk       1 tenants (20 at a time): Fabrikam",
		"fleet waits on: the tenants of wave canary",
		"fleet waits on: bake time of wave canary until ",
		"the operator (autopilot) approves wave canary",
		"fleet waits on: the tenants of wave bulk",
		"wave bulk    1/1 done  0 running  0 waiting on people  0 failed",
		"fleet waits on: nothing: every wave has finished",
	} {
		require.Contains(t, text, want)
	}
	require.Less(t, strings.Index(text, "approves wave canary"), strings.Index(text, "] Fabrikam: "), "the bulk starts after the approval")

	table := text[strings.Index(text, "TENANT "):]
	table = table[:strings.Index(table, "\n\n")]
	lines := strings.Split(table, "\n")
	require.Len(t, lines, 3, table)
	for _, l := range lines {
		require.LessOrEqual(t, len([]rune(l)), 120, l)
	}
	require.Contains(t, lines[1], "Contoso")
	require.Contains(t, lines[1], "upgraded")
	require.Contains(t, lines[1], "2.1.0.3 → 2.5.0.1")
	require.Contains(t, lines[1], "2/2", "both Partner Center connections verified")
	require.Contains(t, lines[2], "Fabrikam")
	require.Contains(t, text, md)
	require.Contains(t, text, csvPath)

	report, err := os.ReadFile(md)
	require.NoError(t, err)
	for _, want := range []string{
		"contoso-pc: re-consent verified", "contoso-eu-pc: re-consent verified",
		"| partner-center |", "skipped: indirect reseller",
		"upgrade link of round 1 expired after 15m without Begin Upgrade", // runbook time, at ×120
	} {
		require.Contains(t, string(report), want)
	}
	csvText, err := os.ReadFile(csvPath)
	require.NoError(t, err)
	require.Contains(t, string(csvText), "partner_centers")

	confirmed := 0
	for _, e := range s.Autopilot.Log() {
		if e.Confirmed {
			confirmed++
			require.Equal(t, "desk", e.Via, "%s %s was confirmed around the desk", e.WorkflowID, e.TaskID)
		}
	}
	require.Positive(t, confirmed, "people confirmed tasks at the desk")
}
