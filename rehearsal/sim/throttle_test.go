package sim

import (
	"testing"
	"time"
)

// TestThrottleWaitsMeasuresEachCaller: the cloud records each 429's Retry-After by caller and
// how long that caller took to come back; a caller that comes back early is counted, other
// callers' requests do not end a wait.
func TestThrottleWaitsMeasuresEachCaller(t *testing.T) {
	e := newEnv(t, func(s *Scenario) {
		s.Tenants[0].Faults = &Faults{ThrottleRate: 1, RetryAfter: 2 * time.Second}
	})
	skus := "https://graph.microsoft.com/v1.0/subscribedSkus"
	tokA, tokB := e.token(tenantA, GraphResource), e.token(tenantB, GraphResource)

	if st, _, h := e.do("GET", skus, tokA, nil); st != 429 || h.Get("Retry-After") != "2" {
		t.Fatalf("want 429 with Retry-After 2, got %d %v", st, h)
	}
	e.clock.Advance(time.Second)
	e.do("GET", skus, tokB, nil) // another tenant: not the throttled caller
	e.clock.Advance(1500 * time.Millisecond)
	e.do("GET", skus, tokA, nil) // came back 0.5 s after the 2 s asked (and is throttled again)
	e.clock.Advance(time.Second)
	e.do("GET", skus, tokA, nil) // came back 1 s early

	w := e.cloud.ThrottleWaits()
	if w.Throttled != 3 || w.Measured != 2 || w.Early != 1 {
		t.Fatalf("waits: %+v", w)
	}
	if w.Min != -time.Second || w.Max != 500*time.Millisecond {
		t.Fatalf("waited − asked: min %s max %s, want -1s and 0.5s", w.Min, w.Max)
	}
	if w.String() == "" {
		t.Fatal("no summary")
	}
}

func TestParseFaults(t *testing.T) {
	f, err := ParseFaults("429=50%, 503=5%,latency=50ms,retry-after=2s")
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{ThrottleRate: 0.5, UnavailableRate: 0.05, Latency: 50 * time.Millisecond, RetryAfter: 2 * time.Second}
	if f != want {
		t.Fatalf("got %+v, want %+v", f, want)
	}
	for _, bad := range []string{"429=10", "429=110%", "404=1%", "latency=fast", "retry-after=1500ms", "429=60%,503=50%", "429"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
