package desk

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/ops/desk/link"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// fakeBackend holds one open task and records confirmations.
type fakeBackend struct {
	mu        sync.Mutex
	view      TaskView
	confirmed []workflows.ConfirmRequest
}

func (f *fakeBackend) Task(_ context.Context, wf, task string) (TaskView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if wf != f.view.WorkflowID || task != f.view.Task.ID {
		return TaskView{}, ErrNoTask
	}
	return f.view, nil
}

func (f *fakeBackend) Confirm(_ context.Context, wf string, req workflows.ConfirmRequest) (workflows.Confirmation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.view.Open {
		return workflows.Confirmation{}, errors.New("task closed")
	}
	f.confirmed = append(f.confirmed, req)
	f.view.Open = false
	c := workflows.Confirmation{TaskID: req.TaskID, By: req.By, Decision: req.Decision, Identity: req.Identity, At: time.Now()}
	f.view.Closed = &c
	return c, nil
}

// fakeSignIn plays Entra: the authorize URL carries state, nonce and challenge; the code
// names who signs in; Redeem checks the PKCE verifier and the nonce as Entra and the desk do.
type fakeSignIn struct {
	mu     sync.Mutex
	people map[string]Claims // code → who
	codes  map[string][2]string
}

func (f *fakeSignIn) AuthURL(_ context.Context, redirect, state, nonce, challenge string, _ bool) (string, error) {
	q := url.Values{"redirect_uri": {redirect}, "state": {state}, "nonce": {nonce}, "code_challenge": {challenge}}
	return "https://login.example/authorize?" + q.Encode(), nil
}

func (f *fakeSignIn) Redeem(_ context.Context, code, _, verifier, nonce string) (Claims, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bound, ok := f.codes[code]
	if !ok {
		return Claims{}, errors.New("unknown code")
	}
	sum := sha256.Sum256([]byte(verifier))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != bound[0] {
		return Claims{}, errors.New("PKCE verifier does not match")
	}
	if nonce != bound[1] {
		return Claims{}, errors.New("nonce mismatch")
	}
	return f.people[code], nil
}

type harness struct {
	t       *testing.T
	srv     *httptest.Server
	backend *fakeBackend
	signIn  *fakeSignIn
	links   *link.Signer
	now     time.Time
}

func newHarness(t *testing.T, options ...string) *harness {
	t.Helper()
	h := &harness{t: t, now: time.Now()}
	var err error
	h.links, err = link.NewSigner([]byte(strings.Repeat("s", 32)), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.links.Now = func() time.Time { return h.now }
	h.backend = &fakeBackend{view: TaskView{WorkflowID: "work365-upgrade/contoso", TenantName: "Contoso", Open: true,
		Task: workflows.Task{ID: "get-consent-1", Kind: workflows.TaskGetConsent, Audience: workflows.GlobalAdmin, Stage: workflows.StageRegistration,
			Title: "Get Consent for Work 365", Instructions: "Open Work 365 settings.\nClick Get Consent.", Options: options},
		For: Account{Audience: workflows.GlobalAdmin, TenantID: contosoTID, TenantName: "Contoso", UPN: "admin@contoso.onmicrosoft.com"}}}
	h.signIn = &fakeSignIn{people: map[string]Claims{}, codes: map[string][2]string{}}
	h.srv = httptest.NewUnstartedServer(nil)
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	d, err := New(Config{PublicURL: h.srv.URL, Namespace: "ns", Links: h.links, Backend: h.backend, SignIn: h.signIn})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Config.Handler = d
	return h
}

func (h *harness) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == "login.example" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

func (h *harness) get(c *http.Client, u string) (int, string, *http.Response) {
	h.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

// signIn follows the desk's sign-in as who and returns the task page after it.
func (h *harness) signInAs(c *http.Client, taskURL string, who Claims) (int, string) {
	h.t.Helper()
	status, _, resp := h.get(c, taskURL+"/signin")
	if status != http.StatusFound {
		h.t.Fatalf("sign-in: status %d", status)
	}
	auth, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || auth.Host != "login.example" {
		h.t.Fatalf("sign-in redirect %q", resp.Header.Get("Location"))
	}
	q := auth.Query()
	code := fmt.Sprintf("code-%d", len(h.signIn.codes))
	h.signIn.mu.Lock()
	h.signIn.codes[code] = [2]string{q.Get("code_challenge"), q.Get("nonce")}
	h.signIn.people[code] = who
	h.signIn.mu.Unlock()
	if strings.Contains(auth.RawQuery, "verifier") {
		h.t.Fatal("the PKCE verifier is in the URL")
	}
	status, body, _ := h.get(c, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")))
	return status, body
}

func (h *harness) taskURL() string {
	return h.srv.URL + "/t/" + h.links.Sign("ns", "work365-upgrade/contoso", "get-consent-1")
}

var csrfRE = func(body string) string {
	_, after, _ := strings.Cut(body, `name="csrf" value="`)
	v, _, _ := strings.Cut(after, `"`)
	return v
}

func TestDeskConfirmsAsTheVerifiedAdmin(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	status, body, _ := h.get(c, h.taskURL())
	if status != 200 || !strings.Contains(body, "Click Get Consent.") || !strings.Contains(body, "the Global Administrator of Contoso (admin@contoso.onmicrosoft.com)") || !strings.Contains(body, "Sign in with Microsoft") {
		t.Fatalf("task page %d:\n%s", status, body)
	}
	status, body = h.signInAs(c, h.taskURL(), Claims{TenantID: contosoTID, ObjectID: "oid-1", UPN: "admin@contoso.onmicrosoft.com", Name: "Ada Admin"})
	if status != 200 || !strings.Contains(body, `id="confirm"`) || !strings.Contains(body, "Signed in as <b>Ada Admin (admin@contoso.onmicrosoft.com)") {
		t.Fatalf("after sign-in %d:\n%s", status, body)
	}
	// A form without the page's CSRF value is refused.
	resp, err := c.PostForm(h.taskURL()+"/confirm", url.Values{"csrf": {"forged"}})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged form: %v %v", err, resp.StatusCode)
	}
	resp, err = c.PostForm(h.taskURL()+"/confirm", url.Values{"csrf": {csrfRE(body)}, "note": {"done"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Confirmed") {
		t.Fatalf("confirm %d:\n%s", resp.StatusCode, b)
	}
	if len(h.backend.confirmed) != 1 {
		t.Fatalf("confirmations %+v", h.backend.confirmed)
	}
	got := h.backend.confirmed[0]
	want := workflows.Identity{Verified: true, Via: "entra-id-token", TenantID: contosoTID, ObjectID: "oid-1", UPN: "admin@contoso.onmicrosoft.com", Name: "Ada Admin", Client: ClientName}
	if got.As != workflows.GlobalAdmin || got.By != "Ada Admin (admin@contoso.onmicrosoft.com)" || got.Note != "done" || got.Identity == nil || *got.Identity != want {
		t.Fatalf("confirmation %+v identity %+v", got, got.Identity)
	}
	// The task is closed now: the link says so, and says who confirmed.
	_, body, _ = h.get(c, h.taskURL())
	if !strings.Contains(body, "This task is closed") || !strings.Contains(body, "verified Microsoft sign-in") {
		t.Fatalf("closed page:\n%s", body)
	}
}

func TestDeskRefusesAnotherTenantsAdmin(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	status, body := h.signInAs(c, h.taskURL(), Claims{TenantID: fabrikamTID, ObjectID: "oid-f", UPN: "admin@fabrikam.onmicrosoft.com"})
	if status != http.StatusForbidden || !strings.Contains(body, "You are signed in as admin@fabrikam.onmicrosoft.com") ||
		!strings.Contains(body, "this task is for the Global Administrator of Contoso (admin@contoso.onmicrosoft.com)") || strings.Contains(body, `id="confirm"`) {
		t.Fatalf("refusal %d:\n%s", status, body)
	}
	// Posting anyway is refused too, and nothing reaches the upgrade.
	resp, err := c.PostForm(h.taskURL()+"/confirm", url.Values{"csrf": {csrfRE(body)}})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("post as the wrong person: %v %d", err, resp.StatusCode)
	}
	if len(h.backend.confirmed) != 0 || !h.backend.view.Open {
		t.Fatalf("confirmed %+v", h.backend.confirmed)
	}
}

func TestDeskDecisionIsChosenAfterSignIn(t *testing.T) {
	h := newHarness(t, workflows.DecisionKeepWaiting, workflows.DecisionAbort)
	c := h.client()
	_, body := h.signInAs(c, h.taskURL(), Claims{TenantID: contosoTID, UPN: "admin@contoso.onmicrosoft.com"})
	if !strings.Contains(body, `value="abort"`) {
		t.Fatalf("no decisions:\n%s", body)
	}
	resp, _ := c.PostForm(h.taskURL()+"/confirm", url.Values{"csrf": {csrfRE(body)}})
	if resp.StatusCode != http.StatusBadRequest || len(h.backend.confirmed) != 0 {
		t.Fatalf("no decision: %d %+v", resp.StatusCode, h.backend.confirmed)
	}
	resp, _ = c.PostForm(h.taskURL()+"/confirm", url.Values{"csrf": {csrfRE(body)}, "decision": {"abort"}})
	if resp.StatusCode != 200 || len(h.backend.confirmed) != 1 || h.backend.confirmed[0].Decision != "abort" {
		t.Fatalf("decision: %d %+v", resp.StatusCode, h.backend.confirmed)
	}
}

func TestDeskLinkPages(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	tok := h.links.Sign("ns", "work365-upgrade/contoso", "get-consent-1")
	status, body, _ := h.get(c, h.srv.URL+"/t/"+tok[:len(tok)-3]+"abc")
	if status != http.StatusBadRequest || !strings.Contains(body, "This link is not valid") {
		t.Fatalf("tampered %d:\n%s", status, body)
	}
	status, body, _ = h.get(c, h.srv.URL+"/t/"+h.links.Sign("other-ns", "work365-upgrade/contoso", "get-consent-1"))
	if status != http.StatusNotFound || !strings.Contains(body, "another desk") {
		t.Fatalf("other namespace %d:\n%s", status, body)
	}
	h.now = h.now.Add(2 * time.Hour)
	status, body, _ = h.get(c, h.srv.URL+"/t/"+tok)
	if status != http.StatusGone || !strings.Contains(body, "This link has expired") {
		t.Fatalf("expired %d:\n%s", status, body)
	}
	h.now = time.Now()
	status, body, _ = h.get(c, h.srv.URL+"/t/"+h.links.Sign("ns", "work365-upgrade/contoso", "no-such-task"))
	if status != http.StatusNotFound || !strings.Contains(body, "no such task") {
		t.Fatalf("unknown task %d:\n%s", status, body)
	}
}

func TestDeskCallbackRefusesAForeignState(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	status, _, resp := h.get(c, h.taskURL()+"/signin")
	if status != http.StatusFound {
		t.Fatal(status)
	}
	auth, _ := url.Parse(resp.Header.Get("Location"))
	status, body, _ := h.get(c, auth.Query().Get("redirect_uri")+"?code=x&state=forged")
	if status != http.StatusBadRequest || !strings.Contains(body, "state mismatch") {
		t.Fatalf("forged state %d:\n%s", status, body)
	}
	// Without the sign-in's cookie (another browser), the answer is refused too.
	status, body, _ = h.get(h.client(), auth.Query().Get("redirect_uri")+"?code=x&state="+url.QueryEscape(auth.Query().Get("state")))
	if status != http.StatusBadRequest || !strings.Contains(body, "not started here") {
		t.Fatalf("no cookie %d:\n%s", status, body)
	}
	if len(h.backend.confirmed) != 0 {
		t.Fatal("confirmed")
	}
}
