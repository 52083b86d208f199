package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestMetricsAndHealthEndpoint(t *testing.T) {
	var healthy atomic.Bool
	o, err := StartObservability("127.0.0.1:0", zap.NewNop(), func() error {
		if !healthy.Load() {
			return errors.New("not connected to Temporal yet")
		}
		return nil
	})
	require.NoError(t, err)
	defer o.Close(context.Background())
	base := "http://" + o.Addr()

	code, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "not connected to Temporal yet")
	healthy.Store(true)
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)

	// What the SDK records through the handler is served to Prometheus.
	o.Handler.WithTags(map[string]string{"task_queue": TaskQueue}).Counter("temporal_workflow_completed").Inc(3)
	require.Eventually(t, func() bool {
		code, body := get(t, base+"/metrics")
		return code == http.StatusOK && strings.Contains(body, "temporal_workflow_completed") && strings.Contains(body, `task_queue="work365_upgrade"`) // Prometheus-sanitised
	}, 5*time.Second, 100*time.Millisecond)
	// The Go runtime's and the process's memory are served beside them.
	_, body = get(t, base+"/metrics")
	require.Contains(t, body, "go_memstats_heap_inuse_bytes ")
	require.Contains(t, body, "process_resident_memory_bytes ")
}

// healthyClient is a Temporal client whose health check answers err; nothing else is called.
type healthyClient struct {
	client.Client
	err error
}

func (c healthyClient) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, c.err
}

// TestHealthWhileConnecting serves /healthz concurrently with the client being set, as the
// worker does while it dials Temporal; -race reports an unsynchronised read.
func TestHealthWhileConnecting(t *testing.T) {
	h := &TemporalHealth{}
	o, err := StartObservability("127.0.0.1:0", zap.NewNop(), h.Check)
	require.NoError(t, err)
	defer o.Close(context.Background())
	url := "http://" + o.Addr() + "/healthz"

	code, body := get(t, url)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "not connected to Temporal yet")

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				resp, err := http.Get(url)
				if err == nil {
					_ = resp.Body.Close()
				}
			}
		}()
	}
	h.Set(healthyClient{err: errors.New("frontend unavailable")})
	wg.Wait()
	code, body = get(t, url)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "frontend unavailable")

	h.Set(healthyClient{})
	code, _ = get(t, url)
	require.Equal(t, http.StatusOK, code)
}

// TestMicrosoftCallsHeartbeatWhileWaiting runs a throttled call inside an activity with the
// worker's msapi hooks: the wait heartbeats, and the resend is logged without the token.
func TestMicrosoftCallsHeartbeatWhileWaiting(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "25")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	core, logs := observer.New(zap.InfoLevel)
	var slept time.Duration
	opts := append(microsoftHooks(zap.New(core)), msapi.WithSleep(func(_ context.Context, d time.Duration) error {
		slept += d
		return nil
	}))
	c := msapi.NewClient("dataverse", func(context.Context, string, string) (string, error) { return "SECRET-TOKEN", nil }, opts...)

	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	var beats []string
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var s string
		require.NoError(t, details.Get(&s))
		beats = append(beats, s)
	})
	call := func(ctx context.Context) error {
		return c.Do(ctx, msapi.Request{Operation: "WhoAmI in https://contoso.crm.dynamics.com", URL: srv.URL + "/api/data/v9.2/WhoAmI"}, nil)
	}
	env.RegisterActivityWithOptions(call, activity.RegisterOptions{Name: "Call"})
	_, err := env.ExecuteActivity("Call")
	require.NoError(t, err)

	require.EqualValues(t, 2, hits.Load())
	require.GreaterOrEqual(t, slept, 25*time.Second)
	require.NotEmpty(t, beats, "the SDK batches heartbeats; msapi tests that the hook is called every 10s")
	require.Contains(t, beats[0], "dataverse: WhoAmI in https://contoso.crm.dynamics.com answered HTTP 429; sending it again in 2")
	entries := logs.FilterMessage("microsoft call resent in place").All()
	require.Len(t, entries, 1)
	require.EqualValues(t, 2, entries[0].ContextMap()["attempts"])
	for _, e := range logs.All() {
		require.NotContains(t, fmt.Sprint(e.ContextMap()), "SECRET-TOKEN")
	}

	// Outside an activity the hooks do nothing (and do not panic).
	hits.Store(0)
	require.NoError(t, call(context.Background()))
}
