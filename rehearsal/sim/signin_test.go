package sim_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// deskEnv is a simulated cloud on a fake clock with the desk's MSAL confidential client, as
// the task desk builds it: multi-tenant authority, instance discovery off, the sim's client.
type deskEnv struct {
	t      *testing.T
	cloud  *sim.Cloud
	clock  *sim.FakeClock
	scn    sim.Scenario
	desk   sim.DeskApp
	msal   confidential.Client
	ctx    context.Context
	cbPort string
}

func newDeskEnv(t *testing.T) *deskEnv {
	t.Helper()
	scn := sim.Generate(4, 4) // has a Partner Center connection in a partner tenant
	clock := scn.NewClock()
	cloud := sim.New(scn, sim.Options{Clock: clock})
	t.Cleanup(cloud.Close)
	desk := cloud.DeskApp()
	cred, err := confidential.NewCredFromSecret(desk.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	client, err := confidential.New("https://login.microsoftonline.com/organizations", desk.ClientID, cred,
		confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(cloud.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	return &deskEnv{t: t, cloud: cloud, clock: clock, scn: cloud.Scenario(), desk: desk, msal: client, ctx: context.Background(), cbPort: "8917"}
}

// redirectURI is the registered loopback callback on the desk's port (Entra ID ignores the
// port of loopback redirect URIs).
func (e *deskEnv) redirectURI() string { return "http://127.0.0.1:" + e.cbPort + "/auth/callback" }

var deskScopes = []string{"openid", "profile", "offline_access"}

// pkce is one sign-in attempt's secrets, as the desk keeps them between redirect and callback.
type pkce struct{ verifier, state, nonce string }

func newPKCE() pkce {
	r := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return pkce{verifier: r(), state: r(), nonce: r()}
}

// authorizeURL is MSAL's AuthCodeURL with what it cannot emit appended: state, nonce and the
// PKCE challenge (confidential.Client.AuthCodeURL has no options for them).
func (e *deskEnv) authorizeURL(authority string, p pkce, redirect string) string {
	e.t.Helper()
	u, err := e.msal.AuthCodeURL(e.ctx, e.desk.ClientID, redirect, deskScopes)
	if err != nil {
		e.t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	if authority != "" {
		pu.Path = "/" + authority + "/oauth2/v2.0/authorize"
	}
	q := pu.Query()
	q.Set("state", p.state)
	q.Set("nonce", p.nonce)
	q.Set("code_challenge", sim.PKCEChallenge(p.verifier))
	q.Set("code_challenge_method", "S256")
	pu.RawQuery = q.Encode()
	return pu.String()
}

// signIn signs in and returns the code, checking state comes back.
func (e *deskEnv) signIn(authority string, p pkce, upn, password string) string {
	e.t.Helper()
	loc, err := sim.SignIn(e.ctx, e.cloud.BrowserClient(), e.authorizeURL(authority, p, e.redirectURI()), upn, password)
	if err != nil {
		e.t.Fatalf("sign in as %s: %v", upn, err)
	}
	u, _ := url.Parse(loc)
	if !strings.HasPrefix(loc, e.redirectURI()+"?") || u.Query().Get("state") != p.state || u.Query().Get("code") == "" {
		e.t.Fatalf("redirect %q: want %s with code and state", loc, e.redirectURI())
	}
	return u.Query().Get("code")
}

// TestSignInThroughMSAL runs the desk's whole flow with real MSAL for Go over real HTTP:
// AuthCodeURL, the sign-in page, AcquireTokenByAuthCode with the PKCE verifier (WithChallenge
// sends it as code_verifier). The ID token is verified as a desk would, with go-oidc against
// the jwks_uri the discovery document names.
func TestSignInThroughMSAL(t *testing.T) {
	e := newDeskEnv(t)
	admin := e.scn.Tenants[0].Admin
	tenant := strings.ToLower(e.scn.Tenants[0].TenantID)
	p := newPKCE()
	code := e.signIn("", p, admin.UPN, admin.Password)
	res, err := e.msal.AcquireTokenByAuthCode(e.ctx, code, e.redirectURI(), deskScopes, confidential.WithChallenge(p.verifier))
	if err != nil {
		t.Fatal(err)
	}
	// MSAL keys the account on client_info: {oid}.{tid}.
	if res.Account.PreferredUsername != admin.UPN || res.Account.HomeAccountID != strings.ToLower(admin.ObjectID)+"."+tenant || res.IDToken.RawToken == "" {
		t.Fatalf("MSAL account %+v", res.Account)
	}

	// Verify as the desk does: discovery → jwks_uri → RS256 signature, issuer of the
	// person's tenant, audience, expiry on the cloud's clock (the desk's clock in a rehearsal).
	hc := e.cloud.HTTPClient()
	resp, err := hc.Get("https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if disc.Issuer != "https://login.microsoftonline.com/{tenantid}/v2.0" || disc.JWKSURI != "https://login.microsoftonline.com/organizations/discovery/v2.0/keys" {
		t.Fatalf("discovery: %+v", disc)
	}
	octx := oidc.ClientContext(e.ctx, hc)
	issuer := strings.ReplaceAll(disc.Issuer, "{tenantid}", tenant)
	verifier := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(octx, disc.JWKSURI), &oidc.Config{ClientID: e.desk.ClientID, Now: e.clock.Now})
	idt, err := verifier.Verify(octx, res.IDToken.RawToken)
	if err != nil {
		t.Fatalf("go-oidc refused the ID token: %v", err)
	}
	var cl struct {
		Tid, Oid, Sub, Name, Nonce, Ver string
		PreferredUsername               string `json:"preferred_username"`
		Iat, Nbf, Exp                   int64
		Wids                            []string
	}
	if err := idt.Claims(&cl); err != nil {
		t.Fatal(err)
	}
	if cl.Tid != tenant || cl.Oid != strings.ToLower(admin.ObjectID) || cl.PreferredUsername != admin.UPN ||
		cl.Name != admin.DisplayName || cl.Nonce != p.nonce || cl.Ver != "2.0" || cl.Sub == "" || cl.Sub == cl.Oid {
		t.Fatalf("claims: %+v", cl)
	}
	// wids: Global Administrator exactly when the scenario's admin holds it actively.
	const globalAdmin = "62e90394-69f5-4237-9190-012177145e10"
	if slices.Contains(cl.Wids, globalAdmin) != admin.GlobalAdmin {
		t.Fatalf("wids %v for an admin with globalAdmin %v", cl.Wids, admin.GlobalAdmin)
	}
	svc := e.scn.Tenants[0].ServiceAccount
	if who, _ := e.cloud.Person(svc.UPN); slices.Contains(who.Roles, globalAdmin) || len(who.Roles) != 1 {
		t.Fatalf("the service account's roles: %v", who.Roles)
	}
	if cl.Iat != e.clock.Now().Unix() || cl.Nbf != cl.Iat || cl.Exp != cl.Iat+3600 {
		t.Fatalf("times: iat %d nbf %d exp %d, cloud clock %d", cl.Iat, cl.Nbf, cl.Exp, e.clock.Now().Unix())
	}
	// The token names this desk only: another client ID is refused by the same verifier.
	other := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(octx, disc.JWKSURI), &oidc.Config{ClientID: e.scn.Orchestrator.ClientID, Now: e.clock.Now})
	if _, err := other.Verify(octx, res.IDToken.RawToken); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Fatalf("an ID token for the desk, verified for another audience: %v", err)
	}
	// A tampered token fails the signature.
	parts := strings.Split(res.IDToken.RawToken, ".")
	forged, _ := json.Marshal(map[string]any{"aud": e.desk.ClientID, "iss": issuer, "tid": tenant, "preferred_username": "mallory@contoso.com", "exp": cl.Exp, "iat": cl.Iat})
	if _, err := verifier.Verify(octx, parts[0]+"."+base64.RawURLEncoding.EncodeToString(forged)+"."+parts[2]); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("a forged ID token: %v", err)
	}
	// An hour later on the cloud's clock the ID token has expired.
	e.clock.Advance(time.Hour + time.Second)
	if _, err := verifier.Verify(octx, res.IDToken.RawToken); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an ID token an hour old: %v", err)
	}
}

// TestOperatorsSignInToThePartnerTenant: operators carry the operators' group in the groups
// claim; a colleague of the partner tenant does not; a specific-tenant authority takes only
// its own people (AADSTS50020).
func TestOperatorsSignInToThePartnerTenant(t *testing.T) {
	e := newDeskEnv(t)
	partner := e.scn.Partner
	if partner == nil || len(partner.Operators) == 0 || len(partner.Users) == 0 {
		t.Fatalf("default partner: %+v", partner)
	}
	group := strings.ToLower(partner.OperatorsGroup.ObjectID)
	for _, c := range []struct {
		u        sim.User
		operator bool
	}{{partner.Operators[0], true}, {partner.Users[0], false}} {
		p := newPKCE()
		code := e.signIn(partner.TenantID, p, c.u.UPN, c.u.Password)
		res, err := e.msal.AcquireTokenByAuthCode(e.ctx, code, e.redirectURI(), deskScopes, confidential.WithChallenge(p.verifier))
		if err != nil {
			t.Fatal(err)
		}
		cl, err := e.cloud.VerifyIDToken(res.IDToken.RawToken)
		if err != nil {
			t.Fatal(err)
		}
		if cl.Tid != strings.ToLower(partner.TenantID) || slices.Contains(cl.Groups, group) != c.operator || cl.Iss != "https://login.microsoftonline.com/"+strings.ToLower(partner.TenantID)+"/v2.0" {
			t.Fatalf("%s: claims %+v (operator %v)", c.u.UPN, cl, c.operator)
		}
		if who, ok := e.cloud.Person(c.u.UPN); !ok || slices.Contains(who.Groups, group) != c.operator {
			t.Fatalf("Person(%s) = %+v", c.u.UPN, who)
		}
	}
	// A customer's admin at the partner tenant's authority: AADSTS50020, no code.
	admin := e.scn.Tenants[1].Admin
	_, err := sim.SignIn(e.ctx, e.cloud.BrowserClient(), e.authorizeURL(partner.TenantID, newPKCE(), e.redirectURI()), admin.UPN, admin.Password)
	var se *sim.SignInError
	if !errors.As(err, &se) || se.AADSTS != 50020 || !strings.Contains(se.Message, admin.UPN) {
		t.Fatalf("another tenant's admin at the partner's authority: %v", err)
	}
}

// TestPartnerCenterAdminsSignIn: the admin of a Partner Center connection in a partner tenant
// signs in to that tenant.
func TestPartnerCenterAdminsSignIn(t *testing.T) {
	e := newDeskEnv(t)
	for _, tn := range e.scn.Tenants {
		for _, pc := range tn.PartnerCenters {
			if pc.Primary {
				if pc.Admin == nil || pc.Admin.UPN != tn.Admin.UPN {
					t.Fatalf("primary connection's admin %+v, want the customer's admin", pc.Admin)
				}
				continue
			}
			p := newPKCE()
			code := e.signIn(pc.TenantID, p, pc.Admin.UPN, pc.Admin.Password)
			res, err := e.msal.AcquireTokenByAuthCode(e.ctx, code, e.redirectURI(), deskScopes, confidential.WithChallenge(p.verifier))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(res.Account.HomeAccountID, "."+strings.ToLower(pc.TenantID)) || res.Account.PreferredUsername != pc.Admin.UPN {
				t.Fatalf("partner admin account %+v", res.Account)
			}
			return
		}
	}
	t.Skip("the generated fleet has no partner-tenant connection")
}

// TestSignInRefusals: each refusal with Entra ID's error, over real HTTP and (for the token
// endpoint) through MSAL.
func TestSignInRefusals(t *testing.T) {
	e := newDeskEnv(t)
	admin := e.scn.Tenants[0].Admin
	browser := e.cloud.BrowserClient()
	signInErr := func(authorize, upn, password string) *sim.SignInError {
		t.Helper()
		loc, err := sim.SignIn(e.ctx, browser, authorize, upn, password)
		var se *sim.SignInError
		if !errors.As(err, &se) {
			t.Fatalf("want a sign-in page error, got %q, %v", loc, err)
		}
		return se
	}
	redeem := func(code, verifier string) error {
		t.Helper()
		_, err := e.msal.AcquireTokenByAuthCode(e.ctx, code, e.redirectURI(), deskScopes, confidential.WithChallenge(verifier))
		return err
	}
	wantAADSTS := func(what string, err error, code string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), code) {
			t.Fatalf("%s: got %v, want %s", what, err, code)
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		if se := signInErr(e.authorizeURL("", newPKCE(), e.redirectURI()), admin.UPN, admin.Password+"x"); se.AADSTS != 50126 {
			t.Fatalf("%+v", se)
		}
		if se := signInErr(e.authorizeURL("", newPKCE(), e.redirectURI()), "nobody@contoso.com", "whatever1"); se.AADSTS != 50034 {
			t.Fatalf("%+v", se)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		u, _ := url.Parse(e.authorizeURL("", newPKCE(), e.redirectURI()))
		q := u.Query()
		q.Set("client_id", "99999999-9999-4999-8999-999999999999")
		u.RawQuery = q.Encode()
		if se := signInErr(u.String(), admin.UPN, admin.Password); se.AADSTS != 700016 {
			t.Fatalf("%+v", se)
		}
	})
	t.Run("redirect_uri not registered", func(t *testing.T) {
		for _, r := range []string{"https://evil.example.com/auth/callback", "http://127.0.0.1:8917/other", "http://192.168.1.5/auth/callback"} {
			if se := signInErr(e.authorizeURL("", newPKCE(), r), admin.UPN, admin.Password); se.AADSTS != 50011 {
				t.Fatalf("%s: %+v", r, se)
			}
		}
	})
	t.Run("authorize errors go back to the redirect URI", func(t *testing.T) {
		for _, c := range []struct{ key, value, wantErr, wantDesc string }{
			{"code_challenge", "", "invalid_request", "Proof Key for Code Exchange is required"},
			{"code_challenge_method", "plain", "invalid_request", "code_challenge_method 'plain'"},
			{"code_challenge_method", "", "invalid_request", "code_challenge_method ''"},
			{"response_type", "token", "unauthorized_client", "AADSTS700051"},
			{"response_type", "id_token", "unauthorized_client", "AADSTS700054"},
			{"prompt", "none", "login_required", "AADSTS50058"},
		} {
			p := newPKCE()
			u, _ := url.Parse(e.authorizeURL("", p, e.redirectURI()))
			q := u.Query()
			if c.value == "" {
				q.Del(c.key)
			} else {
				q.Set(c.key, c.value)
			}
			u.RawQuery = q.Encode()
			loc, err := sim.SignIn(e.ctx, browser, u.String(), admin.UPN, admin.Password)
			r, _ := url.Parse(loc)
			if err != nil || !strings.HasPrefix(loc, e.redirectURI()) || r.Query().Get("error") != c.wantErr ||
				!strings.Contains(r.Query().Get("error_description"), c.wantDesc) || r.Query().Get("state") != p.state || r.Query().Get("code") != "" {
				t.Fatalf("%s=%q: %q, %v", c.key, c.value, loc, err)
			}
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		p := newPKCE()
		code := e.signIn("", p, admin.UPN, admin.Password)
		wantAADSTS("wrong verifier", redeem(code, newPKCE().verifier), "AADSTS501481")
		wantAADSTS("no verifier", redeem(code, ""), "AADSTS501481")
		if err := redeem(code, p.verifier); err != nil {
			t.Fatalf("the right verifier after wrong ones: %v", err)
		}
	})
	t.Run("reused code", func(t *testing.T) {
		p := newPKCE()
		code := e.signIn("", p, admin.UPN, admin.Password)
		if err := redeem(code, p.verifier); err != nil {
			t.Fatal(err)
		}
		wantAADSTS("second redemption", redeem(code, p.verifier), "AADSTS54005")
	})
	t.Run("expired code", func(t *testing.T) {
		p := newPKCE()
		code := e.signIn("", p, admin.UPN, admin.Password)
		e.clock.Advance(sim.AuthCodeLifetime + time.Second)
		wantAADSTS("code after 10 minutes", redeem(code, p.verifier), "AADSTS70008")
	})
	t.Run("wrong redirect_uri at the token endpoint", func(t *testing.T) {
		p := newPKCE()
		code := e.signIn("", p, admin.UPN, admin.Password)
		_, err := e.msal.AcquireTokenByAuthCode(e.ctx, code, "http://localhost:8917/auth/callback", deskScopes, confidential.WithChallenge(p.verifier))
		wantAADSTS("other redirect", err, "AADSTS500112")
	})
	t.Run("client authentication", func(t *testing.T) {
		p := newPKCE()
		code := e.signIn("", p, admin.UPN, admin.Password)
		cred, _ := confidential.NewCredFromSecret("not-the-secret")
		bad, err := confidential.New("https://login.microsoftonline.com/organizations", e.desk.ClientID, cred,
			confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(e.cloud.HTTPClient()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.AcquireTokenByAuthCode(e.ctx, code, e.redirectURI(), deskScopes, confidential.WithChallenge(p.verifier))
		wantAADSTS("wrong secret", err, "AADSTS7000215")
		// Unknown client at the token endpoint.
		form := url.Values{"grant_type": {"authorization_code"}, "client_id": {"99999999-9999-4999-8999-999999999999"}, "client_secret": {"x"},
			"code": {code}, "redirect_uri": {e.redirectURI()}, "code_verifier": {p.verifier}}
		resp, err := e.cloud.HTTPClient().PostForm("https://login.microsoftonline.com/organizations/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.HasPrefix(m["error_description"].(string), "AADSTS700016") {
			t.Fatalf("unknown client: %d %v", resp.StatusCode, m)
		}
		// The code survived the refused attempts: the desk can still redeem it.
		if err := redeem(code, p.verifier); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSignInWithACookieJar drives the page with a plain http.Client and a cookie jar, the
// autopilot's path, and shows the form is bound to the browser that loaded it.
func TestSignInWithACookieJar(t *testing.T) {
	e := newDeskEnv(t)
	svc := e.scn.Tenants[2].ServiceAccount
	// A desk stand-in on loopback: its callback receives what the browser brings back.
	got := make(chan url.Values, 1)
	desk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		_, _ = w.Write([]byte("signed in"))
	}))
	defer desk.Close()
	e.cbPort = desk.URL[strings.LastIndex(desk.URL, ":")+1:]
	browser := e.cloud.BrowserClient()
	p := newPKCE()
	loc, err := sim.SignIn(e.ctx, browser, e.authorizeURL("", p, e.redirectURI()), svc.UPN, svc.Password)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := browser.Get(loc) // the browser follows the redirect to the desk
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := <-got
	if q.Get("state") != p.state || q.Get("code") == "" {
		t.Fatalf("desk callback: %v", q)
	}
	if _, err := e.msal.AcquireTokenByAuthCode(e.ctx, q.Get("code"), e.redirectURI(), deskScopes, confidential.WithChallenge(p.verifier)); err != nil {
		t.Fatal(err)
	}
	// The form posted without the page's cookie (another browser) is refused.
	authorize := e.authorizeURL("", newPKCE(), e.redirectURI())
	page, err := browser.Get(authorize)
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	au, _ := url.Parse(authorize)
	var ctxID string
	for _, c := range browser.Jar.Cookies(au) {
		if c.Name == "esctx" {
			ctxID = c.Value
		}
	}
	if ctxID == "" {
		t.Fatal("the sign-in page set no flow cookie")
	}
	noJar := e.cloud.HTTPClient()
	noJar.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = noJar.PostForm("https://login.microsoftonline.com/organizations/login", url.Values{"ctx": {ctxID}, "login": {svc.UPN}, "passwd": {svc.Password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("a form without its cookie: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The browser refuses hosts that are neither simulated nor loopback.
	if _, err := browser.Get("https://example.com/"); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("real host: %v", err)
	}
}
