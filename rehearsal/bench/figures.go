package main

import (
	"fmt"
	"math"
	"slices"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/proto"
)

// historyStats is what one workflow history costs the engine.
type historyStats struct {
	Events int
	// Actions are the activities the workflow scheduled (local activities included: they
	// are recorded as markers).
	Actions int
	// Upserts are UpsertWorkflowSearchAttributes events.
	Upserts int
	// MaxEventBytes is the encoded size of the largest event: no payload in the history is
	// larger.
	MaxEventBytes int
	// TaskTimeouts and TaskFailures are workflow tasks that timed out (a worker too slow or
	// gone) or failed: each costs a retry, often seconds.
	TaskTimeouts, TaskFailures int
}

// countHistory counts a history's events, activities and search-attribute upserts.
func countHistory(events []*historypb.HistoryEvent) historyStats {
	s := historyStats{Events: len(events)}
	for _, e := range events {
		s.MaxEventBytes = max(s.MaxEventBytes, proto.Size(e))
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			s.Actions++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if e.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity" {
				s.Actions++
			}
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			s.Upserts++
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			s.TaskTimeouts++
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			s.TaskFailures++
		}
	}
	return s
}

// figures are one benchmark run's results.
type figures struct {
	Tenants int
	// Seconds is the fleet's wall time, from launch to the fleet's result.
	Seconds float64
	// EngineActivities ran in EngineSeconds in the bare-engine baseline.
	EngineActivities int
	EngineSeconds    float64
	// FleetActivities are every activity of the fleet run: tenants, their children, the fleet.
	FleetActivities int
	// PerTenant are the tenants' own histories.
	PerTenant []historyStats
	// RSSMB is the worker process's peak resident set, in MB.
	RSSMB float64
	// MaxEventBytes is the largest event of every history read (tenants, children, fleet runs).
	MaxEventBytes int
	// TaskTimeouts and TaskFailures are the workflow tasks of every history read that timed
	// out or failed.
	TaskTimeouts, TaskFailures int
}

func rate(n int, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) / seconds
}

// percentile is the nearest-rank percentile (p in 0..100) of xs; 0 for none.
func percentile(xs []int, p float64) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func (f figures) column(pick func(historyStats) int) []int {
	out := make([]int, len(f.PerTenant))
	for i, s := range f.PerTenant {
		out[i] = pick(s)
	}
	return out
}

// line is the last line the command prints, for scripts.
func (f figures) line() string {
	engine, fleet := rate(f.EngineActivities, f.EngineSeconds), rate(f.FleetActivities, f.Seconds)
	ratio := 0.0
	if engine > 0 {
		ratio = fleet / engine
	}
	events := f.column(func(s historyStats) int { return s.Events })
	return fmt.Sprintf("bench: tenants=%d seconds=%.1f engine_aps=%.1f fleet_aps=%.1f ratio=%.2f events_median=%d events_p90=%d actions_median=%d upserts_median=%d rss_mb=%.0f",
		f.Tenants, f.Seconds, engine, fleet, ratio,
		percentile(events, 50), percentile(events, 90),
		percentile(f.column(func(s historyStats) int { return s.Actions }), 50),
		percentile(f.column(func(s historyStats) int { return s.Upserts }), 50),
		f.RSSMB)
}
