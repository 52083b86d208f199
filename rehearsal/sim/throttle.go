package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// How long callers wait after a 429.
//
// Microsoft asks a throttled client to wait at least Retry-After before it sends again
// (https://learn.microsoft.com/en-us/power-apps/developer/data-platform/api-limits,
// https://learn.microsoft.com/en-us/graph/throttling). The cloud remembers each 429 it served
// by caller — the tenant and the request's client-request-id, else its method and URL: the
// request a client would resend — with
// the Retry-After it asked for, and when that caller's next request arrives it records how
// much longer than asked the caller waited. A caller that comes back early shows as a
// negative excess. Times are the cloud's clock: with a ScaledClock, Retry-After is in
// simulated seconds and so are the waits (the rehearsal stack scales the client's sleeps to
// match).

// waitLog is the record of 429s and the waits after them. Its zero value is ready.
type waitLog struct {
	mu       sync.Mutex
	pending  map[string]pendingThrottle
	excess   []time.Duration
	throttle int
}

type pendingThrottle struct {
	at    time.Time
	asked time.Duration
}

// arrived notes a caller's request arriving at now: it ends the wait after its last 429.
func (l *waitLog) arrived(caller string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.pending[caller]
	if !ok {
		return
	}
	delete(l.pending, caller)
	l.excess = append(l.excess, now.Sub(p.at)-p.asked)
}

// throttled notes a 429 answered to caller at now, asking for a wait of asked.
func (l *waitLog) throttled(caller string, now time.Time, asked time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil {
		l.pending = map[string]pendingThrottle{}
	}
	l.pending[caller] = pendingThrottle{at: now, asked: asked}
	l.throttle++
}

// ThrottleWaits sums up how long callers waited after a 429 beyond the Retry-After they were
// given (waited − asked).
type ThrottleWaits struct {
	// Throttled counts 429 answers; Measured those followed by the caller's next request
	// (the others were never resent: the caller gave up or moved on).
	Throttled int `json:"throttled"`
	Measured  int `json:"measured"`
	// Early counts callers that came back before Retry-After had passed.
	Early int `json:"early"`
	// Min, Median and Max are of waited − asked over the measured waits.
	Min    time.Duration `json:"min"`
	Median time.Duration `json:"median"`
	Max    time.Duration `json:"max"`
}

// String reads like "429 answered 812 times, 790 resent: waited − asked min 0.01s, median 0.1s,
// max 30s; 0 early".
func (w ThrottleWaits) String() string {
	return fmt.Sprintf("429 answered %d times, %d followed by the caller's next request: waited − asked min %s, median %s, max %s; %d early",
		w.Throttled, w.Measured, w.Min, w.Median, w.Max, w.Early)
}

// ThrottleWaits reports how long callers waited after the 429s served so far.
func (c *Cloud) ThrottleWaits() ThrottleWaits {
	l := &c.waits
	l.mu.Lock()
	defer l.mu.Unlock()
	w := ThrottleWaits{Throttled: l.throttle, Measured: len(l.excess)}
	if len(l.excess) == 0 {
		return w
	}
	s := slices.Clone(l.excess)
	slices.Sort(s)
	w.Min, w.Median, w.Max = s[0], s[len(s)/2], s[len(s)-1]
	for _, d := range s {
		if d < 0 {
			w.Early++
		}
	}
	return w
}

// callerOf names the caller of an API request for the wait record: the tenant and the
// client-request-id a client keeps across the resends of one request (Microsoft's SDKs and
// msapi send one), or, without it, the method and the URL (host, path and query) — what a
// client resends after a 429. The ID keeps two activities that read the same URL at once
// from being taken for one caller.
func callerOf(tenantID, requestID, method, host, uri string) string {
	if requestID != "" {
		return tenantID + " id " + requestID
	}
	return tenantID + " " + method + " " + strings.ToLower(host) + uri
}

// ParseFaults reads a fault list such as "429=10%,503=2%,latency=20ms,retry-after=1s" (the
// devstack's --faults): the share of calls answered 429 and 503, the real latency added to
// every API call, and the Retry-After of both answers (default 1s).
func ParseFaults(s string) (Faults, error) {
	var f Faults
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return f, fmt.Errorf("fault %q: want key=value, e.g. 429=10%%", part)
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "429", "503":
			pct, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
			if err != nil || !strings.HasSuffix(val, "%") || pct < 0 || pct > 100 {
				return f, fmt.Errorf("fault %q: want a percentage from 0%% to 100%%, e.g. %s=10%%", part, key)
			}
			if key == "429" {
				f.ThrottleRate = pct / 100
			} else {
				f.UnavailableRate = pct / 100
			}
		case "latency", "retry-after":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return f, fmt.Errorf("fault %q: want a duration such as 20ms or 2s", part)
			}
			if key == "latency" {
				f.Latency = d
			} else {
				if d%time.Second != 0 {
					return f, fmt.Errorf("fault %q: Retry-After is whole seconds", part)
				}
				f.RetryAfter = d
			}
		default:
			return f, fmt.Errorf("fault %q: unknown; use 429=P%%, 503=P%%, latency=D, retry-after=D", part)
		}
	}
	if f.ThrottleRate+f.UnavailableRate > 1 {
		return f, fmt.Errorf("faults %q: 429 and 503 together exceed 100%%", s)
	}
	return f, nil
}
