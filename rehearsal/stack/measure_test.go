package stack

import (
	"strings"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

func TestSummaryTellsTheSlowdownAgainstTheTarget(t *testing.T) {
	ff := Figures{Tenants: 200, Duration: 4 * time.Minute, Outcomes: map[string]int{"upgraded": 200}}
	f := Figures{Tenants: 200, Duration: 10 * time.Minute, Outcomes: map[string]int{"upgraded": 199, "failed": 1},
		Throttled: 812, Waits: sim.ThrottleWaits{Throttled: 812, Measured: 800, Median: 100 * time.Millisecond}}
	if got := f.Slowdown(ff); got != 2.5 {
		t.Fatalf("slowdown %v, want 2.5", got)
	}
	s := f.Summary(ff)
	for _, want := range []string{"199 upgraded, 1 failed", "slowdown 2.50x: meets the target", "812 answered 429", "median 100ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	f.Duration = 13 * time.Minute
	if s := f.Summary(ff); !strings.Contains(s, "OVER the target") {
		t.Errorf("3.25x not called over the target:\n%s", s)
	}
	if f.Done() != 199 {
		t.Errorf("done %d", f.Done())
	}
	if s := f.Summary(Figures{}); strings.Contains(s, "slowdown") {
		t.Errorf("no fault-free run, yet a slowdown:\n%s", s)
	}
}
