package sim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func statuses(t *testing.T, seed int64) ([]int, int) {
	e := newEnv(t, func(s *Scenario) {
		s.Seed = seed
		s.Tenants[0].Faults = &Faults{ThrottleRate: 0.3, RetryAfter: 3 * time.Second, UnavailableRate: 0.1}
	})
	var out []int
	for range 200 {
		st, m, h := e.do("GET", "https://graph.microsoft.com/v1.0/subscribedSkus", e.token(tenantA, GraphResource), nil)
		switch st {
		case 429:
			if h.Get("Retry-After") != "3" || errCode(m) != "TooManyRequests" {
				t.Fatalf("429: %v %v", h, m)
			}
		case 503:
			if h.Get("Retry-After") != "3" {
				t.Fatalf("503 without Retry-After: %v", h)
			}
		case 200:
		default:
			t.Fatalf("status %d", st)
		}
		out = append(out, st)
	}
	k := e.cloud.TenantCounters(tenantA)
	if n := count(out, 429); k.Throttled != n || k.Unavailable != count(out, 503) {
		t.Fatalf("counters %d/%d vs served %d/%d", k.Throttled, k.Unavailable, n, count(out, 503))
	}
	// Tenant B has no faults.
	for range 20 {
		if st, _, _ := e.do("GET", "https://graph.microsoft.com/v1.0/subscribedSkus", e.token(tenantB, GraphResource), nil); st != 200 {
			t.Fatalf("tenant B: %d", st)
		}
	}
	return out, k.Throttled
}

func count(s []int, v int) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func TestFaultsAtRateDeterministicBySeed(t *testing.T) {
	a, throttled := statuses(t, 5)
	if throttled < 40 || throttled > 80 {
		t.Fatalf("429s: %d of 200 at rate 0.3", throttled)
	}
	if u := count(a, 503); u < 8 || u > 35 {
		t.Fatalf("503s: %d of 200 at rate 0.1", u)
	}
	b, _ := statuses(t, 5)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different faults")
	}
	c, _ := statuses(t, 6)
	if slices.Equal(a, c) {
		t.Fatal("different seeds, same faults")
	}
}

func TestNoFaultsOption(t *testing.T) {
	s := testScenario()
	s.Faults = Faults{ThrottleRate: 1}
	c := New(s, Options{NoFaults: true, Clock: s.NewClock()})
	defer c.Close()
	e := &env{t: t, cloud: c, hc: c.HTTPClient(), toks: map[string]string{}}
	e.graph(tenantA, "subscribedSkus", 200)
}

func TestAdminEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	post := func(path string, body any) (int, map[string]any) {
		st, m, _ := e.do("POST", "http://sim.local"+path, "", body)
		return st, m
	}
	if st, m := post("/actions/register-mfa", ActionRequest{Tenant: tenantA, UPN: "svc@contoso.onmicrosoft.com"}); st != 200 {
		t.Fatalf("register-mfa: %d %v", st, m)
	}
	st, m := post("/actions/get-consent", ActionRequest{Tenant: tenantA})
	if st != 200 || m["linkToken"] == "" {
		t.Fatalf("get-consent: %d %v", st, m)
	}
	if st, m := post("/actions/begin-upgrade", ActionRequest{Tenant: tenantA, LinkToken: m["linkToken"].(string)}); st != 409 || errCode(m) != "ActionRefused" {
		t.Fatalf("begin-upgrade with nothing staged: %d %v", st, m)
	}
	if st, _ := post("/actions/drain-jobs", ActionRequest{Tenant: "00000000-0000-0000-0000-000000000000"}); st != 404 {
		t.Fatalf("unknown tenant: %d", st)
	}
	if st, m := post("/clock/advance", map[string]string{"by": "20m"}); st != 200 || !strings.HasPrefix(m["now"].(string), "2026-05-01T08:20:00") {
		t.Fatalf("advance: %d %v", st, m)
	}
	st, m, _ = e.do("GET", "http://sim.local/state/"+tenantA, "", nil)
	if st != 200 || m["pendingJobs"].(float64) != 0 || m["linksValid"].(float64) != 0 {
		t.Fatalf("state: %d %v", st, m) // 10 jobs drained at 1/min; the link expired
	}
	resp, err := e.hc.Get("http://sim.local/counters")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all Counters
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatal(err, resp.StatusCode)
	}
	k := all.Tenants[tenantA]
	if k.LinksIssued != 1 || k.BeginUpgradeRefusals != 1 || k.Actions["register-mfa"] != 1 {
		t.Fatalf("counters: %+v", k)
	}
}
