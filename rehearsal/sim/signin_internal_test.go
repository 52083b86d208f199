package sim

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// authorizeFor builds a desk authorize URL by hand (the MSAL path is in signin_test.go).
func (e *env) authorizeFor(authority, verifier string) string {
	d := e.cloud.DeskApp()
	q := url.Values{"client_id": {d.ClientID}, "response_type": {"code"}, "redirect_uri": {"http://127.0.0.1:9/auth/callback"},
		"scope": {"openid profile"}, "state": {"s"}, "nonce": {"n"}, "code_challenge": {PKCEChallenge(verifier)}, "code_challenge_method": {"S256"}}
	return "https://login.microsoftonline.com/" + authority + "/oauth2/v2.0/authorize?" + q.Encode()
}

// TestSignInDirectoryRules: a disabled account is refused (AADSTS50057); a customer's users
// carry the groups the scenario puts them in (the conditional access group, the
// role-assignable Global Administrator group); a tenant's verified domain works as authority.
func TestSignInDirectoryRules(t *testing.T) {
	e := newEnv(t, func(s *Scenario) {
		s.Tenants[0].ConditionalAccessMFA, s.Tenants[0].ConditionalAccessGroup = true, true
		s.Tenants[1].ServiceAccount.Disabled = true
	})
	ctx := context.Background()
	verifier := "0123456789012345678901234567890123456789abc"
	svcB := e.cloud.Scenario().Tenants[1].ServiceAccount
	_, err := SignIn(ctx, e.cloud.BrowserClient(), e.authorizeFor(tenantB, verifier), svcB.UPN, svcB.Password)
	var se *SignInError
	if !errors.As(err, &se) || se.AADSTS != 50057 {
		t.Fatalf("disabled account: %v", err)
	}
	admin := e.cloud.Scenario().Tenants[0].Admin
	loc, err := SignIn(ctx, e.cloud.BrowserClient(), e.authorizeFor("contoso.onmicrosoft.com", verifier), admin.UPN, admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	d := e.cloud.DeskApp()
	st, m := e.tokenResponse("contoso.onmicrosoft.com", url.Values{"grant_type": {"authorization_code"}, "client_id": {d.ClientID}, "client_secret": {d.ClientSecret},
		"code": {u.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:9/auth/callback"}, "code_verifier": {verifier}, "scope": {"openid profile"}})
	if st != 200 {
		t.Fatalf("token: %d %v", st, m)
	}
	cl, err := e.cloud.VerifyIDToken(m["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	e.cloud.mu.Lock()
	caGroup := e.cloud.tenants[tenantA].caGroupID
	e.cloud.mu.Unlock()
	if cl.Tid != tenantA || cl.Oid != adminA || !slices.Contains(cl.Groups, caGroup) || cl.Nonce != "n" || !slices.Contains(cl.Wids, globalAdminRole) {
		t.Fatalf("claims %+v (ca group %s)", cl, caGroup)
	}
	if _, ok := m["refresh_token"]; ok {
		t.Fatal("a refresh token without offline_access")
	}
	// A code redeemed at another tenant's authority is refused.
	loc, err = SignIn(ctx, e.cloud.BrowserClient(), e.authorizeFor("organizations", verifier), admin.UPN, admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	u, _ = url.Parse(loc)
	st, m = e.tokenResponse(tenantB, url.Values{"grant_type": {"authorization_code"}, "client_id": {d.ClientID}, "client_secret": {d.ClientSecret},
		"code": {u.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:9/auth/callback"}, "code_verifier": {verifier}})
	if st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("code of tenant A at tenant B: %d %v", st, m)
	}
	// Sign-out returns to a registered reply URL only.
	noFollow := e.cloud.HTTPClient()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for back, want := range map[string]int{"http://127.0.0.1:9/auth/callback": 302, "https://evil.example.com/": 200} {
		resp, err := noFollow.Get("https://login.microsoftonline.com/organizations/oauth2/v2.0/logout?post_logout_redirect_uri=" + url.QueryEscape(back))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (want == 302) != (resp.Header.Get("Location") == back) {
			t.Fatalf("logout to %s: %d %q", back, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// TestRefreshTokens: offline_access brings a refresh token the desk can redeem (with its
// secret) for new tokens and a new refresh token; one unused for 90 days is refused
// (AADSTS700082), an unknown one is invalid_grant.
func TestRefreshTokens(t *testing.T) {
	e := newEnv(t, nil)
	d := e.cloud.DeskApp()
	verifier := "0123456789012345678901234567890123456789abc"
	authorize, _ := url.Parse(e.authorizeFor("organizations", verifier))
	q := authorize.Query()
	q.Set("scope", "openid profile offline_access")
	authorize.RawQuery = q.Encode()
	admin := e.cloud.Scenario().Tenants[0].Admin
	loc, err := SignIn(context.Background(), e.cloud.BrowserClient(), authorize.String(), admin.UPN, admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	st, m := e.tokenResponse("organizations", url.Values{"grant_type": {"authorization_code"}, "client_id": {d.ClientID}, "client_secret": {d.ClientSecret},
		"code": {u.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:9/auth/callback"}, "code_verifier": {verifier}})
	rt, _ := m["refresh_token"].(string)
	if st != 200 || rt == "" || !strings.Contains(m["scope"].(string), "offline_access") {
		t.Fatalf("code redemption: %d %v", st, m)
	}
	refresh := func(token, secret string) (int, map[string]any) {
		return e.tokenResponse("organizations", url.Values{"grant_type": {"refresh_token"}, "client_id": {d.ClientID}, "client_secret": {secret}, "refresh_token": {token}})
	}
	if st, m := refresh(rt, "wrong-secret"); st != 401 || !strings.HasPrefix(m["error_description"].(string), "AADSTS7000215") {
		t.Fatalf("refresh with a wrong secret: %d %v", st, m)
	}
	st, m = refresh(rt, d.ClientSecret)
	next, _ := m["refresh_token"].(string)
	if st != 200 || next == "" || next == rt || m["access_token"] == nil {
		t.Fatalf("refresh: %d %v", st, m)
	}
	cl, err := e.cloud.VerifyIDToken(m["id_token"].(string))
	if err != nil || cl.Oid != strings.ToLower(admin.ObjectID) || cl.Nonce != "" {
		t.Fatalf("refreshed ID token %+v, %v", cl, err)
	}
	if st, m := refresh("sim-rt.unknown", d.ClientSecret); st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("unknown refresh token: %d %v", st, m)
	}
	e.clock.Advance(RefreshTokenInactivity + time.Hour)
	if st, m := refresh(next, d.ClientSecret); st != 400 || !strings.HasPrefix(m["error_description"].(string), "AADSTS700082") {
		t.Fatalf("refresh token unused for 90 days: %d %v", st, m)
	}
}
