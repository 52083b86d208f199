// Package ctxtime holds the one time helper the module's packages share: a sleep that ends
// early when its context does (polls, throttling waits and simulated people all wait this way).
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits d, or less if ctx ends first, returning ctx's error then. A d of zero or less
// returns at once (with ctx's error, if any).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
