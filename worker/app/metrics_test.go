package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
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
}
