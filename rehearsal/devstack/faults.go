package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
)

// measureFaults is the throttling rehearsal (--faults, --compare-faultfree): the tenants are
// launched one by one, as fast as the stack takes them, and the figures that matter under
// faults are printed — duration, slowdown against a fault-free twin, and how long callers
// waited after each 429 compared with what they were asked.
func measureFaults(ctx context.Context, s *stack.Stack, scn *sim.Scenario, f flags, logger *zap.Logger, out io.Writer) error {
	// The fault-free twin runs beside the rehearsal, on its own embedded server, so that both
	// see the same machine (a loaded machine slows both alike).
	twin := make(chan twinResult, 1)
	if f.compare {
		ff := cloneScenario(scn)
		ff.Faults = sim.Faults{}
		go func() {
			t, err := stack.Start(ctx, stack.Options{Namespace: f.namespace, StateDir: filepath.Join(f.state, "fault-free"), Scenario: ff, Speed: f.speed, Logger: logger.Named("fault-free")})
			if err != nil {
				twin <- twinResult{err: fmt.Errorf("start the fault-free twin: %w", err)}
				return
			}
			defer t.Stop()
			fig, err := t.LaunchAndWait(ctx, f.fleet, nil)
			twin <- twinResult{fig, err}
		}()
	}
	figures, err := s.LaunchAndWait(ctx, f.fleet, progressBar(len(scn.Tenants)))
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	if err := ops.WriteTable(out, Simulated(figures.Rows, f.speed)); err != nil {
		return err
	}
	var faultFree stack.Figures
	if f.compare {
		fmt.Fprintln(out, "\nWaiting for the fault-free twin…")
		t := <-twin
		if t.err != nil {
			return t.err
		}
		faultFree = t.figures
	}
	fmt.Fprintf(out, "\nFaults: %s\n%s", faultsText(scn.Faults), figures.Summary(faultFree))
	if figures.Waits.Early > 0 {
		return fmt.Errorf("%d callers came back before the Retry-After they were given", figures.Waits.Early)
	}
	if f.compare && figures.Done() < faultFree.Done() {
		return fmt.Errorf("with faults %d upgrades reached their goal, without faults %d", figures.Done(), faultFree.Done())
	}
	return nil
}

// progressBar shows finished upgrades and how many of the others wait on people.
func progressBar(total int) stack.Progress {
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetDescription("upgrades finished"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(500*time.Millisecond),
	)
	return func(done, waiting, total int) {
		bar.Describe(fmt.Sprintf("upgrades finished, %d waiting on people", waiting))
		_ = bar.Set(done)
		if done >= total {
			_ = bar.Finish()
		}
	}
}

type twinResult struct {
	figures stack.Figures
	err     error
}

// cloneScenario copies a scenario deeply enough for a second cloud (each cloud keeps its own
// state; the tenants' own fault overrides are pointers).
func cloneScenario(s *sim.Scenario) *sim.Scenario {
	c := *s
	c.Tenants = append([]sim.Tenant(nil), s.Tenants...)
	for i := range c.Tenants {
		c.Tenants[i].Faults = nil
	}
	return &c
}

func faultsText(f sim.Faults) string {
	if f == (sim.Faults{}) {
		return "none"
	}
	ra := f.RetryAfter
	if ra <= 0 {
		ra = time.Second
	}
	return fmt.Sprintf("429 %.0f%%, 503 %.0f%% (Retry-After %s), latency %s", f.ThrottleRate*100, f.UnavailableRate*100, ra, f.Latency)
}
