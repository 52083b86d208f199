package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"go.temporal.io/sdk/activity"
)

// Reads kept across attempts.
//
// An activity that reads many things (prerequisites: six reads; MFA: eight) used to read them
// all again on every attempt, so under throttling an attempt succeeded only when every read
// passed at once. Now each read's answer goes into the activity's heartbeat details as soon as
// it arrives; Temporal keeps the last heartbeat of a failed attempt (the SDK flushes it with the
// failure) and hands it to the next attempt, which starts after the last read that passed.
// The answers are what Microsoft returned (users, roles, policies): no token or secret.
// A whole new activity (a new check round) starts from zero: the workflow asks again because
// people may have changed something.

// ReadProgress is the heartbeat detail of an activity that keeps what it has read: each
// read's answer (JSON) by a key naming it.
type ReadProgress struct {
	Reads map[string]json.RawMessage `json:"reads"`
}

// Keys lists the reads kept, sorted (for logs and tests).
func (p ReadProgress) Keys() []string {
	keys := make([]string, 0, len(p.Reads))
	for k := range p.Reads {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type progressKey struct{}

// readLog is one attempt's ReadProgress, restored from the previous attempt's heartbeat.
type readLog struct {
	p ReadProgress
}

// startReads restores what earlier attempts of this activity read and returns a context that
// carries it, so that heartbeats recorded while a call waits out throttling keep it (see
// Progress). Outside an activity (unit tests call methods directly) nothing is restored.
func startReads(ctx context.Context) (context.Context, *readLog) {
	l := &readLog{p: ReadProgress{Reads: map[string]json.RawMessage{}}}
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		var prev ReadProgress
		// A heartbeat of another shape (an older worker's wait message) is ignored: the
		// attempt then reads everything, as before.
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil && prev.Reads != nil {
			l.p = prev
		}
	}
	return context.WithValue(ctx, progressKey{}, l), l
}

// Progress returns the heartbeat details the running activity keeps, if it keeps any. The
// worker's wait hook records them as the first detail of its own heartbeat (the wait message
// second), so a wait does not erase what the attempt has read.
func Progress(ctx context.Context) (ReadProgress, bool) {
	l, ok := ctx.Value(progressKey{}).(*readLog)
	if !ok {
		return ReadProgress{}, false
	}
	return l.p, true
}

// remember answers a read from an earlier attempt when it has one, else reads and keeps the
// answer in the activity's heartbeat.
func remember[T any](ctx context.Context, l *readLog, key string, read func() (T, error)) (T, error) {
	if raw, ok := l.p.Reads[key]; ok {
		var v T
		if err := json.Unmarshal(raw, &v); err == nil {
			return v, nil
		}
	}
	v, err := read()
	if err != nil {
		return v, err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return v, fmt.Errorf("keep the answer of %s for a retry: %w", key, err)
	}
	l.p.Reads[key] = raw
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, l.p)
	}
	return v, nil
}
