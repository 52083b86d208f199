package uicheck

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/internal/codec"
	"github.com/csp-ops/work365-upgrade/ops/desk"
	"github.com/csp-ops/work365-upgrade/rehearsal/browser"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// A person confirms a task in the task desk with a real browser: the notification's desk link,
// the simulated Microsoft sign-in page (reached through the rehearsal's HTTPS proxy), the
// desk's refusal of another tenant's admin, then the right admin's confirmation — which the
// upgrade records with the identity from the ID token.
func TestDeskSignInInChromium(t *testing.T) {
	browser.Require(t)
	scn, err := sim.LoadScenario("testdata/desk.yaml")
	require.NoError(t, err)
	startCtx, cancelStart := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelStart()
	s, err := stack.Start(startCtx, stack.Options{Scenario: scn, Speed: speed})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	require.NotEmpty(t, s.DeskURL, "the rehearsal runs the task desk")
	litware, fabrikam := scn.Tenants[0], scn.Tenants[1]

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	inv := s.Inventory("desk-browser")
	inv.Tenants = inv.Tenants[:1] // Litware only; Fabrikam's admin is just someone of another tenant
	launched, err := s.Ops.Launch(ctx, inv)
	require.NoError(t, err)
	id := launched[0].WorkflowID

	// The Global Administrator's notification for Get Consent carries a desk link.
	var n activities.Notification
	for n.DeskLink == "" {
		for _, x := range s.Autopilot.Notifications(id) {
			if x.Event == activities.EventTaskOpened && x.TaskKind == string(workflows.TaskGetConsent) {
				n = x
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no get-consent notification with a desk link")
		case <-time.After(200 * time.Millisecond):
		}
	}
	require.True(t, strings.HasPrefix(n.DeskLink, s.DeskURL+"/t/"), n.DeskLink)
	t.Logf("desk link of %s: %s/t/…", n.TaskID, s.DeskURL)

	// Chromium reaches login.microsoftonline.com through the rehearsal's proxy (the simulated
	// cloud); the desk on 127.0.0.1 directly.
	proxy, err := sim.NewProxy(s.Cloud)
	require.NoError(t, err)
	proxyURL, err := proxy.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	bctx := browser.New(t, proxyURL, browserWait, chromedp.WindowSize(1200, 1000))
	defer func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(bctx), 10*time.Second)
			defer cancel()
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
			page := filepath.Join(artifactsDir(t), "desk-failed-page.html")
			_ = os.WriteFile(page, []byte(html), 0o644)
			t.Logf("the last page is in %s", page)
		}
	}()

	signIn := func(upn string) {
		t.Helper()
		who, ok := s.Cloud.Person(upn)
		require.True(t, ok, upn)
		require.NoError(t, chromedp.Do(bctx,
			chromedp.WaitVisible(chromedp.CSS(`#sign-in`)),
			chromedp.Click(chromedp.CSS(`#sign-in`)),
			chromedp.WaitVisible(chromedp.CSS(`#password`)),
			chromedp.SetValue(chromedp.CSS(`#username`), upn),
			chromedp.SetValue(chromedp.CSS(`#password`), who.Password),
			chromedp.Click(chromedp.CSS(`#signin`)),
			chromedp.WaitVisible(chromedp.CSS(`#for`)),
		), "sign in as %s", upn)
	}
	text := func() string {
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
		require.NoError(t, err)
		return squeeze(s)
	}

	// The task page: the runbook's instructions and who the task is for.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(n.DeskLink), chromedp.WaitVisible(chromedp.CSS(`#sign-in`))))
	page := text()
	require.Contains(t, page, "This task is for the Global Administrator of Litware ("+litware.Admin.UPN+")")
	require.Contains(t, page, squeeze(strings.Split(n.Instructions, "\n")[0]))
	require.Contains(t, page, "Sign in with Microsoft")

	// Fabrikam's admin is refused, plainly, and the task stays open.
	signIn(fabrikam.Admin.UPN)
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#refusal`))))
	refusal, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#refusal`)))
	require.NoError(t, err)
	require.Contains(t, refusal, "You are signed in as Fred Fabrikam ("+fabrikam.Admin.UPN+")")
	require.Contains(t, refusal, "this task is for the Global Administrator of Litware ("+litware.Admin.UPN+")")
	ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector("#confirm") === null`))
	require.NoError(t, err)
	require.True(t, ok, "no confirm form for the wrong person")
	open, err := s.Ops.OpenTasks(ctx, workflows.GlobalAdmin, "")
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, n.TaskID, open[0].Task.ID, "the task stays open")

	// The right admin does the step (Get Consent in Work 365), signs in and confirms.
	_, err = s.Cloud.GetConsent(litware.TenantID)
	require.NoError(t, err)
	signIn(litware.Admin.UPN)
	require.Contains(t, text(), "Signed in as Lena Litware ("+litware.Admin.UPN+")")
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SetValue(chromedp.CSS(`#note`), "consented in Work 365 settings"),
		chromedp.Click(chromedp.CSS(`#confirm-button`)),
		chromedp.WaitVisible(chromedp.CSS(`#message`)),
	))
	done2 := text()
	require.Contains(t, done2, "Confirmed")
	require.Contains(t, done2, "Lena Litware ("+litware.Admin.UPN+") confirmed")
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(artifactsDir(t), "desk-confirmed.png"), png, 0o644))

	// The upgrade recorded the verified identity, and the desk's client sent the Update.
	st, err := s.Ops.Status(ctx, id)
	require.NoError(t, err)
	var got *workflows.Confirmation
	for i := range st.Confirmations {
		if st.Confirmations[i].TaskID == n.TaskID {
			got = &st.Confirmations[i]
		}
	}
	require.NotNil(t, got, "the confirmation of %s", n.TaskID)
	require.Equal(t, workflows.GlobalAdmin, got.Audience)
	require.Equal(t, "Lena Litware ("+litware.Admin.UPN+")", got.By)
	require.Equal(t, "consented in Work 365 settings", got.Note)
	require.Equal(t, &workflows.Identity{Verified: true, Via: "entra-id-token", TenantID: strings.ToLower(litware.TenantID),
		ObjectID: strings.ToLower(litware.Admin.ObjectID), UPN: litware.Admin.UPN, Name: "Lena Litware", Client: desk.ClientName}, got.Identity)

	var accepted, history strings.Builder
	it := s.Client.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		require.NoError(t, codec.DecodeIn(ctx, s.Codec, ev))
		j, err := protojson.Marshal(ev)
		require.NoError(t, err)
		history.WriteString(decodedPayloads(t, j))
		if a := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil {
			accepted.WriteString(a.GetAcceptedRequest().GetMeta().GetIdentity() + " ")
			var req []workflows.ConfirmRequest
			for _, p := range a.GetAcceptedRequest().GetInput().GetArgs().GetPayloads() {
				var r workflows.ConfirmRequest
				require.NoError(t, json.Unmarshal(p.GetData(), &r))
				req = append(req, r)
			}
			require.Len(t, req, 1)
			require.NotNil(t, req[0].Identity)
			require.True(t, req[0].Identity.Verified, "the Update in history carries the verified identity")
		}
	}
	require.Contains(t, accepted.String(), desk.ClientName+"@", "the Update came from the desk's client")
	h := history.String()
	require.Contains(t, h, litware.OrgURL, "payloads are searched decoded")
	require.Contains(t, h, `"via":"entra-id-token"`)
	key, err := os.ReadFile(s.DeskLinkKeyFile)
	require.NoError(t, err)
	_, token, _ := strings.Cut(n.DeskLink, "/t/")
	deskSecret := s.Cloud.Scenario().Desk.ClientSecret
	for what, secret := range map[string]string{"a desk link": s.DeskURL, "the link token": token,
		"the link key": strings.TrimSpace(string(key)), "the desk's client secret": deskSecret, "a password": s.Cloud.Scenario().Tenants[0].Admin.Password} {
		require.NotEmpty(t, secret, what)
		require.False(t, strings.Contains(h, secret), "the history contains %s", what)
	}
}

// decodedPayloads is an event's JSON with every payload's data decoded from base64, so a
// secret inside a payload can be searched for.
func decodedPayloads(t *testing.T, event []byte) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(event, &v))
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && k == "data" {
					if d, err := base64.StdEncoding.DecodeString(s); err == nil {
						x[k] = string(d)
						continue
					}
				}
				walk(val)
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	walk(v)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return strings.ReplaceAll(string(b), `\"`, `"`)
}
