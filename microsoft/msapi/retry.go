package msapi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
)

// In-place retry.
//
// An activity makes several calls; when Temporal alone retried, one throttled call threw away
// the whole attempt and the calls before it were repeated (and throttled again). So the client
// resends a request that failed for a passing reason, as Microsoft asks clients to:
//
//   - Dataverse service protection limits (429 with Retry-After):
//     https://learn.microsoft.com/en-us/power-apps/developer/data-platform/api-limits
//   - Microsoft Graph throttling (429/503/504, Retry-After):
//     https://learn.microsoft.com/en-us/graph/throttling
//
// It waits at least the delay the service asked for (Retry-After as delta-seconds or an
// HTTP-date, or x-ms-retry-after-ms, whichever is longer), otherwise a jittered exponential
// backoff. It gives up and returns the *Error when the attempts are spent, when the wait would
// pass the client's total wait bound, or when it would not end DeadlineReserve before the
// context's deadline: the error is then Retryable with the service's RetryAfter, and the
// caller's retry policy (Temporal's) takes over. It never sleeps past the deadline.

// Defaults of the in-place retry.
const (
	// DefaultMaxAttempts bounds how many times one request is sent.
	DefaultMaxAttempts = 6
	// DefaultMaxWait bounds the time one request spends waiting between its attempts.
	DefaultMaxWait = 5 * time.Minute
	// DefaultWaitHookInterval is how often the wait hook is called during a long wait; well
	// under the shortest activity heartbeat timeout (2 min).
	DefaultWaitHookInterval = 10 * time.Second
	// DeadlineReserve is the time a wait must leave before the context's deadline for the
	// next attempt to have a chance; a wait that does not leave it is not started.
	DeadlineReserve = 5 * time.Second

	backoffBase = time.Second
	backoffCap  = 30 * time.Second
	// maxJitterOnAsked is the most added on top of a delay the service asked for, so clients
	// throttled together do not come back together.
	maxJitterOnAsked = time.Second
)

// Wait is one pause before a request is sent again. A WaitHook sees it while the client waits.
type Wait struct {
	Service, Operation, Method, Path string
	// Attempt is the attempt that failed (1 = the first send).
	Attempt int
	// Status is the HTTP status of the failed attempt (0: no answer).
	Status int
	// Delay is the whole pause; Remaining is what is left of it when the hook is called.
	Delay, Remaining time.Duration
}

// WaitHook is called when a wait starts and then every DefaultWaitHookInterval until it ends.
// The worker passes one that heartbeats the running activity, so a long wait is not taken for
// a hung worker. It must return quickly.
type WaitHook func(ctx context.Context, w Wait)

// CallStats sums up one request (one page of a listing) when it is over.
type CallStats struct {
	Service, Operation, Method, Path string
	// Attempts is how many times the request was sent (1: no retry).
	Attempts int
	// Waited is the time spent waiting between attempts.
	Waited time.Duration
	// Err is what the call returned (nil on success).
	Err error
}

// StatsHook receives the CallStats of every request, for logs and metrics. It must return
// quickly and must not keep Err's details anywhere secrets must not go (they hold none).
type StatsHook func(ctx context.Context, s CallStats)

type retryConfig struct {
	maxAttempts int
	maxWait     time.Duration
	hookEvery   time.Duration
	sleep       func(ctx context.Context, d time.Duration) error
	jitter      func(n time.Duration) time.Duration
	onWait      WaitHook
	onDone      StatsHook
}

func defaultRetry() retryConfig {
	return retryConfig{
		maxAttempts: DefaultMaxAttempts,
		maxWait:     DefaultMaxWait,
		hookEvery:   DefaultWaitHookInterval,
		sleep:       ctxtime.Sleep,
		jitter: func(n time.Duration) time.Duration {
			if n <= 0 {
				return 0
			}
			return rand.N(n)
		},
	}
}

// WithRetry bounds the in-place retry: at most maxAttempts sends of one request and at most
// maxWait spent waiting between them. maxAttempts 1 turns it off; zero or negative values keep
// the defaults (DefaultMaxAttempts, DefaultMaxWait).
func WithRetry(maxAttempts int, maxWait time.Duration) ClientOption {
	return func(c *Client) {
		if maxAttempts > 0 {
			c.retry.maxAttempts = maxAttempts
		}
		if maxWait > 0 {
			c.retry.maxWait = maxWait
		}
	}
}

// WithWaitHook sets the hook called while the client waits to resend a request. The worker
// wiring passes one that heartbeats the activity: msapi stays free of Temporal, and an option
// set once at construction cannot be forgotten by an activity, as a context value could.
func WithWaitHook(h WaitHook) ClientOption {
	return func(c *Client) { c.retry.onWait = h }
}

// WithStatsHook sets the hook that receives every request's attempts and waited time.
func WithStatsHook(h StatsHook) ClientOption {
	return func(c *Client) { c.retry.onDone = h }
}

// WithSleep replaces how the client waits between attempts (tests pass one that advances a
// fake clock, see WithClock). sleep must return ctx's error when ctx ends first.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) ClientOption {
	return func(c *Client) {
		if sleep != nil {
			c.retry.sleep = sleep
		}
	}
}

// withRetry runs once until it succeeds or the failure should go back to the caller.
func (c *Client) withRetry(ctx context.Context, req Request, u *url.URL, once func() ([]byte, error)) (body []byte, err error) {
	st := CallStats{Service: c.service, Operation: req.Operation, Method: req.method(), Path: u.Path}
	if c.retry.onDone != nil {
		defer func() {
			st.Err = err
			c.retry.onDone(ctx, st)
		}()
	}
	for {
		st.Attempts++
		b, sendErr := once()
		// Only the client's own *Error is resent; a token failure (wrapped) is MSAL's business.
		e, ok := sendErr.(*Error)
		if sendErr == nil || !ok || !c.resendable(ctx, req, e) {
			return b, sendErr
		}
		e.Attempts = st.Attempts
		if st.Attempts >= c.retry.maxAttempts {
			return nil, e
		}
		d := c.delay(e, st.Attempts)
		if st.Waited+d > c.retry.maxWait {
			return nil, e
		}
		if dl, ok := ctx.Deadline(); ok && c.now().Add(d+DeadlineReserve).After(dl) {
			return nil, e
		}
		w := Wait{Service: c.service, Operation: req.Operation, Method: st.Method, Path: st.Path,
			Attempt: st.Attempts, Status: e.Status, Delay: d}
		if err := c.wait(ctx, w); err != nil {
			return nil, fmt.Errorf("%w; stopped waiting to send it again: %w", e, err)
		}
		st.Waited += d
	}
}

// resendable reports whether sending req again may cure e: throttling, a service or gateway
// that is unavailable for now, or no answer, for a request that is safe to send twice.
func (c *Client) resendable(ctx context.Context, req Request, e *Error) bool {
	if e.Local || ctx.Err() != nil {
		return false
	}
	switch e.Status {
	case 0, http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		return false
	}
	switch req.method() {
	case http.MethodGet, http.MethodHead:
		return true
	}
	return req.Idempotent
}

// delay is how long to wait after attempt failed with e: never less than the service asked.
func (c *Client) delay(e *Error, attempt int) time.Duration {
	if e.RetryAfter > 0 {
		return e.RetryAfter + c.retry.jitter(min(e.RetryAfter/10, maxJitterOnAsked)+1)
	}
	d := backoffCap
	if attempt < 16 {
		d = min(backoffBase<<(attempt-1), backoffCap)
	}
	return d/2 + c.retry.jitter(d/2+1)
}

// wait pauses for w.Delay, calling the wait hook at the start and every hookEvery.
func (c *Client) wait(ctx context.Context, w Wait) error {
	for remaining := w.Delay; remaining > 0; {
		step := remaining
		if c.retry.onWait != nil {
			w.Remaining = remaining
			c.retry.onWait(ctx, w)
			step = min(step, c.retry.hookEvery)
		}
		if err := c.retry.sleep(ctx, step); err != nil {
			return err
		}
		remaining -= step
	}
	return nil
}

// retryAfter is the delay an answer asks for: Retry-After (seconds or HTTP-date) or
// x-ms-retry-after-ms, whichever is longer.
func retryAfter(h http.Header, now time.Time) time.Duration {
	d := ParseRetryAfter(h.Get("Retry-After"), now)
	if v := strings.TrimSpace(h.Get("x-ms-retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < float64(24*time.Hour/time.Millisecond) {
			d = max(d, time.Duration(ms*float64(time.Millisecond)))
		}
	}
	return d
}
