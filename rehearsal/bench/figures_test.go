package main

import (
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

func TestCountHistory(t *testing.T) {
	ev := func(ty enumspb.EventType) *historypb.HistoryEvent { return &historypb.HistoryEvent{EventType: ty} }
	marker := func(name string) *historypb.HistoryEvent {
		return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_MARKER_RECORDED, Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{
			MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{MarkerName: name, Details: map[string]*commonpb.Payloads{}}}}
	}
	h := []*historypb.HistoryEvent{
		ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
		ev(enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
		ev(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
		ev(enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED),
		ev(enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
		marker("LocalActivity"),
		marker("Version"),
		ev(enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
		ev(enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT),
		ev(enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED),
		ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
	}
	big := &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{
		ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{Result: &commonpb.Payloads{Payloads: []*commonpb.Payload{{Data: make([]byte, 3000)}}}}}}
	h = append(h, big)
	got := countHistory(h)
	require.Equal(t, historyStats{Events: 12, Actions: 2, Upserts: 2, TaskTimeouts: 1, TaskFailures: 1, MaxEventBytes: got.MaxEventBytes}, got)
	require.Greater(t, got.MaxEventBytes, 3000, "the largest event holds the 3,000-byte payload")
	require.Less(t, got.MaxEventBytes, 3100)
}

func TestPercentile(t *testing.T) {
	xs := []int{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	require.Equal(t, 5, percentile(xs, 50))
	require.Equal(t, 9, percentile(xs, 90))
	require.Equal(t, 10, percentile(xs, 100))
	require.Equal(t, 1, percentile(xs, 0))
	require.Equal(t, 0, percentile(nil, 50))
	require.Equal(t, []int{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}, xs, "the input is not reordered")
}

func TestLine(t *testing.T) {
	f := figures{
		Tenants: 3, Seconds: 20, EngineActivities: 1000, EngineSeconds: 10, FleetActivities: 1600,
		PerTenant: []historyStats{{Events: 100, Actions: 20, Upserts: 10}, {Events: 140, Actions: 24, Upserts: 12}, {Events: 120, Actions: 22, Upserts: 30}},
		RSSMB:     251.6,
	}
	require.Equal(t, "bench: tenants=3 seconds=20.0 engine_aps=100.0 fleet_aps=80.0 ratio=0.80 events_median=120 events_p90=140 actions_median=22 upserts_median=12 rss_mb=252", f.line())
	require.Equal(t, "bench: tenants=0 seconds=0.0 engine_aps=0.0 fleet_aps=0.0 ratio=0.00 events_median=0 events_p90=0 actions_median=0 upserts_median=0 rss_mb=0", figures{}.line())
}
