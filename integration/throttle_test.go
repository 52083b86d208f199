package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
)

// TestThrottlingRehearsal upgrades a generated fleet of 200 tenants three times side by side,
// each on its own embedded server and simulated cloud: without faults; with mild ones (10% of
// Microsoft API calls answered 429 with Retry-After 1 s, 2% 503, 20 ms latency); and with
// heavy ones (50% 429 with Retry-After 2 s, 5% 503, 50 ms latency on every endpoint). Every
// tenant reaches its goal in all three, with one Work 365 import each and nothing left
// frozen, and no caller comes back before the Retry-After it was given. It prints the
// durations, the slowdowns against the fault-free run (target: at most 3x; a figure, not an
// assertion, since the machine's load decides it) and waited − asked after each 429.
// THROTTLE_TENANTS and THROTTLE_SPEED change the fleet's size and the simulated time's speed.
func TestThrottlingRehearsal(t *testing.T) {
	if testing.Short() {
		t.Skip("throttling rehearsal of 200 tenants: skipped with -short")
	}
	tenants, speed := 200, 240.0
	if v, err := strconv.Atoi(os.Getenv("THROTTLE_TENANTS")); err == nil && v > 0 {
		tenants = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("THROTTLE_SPEED"), 64); err == nil && v > 0 {
		speed = v
	}
	runs := []struct {
		name   string
		faults sim.Faults
	}{
		{"fault-free", sim.Faults{}},
		{"mild", sim.Faults{ThrottleRate: 0.10, UnavailableRate: 0.02, RetryAfter: time.Second, Latency: 20 * time.Millisecond}},
		{"heavy", sim.Faults{ThrottleRate: 0.50, UnavailableRate: 0.05, RetryAfter: 2 * time.Second, Latency: 50 * time.Millisecond}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	figures := make([]stack.Figures, len(runs))
	stacks := make([]*stack.Stack, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		scn := sim.Generate(tenants, 12)
		scn.Faults = r.faults
		s, err := stack.Start(ctx, stack.Options{Scenario: scn, Speed: speed})
		require.NoError(t, err, r.name)
		t.Cleanup(s.Stop)
		stacks[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			figures[i], errs[i] = s.LaunchAndWait(ctx, "throttle-"+r.name, nil)
		}()
	}
	wg.Wait()
	for i, r := range runs {
		require.NoError(t, errs[i], r.name)
	}

	report := fmt.Sprintf("Throttling rehearsal: %d tenants at simulated speed x%.0f, three fleets side by side\n", tenants, speed)
	for i, r := range runs {
		var against stack.Figures
		if i > 0 {
			against = figures[0]
		}
		report += fmt.Sprintf("--- %s (%s)\n%s", r.name, describeFaults(r.faults), figures[i].Summary(against))
	}
	fmt.Print(report) // the figures, also without -v
	t.Log(report)

	for i, r := range runs {
		f, s := figures[i], stacks[i]
		require.Equal(t, tenants, f.Done(), "%s: every tenant reaches its goal: %v", r.name, f.Outcomes)
		for _, row := range f.Rows {
			c := s.Cloud.TenantCounters(row.TenantID)
			require.Equal(t, 1, c.ImportsSucceeded-c.PortalInstalls, "%s/%s: Work 365 imported exactly once", r.name, row.TenantName)
			st, ok := s.Cloud.State(row.TenantID)
			require.True(t, ok)
			require.False(t, st.Frozen, "%s/%s is left frozen", r.name, row.TenantName)
		}
		if r.faults.ThrottleRate == 0 {
			require.Zero(t, f.Throttled, r.name)
			continue
		}
		require.Positive(t, f.Waits.Measured, "%s: callers came back after 429s", r.name)
		require.Zero(t, f.Waits.Early, "%s: no caller comes back before its Retry-After", r.name)
		require.GreaterOrEqual(t, f.Waits.Min, time.Duration(0), r.name)
	}
}

func describeFaults(f sim.Faults) string {
	if f == (sim.Faults{}) {
		return "no faults"
	}
	return fmt.Sprintf("429 %.0f%% with Retry-After %s, 503 %.0f%%, latency %s", f.ThrottleRate*100, f.RetryAfter, f.UnavailableRate*100, f.Latency)
}
