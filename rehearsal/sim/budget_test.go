package sim

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func errorOf(m map[string]any) string { return fmt.Sprint(m["error"]) }

// TestDataverseRequestBudget: the number-of-requests budget of the 5-minute sliding window,
// with the remaining budget on every answer and Microsoft's 429 when it is spent.
func TestDataverseRequestBudget(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.Limits.Dataverse.Requests = 3 })
	tok := e.token(tenantA, orgA)
	for i := 2; i >= 0; i-- {
		st, m, h := e.do("GET", orgA+"/api/data/v9.2/WhoAmI", tok, nil)
		if st != 200 || h.Get("x-ms-ratelimit-burst-remaining-xrm-requests") != fmt.Sprint(i) || h.Get("x-ms-ratelimit-time-remaining-xrm-requests") == "" {
			t.Fatalf("request with %d left: %d %v %v", i, st, m, h)
		}
	}
	st, m, h := e.do("GET", orgA+"/api/data/v9.2/WhoAmI", tok, nil)
	want := fmt.Sprint(map[string]any{"code": "0x80072322", "message": "Number of requests exceeded the limit of 3 over time window of 300 seconds."})
	if st != 429 || errorOf(m) != want || h.Get("Retry-After") != "300" {
		t.Fatalf("over the budget: %d %v Retry-After %q", st, m, h.Get("Retry-After"))
	}
	if c := e.cloud.TenantCounters(tenantA); c.BudgetThrottled != 1 {
		t.Fatalf("budget 429s counted: %d", c.BudgetThrottled)
	}
	e.clock.Advance(5 * time.Minute)
	if st, m, _ := e.do("GET", orgA+"/api/data/v9.2/WhoAmI", tok, nil); st != 200 {
		t.Fatalf("after the window slid: %d %v", st, m)
	}
}

func TestDataverseExecutionTimeBudget(t *testing.T) {
	e := newEnv(t, func(s *Scenario) {
		s.Limits.Dataverse.RequestTime = time.Minute
		s.Limits.Dataverse.ExecutionTime = 2 * time.Minute
	})
	tok := e.token(tenantA, orgA)
	for i := 0; i < 2; i++ {
		e.clock.Advance(time.Minute)
		if st, m, _ := e.do("GET", orgA+"/api/data/v9.2/WhoAmI", tok, nil); st != 200 {
			t.Fatalf("request %d: %d %v", i, st, m)
		}
	}
	st, m, h := e.do("GET", orgA+"/api/data/v9.2/WhoAmI", tok, nil)
	if st != 429 || !strings.Contains(errorOf(m), "0x80072321") ||
		!strings.Contains(errorOf(m), "Combined execution time of incoming requests exceeded limit of 120000 milliseconds over time window of 300 seconds.") ||
		h.Get("Retry-After") != "240" { // the first request (at +1m) leaves the window at +6m, 4 minutes from now (+2m)
		t.Fatalf("execution time spent: %d %v Retry-After %q", st, m, h.Get("Retry-After"))
	}
}

func TestDataverseConcurrencyBudget(t *testing.T) {
	e := newEnv(t, func(s *Scenario) {
		s.Limits.Dataverse.Concurrent = 1
		s.Faults = Faults{Latency: 400 * time.Millisecond}
	})
	tok := e.token(tenantA, orgA)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var refused map[string]any
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, m, _ := e.do("GET", orgA+"/api/data/v9.2/WhoAmI", tok, nil)
			mu.Lock()
			statuses[st]++
			if st == 429 {
				refused = m
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[200] != 1 || statuses[429] != 1 || !strings.Contains(errorOf(refused), "0x80072326") ||
		!strings.Contains(errorOf(refused), "Number of concurrent requests exceeded the limit of 1.") {
		t.Fatalf("two requests at once with a limit of one: %v %v", statuses, refused)
	}
}

// TestGraphAppTenantBudget: Graph's per-app-per-tenant budget; another tenant's budget is its
// own.
func TestGraphAppTenantBudget(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.Limits.Graph.ResourceUnits = 2 })
	tok := e.token(tenantA, GraphResource)
	for i := 0; i < 2; i++ {
		if st, m, _ := e.do("GET", "https://graph.microsoft.com/v1.0/subscribedSkus", tok, nil); st != 200 {
			t.Fatalf("request %d: %d %v", i, st, m)
		}
	}
	st, m, h := e.do("GET", "https://graph.microsoft.com/v1.0/subscribedSkus", tok, nil)
	if st != 429 || !strings.Contains(errorOf(m), "code:TooManyRequests") || h.Get("Retry-After") != "10" {
		t.Fatalf("over the budget: %d %v Retry-After %q", st, m, h.Get("Retry-After"))
	}
	if st, m, _ := e.do("GET", "https://graph.microsoft.com/v1.0/subscribedSkus", e.token(tenantB, GraphResource), nil); st != 200 {
		t.Fatalf("another tenant: %d %v", st, m)
	}
	e.clock.Advance(10 * time.Second)
	if st, m, _ := e.do("GET", "https://graph.microsoft.com/v1.0/subscribedSkus", tok, nil); st != 200 {
		t.Fatalf("after the window: %d %v", st, m)
	}
}

func TestLimitsValidated(t *testing.T) {
	s := testScenario()
	s.Limits.Dataverse.Requests = -1
	probs := s.Validate()
	if len(probs) != 1 || probs[0].Field != "limits" {
		t.Fatalf("negative budget: %v", probs)
	}
}
