package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/activities/notify"
)

const baseConfig = `
microsoft: {clientId: "11111111-1111-1111-1111-111111111111", secretEnv: TEST_MS_SECRET}
packagesDir: /var/lib/work365/packages
work365: {appId: "2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99"}
`

func TestNotifyConfigLoads(t *testing.T) {
	c, err := LoadConfig(write(t, baseConfig+`
notify:
  webhooks:
    - {name: ops, urlFile: /run/secrets/teams_url, format: teams, audiences: [operator]}
    - {name: admins, urlEnv: SLACK_URL, format: slack, events: [task-opened, task-escalated], audiences: [global-admin, partner-admin]}
`))
	require.NoError(t, err)
	require.Equal(t, []notify.Target{
		{Name: "ops", URLFile: "/run/secrets/teams_url", Format: "teams", Audiences: []string{"operator"}},
		{Name: "admins", URLEnv: "SLACK_URL", Format: "slack", Events: []string{"task-opened", "task-escalated"}, Audiences: []string{"global-admin", "partner-admin"}},
	}, c.Notify.Webhooks)
}

func TestNotifyConfigValidation(t *testing.T) {
	p := write(t, baseConfig+`
notify:
  webhooks:
    - {name: ok, urlEnv: A, format: json}
    - {name: ok, urlEnv: B, format: teams2}
    - {urlFile: /f, urlEnv: C, format: slack, events: [task-opened, task-open], audiences: [operator, admin]}
    - {name: nourl, format: json}
`)
	_, err := LoadConfig(p)
	require.Error(t, err)
	for _, want := range []string{
		`notify.webhooks[1].format: "teams2" must be json, teams or slack`,
		`notify.webhooks[1].name: "ok" is already the name of notify.webhooks[0]: names must be unique`,
		`notify.webhooks[2].name: required`,
		`notify.webhooks[2]: set exactly one of urlFile, urlEnv`,
		`notify.webhooks[2].events[1]: "task-open" is not an event: use task-opened, task-reminder, task-escalated, task-closed, upgrade-ended, fleet-event`,
		`notify.webhooks[2].audiences[1]: "admin" is not an audience: use global-admin, service-account, operator, partner-admin, none`,
		`notify.webhooks[3]: set exactly one of urlFile, urlEnv`,
	} {
		require.ErrorContains(t, err, want)
	}
	require.NotRegexp(t, `(?m)(^|worker\.yaml: )notify\.webhooks\[0\]`, err.Error(), "the valid webhook is not blamed")

	// A URL in the file itself is refused by the strict decoder.
	p = write(t, baseConfig+`
notify:
  webhooks:
    - {name: url, url: "https://hooks.example.com/secret", format: json}
`)
	_, err = LoadConfig(p)
	require.ErrorContains(t, err, p+":8: notify.webhooks[0].url: unknown field")
	require.NotContains(t, err.Error(), "hooks.example.com/secret")
}

// The commented example in deploy/worker.yaml is a valid configuration once uncommented.
func TestWorkerYAMLNotifyExample(t *testing.T) {
	b, err := os.ReadFile("../../deploy/worker.yaml")
	require.NoError(t, err)
	i := strings.Index(string(b), "# notify:\n")
	require.GreaterOrEqual(t, i, 0, "deploy/worker.yaml has a commented notify example")
	example := regexp.MustCompile(`(?m)^# ?`).ReplaceAllString(string(b[i:]), "")
	c, err := LoadConfig(write(t, baseConfig+example))
	require.NoError(t, err)
	require.Len(t, c.Notify.Webhooks, 3)
	formats := map[string]bool{}
	for _, w := range c.Notify.Webhooks {
		formats[w.Format] = true
	}
	require.Equal(t, map[string]bool{"json": true, "teams": true, "slack": true}, formats)
}

func buildConfig(t *testing.T, body string) Config {
	t.Helper()
	t.Setenv("TEST_MS_SECRET", "not-a-real-secret")
	c, err := LoadConfig(write(t, baseConfig+body))
	require.NoError(t, err)
	return c
}

func TestBuildActivitiesUsesWebhooks(t *testing.T) {
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("TEST_HOOK_URL", srv.URL+"/hook")

	c := buildConfig(t, "notify: {webhooks: [{name: ops, urlEnv: TEST_HOOK_URL, format: json}]}\n")
	acts, err := BuildActivities(c, Options{NoInstanceDiscovery: true})
	require.NoError(t, err)
	require.IsType(t, &notify.Webhook{}, acts.Notifier)
	require.NoError(t, acts.Notify(context.Background(), activities.Notification{Key: "k1", Event: activities.EventFleet}))
	require.Equal(t, []string{"k1"}, keys)

	// An explicit notifier (rehearsals) wins.
	acts, err = BuildActivities(c, Options{NoInstanceDiscovery: true, Notifier: LogNotifier{}})
	require.NoError(t, err)
	require.IsType(t, LogNotifier{}, acts.Notifier)

	// Without webhooks, notifications are logged.
	acts, err = BuildActivities(buildConfig(t, ""), Options{NoInstanceDiscovery: true})
	require.NoError(t, err)
	require.IsType(t, LogNotifier{}, acts.Notifier)
}

func TestBuildActivitiesNamesAMissingWebhookURL(t *testing.T) {
	c := buildConfig(t, "notify: {webhooks: [{name: ops, urlEnv: TEST_UNSET_HOOK_URL, format: teams}]}\n")
	_, err := BuildActivities(c, Options{NoInstanceDiscovery: true})
	require.ErrorContains(t, err, `webhook "ops": environment variable TEST_UNSET_HOOK_URL is not set`)
}

// notify.webUIURL makes notifications link to their upgrade; a value that is no http(s) URL is
// refused naming the key.
func TestNotifyWebUIURL(t *testing.T) {
	c, err := LoadConfig(write(t, baseConfig+"notify: {webUIURL: https://temporal-ui.example.com}\n"))
	require.NoError(t, err)
	require.Equal(t, "https://temporal-ui.example.com", c.Notify.WebUIURL)
	_, err = LoadConfig(write(t, baseConfig+"notify: {webUIURL: temporal-ui}\n"))
	require.ErrorContains(t, err, `notify.webUIURL: "temporal-ui" is not an http(s) URL`)
}
