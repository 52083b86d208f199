package sim_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/chromedp/chromedp"

	"github.com/csp-ops/work365-upgrade/rehearsal/browser"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// TestSignInPageInChromium signs in on the simulated page in headless Chromium, as a person
// does: the browser reaches https://login.microsoftonline.com through the sim's HTTPS proxy,
// types into #username and #password, clicks #signin, and lands on the desk's loopback
// callback (which Chromium never proxies) with code and state; a wrong password stays on the
// page with AADSTS50126 in #error.
func TestSignInPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser (about 20 s on 2 loaded cores)")
	}
	browser.Require(t)
	e := newDeskEnv(t)
	proxy, err := sim.NewProxy(e.cloud)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, err := proxy.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	got := make(chan url.Values, 4)
	desk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		_, _ = w.Write([]byte(`<html><body><p id="done">signed in</p></body></html>`))
	}))
	defer desk.Close()
	e.cbPort = desk.URL[strings.LastIndex(desk.URL, ":")+1:]

	bctx := browser.New(t, proxyURL, 90*time.Second)

	admin := e.scn.Tenants[0].Admin
	fill := func(authorize, password string) error {
		return chromedp.Do(bctx,
			chromedp.Navigate(authorize),
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), admin.UPN),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS("#signin")))
	}
	// A wrong password: the page again, with the error.
	if err := fill(e.authorizeURL("", newPKCE(), e.redirectURI()), "not-"+admin.Password); err != nil {
		t.Fatalf("wrong password in the browser: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS("#error"))); err != nil {
		t.Fatalf("no error shown: %v", err)
	}
	problem, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#error")))
	if err != nil || !strings.HasPrefix(problem, "AADSTS50126") {
		t.Fatalf("wrong password shows %q, %v", problem, err)
	}
	// The right one: the browser lands on the desk's callback.
	p := newPKCE()
	if err := fill(e.authorizeURL("", p, e.redirectURI()), admin.Password); err != nil {
		t.Fatalf("sign in in the browser: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS("#done"))); err != nil {
		t.Fatalf("the browser did not reach the desk's callback: %v", err)
	}
	q := <-got
	if q.Get("state") != p.state || q.Get("code") == "" {
		t.Fatalf("callback: %v", q)
	}
	res, err := e.msal.AcquireTokenByAuthCode(e.ctx, q.Get("code"), e.redirectURI(), deskScopes, confidential.WithChallenge(p.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if res.Account.PreferredUsername != admin.UPN {
		t.Fatalf("account %+v", res.Account)
	}
}
