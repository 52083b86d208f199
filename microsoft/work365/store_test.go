package work365

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

const (
	tenant    = "aaaaaaaa-0000-0000-0000-000000000001"
	settingID = "0f0f0f0f-1111-2222-3333-444444444444"
)

type call struct {
	method, path string
	query        url.Values
	body         string
	ifMatch      string
}

type answer struct {
	status int
	body   string
}

// fakeOrg is a Dataverse organisation that records calls and answers from a script.
type fakeOrg struct {
	mu      sync.Mutex
	calls   []call
	answers []answer
}

func (f *fakeOrg) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, call{r.Method, r.URL.Path, r.URL.Query(), string(b), r.Header.Get("If-Match")})
	var a answer
	if len(f.answers) > 0 {
		a, f.answers = f.answers[0], f.answers[1:]
	} else {
		a = answer{status: http.StatusTeapot}
	}
	f.mu.Unlock()
	if a.status != 0 {
		w.WriteHeader(a.status)
	}
	_, _ = io.WriteString(w, a.body)
}

func newStore(t *testing.T, answers ...answer) (*fakeOrg, *Store, string) {
	f := &fakeOrg{answers: answers}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	tokens := func(context.Context, string, string) (string, error) { return "t", nil }
	dv := dataverse.New(tokens, dataverse.TenantsByOrg(map[string]string{srv.URL: tenant}), msapi.WithHTTPClient(srv.Client()))
	return f, NewStore(dv, DefaultNames()), srv.URL
}

var settingsQuery = url.Values{"$select": {"w365_settingid,w365_activityfreeze"}, "$top": {"1"}}

func TestCountPendingJobs(t *testing.T) {
	f, s, org := newStore(t, answer{body: `{"@odata.count":3,"value":[{"w365_jobid":"j1"}]}`})
	n, err := s.CountPendingJobs(context.Background(), org)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, []call{{method: "GET", path: "/api/data/v9.2/w365_jobs", query: url.Values{
		"$count":  {"true"},
		"$select": {"w365_jobid"},
		"$filter": {"statecode eq 0 and w365_jobstatus ne 3 and w365_jobstatus ne 4"},
	}}}, f.calls)
}

func TestCountPendingJobsDenied(t *testing.T) {
	_, s, org := newStore(t, answer{status: 403, body: `{"error":{"code":"0x80040220","message":"missing prvReadw365_job"}}`})
	_, err := s.CountPendingJobs(context.Background(), org)
	var e *msapi.Error
	require.True(t, errors.As(err, &e))
	assert.False(t, e.Retryable())
	assert.Contains(t, e.Hint, "application user with a security role")
}

func TestFrozen(t *testing.T) {
	f, s, org := newStore(t,
		answer{body: `{"value":[{"w365_settingid":"` + settingID + `","w365_activityfreeze":true}]}`},
		answer{body: `{"value":[{"w365_settingid":"` + settingID + `","w365_activityfreeze":null}]}`})
	frozen, err := s.Frozen(context.Background(), org)
	require.NoError(t, err)
	assert.True(t, frozen)
	frozen, err = s.Frozen(context.Background(), org)
	require.NoError(t, err)
	assert.False(t, frozen)
	require.Len(t, f.calls, 2)
	assert.Equal(t, call{method: "GET", path: "/api/data/v9.2/w365_settings", query: settingsQuery}, f.calls[0])
}

func TestSetFrozenPatchesTheFirstRow(t *testing.T) {
	f, s, org := newStore(t,
		answer{body: `{"value":[{"w365_settingid":"` + settingID + `","w365_activityfreeze":false}]}`},
		answer{status: 204})
	require.NoError(t, s.SetFrozen(context.Background(), org, true))
	require.Len(t, f.calls, 2)
	assert.Equal(t, call{method: "GET", path: "/api/data/v9.2/w365_settings", query: settingsQuery}, f.calls[0])
	p := f.calls[1]
	assert.Equal(t, "PATCH", p.method)
	assert.Equal(t, "/api/data/v9.2/w365_settings("+settingID+")", p.path)
	assert.Empty(t, p.query)
	assert.JSONEq(t, `{"w365_activityfreeze":true}`, p.body)
	assert.Equal(t, "*", p.ifMatch)
}

func TestSetFrozenIsIdempotent(t *testing.T) {
	f, s, org := newStore(t,
		answer{body: `{"value":[{"w365_settingid":"` + settingID + `","w365_activityfreeze":false}]}`})
	require.NoError(t, s.SetFrozen(context.Background(), org, false))
	assert.Len(t, f.calls, 1, "no write when the value is already set")
}

func TestNoSettingsRow(t *testing.T) {
	_, s, org := newStore(t, answer{body: `{"value":[]}`}, answer{body: `{"value":[]}`})
	_, err := s.Frozen(context.Background(), org)
	var e *msapi.Error
	require.True(t, errors.As(err, &e))
	assert.False(t, e.Retryable())
	assert.Contains(t, e.Error(), "settings table w365_settings has no row")
	err = s.SetFrozen(context.Background(), org, true)
	require.Error(t, err)
}

func TestSettingsRowWithoutFreezeColumn(t *testing.T) {
	_, s, org := newStore(t, answer{body: `{"value":[{"w365_settingid":"` + settingID + `"}]}`})
	_, err := s.Frozen(context.Background(), org)
	var e *msapi.Error
	require.True(t, errors.As(err, &e))
	assert.Contains(t, e.Hint, "freezeColumn")
}

// Or must know every name: a name added to Names but not to Or would silently stay empty
// wherever configuration overrides another name.
func TestOrFillsEveryName(t *testing.T) {
	var def Names
	v := reflect.ValueOf(&def).Elem()
	for i := 0; i < v.NumField(); i++ {
		v.Field(i).SetString("default-" + v.Type().Field(i).Name)
	}
	got := reflect.ValueOf(Names{}.Or(def))
	for i := 0; i < got.NumField(); i++ {
		if got.Field(i).String() != "default-"+got.Type().Field(i).Name {
			t.Errorf("Names.Or leaves %s empty", got.Type().Field(i).Name)
		}
	}
	if kept := (Names{FreezeColumn: "custom"}).Or(def); kept.FreezeColumn != "custom" {
		t.Errorf("Or overwrote a configured name: %q", kept.FreezeColumn)
	}
}
