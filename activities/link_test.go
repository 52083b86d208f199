package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// With the Web UI configured, every notification carries its upgrade's page; without it, none.
func TestNotificationsCarryTheWebUILink(t *testing.T) {
	f := newFakes()
	a := newActs(f)
	id := "work365-upgrade/1b0c2a52-5a1e-4d55-9f3e-000000000001/2.5.0.1"
	require.NoError(t, a.Notify(context.Background(), Notification{Key: "k1", Event: EventTaskOpened, WorkflowID: id}))
	require.Empty(t, f.notified[0].Link)

	a.WebUIURL, a.Namespace = "https://temporal-ui.example.com/", "work365"
	require.NoError(t, a.Notify(context.Background(), Notification{Key: "k2", Event: EventTaskOpened, WorkflowID: id}))
	require.Equal(t, "https://temporal-ui.example.com/namespaces/work365/workflows/work365-upgrade%2F1b0c2a52-5a1e-4d55-9f3e-000000000001%2F2.5.0.1", f.notified[1].Link)
}
