package activities

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
)

// throttledGraph counts reads and answers 429 to the reads named in throttle (each once per
// entry), the way Graph does when a tenant's requests pass its limits. Before the 429 it calls
// onWait, as the worker's wait hook does while the in-place retry waits.
type throttledGraph struct {
	*fakes
	calls    map[string]int
	throttle map[string]int
	onWait   func(ctx context.Context)
}

func (g *throttledGraph) read(ctx context.Context, what string) error {
	g.calls[what]++
	if g.throttle[what] > 0 {
		g.throttle[what]--
		if g.onWait != nil {
			g.onWait(ctx)
		}
		return &msapi.Error{Service: "graph", Operation: what, Status: http.StatusTooManyRequests, Code: "TooManyRequests", RetryAfter: time.Second}
	}
	return nil
}

func (g *throttledGraph) GetUser(ctx context.Context, tid, upn string) (msgraph.User, error) {
	if err := g.read(ctx, "user "+upn); err != nil {
		return msgraph.User{}, err
	}
	return g.fakes.GetUser(ctx, tid, upn)
}

func (g *throttledGraph) ListSubscribedSkus(ctx context.Context, tid string) ([]msgraph.SubscribedSku, error) {
	if err := g.read(ctx, "skus"); err != nil {
		return nil, err
	}
	return g.fakes.ListSubscribedSkus(ctx, tid)
}

func (g *throttledGraph) GetMFARegistration(ctx context.Context, tid, id string) (msgraph.MFARegistration, error) {
	if err := g.read(ctx, "mfa "+id); err != nil {
		return msgraph.MFARegistration{}, err
	}
	return g.fakes.GetMFARegistration(ctx, tid, id)
}

func (g *throttledGraph) GetSecurityDefaults(ctx context.Context, tid string) (msgraph.SecurityDefaultsPolicy, error) {
	if err := g.read(ctx, "security defaults"); err != nil {
		return msgraph.SecurityDefaultsPolicy{}, err
	}
	return g.fakes.GetSecurityDefaults(ctx, tid)
}

// countingDataverse counts FindSystemUser reads.
type countingDataverse struct {
	*fakes
	calls map[string]int
}

func (d *countingDataverse) FindSystemUser(ctx context.Context, org, upn string) (*dataverse.SystemUser, error) {
	d.calls["dynamics user "+upn]++
	return d.fakes.FindSystemUser(ctx, org, upn)
}

// runAttempts runs an activity as Temporal would retry it: each attempt starts with the last
// heartbeat of the one before (what the SDK flushes with a failure and the server hands to the
// next attempt). It returns the last attempt's error and how many attempts it took.
func runAttempts(t *testing.T, acts *Activities, fn any, arg any, out any) int {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	var last converter.EncodedValues
	for attempt := 1; attempt <= 10; attempt++ {
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(acts)
		env.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) { last = d })
		if last != nil && last.HasValues() {
			var p ReadProgress
			var msg string
			require.NoError(t, last.Get(&p, &msg))
			env.SetHeartbeatDetails(p)
		}
		v, err := env.ExecuteActivity(fn, arg)
		if err == nil {
			require.NoError(t, v.Get(out))
			return attempt
		}
		require.Contains(t, err.Error(), "429", "attempt %d fails only for throttling", attempt)
	}
	t.Fatal("no attempt succeeded")
	return 0
}

// TestChecksKeepWhatTheyReadAcrossAttempts: a read throttled past the in-place retries fails
// the attempt, and the next attempt reads only what was not read yet — each read is made once
// however many attempts fail, even when the wait hook heartbeats in between.
func TestChecksKeepWhatTheyReadAcrossAttempts(t *testing.T) {
	f := newFakes()
	f.mfa["u-admin"] = true
	g := &throttledGraph{fakes: f, calls: map[string]int{}, throttle: map[string]int{
		"user " + service: 1, "mfa u-admin": 2,
	}}
	// Like the worker's wait hook: the progress first, the wait message second.
	g.onWait = func(ctx context.Context) {
		p, ok := Progress(ctx)
		require.True(t, ok, "the adapters get the context that carries the progress")
		activity.RecordHeartbeat(ctx, p, "graph answered 429; sending it again in 1s")
	}
	dv := &countingDataverse{fakes: f, calls: map[string]int{}}
	acts := newActs(f)
	acts.Graph, acts.Dataverse = g, dv

	var rep PrerequisiteReport
	attempts := runAttempts(t, acts, acts.CheckPrerequisites, PrerequisiteInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service}, &rep)
	require.Equal(t, 2, attempts)
	require.Len(t, rep.Checks, 6)
	for _, c := range rep.Checks {
		require.True(t, c.Passed, "%s: %s", c.ID, c.Detail)
	}
	// skus and the admin were read before the throttled service account: once each.
	require.Equal(t, 1, g.calls["skus"])
	require.Equal(t, 1, g.calls["user "+admin])
	require.Equal(t, 2, g.calls["user "+service], "the throttled read is made again, nothing before it")
	require.Equal(t, 1, dv.calls["dynamics user "+admin])

	var mfa MFAReport
	clear(g.calls)
	attempts = runAttempts(t, acts, acts.CheckMFA, MFAInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service}, &mfa)
	require.Equal(t, 3, attempts)
	require.True(t, mfa.AdminRegistered)
	require.Equal(t, 1, g.calls["user "+admin])
	require.Equal(t, 1, g.calls["user "+service])
	require.Equal(t, 1, g.calls["security defaults"])
	require.Equal(t, 1, g.calls["mfa u-svc"])
	require.Equal(t, 3, g.calls["mfa u-admin"])
}

// TestProgressOutsideAnActivity: called directly (no activity), the checks read everything
// and keep nothing.
func TestProgressOutsideAnActivity(t *testing.T) {
	f := newFakes()
	g := &throttledGraph{fakes: f, calls: map[string]int{}, throttle: map[string]int{}}
	acts := newActs(f)
	acts.Graph = g
	_, err := acts.CheckMFA(context.Background(), MFAInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service})
	require.NoError(t, err)
	_, err = acts.CheckMFA(context.Background(), MFAInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service})
	require.NoError(t, err)
	require.Equal(t, 2, g.calls["user "+admin], "a new activity reads again: people may have changed something")
	_, ok := Progress(context.Background())
	require.False(t, ok)
}

// duplicateDataverse answers ImportSolutionAsync as Dataverse does when the ImportJobId was
// used by an earlier start whose answer was lost, before its job row can be read.
type duplicateDataverse struct{ *fakes }

func (d duplicateDataverse) ImportSolutionAsync(_ context.Context, _ string, req dataverse.ImportSolutionAsyncRequest) (dataverse.ImportSolutionAsyncResponse, error) {
	d.imports = append(d.imports, req)
	return dataverse.ImportSolutionAsyncResponse{}, &msapi.Error{Service: "dataverse", Operation: "start solution import", Status: http.StatusBadRequest,
		Code: "0x80040237", Message: "Cannot insert duplicate key."}
}

// TestStartImportTakesADuplicateJobAsAlreadyStarted: a start refused because its own import
// job ID exists is the import already started, followed by its job; not a failure.
func TestStartImportTakesADuplicateJobAsAlreadyStarted(t *testing.T) {
	f := newFakes()
	acts := newActs(f)
	acts.Dataverse = duplicateDataverse{f}
	st, err := acts.StartImport(context.Background(), ImportInput{Tenant: ref, PackageRef: "w365.zip", ImportJobID: "job-1", Holding: true, TargetVersion: "2.5.0.1"})
	require.NoError(t, err)
	require.Contains(t, st.Already, "duplicate")
	require.Equal(t, "job-1", st.ImportJobID)
	require.Len(t, f.imports, 1)

	// Another 400 (a bad body) is still a refusal.
	require.False(t, isDuplicateImportJob(&msapi.Error{Status: http.StatusBadRequest, Code: "0x80040203"}))
	require.True(t, isDuplicateImportJob(&msapi.Error{Status: http.StatusBadRequest, Code: "0x80040237"}))
}
