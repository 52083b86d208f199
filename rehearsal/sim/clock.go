package sim

import (
	"sync"
	"time"
)

// Clock tells the simulated cloud's time.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// FakeClock is a manually advanced clock for tests. It is safe for concurrent use.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock returns a FakeClock showing start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{t: start} }

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (negative d is ignored).
func (c *FakeClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// ScaledClock runs Factor times faster than the wall clock from Origin, starting at Start:
// rehearsals with a real Temporal server can compress a multi-hour import into minutes.
type ScaledClock struct {
	// Start is the simulated time at Origin.
	Start time.Time
	// Origin is the wall-clock instant the simulation began.
	Origin time.Time
	// Factor multiplies elapsed wall time (values <= 0 mean 1).
	Factor float64
}

// NewScaledClock returns a clock that starts now and runs factor times faster than real time.
func NewScaledClock(factor float64) ScaledClock {
	now := time.Now()
	return ScaledClock{Start: now, Origin: now, Factor: factor}
}

// Now returns the scaled time.
func (c ScaledClock) Now() time.Time {
	f := c.Factor
	if f <= 0 {
		f = 1
	}
	return c.Start.Add(time.Duration(float64(time.Since(c.Origin)) * f))
}

// Real converts a simulated duration to wall-clock time: what a token's expires_in says to
// a client that keeps real time (MSAL caches tokens for expires_in real seconds).
func (c ScaledClock) Real(d time.Duration) time.Duration {
	f := c.Factor
	if f <= 0 {
		f = 1
	}
	return time.Duration(float64(d) / f)
}

// realTimer is a clock whose simulated durations pass faster than real time.
type realTimer interface {
	Real(d time.Duration) time.Duration
}

// advancer is a clock that can be moved by the admin endpoint.
type advancer interface {
	Advance(d time.Duration)
}
