package msapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTime is the clock and the sleep of a client under test: sleeping advances the clock at
// once, so no test really waits.
type fakeTime struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

// newFakeTime starts at the real time (whole seconds, as HTTP dates are), so a context
// deadline made from time.Now compares with it.
func newFakeTime() *fakeTime { return &fakeTime{now: time.Now().Truncate(time.Second)} }

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.slept = append(f.slept, d)
	return nil
}

func (f *fakeTime) total() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t time.Duration
	for _, d := range f.slept {
		t += d
	}
	return t
}

func (f *fakeTime) opts() []ClientOption { return []ClientOption{WithClock(f.Now), WithSleep(f.Sleep)} }

// scripted answers the n-th request (from 0) with answer(n, w, r) and counts requests.
type scripted struct {
	*httptest.Server
	hits atomic.Int32
}

func newScripted(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *scripted {
	s := &scripted{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.hits.Add(1)) - 1
		answer(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// failThen answers the first len(fails) requests with those statuses and headers, then 200.
func failThen(fails []int, header http.Header) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < len(fails) {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(fails[n])
			_, _ = io.WriteString(w, `{"error":{"code":"TooManyRequests","message":"slow down"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"name":"ok"}`)
	}
}

func statsRecorder() (ClientOption, func() []CallStats) {
	var mu sync.Mutex
	var all []CallStats
	return WithStatsHook(func(_ context.Context, s CallStats) {
			mu.Lock()
			defer mu.Unlock()
			all = append(all, s)
		}), func() []CallStats {
			mu.Lock()
			defer mu.Unlock()
			return append([]CallStats(nil), all...)
		}
}

func TestThrottledThenOKRetriesInPlaceAfterRetryAfter(t *testing.T) {
	srv := newScripted(t, failThen([]int{429}, http.Header{"Retry-After": {"7"}}))
	clock := newFakeTime()
	stats, got := statsRecorder()
	c := NewClient("graph", tokens(t), append(clock.opts(), stats)...)
	var out struct{ Name string }
	require.NoError(t, c.Do(context.Background(), req(srv.URL+"/users/u", "read user"), &out))
	assert.Equal(t, "ok", out.Name)
	assert.EqualValues(t, 2, srv.hits.Load(), "one retry in place")
	require.Len(t, clock.slept, 1)
	assert.GreaterOrEqual(t, clock.total(), 7*time.Second, "never less than Retry-After")
	assert.LessOrEqual(t, clock.total(), 7*time.Second+maxJitterOnAsked)
	require.Len(t, got(), 1)
	s := got()[0]
	assert.Equal(t, 2, s.Attempts)
	assert.Equal(t, clock.total(), s.Waited)
	assert.NoError(t, s.Err)
	assert.Equal(t, "read user", s.Operation)
	assert.Equal(t, "/users/u", s.Path)
}

func TestRetryAfterHTTPDateIsWaitedOut(t *testing.T) {
	clock := newFakeTime()
	at := clock.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	srv := newScripted(t, failThen([]int{503}, http.Header{"Retry-After": {at}}))
	c := NewClient("dataverse", tokens(t), clock.opts()...)
	require.NoError(t, c.Do(context.Background(), req(srv.URL, "who am i"), nil))
	assert.EqualValues(t, 2, srv.hits.Load())
	assert.GreaterOrEqual(t, clock.total(), 90*time.Second)
	assert.LessOrEqual(t, clock.total(), 90*time.Second+maxJitterOnAsked)
}

func TestRetryAfterMillisecondsHeaderWhenLonger(t *testing.T) {
	srv := newScripted(t, failThen([]int{429}, http.Header{"Retry-After": {"1"}, "X-Ms-Retry-After-Ms": {"2500"}}))
	clock := newFakeTime()
	c := NewClient("dataverse", tokens(t), clock.opts()...)
	require.NoError(t, c.Do(context.Background(), req(srv.URL, "x"), nil))
	assert.GreaterOrEqual(t, clock.total(), 2500*time.Millisecond)
}

func TestUnavailableAndGatewayTimeoutAreRetriedWithBackoff(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := newScripted(t, failThen([]int{status, status}, nil)) // no Retry-After
			clock := newFakeTime()
			c := NewClient("graph", tokens(t), clock.opts()...)
			require.NoError(t, c.Do(context.Background(), req(srv.URL, "x"), nil))
			assert.EqualValues(t, 3, srv.hits.Load())
			require.Len(t, clock.slept, 2)
			// Exponential with jitter: half to all of 1s, then of 2s.
			assert.GreaterOrEqual(t, clock.slept[0], 500*time.Millisecond)
			assert.LessOrEqual(t, clock.slept[0], time.Second)
			assert.GreaterOrEqual(t, clock.slept[1], time.Second)
			assert.LessOrEqual(t, clock.slept[1], 2*time.Second)
		})
	}
}

func TestConnectionResetIsRetried(t *testing.T) {
	srv := newScripted(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			_ = conn.(*net.TCPConn).SetLinger(0) // close with RST: "connection reset by peer"
			_ = conn.Close()
			return
		}
		_, _ = io.WriteString(w, `{}`)
	})
	clock := newFakeTime()
	stats, got := statsRecorder()
	c := NewClient("graph", tokens(t), append(clock.opts(), stats)...)
	require.NoError(t, c.Do(context.Background(), req(srv.URL, "x"), nil))
	assert.EqualValues(t, 2, srv.hits.Load())
	require.Len(t, got(), 1)
	assert.Equal(t, 2, got()[0].Attempts, "the client's retry, not the transport's")
}

func TestAttemptsAreBounded(t *testing.T) {
	srv := newScripted(t, failThen([]int{503, 503, 503, 503, 503, 503, 503, 503}, http.Header{"Retry-After": {"1"}}))
	clock := newFakeTime()
	c := NewClient("graph", tokens(t), append(clock.opts(), WithRetry(3, 0))...)
	e := callErr(t, c, req(srv.URL, "x"))
	assert.EqualValues(t, 3, srv.hits.Load())
	assert.Len(t, clock.slept, 2)
	assert.Equal(t, 3, e.Attempts)
	assert.Contains(t, e.Error(), "sent 3 times")
	assert.True(t, e.Retryable())
	assert.Equal(t, time.Second, e.RetryAfter)

	def := newScripted(t, failThen([]int{503, 503, 503, 503, 503, 503, 503, 503}, nil))
	e = callErr(t, NewClient("graph", tokens(t), newFakeTime().opts()...), req(def.URL, "x"))
	assert.EqualValues(t, DefaultMaxAttempts, def.hits.Load())
	assert.Equal(t, DefaultMaxAttempts, e.Attempts)
}

func TestTotalWaitIsBounded(t *testing.T) {
	srv := newScripted(t, failThen([]int{429, 429, 429, 429, 429}, http.Header{"Retry-After": {"25"}}))
	clock := newFakeTime()
	c := NewClient("graph", tokens(t), append(clock.opts(), WithRetry(10, time.Minute))...)
	e := callErr(t, c, req(srv.URL, "x"))
	assert.LessOrEqual(t, clock.total(), time.Minute)
	assert.Len(t, clock.slept, 2, "25s+25s fit in a minute, a third 25s does not")
	assert.Equal(t, 25*time.Second, e.RetryAfter, "the caller's retry waits what was asked")
}

func TestWaitNeverPassesTheDeadline(t *testing.T) {
	t.Run("waits that fit, then give up", func(t *testing.T) {
		srv := newScripted(t, failThen([]int{429, 429, 429, 429, 429}, http.Header{"Retry-After": {"10"}}))
		clock := newFakeTime()
		deadline := clock.Now().Add(30 * time.Second)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		c := NewClient("dataverse", tokens(t), clock.opts()...)
		err := c.Do(ctx, req(srv.URL, "x"), nil)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.True(t, e.Retryable())
		assert.Equal(t, 10*time.Second, e.RetryAfter)
		assert.Len(t, clock.slept, 2, "10s waits ending 5s before a 30s deadline: two fit")
		assert.False(t, clock.Now().After(deadline.Add(-DeadlineReserve)))
	})
	t.Run("a wait longer than the deadline goes back to the caller at once", func(t *testing.T) {
		srv := newScripted(t, failThen([]int{429}, http.Header{"Retry-After": {"200"}})) // within DefaultMaxWait
		clock := newFakeTime()
		ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(2*time.Minute))
		defer cancel()
		e := callErrCtx(t, ctx, NewClient("dataverse", tokens(t), clock.opts()...), req(srv.URL, "x"))
		assert.EqualValues(t, 1, srv.hits.Load())
		assert.Empty(t, clock.slept)
		assert.True(t, e.Retryable())
		assert.Equal(t, 200*time.Second, e.RetryAfter)
	})
}

func TestNonIdempotentWritesAreNotResent(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodPatch, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			srv := newScripted(t, failThen([]int{503}, http.Header{"Retry-After": {"1"}}))
			c := NewClient("dataverse", tokens(t), newFakeTime().opts()...)
			r := req(srv.URL, "start import")
			r.Method, r.Body = method, map[string]string{"a": "b"}
			e := callErr(t, c, r)
			assert.EqualValues(t, 1, srv.hits.Load(), "not idempotent: sent once")
			assert.True(t, e.Retryable(), "the caller's retry decides")
			assert.Equal(t, time.Second, e.RetryAfter)

			srv = newScripted(t, failThen([]int{503}, http.Header{"Retry-After": {"1"}}))
			r.URL, r.Idempotent = srv.URL, true
			require.NoError(t, c.Do(context.Background(), r, nil))
			assert.EqualValues(t, 2, srv.hits.Load(), "idempotent: resent")
		})
	}
}

func TestResentBodyIsTheSame(t *testing.T) {
	var bodies []string
	var mu sync.Mutex
	srv := newScripted(t, func(n int, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c := NewClient("dataverse", tokens(t), newFakeTime().opts()...)
	r := req(srv.URL, "set freeze")
	r.Method, r.Body, r.Idempotent = http.MethodPatch, map[string]bool{"frozen": true}, true
	require.NoError(t, c.Do(context.Background(), r, nil))
	assert.Equal(t, []string{`{"frozen":true}`, `{"frozen":true}`}, bodies)
}

func TestPermanentAndServerErrorsAreNotRetriedInPlace(t *testing.T) {
	for _, status := range []int{400, 401, 404, 500, 502} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := newScripted(t, failThen([]int{status}, nil))
			clock := newFakeTime()
			callErr(t, NewClient("graph", tokens(t), clock.opts()...), req(srv.URL, "x"))
			assert.EqualValues(t, 1, srv.hits.Load())
			assert.Empty(t, clock.slept)
		})
	}
}

func TestWaitHookIsCalledWhileWaiting(t *testing.T) {
	srv := newScripted(t, failThen([]int{429}, http.Header{"Retry-After": {"25"}}))
	clock := newFakeTime()
	var waits []Wait
	var at []time.Time
	hook := WithWaitHook(func(_ context.Context, w Wait) {
		waits = append(waits, w)
		at = append(at, clock.Now())
	})
	c := NewClient("dataverse", tokens(t), append(clock.opts(), hook)...)
	require.NoError(t, c.Do(context.Background(), req(srv.URL+"/api/data/v9.2/WhoAmI", "WhoAmI"), nil))
	require.Len(t, waits, 3, "at 0s, 10s and 20s of a 25s wait")
	for i, w := range waits {
		assert.Equal(t, "dataverse", w.Service)
		assert.Equal(t, "WhoAmI", w.Operation)
		assert.Equal(t, "/api/data/v9.2/WhoAmI", w.Path)
		assert.Equal(t, 1, w.Attempt)
		assert.Equal(t, 429, w.Status)
		assert.GreaterOrEqual(t, w.Delay, 25*time.Second)
		assert.Equal(t, w.Delay-time.Duration(i)*DefaultWaitHookInterval, w.Remaining)
		if i > 0 {
			assert.Equal(t, DefaultWaitHookInterval, at[i].Sub(at[i-1]))
		}
	}
}

func TestCancelWhileWaitingStopsAndKeepsBothErrors(t *testing.T) {
	srv := newScripted(t, failThen([]int{429}, http.Header{"Retry-After": {"5"}}))
	ctx, cancel := context.WithCancel(context.Background())
	sleep := WithSleep(func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	})
	err := NewClient("graph", tokens(t), sleep).Do(ctx, req(srv.URL, "x"), nil)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 429, e.Status)
	assert.ErrorIs(t, err, context.Canceled)
	assert.EqualValues(t, 1, srv.hits.Load())
}

func TestGetAllRetriesAPage(t *testing.T) {
	var srv *scripted
	srv = newScripted(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			_, _ = io.WriteString(w, `{"value":[1],"@odata.nextLink":"`+srv.URL+`/page2"}`)
		case 1:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			_, _ = io.WriteString(w, `{"value":[2]}`)
		}
	})
	clock := newFakeTime()
	all, err := GetAll[int](context.Background(), NewClient("graph", tokens(t), clock.opts()...), req(srv.URL+"/page1", "list"))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, all)
	assert.GreaterOrEqual(t, clock.total(), 2*time.Second)
}

func TestRetryAfterHeaders(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		x := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			x.Set(kv[i], kv[i+1])
		}
		return x
	}
	assert.Equal(t, 3*time.Second, retryAfter(h("Retry-After", "3"), now))
	assert.Equal(t, 1500*time.Millisecond, retryAfter(h("x-ms-retry-after-ms", "1500"), now))
	assert.Equal(t, 4*time.Second, retryAfter(h("Retry-After", "4", "x-ms-retry-after-ms", "1500"), now), "the longer wins")
	assert.Equal(t, time.Duration(0), retryAfter(h("x-ms-retry-after-ms", "-5"), now))
	assert.Equal(t, time.Duration(0), retryAfter(h(), now))
}

func callErrCtx(t *testing.T, ctx context.Context, c *Client, r Request) *Error {
	t.Helper()
	err := c.Do(ctx, r, nil)
	var e *Error
	require.True(t, errors.As(err, &e), "want *msapi.Error, got %T %v", err, err)
	return e
}
