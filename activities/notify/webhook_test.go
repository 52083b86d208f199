package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/activities"
)

// secretPath is the secret part of every test webhook URL; it must never appear in an error.
const secretPath = "/workflows/3f2a-SECRET/triggers/manual/paths/invoke"

// receiver is a webhook receiver recording what it got.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	keys   []string
	ctypes []string
	// answer returns the status and body of the n-th request (0-based); 200 "1" otherwise.
	answer func(n int) (int, string)
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.URL.Path != secretPath {
			http.Error(w, "wrong method or path", http.StatusNotFound)
			return
		}
		r.mu.Lock()
		n := len(r.bodies)
		r.bodies = append(r.bodies, b)
		r.keys = append(r.keys, req.Header.Get("Idempotency-Key"))
		r.ctypes = append(r.ctypes, req.Header.Get("Content-Type"))
		answer := r.answer
		r.mu.Unlock()
		status, body := http.StatusOK, "1"
		if answer != nil {
			status, body = answer(n)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string {
	return r.srv.URL + secretPath + "?api-version=2016-06-01&sig=SIGSECRET"
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

func (r *receiver) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(r.t, r.bodies, "the receiver got nothing")
	return r.bodies[len(r.bodies)-1]
}

// target configures a target for r, its URL in an environment variable.
func (r *receiver) target(name, format string) Target {
	env := "TEST_WEBHOOK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	r.t.Setenv(env, r.url())
	return Target{Name: name, URLEnv: env, Format: format}
}

func newWebhook(t *testing.T, targets ...Target) *Webhook {
	t.Helper()
	w, err := New(targets)
	require.NoError(t, err)
	return w
}

// requireNoSecret fails when err quotes the URL or its secret parts.
func requireNoSecret(t *testing.T, err error, r *receiver) {
	t.Helper()
	require.Error(t, err)
	for _, s := range []string{r.url(), r.srv.URL + secretPath, "SECRET", "SIGSECRET", "sig="} {
		require.NotContains(t, err.Error(), s)
	}
}

var at = time.Date(2025, 11, 25, 9, 30, 0, 0, time.UTC)

func taskOpened() activities.Notification {
	return activities.Notification{
		Key: "upgrade-contoso/t3/task-opened/0", Event: activities.EventTaskOpened, At: at,
		WorkflowID: "upgrade-contoso", Fleet: "wave-1", TenantID: "11111111-2222-3333-4444-555555555555", TenantName: "Contoso",
		Stage: "consent", TaskID: "t3", TaskKind: "grant-consent", Audience: "global-admin",
		Title: "Grant admin consent to Work 365", Instructions: "Sign in as the Global Administrator and accept.",
		Options: []string{"done", "skip"},
		Command: `starter confirm upgrade-contoso t3 --as global-admin --by <your name> --note "<what you did>"`,
	}
}

func escalated() activities.Notification {
	n := taskOpened()
	n.Key, n.Event, n.Audience, n.Reminder = "upgrade-contoso/t3/task-escalated", activities.EventTaskEscalated, "operator", 3
	n.Title, n.Instructions = "ESCALATED: Grant admin consent to Work 365", ""
	n.Message = "Task t3 for the global-admin has been open since 2025-11-24T09:30:00Z without a confirmation after 3 reminders."
	return n
}

func TestJSONBody(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("generic", FormatJSON))
	n := taskOpened()
	require.NoError(t, w.Notify(context.Background(), n))
	require.Equal(t, []string{n.Key}, r.keys, "Idempotency-Key header")
	require.Equal(t, "application/json", r.ctypes[0])

	var got map[string]any
	require.NoError(t, json.Unmarshal(r.last(), &got))
	require.Equal(t, n.Key, got["idempotencyKey"])
	require.Equal(t, n.Key, got["key"])
	require.Equal(t, "task-opened", got["event"])
	require.Equal(t, "2025-11-25T09:30:00Z", got["at"])
	require.Equal(t, "upgrade-contoso", got["workflowId"])
	require.Equal(t, "wave-1", got["fleet"])
	require.Equal(t, n.TenantID, got["tenantId"])
	require.Equal(t, "Contoso", got["tenantName"])
	require.Equal(t, "consent", got["stage"])
	require.Equal(t, "t3", got["taskId"])
	require.Equal(t, "global-admin", got["audience"])
	require.Equal(t, n.Title, got["title"])
	require.Equal(t, n.Instructions, got["instructions"])
	require.Equal(t, []any{"done", "skip"}, got["options"])
	require.Equal(t, n.Command, got["command"])

	// The body is the Notification plus idempotencyKey: it decodes back to n.
	var back activities.Notification
	require.NoError(t, json.Unmarshal(r.last(), &back))
	require.Equal(t, n, back)
}

// Adaptive Card types, as far as the tests read them.
type teamsEnvelope struct {
	Type        string `json:"type"`
	Attachments []struct {
		ContentType string `json:"contentType"`
		Content     struct {
			Schema  string         `json:"$schema"`
			Type    string         `json:"type"`
			Version string         `json:"version"`
			Body    []cardElement  `json:"body"`
			MSTeams map[string]any `json:"msteams"`
		} `json:"content"`
	} `json:"attachments"`
}

type cardElement struct {
	Type        string        `json:"type"`
	Text        string        `json:"text"`
	Color       string        `json:"color"`
	Size        string        `json:"size"`
	Weight      string        `json:"weight"`
	Style       string        `json:"style"`
	Wrap        bool          `json:"wrap"`
	Items       []cardElement `json:"items"`
	Facts       []struct{ Title, Value string }
	CodeSnippet string       `json:"codeSnippet"`
	Language    string       `json:"language"`
	Fallback    *cardElement `json:"fallback"`
	FontType    string       `json:"fontType"`
}

func decodeTeams(t *testing.T, b []byte) (teamsEnvelope, []cardElement) {
	t.Helper()
	var env teamsEnvelope
	require.NoError(t, json.Unmarshal(b, &env), string(b))
	require.Equal(t, "message", env.Type)
	require.Len(t, env.Attachments, 1)
	a := env.Attachments[0]
	require.Equal(t, "application/vnd.microsoft.card.adaptive", a.ContentType)
	require.Equal(t, "AdaptiveCard", a.Content.Type)
	require.Equal(t, "http://adaptivecards.io/schemas/adaptive-card.json", a.Content.Schema)
	require.Equal(t, "1.4", a.Content.Version)
	require.NotEmpty(t, a.Content.Body)
	return env, a.Content.Body
}

func factsOf(t *testing.T, body []cardElement) map[string]string {
	t.Helper()
	for _, e := range body {
		if e.Type == "FactSet" {
			m := map[string]string{}
			for _, f := range e.Facts {
				m[f.Title] = f.Value
			}
			return m
		}
	}
	t.Fatal("no FactSet in the card")
	return nil
}

func TestTeamsBody(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("teams", FormatTeams))
	n := taskOpened()
	require.NoError(t, w.Notify(context.Background(), n))
	require.Equal(t, []string{n.Key}, r.keys)
	_, body := decodeTeams(t, r.last())

	head := body[0]
	require.Equal(t, "Container", head.Type)
	require.Equal(t, "emphasis", head.Style)
	require.Len(t, head.Items, 1)
	require.Equal(t, "Action needed: Grant admin consent to Work 365", head.Items[0].Text)
	require.Equal(t, "Bolder", head.Items[0].Weight)
	require.Empty(t, head.Items[0].Color)

	require.Equal(t, map[string]string{
		"Tenant": "Contoso (11111111-2222-3333-4444-555555555555)", "Fleet": "wave-1", "Stage": "consent",
		"Audience": "global-admin", "Task": "t3 (grant-consent)", "Decisions": "done, skip", "Workflow": "upgrade-contoso",
	}, factsOf(t, body))

	var texts []string
	var code *cardElement
	for i, e := range body {
		if e.Type == "TextBlock" {
			texts = append(texts, e.Text)
		}
		if e.Type == "CodeBlock" {
			code = &body[i]
		}
	}
	require.Contains(t, texts, n.Instructions)
	require.Contains(t, texts, "To confirm, run:")
	require.Contains(t, texts, "task-opened · 2025-11-25T09:30:00Z · key "+n.Key)
	require.NotNil(t, code, "the command is a CodeBlock")
	require.Equal(t, n.Command, code.CodeSnippet)
	require.Equal(t, "PlainText", code.Language)
	require.NotNil(t, code.Fallback)
	require.Equal(t, "TextBlock", code.Fallback.Type)
	require.Equal(t, "Monospace", code.Fallback.FontType)
	require.Equal(t, n.Command, code.Fallback.Text)
}

func TestTeamsEscalationIsProminent(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("teams", FormatTeams))
	n := escalated()
	require.NoError(t, w.Notify(context.Background(), n))
	_, body := decodeTeams(t, r.last())
	require.Equal(t, "attention", body[0].Style)
	require.Equal(t, "ESCALATED: Grant admin consent to Work 365", body[0].Items[0].Text, "not ESCALATED twice")
	require.Equal(t, "Attention", body[0].Items[0].Color)
	require.Equal(t, "operator", factsOf(t, body)["Audience"])
	var texts []string
	for _, e := range body {
		texts = append(texts, e.Text)
	}
	require.Contains(t, texts, n.Message)

	// A title without the prefix gets it.
	n.Key, n.Title = n.Key+"-2", "Grant admin consent"
	require.NoError(t, w.Notify(context.Background(), n))
	_, body = decodeTeams(t, r.last())
	require.Equal(t, "ESCALATED: Grant admin consent", body[0].Items[0].Text)
}

func TestTeamsOutcomeWithoutTask(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("teams", FormatTeams))
	n := activities.Notification{Key: "upgrade-contoso/ended", Event: activities.EventUpgradeEnded, WorkflowID: "upgrade-contoso",
		TenantID: "tid", TenantName: "Contoso", Stage: "done", Outcome: "succeeded", Message: "Work 365 upgraded to 2.5.0"}
	require.NoError(t, w.Notify(context.Background(), n))
	_, body := decodeTeams(t, r.last())
	require.Equal(t, "Work 365 upgrade ended: succeeded", body[0].Items[0].Text)
	require.Equal(t, "succeeded", factsOf(t, body)["Outcome"])
	for _, e := range body {
		require.NotEqual(t, "CodeBlock", e.Type, "no command, no code block")
	}
}

type slackBody struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Type  string `json:"type"`
			Text  string `json:"text"`
			Emoji bool   `json:"emoji"`
		} `json:"text"`
		Elements []struct{ Type, Text string } `json:"elements"`
	} `json:"blocks"`
}

func TestSlackBody(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("slack", FormatSlack))
	n := taskOpened()
	require.NoError(t, w.Notify(context.Background(), n))
	require.Equal(t, []string{n.Key}, r.keys)

	var got slackBody
	require.NoError(t, json.Unmarshal(r.last(), &got), string(r.last()))
	require.Equal(t, "Action needed: Grant admin consent to Work 365 — Contoso (11111111-2222-3333-4444-555555555555)", got.Text)
	require.Len(t, got.Blocks, 5)

	require.Equal(t, "header", got.Blocks[0].Type)
	require.Equal(t, "plain_text", got.Blocks[0].Text.Type)
	require.Equal(t, "Action needed: Grant admin consent to Work 365", got.Blocks[0].Text.Text)

	require.Equal(t, "section", got.Blocks[1].Type)
	require.Equal(t, "mrkdwn", got.Blocks[1].Text.Type)
	require.Equal(t, "*Tenant:* Contoso (11111111-2222-3333-4444-555555555555)\n*Fleet:* wave-1\n*Stage:* consent\n"+
		"*Audience:* global-admin\n*Task:* t3 (grant-consent)\n*Decisions:* done, skip\n*Workflow:* upgrade-contoso", got.Blocks[1].Text.Text)

	require.Equal(t, "section", got.Blocks[2].Type)
	require.Equal(t, n.Instructions, got.Blocks[2].Text.Text)

	require.Equal(t, "section", got.Blocks[3].Type)
	require.Equal(t, "*To confirm, run:* `starter confirm upgrade-contoso t3 --as global-admin --by &lt;your name&gt; --note \"&lt;what you did&gt;\"`",
		got.Blocks[3].Text.Text, "the command in a code span, < and > escaped for mrkdwn")

	require.Equal(t, "context", got.Blocks[4].Type)
	require.Len(t, got.Blocks[4].Elements, 1)
	require.Equal(t, "mrkdwn", got.Blocks[4].Elements[0].Type)
	require.Equal(t, "task-opened · 2025-11-25T09:30:00Z · key "+n.Key, got.Blocks[4].Elements[0].Text)
}

func TestSlackEscalationIsProminent(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("slack", FormatSlack))
	n := escalated()
	require.NoError(t, w.Notify(context.Background(), n))
	var got slackBody
	require.NoError(t, json.Unmarshal(r.last(), &got))
	require.Equal(t, ":rotating_light: ESCALATED: Grant admin consent to Work 365", got.Blocks[0].Text.Text)
	require.True(t, strings.HasPrefix(got.Text, ":rotating_light: ESCALATED: "))
	require.Equal(t, "*"+n.Message+"*", got.Blocks[2].Text.Text)
}

func TestSlackLimits(t *testing.T) {
	n := taskOpened()
	n.Title = strings.Repeat("t", 400)
	n.Instructions = strings.Repeat("i", 5000)
	m := slackMessage(n)
	blocks := m["blocks"].([]map[string]any)
	require.Len(t, []rune(blocks[0]["text"].(map[string]any)["text"].(string)), slackHeaderMax)
	require.Len(t, []rune(blocks[2]["text"].(map[string]any)["text"].(string)), slackSectionMax)
}

// An activity retry after a lost response (the POST succeeded, the activity's completion did
// not reach Temporal) does not post again; another key does.
func TestRetryAfterLostResponseDoesNotPostAgain(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("generic", FormatJSON))
	n := taskOpened()
	require.NoError(t, w.Notify(context.Background(), n))
	require.NoError(t, w.Notify(context.Background(), n), "the retry succeeds")
	require.Equal(t, 1, r.count(), "without posting again")

	n.Key = "upgrade-contoso/t3/task-reminder/1"
	require.NoError(t, w.Notify(context.Background(), n))
	require.Equal(t, 2, r.count())
	require.Equal(t, []string{"upgrade-contoso/t3/task-opened/0", n.Key}, r.keys)
}

// A retry that starts while the first attempt is still sending waits for it, then skips.
func TestConcurrentAttemptsPostOnce(t *testing.T) {
	r := newReceiver(t)
	release := make(chan struct{})
	r.answer = func(int) (int, string) { <-release; return http.StatusOK, "" }
	w := newWebhook(t, r.target("generic", FormatJSON))
	n := taskOpened()
	errs := make(chan error, 2)
	go func() { errs <- w.Notify(context.Background(), n) }()
	require.Eventually(t, func() bool { return r.count() == 1 }, 5*time.Second, time.Millisecond)
	go func() { errs <- w.Notify(context.Background(), n) }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.Equal(t, 1, r.count())
}

// A fan-out that fails for one target retries that target alone.
func TestFailedTargetIsRetriedAlone(t *testing.T) {
	ok, flaky := newReceiver(t), newReceiver(t)
	flaky.answer = func(n int) (int, string) {
		if n == 0 {
			return http.StatusServiceUnavailable, "try later"
		}
		return http.StatusOK, ""
	}
	w := newWebhook(t, ok.target("ops-teams", FormatTeams), flaky.target("ticketing", FormatJSON))
	n := taskOpened()
	err := w.Notify(context.Background(), n)
	require.Error(t, err)
	require.ErrorContains(t, err, `webhook "ticketing" answered 503 Service Unavailable: try later (temporary: the activity retries)`)
	require.ErrorContains(t, err, "reached 1 of 2 webhooks")
	require.NotContains(t, err.Error(), "ops-teams")
	require.False(t, errors.Is(err, ErrPermanent))
	requireNoSecret(t, err, flaky)

	require.NoError(t, w.Notify(context.Background(), n))
	require.Equal(t, 1, ok.count(), "the target that got it is not posted again")
	require.Equal(t, 2, flaky.count(), "the failed target is retried")
	require.Equal(t, []string{n.Key, n.Key}, flaky.keys)

	require.NoError(t, w.Notify(context.Background(), n))
	require.Equal(t, 1, ok.count())
	require.Equal(t, 2, flaky.count())
}

func TestStatusClassification(t *testing.T) {
	for _, c := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true}, {http.StatusUnauthorized, true}, {http.StatusForbidden, true},
		{http.StatusNotFound, true}, {http.StatusGone, true}, {http.StatusFound, true},
		{http.StatusRequestTimeout, false}, {http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false}, {http.StatusBadGateway, false}, {http.StatusServiceUnavailable, false},
	} {
		t.Run(http.StatusText(c.status), func(t *testing.T) {
			r := newReceiver(t)
			r.answer = func(int) (int, string) { return c.status, "" }
			w := newWebhook(t, r.target("hook", FormatSlack))
			err := w.Notify(context.Background(), taskOpened())
			require.Error(t, err)
			require.ErrorContains(t, err, fmt.Sprintf(`webhook "hook" answered %d %s`, c.status, http.StatusText(c.status)))
			require.Equal(t, c.permanent, errors.Is(err, ErrPermanent), err.Error())
			if c.permanent {
				require.ErrorContains(t, err, "urlEnv TEST_WEBHOOK_HOOK", "says where to fix the URL")
			}
			requireNoSecret(t, err, r)
		})
	}
}

// When one target refuses for good and another may recover, the error is retryable (the
// activity must retry), and names both.
func TestMixedFailureIsRetryable(t *testing.T) {
	gone, busy := newReceiver(t), newReceiver(t)
	gone.answer = func(int) (int, string) { return http.StatusNotFound, "" }
	busy.answer = func(int) (int, string) { return http.StatusTooManyRequests, "" }
	w := newWebhook(t, gone.target("gone", FormatJSON), busy.target("busy", FormatJSON))
	err := w.Notify(context.Background(), taskOpened())
	require.ErrorContains(t, err, `webhook "gone" answered 404 Not Found`)
	require.ErrorContains(t, err, `webhook "busy" answered 429 Too Many Requests`)
	require.ErrorContains(t, err, "reached 0 of 2 webhooks")
	require.False(t, errors.Is(err, ErrPermanent))

	busy.answer = func(int) (int, string) { return http.StatusOK, "" }
	err = w.Notify(context.Background(), taskOpened())
	require.True(t, errors.Is(err, ErrPermanent), "only the refusing target is left")
	require.ErrorContains(t, err, "reached 1 of 2 webhooks", "counting the one reached before")
}

func TestURLNeverInErrors(t *testing.T) {
	t.Run("receiver echoes the URL", func(t *testing.T) {
		r := newReceiver(t)
		r.answer = func(int) (int, string) {
			return http.StatusBadRequest, "bad request to " + r.url() + " (path " + secretPath + ")"
		}
		err := newWebhook(t, r.target("echo", FormatJSON)).Notify(context.Background(), taskOpened())
		requireNoSecret(t, err, r)
		require.ErrorContains(t, err, "bad request to <webhook URL>")
	})
	t.Run("receiver down", func(t *testing.T) {
		r := newReceiver(t)
		target := r.target("down", FormatJSON)
		r.srv.Close()
		err := newWebhook(t, target).Notify(context.Background(), taskOpened())
		requireNoSecret(t, err, r)
		require.ErrorContains(t, err, `webhook "down": POST failed`)
		require.False(t, errors.Is(err, ErrPermanent))
	})
	t.Run("client timeout", func(t *testing.T) {
		r := newReceiver(t)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		r.answer = func(int) (int, string) { <-release; return http.StatusOK, "" }
		w, err := New([]Target{r.target("slow", FormatJSON)}, WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
		require.NoError(t, err)
		err = w.Notify(context.Background(), taskOpened())
		requireNoSecret(t, err, r)
		require.ErrorContains(t, err, `webhook "slow": no answer in time`)
	})
	t.Run("context deadline", func(t *testing.T) {
		r := newReceiver(t)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		r.answer = func(int) (int, string) { <-release; return http.StatusOK, "" }
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := newWebhook(t, r.target("slow", FormatJSON)).Notify(ctx, taskOpened())
		requireNoSecret(t, err, r)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("invalid URL in the file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "url")
		require.NoError(t, os.WriteFile(p, []byte("https://exa mple.com/SECRET?sig=SIGSECRET\n"), 0o600))
		_, err := New([]Target{{Name: "bad", URLFile: p, Format: FormatJSON}})
		require.ErrorContains(t, err, `webhook "bad": urlFile `+p+` does not hold an http(s) URL`)
		require.NotContains(t, err.Error(), "SECRET")
	})
}

func TestFilters(t *testing.T) {
	all, ops, admins := newReceiver(t), newReceiver(t), newReceiver(t)
	opsT := ops.target("ops", FormatJSON)
	opsT.Audiences = []string{"operator"}
	adminsT := admins.target("admins", FormatJSON)
	adminsT.Audiences = []string{"global-admin"}
	adminsT.Events = []string{activities.EventTaskOpened, activities.EventTaskClosed}
	w := newWebhook(t, all.target("all", FormatJSON), opsT, adminsT)

	opened := taskOpened()
	reminder := taskOpened()
	reminder.Key, reminder.Event = "r1", activities.EventTaskReminder
	ended := activities.Notification{Key: "ended", Event: activities.EventUpgradeEnded, Outcome: "succeeded"}
	for _, n := range []activities.Notification{opened, reminder, escalated(), ended} {
		require.NoError(t, w.Notify(context.Background(), n))
	}
	require.Equal(t, []string{opened.Key, "r1", escalated().Key, "ended"}, all.keys, "no filter: everything")
	require.Equal(t, []string{escalated().Key, "ended"}, ops.keys, "operator: escalations, and outcomes (no audience)")
	require.Equal(t, []string{opened.Key}, admins.keys, "global-admin, opened or closed only")

	// No target wants it: nothing to do, no error.
	w = newWebhook(t, adminsT)
	require.NoError(t, w.Notify(context.Background(), ended))
	require.Equal(t, []string{opened.Key}, admins.keys)
}

func TestMemoryIsBounded(t *testing.T) {
	r := newReceiver(t)
	w, err := New([]Target{r.target("generic", FormatJSON)}, WithMemory(2))
	require.NoError(t, err)
	n := taskOpened()
	for _, k := range []string{"k1", "k2", "k3", "k3", "k2", "k1"} {
		n.Key = k
		require.NoError(t, w.Notify(context.Background(), n))
	}
	require.Equal(t, []string{"k1", "k2", "k3", "k1"}, r.keys, "k1 was forgotten, k2 and k3 were not")
	require.Len(t, w.targets[0].sent.set, 2)
}

func TestNotificationWithoutKeyIsRefused(t *testing.T) {
	r := newReceiver(t)
	n := taskOpened()
	n.Key = ""
	err := newWebhook(t, r.target("generic", FormatJSON)).Notify(context.Background(), n)
	require.ErrorIs(t, err, ErrPermanent)
	require.ErrorContains(t, err, "no idempotency key")
	require.Zero(t, r.count())
}

func TestNewReadsURLs(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, []byte("  https://hooks.example.com/x\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	t.Setenv("TEST_EMPTY_URL", "")

	w, err := New([]Target{{Name: "good", URLFile: good, Format: FormatTeams}})
	require.NoError(t, err)
	require.Equal(t, "https://hooks.example.com/x", w.targets[0].url)

	_, err = New([]Target{
		{Name: "missing-file", URLFile: filepath.Join(dir, "nope"), Format: FormatJSON},
		{Name: "empty-file", URLFile: empty, Format: FormatJSON},
		{Name: "unset", URLEnv: "TEST_UNSET_URL_VARIABLE", Format: FormatJSON},
		{Name: "empty-env", URLEnv: "TEST_EMPTY_URL", Format: FormatJSON},
		{Name: "good", URLFile: good, Format: "teams2"},
		{Name: "good", URLFile: good, Format: FormatSlack},
	})
	require.ErrorContains(t, err, `webhook "missing-file": read urlFile `+filepath.Join(dir, "nope"))
	require.ErrorContains(t, err, `webhook "empty-file": urlFile `+empty+` is empty`)
	require.ErrorContains(t, err, `webhook "unset": environment variable TEST_UNSET_URL_VARIABLE is not set`)
	require.ErrorContains(t, err, `webhook "empty-env": urlEnv TEST_EMPTY_URL is empty`)
	require.ErrorContains(t, err, `webhooks[4].format: "teams2" must be json, teams or slack`)
	require.ErrorContains(t, err, `webhooks[5].name: "good" is used twice`)
	require.NotContains(t, err.Error(), "hooks.example.com")

	_, err = New(nil)
	require.ErrorContains(t, err, "no webhook configured")
}

func TestProblems(t *testing.T) {
	require.Empty(t, Target{Name: "a", URLEnv: "A", Format: FormatSlack, Events: Events()}.Problems())
	require.Equal(t, []Problem{
		{"name", "required (logs and errors name the target, never its URL)"},
		{"", "set exactly one of urlFile, urlEnv (the webhook URL is a secret: keep it in a file or an environment variable, never in this file)"},
		{"format", `"" must be json, teams or slack`},
		{"events[1]", `"task-open" is not an event: use task-opened, task-reminder, task-escalated, task-closed, upgrade-ended, fleet-event, orchestrator-fault, frozen-too-long, cleanup-failed`},
	}, Target{URLEnv: "A", URLFile: "/f", Events: []string{activities.EventTaskOpened, "task-open"}}.Problems())
}

// Redirects are not followed: the POST would be replayed elsewhere, or turned into a GET.
func TestRedirectIsNotFollowed(t *testing.T) {
	other := newReceiver(t)
	r := newReceiver(t)
	r.answer = func(int) (int, string) { return http.StatusOK, "" }
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, other.url(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	t.Setenv("TEST_REDIRECT_URL", redirect.URL+secretPath)
	err := newWebhook(t, Target{Name: "moved", URLEnv: "TEST_REDIRECT_URL", Format: FormatJSON}).Notify(context.Background(), taskOpened())
	require.ErrorIs(t, err, ErrPermanent)
	require.ErrorContains(t, err, `webhook "moved" answered 307 Temporary Redirect`)
	require.ErrorContains(t, err, "redirects")
	require.NotContains(t, err.Error(), "SECRET")
	require.Zero(t, other.count())
}

// hostile is a notification whose people-typed parts try to format, link, ping and drive a
// terminal.
func hostile() activities.Notification {
	n := taskOpened()
	n.TenantName = "**Contoso** [click here](https://evil.example) <!channel> \x1b[31m"
	n.Message = "cancelled by eve\x07: _urgent_\n- not a list"
	return n
}

func TestTeamsCardsShowPeoplesTextLiterally(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("teams", FormatTeams))
	require.NoError(t, w.Notify(context.Background(), hostile()))
	_, body := decodeTeams(t, r.last())
	require.Equal(t, `\*\*Contoso\*\* \[click here\](https://evil.example) <!channel>  (11111111-2222-3333-4444-555555555555)`, factsOf(t, body)["Tenant"])
	var texts []string
	for _, e := range body {
		if e.Type == "TextBlock" {
			texts = append(texts, e.Text)
		}
	}
	require.Contains(t, texts, "cancelled by eve: \\_urgent\\_\n\\- not a list")
	require.NotContains(t, string(r.last()), `\u001b`)
}

func TestSlackMessagesShowPeoplesTextLiterally(t *testing.T) {
	r := newReceiver(t)
	w := newWebhook(t, r.target("slack", FormatSlack))
	require.NoError(t, w.Notify(context.Background(), hostile()))
	var got slackBody
	require.NoError(t, json.Unmarshal(r.last(), &got), string(r.last()))
	require.Contains(t, got.Blocks[1].Text.Text, "*Tenant:* **Contoso** [click here](https://evil.example) &lt;!channel&gt;  (11111111")
	require.NotContains(t, string(r.last()), "<!channel>", "no mention reaches Slack")
	require.NotContains(t, string(r.last()), `\u001b`)
	require.NotContains(t, string(r.last()), `\u0007`)
}
