package dataverse

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

// resendClient is a client of f whose waits between attempts take no time.
func resendClient(f *fakeOrg) *Client {
	tokens := func(context.Context, string, string) (string, error) { return "dv-token", nil }
	return New(tokens, TenantsByOrg(map[string]string{f.srv.URL: tenant}), msapi.WithHTTPClient(f.srv.Client()),
		msapi.WithSleep(func(context.Context, time.Duration) error { return nil }))
}

var unavailable = exchange{status: http.StatusServiceUnavailable, respHeader: http.Header{"Retry-After": {"1"}},
	resp: dvErr("0x80040216", "Service unavailable")}

// The freeze flag's PATCH (If-Match, fixed values) is resent in place after a 503.
func TestPatchRowIsResent(t *testing.T) {
	patch := exchange{method: "PATCH", path: "w365_settings(" + jobID + ")", header: http.Header{"If-Match": {"*"}},
		body: `{"w365_activityfreeze":true}`, status: http.StatusNoContent}
	failed := unavailable
	failed.method, failed.path, failed.header, failed.body = patch.method, patch.path, patch.header, patch.body
	f, _ := newFakeOrg(t, failed, patch)
	require.NoError(t, resendClient(f).PatchRow(ctx, f.srv.URL, "w365_settings", jobID, map[string]any{"w365_activityfreeze": true}))
}

// Starting an import or an uninstall is sent once: the 503 goes back to the activity.
func TestAsyncStartsAreNotResent(t *testing.T) {
	imp := unavailable
	imp.method, imp.path = "POST", "ImportSolutionAsync"
	imp.body = `{"CustomizationFile":"eA==","OverwriteUnmanagedCustomizations":false,"PublishWorkflows":false,"HoldingSolution":false,"ImportJobId":"` + jobID + `"}`
	f, _ := newFakeOrg(t, imp)
	_, err := resendClient(f).ImportSolutionAsync(ctx, f.srv.URL, ImportSolutionAsyncRequest{CustomizationFile: "eA==", ImportJobID: jobID})
	e := apiErr(t, err)
	assert.True(t, e.Retryable())
	assert.Equal(t, time.Second, e.RetryAfter)

	un := unavailable
	un.method, un.path, un.body = "POST", "UninstallSolutionAsync", `{"SolutionUniqueName":"Work365Portal"}`
	f, _ = newFakeOrg(t, un)
	_, err = resendClient(f).UninstallSolutionAsync(ctx, f.srv.URL, "Work365Portal")
	assert.True(t, apiErr(t, err).Retryable())
}
