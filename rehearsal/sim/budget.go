package sim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
)

// Service protection budgets: besides the random faults of Faults, the simulated services
// refuse calls the way Microsoft's limits do, from budgets counted on the simulated clock.
//
//   - Dataverse, per user (the orchestrator's application user) and organisation, in a
//     five-minute sliding window: 6,000 requests, 1,200 s of combined execution time and 52
//     concurrent requests; answered 429 with Retry-After (seconds) and the documented codes
//     0x80072322, 0x80072321, 0x80072326; every answer carries
//     x-ms-ratelimit-burst-remaining-xrm-requests and x-ms-ratelimit-time-remaining-xrm-requests.
//     https://learn.microsoft.com/en-us/power-apps/developer/data-platform/api-limits
//   - Microsoft Graph (identity and access), per app and tenant: 3,500 resource units per 10
//     seconds (a small tenant's budget; 1 unit per request), answered 429 TooManyRequests with
//     Retry-After. https://learn.microsoft.com/en-us/graph/throttling-limits
//
// Windows are measured on the simulated clock; Retry-After is converted to the client's real
// seconds when the clock runs faster than real time.

// Limits are the budgets (scenario key limits:); zero fields take Microsoft's numbers.
type Limits struct {
	Dataverse DataverseLimits `yaml:"dataverse"`
	Graph     GraphLimits     `yaml:"graph"`
}

// DataverseLimits are Dataverse's service protection limits per user.
type DataverseLimits struct {
	// Requests per Window (default 6000).
	Requests int `yaml:"requests"`
	// ExecutionTime is the combined execution time allowed per Window (default 20m).
	ExecutionTime time.Duration `yaml:"executionTime"`
	// Concurrent is the most requests in flight at once (default 52).
	Concurrent int `yaml:"concurrent"`
	// Window is the sliding window (default 5m).
	Window time.Duration `yaml:"window"`
	// RequestTime is the execution time the simulator counts for one request (default 50ms).
	RequestTime time.Duration `yaml:"requestTime"`
}

// GraphLimits are Graph's per-app-per-tenant throttling budget.
type GraphLimits struct {
	// ResourceUnits per Window (default 3500, a tenant under 50 users).
	ResourceUnits int `yaml:"resourceUnits"`
	// Window is the budget's window (default 10s).
	Window time.Duration `yaml:"window"`
}

// Microsoft's documented limits, the defaults.
const (
	DefaultDataverseRequests      = 6000
	DefaultDataverseExecutionTime = 20 * time.Minute
	DefaultDataverseConcurrent    = 52
	DefaultDataverseWindow        = 5 * time.Minute
	DefaultDataverseRequestTime   = 50 * time.Millisecond
	DefaultGraphResourceUnits     = 3500
	DefaultGraphWindow            = 10 * time.Second
)

// WithDefaults fills zero fields with Microsoft's numbers.
func (l Limits) WithDefaults() Limits {
	d, g := &l.Dataverse, &l.Graph
	if d.Requests <= 0 {
		d.Requests = DefaultDataverseRequests
	}
	if d.ExecutionTime <= 0 {
		d.ExecutionTime = DefaultDataverseExecutionTime
	}
	if d.Concurrent <= 0 {
		d.Concurrent = DefaultDataverseConcurrent
	}
	if d.Window <= 0 {
		d.Window = DefaultDataverseWindow
	}
	if d.RequestTime <= 0 {
		d.RequestTime = DefaultDataverseRequestTime
	}
	if g.ResourceUnits <= 0 {
		g.ResourceUnits = DefaultGraphResourceUnits
	}
	if g.Window <= 0 {
		g.Window = DefaultGraphWindow
	}
	return l
}

func (l Limits) problems(bad func(field, format string, args ...any)) {
	d, g := l.Dataverse, l.Graph
	if d.Requests < 0 || d.Concurrent < 0 || g.ResourceUnits < 0 {
		bad("limits", "request, concurrency and resource-unit budgets cannot be negative")
	}
	if d.ExecutionTime < 0 || d.Window < 0 || d.RequestTime < 0 || g.Window < 0 {
		bad("limits", "durations cannot be negative")
	}
}

// charge is one request counted in a window.
type charge struct {
	at   time.Time
	cost time.Duration // execution time (Dataverse)
}

// budget is one user's (Dataverse) or app+tenant's (Graph) window.
type budget struct {
	charges  []charge
	inFlight int
}

// slide drops what left the window.
func (b *budget) slide(now time.Time, window time.Duration) {
	i := 0
	for i < len(b.charges) && !b.charges[i].at.After(now.Add(-window)) {
		i++
	}
	b.charges = b.charges[i:]
}

func (b *budget) spent() (n int, exec time.Duration) {
	for _, c := range b.charges {
		exec += c.cost
	}
	return len(b.charges), exec
}

// realSeconds converts a simulated wait to the client's whole seconds (at least 1).
func (c *Cloud) realSeconds(d time.Duration) string {
	if rt, ok := c.clock.(realTimer); ok {
		d = rt.Real(d)
	}
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// takeBudget charges one call to its budget, with c.mu held. When the budget is spent it writes
// the service's 429 and returns ok false; otherwise release must be called when the call ends
// (it frees the concurrency slot).
func (c *Cloud) takeBudget(w http.ResponseWriter, svc service, t *tenantState, cl Claims) (release func(), ok bool) {
	now := c.clock.Now()
	switch svc.api {
	case permissions.Dataverse:
		l := c.limits.Dataverse
		b := c.budgetOf("dataverse|" + t.id + "|" + strings.ToLower(cl.AppID+cl.Oid))
		b.slide(now, l.Window)
		n, exec := b.spent()
		refuse := func(code, msg string, wait time.Duration) (func(), bool) {
			t.counters.Throttled++
			t.counters.BudgetThrottled++
			w.Header().Set("Retry-After", c.realSeconds(wait))
			writeAPIError(w, http.StatusTooManyRequests, code, msg)
			return nil, false
		}
		switch {
		case b.inFlight >= l.Concurrent:
			return refuse("0x80072326", fmt.Sprintf("Number of concurrent requests exceeded the limit of %d.", l.Concurrent), time.Second)
		case n >= l.Requests:
			return refuse("0x80072322", fmt.Sprintf("Number of requests exceeded the limit of %d over time window of %d seconds.", l.Requests, int(l.Window.Seconds())),
				b.charges[0].at.Add(l.Window).Sub(now))
		case exec+l.RequestTime > l.ExecutionTime:
			// Wait until enough execution time has left the window.
			free, wait := l.ExecutionTime-exec, time.Duration(0)
			for _, ch := range b.charges {
				if free >= l.RequestTime {
					break
				}
				free += ch.cost
				wait = ch.at.Add(l.Window).Sub(now)
			}
			return refuse("0x80072321", fmt.Sprintf("Combined execution time of incoming requests exceeded limit of %d milliseconds over time window of %d seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.",
				l.ExecutionTime.Milliseconds(), int(l.Window.Seconds())), wait)
		}
		b.charges = append(b.charges, charge{at: now, cost: l.RequestTime})
		b.inFlight++
		w.Header().Set("x-ms-ratelimit-burst-remaining-xrm-requests", strconv.Itoa(l.Requests-n-1))
		w.Header().Set("x-ms-ratelimit-time-remaining-xrm-requests", strconv.FormatFloat((l.ExecutionTime-exec-l.RequestTime).Seconds(), 'f', 2, 64))
		return func() {
			c.mu.Lock()
			b.inFlight--
			c.mu.Unlock()
		}, true
	case permissions.Graph:
		l := c.limits.Graph
		b := c.budgetOf("graph|" + t.id + "|" + strings.ToLower(cl.AppID))
		b.slide(now, l.Window)
		if n, _ := b.spent(); n >= l.ResourceUnits {
			t.counters.Throttled++
			t.counters.BudgetThrottled++
			w.Header().Set("Retry-After", c.realSeconds(b.charges[0].at.Add(l.Window).Sub(now)))
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]any{
				"code":    "TooManyRequests",
				"message": "Please retry again later.",
				"innerError": map[string]any{
					"code": "429", "date": now.UTC().Format("2006-01-02T15:04:05"), "message": "Please retry after",
					"request-id": "5c4ae0c1-0000-4000-8000-000000000429", "status": "429",
				},
			}})
			return nil, false
		}
		b.charges = append(b.charges, charge{at: now})
	}
	return func() {}, true
}

// budgetOf returns the named budget, made on first use (c.mu held).
func (c *Cloud) budgetOf(key string) *budget {
	b := c.budgets[key]
	if b == nil {
		b = &budget{}
		c.budgets[key] = b
	}
	return b
}
