package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// Figures are what a rehearsal run measured: how long the whole fleet took, how each
// upgrade ended, and what the simulated cloud saw (429s and how long callers waited after
// them).
type Figures struct {
	Tenants  int
	Duration time.Duration
	// Outcomes counts upgrades by outcome (upgraded, already-current, failed, cancelled).
	Outcomes map[string]int
	Rows     []ops.ReportRow
	// Throttled and Unavailable count the 429 and 503 answers served, Calls every API call.
	Throttled, Unavailable, Calls int
	Waits                         sim.ThrottleWaits
}

// Done counts the upgrades that reached their goal (upgraded or already current).
func (f Figures) Done() int {
	return f.Outcomes[string(workflows.OutcomeUpgraded)] + f.Outcomes[string(workflows.OutcomeAlreadyCurrent)]
}

// Progress is told, every couple of seconds, how many upgrades have finished and how many of
// the others wait on people.
type Progress func(finished, waitingOnPeople, total int)

// LaunchAndWait launches one upgrade per scenario tenant as fleet, waits until every one has
// finished, and returns the figures of the run. The duration runs from the launch to the last
// upgrade's end.
func (s *Stack) LaunchAndWait(ctx context.Context, fleet string, progress Progress) (Figures, error) {
	start := time.Now()
	launched, err := s.Ops.Launch(ctx, s.Inventory(fleet))
	if err != nil {
		return Figures{}, err
	}
	q := fmt.Sprintf("WorkflowType = '%s' AND WorkFleet = '%s'", workflows.TenantUpgradeWorkflow, fleet)
	total := len(launched)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		// A list that fails (an embedded server slowed down by a loaded machine times out) is
		// asked again at the next tick; only the end of ctx ends the wait.
		us, err := s.Ops.List(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return Figures{}, ctx.Err()
			}
			select {
			case <-ctx.Done():
				return Figures{}, ctx.Err()
			case <-tick.C:
			}
			continue
		}
		done, waiting := 0, 0
		for _, u := range us {
			if u.Status != "Running" {
				done++
			} else if u.WaitingOn != "" && u.WaitingOn != string(workflows.Nobody) {
				waiting++
			}
		}
		if progress != nil {
			progress(done, waiting, total)
		}
		if done >= total && len(us) >= total {
			break
		}
		select {
		case <-ctx.Done():
			return Figures{}, ctx.Err()
		case <-tick.C:
		}
	}
	f := Figures{Tenants: total, Duration: time.Since(start), Outcomes: map[string]int{}}
	for attempt := 1; ; attempt++ {
		if f.Rows, err = s.Ops.Report(ctx, q); err == nil {
			break
		}
		if attempt == 5 || ctx.Err() != nil {
			return f, err
		}
		time.Sleep(time.Duration(attempt) * 2 * time.Second)
	}
	for _, r := range f.Rows {
		f.Outcomes[r.Outcome]++
	}
	for _, c := range s.Cloud.Counters().Tenants {
		f.Throttled += c.Throttled
		f.Unavailable += c.Unavailable
		for _, n := range c.Calls {
			f.Calls += n
		}
	}
	f.Waits = s.Cloud.ThrottleWaits()
	return f, nil
}

// Summary is the figures in a few lines, against a fault-free run of the same fleet when
// one is given (faultFree.Tenants > 0): the slowdown and whether it meets the target of 3×.
func (f Figures) Summary(faultFree Figures) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenants %d: %s\n", f.Tenants, outcomes(f.Outcomes))
	fmt.Fprintf(&b, "duration %s\n", f.Duration.Round(time.Second))
	fmt.Fprintf(&b, "simulated cloud: %d API calls, %d answered 429, %d answered 503\n", f.Calls, f.Throttled, f.Unavailable)
	fmt.Fprintf(&b, "after a 429 (simulated time): %s\n", f.Waits)
	if faultFree.Tenants > 0 {
		fmt.Fprintf(&b, "fault-free run of the same fleet: %s in %s\n", outcomes(faultFree.Outcomes), faultFree.Duration.Round(time.Second))
		verdict := "meets the target of at most 3x"
		if f.Slowdown(faultFree) > 3 {
			verdict = "OVER the target of 3x"
		}
		fmt.Fprintf(&b, "slowdown %.2fx: %s\n", f.Slowdown(faultFree), verdict)
	}
	return b.String()
}

// Slowdown is how many times longer this run took than the fault-free one.
func (f Figures) Slowdown(faultFree Figures) float64 {
	if faultFree.Duration <= 0 {
		return 0
	}
	return float64(f.Duration) / float64(faultFree.Duration)
}

func outcomes(m map[string]int) string {
	known := []workflows.Outcome{workflows.OutcomeUpgraded, workflows.OutcomeAlreadyCurrent, workflows.OutcomeFailed, workflows.OutcomeCancelled}
	parts := make([]string, 0, len(m))
	for _, k := range known {
		if m[string(k)] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[string(k)], k))
		}
	}
	for k, n := range m {
		if !slices.Contains(known, workflows.Outcome(k)) {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	return strings.Join(parts, ", ")
}
