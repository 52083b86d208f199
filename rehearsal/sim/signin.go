package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// The simulated Microsoft Entra ID sign-in: OpenID Connect's authorization code flow with
// PKCE for the task desk's app registration (Scenario.Desk), a sign-in page where the
// scenario's people type their password, and the token endpoint's authorization_code grant
// issuing RS256 ID tokens. Microsoft's contract:
// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
// https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
// https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
// Error codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
//
// With MSAL for Go (v1.10.1) a desk does: confidential.Client.AuthCodeURL(ctx, clientID,
// redirectURI, []string{"openid", "profile"}) — it emits client_id, response_type=code,
// redirect_uri and scope only (its options: login_hint, domain_hint, prompt, claims), so the
// desk appends state, nonce, code_challenge and code_challenge_method=S256 to that URL — then
// AcquireTokenByAuthCode(ctx, code, redirectURI, scopes, confidential.WithChallenge(verifier)):
// WithChallenge is sent as code_verifier. MSAL does not verify the ID token: the desk checks
// its signature (jwks_uri), iss ({tenantid} replaced by the token's tid), aud, exp and nonce.

// Lifetimes of the sign-in.
const (
	// AuthCodeLifetime is how long an authorization code can be redeemed, on the cloud's
	// clock ("authorization codes are short lived, typically they expire after about 10
	// minutes").
	AuthCodeLifetime = 10 * time.Minute
	// signInPageLifetime is how long a sign-in page accepts its form, in real time: a person
	// types at wall-clock speed whatever the simulated clock does.
	signInPageLifetime = 15 * time.Minute
	// flowCookie ties the posted form to the browser that loaded the page.
	flowCookie = "esctx"
)

// person is someone who can sign in.
type person struct {
	upn, oid, name, password string
	tenant                   string // lower-case tenant ID
	// operator: a member of the partner's operators' group.
	operator bool
}

// authzRequest is a sign-in page waiting for its form.
type authzRequest struct {
	id                      string
	authority               string // the {tenant} of the authorize URL, lower case
	clientID, redirectURI   string
	state, nonce, challenge string
	scopes                  []string
	responseMode, loginHint string
	expires                 time.Time // wall clock
}

// authCode is an issued authorization code.
type authCode struct {
	who                   *person
	clientID, redirectURI string
	nonce, challenge      string
	scopes                []string
	issued                time.Time // cloud clock
	redeemed              bool
	sessionUUID           string
}

// buildDirectory lists who can sign in where, from the scenario (defaults filled): each
// tenant's admin and service account, each Partner Center connection's admin in its tenant,
// and the partner tenant's operators and other users. Runs during New.
func (c *Cloud) buildDirectory() {
	c.people, c.directory = map[string]*person{}, map[string]string{}
	c.pending, c.codes, c.refresh = map[string]*authzRequest{}, map[string]*authCode{}, map[string]*refreshGrant{}
	add := func(tenant, tenantName string, u User, operator bool) {
		tenant = strings.ToLower(tenant)
		if _, ok := c.directory[tenant]; !ok {
			c.directory[tenant] = tenantName
		}
		k := strings.ToLower(u.UPN)
		if c.people[k] == nil {
			c.people[k] = &person{upn: u.UPN, oid: strings.ToLower(u.ObjectID), name: u.DisplayName, password: u.Password, tenant: tenant}
		}
		c.people[k].operator = c.people[k].operator || operator
	}
	for _, t := range c.scn.Tenants {
		add(t.TenantID, t.Name, t.Admin, false)
		add(t.TenantID, t.Name, t.ServiceAccount, false)
	}
	for _, t := range c.scn.Tenants {
		for _, pc := range t.PartnerCenters {
			if pc.Admin != nil {
				add(pc.TenantID, pc.Name, *pc.Admin, false)
			}
		}
	}
	if p := c.scn.Partner; p != nil {
		c.directory[strings.ToLower(p.TenantID)] = p.Name
		for _, u := range p.Operators {
			add(p.TenantID, p.Name, u, true)
		}
		for _, u := range p.Users {
			add(p.TenantID, p.Name, u, false)
		}
	}
}

// DeskApp returns the task desk's app registration (client ID, secret, redirect URIs): what a
// rehearsal configures its desk with. The secret goes to the desk as a file, as the
// orchestrator's does, never into workflow inputs.
func (c *Cloud) DeskApp() DeskApp {
	d := c.scn.Desk
	d.RedirectURIs = slices.Clone(d.RedirectURIs)
	return d
}

// Person is someone of the scenario who can sign in, and what their ID token says.
type Person struct {
	UPN, ObjectID, DisplayName, Password string
	// TenantID is the tenant they sign in to (the tid claim).
	TenantID string
	// Groups are the object IDs of the security groups they belong to (the groups claim).
	Groups []string
	// Roles are the template IDs of their active directory roles (the wids claim).
	Roles []string
}

// Person returns who signs in as upn (the autopilot finds the password there).
func (c *Cloud) Person(upn string) (Person, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.people[strings.ToLower(upn)]
	if p == nil {
		return Person{}, false
	}
	return Person{UPN: p.upn, ObjectID: p.oid, DisplayName: p.name, Password: p.password, TenantID: p.tenant, Groups: c.groupsOf(p), Roles: c.widsOf(p)}, true
}

// groupsOf returns the object IDs of the security groups p is a member of: the partner's
// operators' group, and in a customer tenant the conditional access group and the
// role-assignable Global Administrator group where the scenario puts the user in them.
// Callers hold c.mu (or run during New).
func (c *Cloud) groupsOf(p *person) []string {
	var out []string
	if p.operator && c.scn.Partner != nil {
		out = append(out, strings.ToLower(c.scn.Partner.OperatorsGroup.ObjectID))
	}
	t := c.tenants[p.tenant]
	if t == nil || !t.customer {
		return out
	}
	u := t.user(p.oid)
	if u == nil {
		return out
	}
	if t.caGroup && t.caGroupID != "" {
		out = append(out, t.caGroupID)
	}
	if u.gaVia == "group" && t.adminsGroupID != "" {
		out = append(out, t.adminsGroupID)
	}
	return out
}

// userRoleTemplate is the "User" role every member holds, which Entra ID lists in wids.
const userRoleTemplate = "b79fbf4d-3ef9-4689-8143-76b194e85509"

// widsOf returns the wids claim: the template IDs of p's active directory roles — User for
// every member, Global Administrator while the user holds it actively (directly or through
// its group; a PIM eligibility not activated does not count).
// https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference
// Callers hold c.mu.
func (c *Cloud) widsOf(p *person) []string {
	out := []string{userRoleTemplate}
	if t := c.tenants[p.tenant]; t != nil {
		if u := t.user(p.oid); u != nil && u.globalAdmin {
			out = append(out, globalAdminRole)
		}
	}
	return out
}

// disabled reports whether p's account is disabled in its directory. Callers hold c.mu.
func (c *Cloud) disabled(p *person) bool {
	if t := c.tenants[p.tenant]; t != nil {
		if u := t.user(p.oid); u != nil {
			return u.disabled
		}
	}
	return false
}

// knownAuthority reports whether tenant is an authority people can sign in at: a meta
// tenant, or a tenant of the directory by ID or verified domain. Callers hold c.mu.
func (c *Cloud) knownAuthority(tenant string) bool {
	if isMetaTenant(tenant) {
		return true
	}
	if _, ok := c.directory[strings.ToLower(tenant)]; ok {
		return true
	}
	return c.tenantByID(tenant) != nil
}

// authorityTenant resolves a specific authority (ID or domain) to a tenant ID; "" for meta
// tenants. Callers hold c.mu.
func (c *Cloud) authorityTenant(tenant string) string {
	if isMetaTenant(tenant) {
		return ""
	}
	if t := c.tenantByID(tenant); t != nil {
		return t.id
	}
	return strings.ToLower(tenant)
}

// redirectRegistered applies Entra ID's reply URL matching: exact, except that a loopback
// http URI matches whatever its port.
// https://learn.microsoft.com/entra/identity-platform/reply-url#localhost-exceptions
func redirectRegistered(registered []string, uri string) bool {
	got, err := url.Parse(uri)
	if err != nil {
		return false
	}
	for _, r := range registered {
		if r == uri {
			return true
		}
		want, err := url.Parse(r)
		if err != nil || want.Scheme != "http" || got.Scheme != "http" || !loopbackHost(want.Hostname()) {
			continue
		}
		if strings.EqualFold(want.Hostname(), got.Hostname()) && want.Path == got.Path && want.RawQuery == got.RawQuery {
			return true
		}
	}
	return false
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b64.EncodeToString(b)
}

// ---- GET /{tenant}/oauth2/v2.0/authorize ----

// serveAuthorize validates an authorization request and shows the sign-in page. Errors
// before the redirect URI is known to be registered are shown on an error page (never
// redirected); later ones go back to the redirect URI as error and error_description.
// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#request-an-authorization-code
func (c *Cloud) serveAuthorize(w http.ResponseWriter, r *http.Request, tenant string) {
	q := r.URL.Query()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.countCall("GET login /{tenant}/oauth2/v2.0/authorize")
	desk := c.scn.Desk
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	switch {
	case !c.knownAuthority(tenant) || strings.EqualFold(tenant, "consumers"):
		errorPage(w, http.StatusBadRequest, 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	case clientID == "":
		errorPage(w, http.StatusBadRequest, 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	case strings.EqualFold(clientID, c.scn.Orchestrator.ClientID):
		errorPage(w, http.StatusBadRequest, 500113, "No reply address is registered for the application.")
		return
	case !strings.EqualFold(clientID, desk.ClientID):
		errorPage(w, http.StatusBadRequest, 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", clientID, tenant))
		return
	case redirectURI == "":
		errorPage(w, http.StatusBadRequest, 900971, "No reply address provided.")
		return
	case !redirectRegistered(desk.RedirectURIs, redirectURI):
		errorPage(w, http.StatusBadRequest, 50011, fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", redirectURI, desk.ClientID))
		return
	}
	mode := q.Get("response_mode")
	back := func(errCode string, aadsts int, desc string) {
		redirectResult(w, redirectURI, mode, authzError(errCode, aadsts, desc, q.Get("state")))
	}
	scopes := strings.Fields(q.Get("scope"))
	switch rt := q.Get("response_type"); {
	case mode != "" && mode != "query" && mode != "fragment" && mode != "form_post":
		mode = ""
		back("invalid_request", 0, fmt.Sprintf("The response_mode '%s' is not supported: use query, fragment or form_post.", q.Get("response_mode")))
		return
	case rt == "":
		back("invalid_request", 900144, "The request body must contain the following parameter: 'response_type'.")
		return
	case rt != "code" && strings.Contains(" "+rt+" ", " token "):
		back("unauthorized_client", 700051, "response_type 'token' is not enabled for the application.")
		return
	case rt != "code" && strings.Contains(" "+rt+" ", " id_token "):
		back("unauthorized_client", 700054, "response_type 'id_token' is not enabled for the application.")
		return
	case rt != "code":
		back("unsupported_response_type", 0, fmt.Sprintf("The response_type '%s' is not supported: the desk's registration uses the authorization code flow (response_type=code).", rt))
		return
	case len(scopes) == 0:
		back("invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
		return
	case q.Get("code_challenge") == "":
		// Entra ID recommends PKCE for confidential clients and requires it for SPAs; the
		// simulator requires it of the desk so a desk that forgot it fails the rehearsal.
		back("invalid_request", 0, "Proof Key for Code Exchange is required: send code_challenge and code_challenge_method=S256 (the simulator requires PKCE of the task desk).")
		return
	case q.Get("code_challenge_method") != "S256":
		back("invalid_request", 0, fmt.Sprintf("The code_challenge_method '%s' is not accepted: send S256 (without it Entra ID takes the challenge as plain text, which protects nothing).", q.Get("code_challenge_method")))
		return
	case len(q.Get("code_challenge")) != 43:
		back("invalid_request", 0, "The code_challenge must be the 43-character base64url SHA-256 of the code_verifier.")
		return
	case q.Get("prompt") == "none":
		back("login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
		return
	}
	if res, bad := badScope(scopes); bad != "" {
		back("invalid_scope", 0, bad)
		return
	} else if res != "" && !strings.EqualFold(strings.TrimSuffix(res, "/"), GraphResource) {
		back("invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", res, tenant))
		return
	}
	a := &authzRequest{
		id: randomToken(24), authority: strings.ToLower(tenant), clientID: desk.ClientID, redirectURI: redirectURI,
		state: q.Get("state"), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), scopes: scopes,
		responseMode: mode, loginHint: q.Get("login_hint"), expires: time.Now().Add(signInPageLifetime),
	}
	c.prunePending()
	c.pending[a.id] = a
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: a.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	c.signInPage(w, http.StatusOK, a, a.loginHint, "")
}

// badScope checks the requested scopes: OpenID Connect's, and delegated Microsoft Graph
// permissions (User.Read or https://graph.microsoft.com/User.Read). It returns the resource
// named by a full scope URI, or a problem.
func badScope(scopes []string) (resource, problem string) {
	for _, s := range scopes {
		switch s {
		case "openid", "profile", "email", "offline_access":
			continue
		}
		if strings.HasPrefix(s, "https://") {
			i := strings.LastIndex(s, "/")
			if i <= len("https://") {
				return "", fmt.Sprintf("The scope '%s' is not of the form {resource}/{permission}.", s)
			}
			if s[i+1:] == ".default" || s[i+1:] == "" {
				continue
			}
			resource = s[:i]
			continue
		}
		if strings.ContainsAny(s, "/:") {
			return "", fmt.Sprintf("The scope '%s' is not valid.", s)
		}
	}
	return resource, ""
}

// prunePending forgets sign-in pages nobody finished and codes past their lifetime.
// Callers hold c.mu.
func (c *Cloud) prunePending() {
	now := time.Now()
	for id, a := range c.pending {
		if now.After(a.expires) {
			delete(c.pending, id)
		}
	}
	simNow := c.clock.Now()
	for k, code := range c.codes {
		if simNow.Sub(code.issued) > 2*AuthCodeLifetime {
			delete(c.codes, k)
		}
	}
}

// authzError is the query of an error redirect.
func authzError(errCode string, aadsts int, desc, state string) url.Values {
	v := url.Values{"error": {errCode}, "error_description": {aadstsText(aadsts, desc)}}
	if state != "" {
		v.Set("state", state)
	}
	return v
}

func aadstsText(aadsts int, desc string) string {
	if aadsts == 0 {
		return desc
	}
	return fmt.Sprintf("AADSTS%d: %s", aadsts, desc)
}

// redirectResult sends the authorization response to the redirect URI as the response mode
// says: query (default for code), fragment, or an auto-submitted form (form_post).
func redirectResult(w http.ResponseWriter, redirectURI, mode string, v url.Values) {
	if mode == "form_post" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = formPostTmpl.Execute(w, map[string]any{"Action": redirectURI, "Values": v})
		return
	}
	u, _ := url.Parse(redirectURI)
	if mode == "fragment" {
		u.Fragment = v.Encode()
	} else {
		q := u.Query()
		for k, vs := range v {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

// errorPage shows Entra ID's "we couldn't sign you in" page with the AADSTS code, for errors
// that must not go to an unverified redirect URI.
func errorPage(w http.ResponseWriter, status, aadsts int, desc string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, map[string]any{"Error": aadstsText(aadsts, desc), "Form": false})
}

func (c *Cloud) signInPage(w http.ResponseWriter, status int, a *authzRequest, username, problem string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, map[string]any{
		"Form": true, "Action": "/" + a.authority + "/login", "Ctx": a.id, "Username": username,
		"Error": problem, "App": c.scn.Desk.DisplayName,
	})
}

// pageTmpl is the sign-in page: plain HTML with stable element IDs (#username, #password,
// #signin, #error) that a headless browser and SignIn can both fill.
var pageTmpl = template.Must(template.New("signin").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body>
<h1 id="title">Sign in</h1>
{{if .Form}}<p id="app">to continue to {{.App}}</p>{{end}}
{{if .SignedOut}}<p id="signedout">You signed out of your account. It's a good idea to close all browser windows.</p>{{end}}
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
{{if .Form}}<form id="credentials" method="post" action="{{.Action}}">
<input type="hidden" name="ctx" value="{{.Ctx}}">
<label for="username">Email or username</label>
<input id="username" name="login" type="email" autocomplete="username" value="{{.Username}}">
<label for="password">Password</label>
<input id="password" name="passwd" type="password" autocomplete="current-password">
<button id="signin" type="submit">Sign in</button>
</form>{{end}}
</body></html>
`))

var formPostTmpl = template.Must(template.New("formpost").Parse(`<!DOCTYPE html>
<html><head><title>Working...</title></head>
<body onload="document.forms[0].submit()">
<form id="hiddenform" method="post" action="{{.Action}}">
{{range $k, $vs := .Values}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<noscript><button id="continue" type="submit">Continue</button></noscript>
</form></body></html>
`))

// serveLogout ends the sign-in session: back to post_logout_redirect_uri when it is one of the
// desk's reply URLs, else Entra ID's "you signed out" page.
// https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#send-a-sign-out-request
func (c *Cloud) serveLogout(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.countCall("GET login /{tenant}/oauth2/v2.0/logout")
	registered := c.scn.Desk.RedirectURIs
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: "", Path: "/", MaxAge: -1})
	if back := r.URL.Query().Get("post_logout_redirect_uri"); back != "" && redirectRegistered(registered, back) {
		http.Redirect(w, r, back, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, map[string]any{"Form": false, "Error": "", "SignedOut": true})
}

// ---- POST /{tenant}/login ----

// serveSignIn checks the posted credentials. A wrong username or password shows the page
// again with the AADSTS error and issues no code; a person of another tenant is refused
// when the authority names a tenant; success redirects with code and state.
func (c *Cloud) serveSignIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		errorPage(w, http.StatusBadRequest, 900144, "The request body must contain form parameters.")
		return
	}
	ctxID := r.PostForm.Get("ctx")
	cookie, _ := r.Cookie(flowCookie)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.countCall("POST login /{tenant}/login")
	a := c.pending[ctxID]
	switch {
	case a == nil || time.Now().After(a.expires):
		errorPage(w, http.StatusBadRequest, 0, "Your sign-in page expired or is unknown: go back to the application and sign in again.")
		return
	case cookie == nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(ctxID)) != 1:
		errorPage(w, http.StatusBadRequest, 0, "This browser did not send the sign-in cookie: enable cookies and sign in again from the application.")
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("login"))
	p := c.people[strings.ToLower(login)]
	switch {
	case login == "":
		c.signInPage(w, http.StatusOK, a, "", "Enter a valid email address, phone number, or Skype name.")
		return
	case p == nil:
		c.signInPage(w, http.StatusOK, a, login, aadstsText(50034, fmt.Sprintf("The user account %s does not exist in the directory. To sign into this application, the account must be added to the directory.", login)))
		return
	case subtle.ConstantTimeCompare([]byte(r.PostForm.Get("passwd")), []byte(p.password)) != 1:
		c.signInPage(w, http.StatusOK, a, login, aadstsText(50126, "Error validating credentials due to invalid username or password."))
		return
	case c.disabled(p):
		c.signInPage(w, http.StatusOK, a, login, aadstsText(50057, "The user account is disabled."))
		return
	}
	if want := c.authorityTenant(a.authority); want != "" && want != p.tenant {
		name := c.directory[want]
		if name == "" {
			name = want
		}
		c.signInPage(w, http.StatusOK, a, login, aadstsText(50020, fmt.Sprintf("User account '%s' from identity provider 'https://sts.windows.net/%s/' does not exist in tenant '%s' and cannot access the application '%s'(%s) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Microsoft Entra user account.", p.upn, p.tenant, name, a.clientID, c.scn.Desk.DisplayName)))
		return
	}
	delete(c.pending, a.id)
	code := randomToken(48)
	c.codes[code] = &authCode{who: p, clientID: a.clientID, redirectURI: a.redirectURI,
		nonce: a.nonce, challenge: a.challenge, scopes: a.scopes, issued: c.clock.Now(), sessionUUID: randomToken(12)}
	v := url.Values{"code": {code}, "session_state": {c.codes[code].sessionUUID}}
	if a.state != "" {
		v.Set("state", a.state)
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: "", Path: "/", MaxAge: -1})
	redirectResult(w, a.redirectURI, a.responseMode, v)
}

// ---- POST /{tenant}/oauth2/v2.0/token, grant_type=authorization_code ----

// deskClientAuthenticated checks the authority and the desk's client authentication (its
// secret) of a token request, or writes Entra ID's error. Callers hold c.mu.
func (c *Cloud) deskClientAuthenticated(w http.ResponseWriter, tenant string, f url.Values) bool {
	desk := c.scn.Desk
	clientID := f.Get("client_id")
	switch {
	case !c.knownAuthority(tenant):
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return false
	case !strings.EqualFold(clientID, desk.ClientID):
		writeAADError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", clientID, tenant))
		return false
	case f.Get("client_assertion") != "":
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 700027, "The certificate with identifier used to sign the client assertion is not registered on application.")
		return false
	case f.Get("client_secret") == "":
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return false
	case subtle.ConstantTimeCompare([]byte(f.Get("client_secret")), []byte(desk.ClientSecret)) != 1:
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+desk.ClientID+"'.")
		return false
	}
	return true
}

// serveAuthCodeToken redeems an authorization code: the desk's client secret, a code issued
// to it less than AuthCodeLifetime ago (cloud clock) and never redeemed, the redirect URI of
// the authorize request, and PKCE (BASE64URL(SHA256(code_verifier)) = code_challenge).
// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#redeem-a-code-for-an-access-token
func (c *Cloud) serveAuthCodeToken(w http.ResponseWriter, tenant string, f url.Values) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.countCall("POST login /{tenant}/oauth2/v2.0/token (authorization_code)")
	if !c.deskClientAuthenticated(w, tenant, f) {
		return
	}
	if f.Get("code") == "" {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'code'.")
		return
	}
	clientID := f.Get("client_id")
	code := c.codes[f.Get("code")]
	now := c.clock.Now()
	switch {
	case code == nil:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid: it was not issued by this authority.")
		return
	case code.redeemed:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
		return
	case now.Sub(code.issued) > AuthCodeLifetime:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
		return
	case !strings.EqualFold(code.clientID, clientID):
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid: it was issued to another application.")
		return
	case f.Get("redirect_uri") != code.redirectURI:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 500112, fmt.Sprintf("The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code.", f.Get("redirect_uri"), code.redirectURI))
		return
	case !pkceMatches(f.Get("code_verifier"), code.challenge):
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		return
	}
	if want := c.authorityTenant(tenant); want != "" && want != code.who.tenant {
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 70000, fmt.Sprintf("The provided value for the 'code' parameter is not valid: it was issued in tenant %s, redeemed at tenant %s.", code.who.tenant, want))
		return
	}
	code.redeemed = true
	c.writeUserTokens(w, code.who, code.scopes, strings.Fields(f.Get("scope")), code.nonce)
}

// writeUserTokens answers a user's token request: a delegated Graph access token, a refresh
// token with offline_access, an ID token with openid (nonce: the authorize request's).
// Callers hold c.mu.
func (c *Cloud) writeUserTokens(w http.ResponseWriter, p *person, scopes, tokenScopes []string, nonce string) {
	desk := c.scn.Desk
	now := c.clock.Now()
	granted := grantedScopes(scopes, tokenScopes)
	// Delegated access token for Microsoft Graph (what Entra ID returns when only OpenID
	// Connect scopes are asked): the sim's HS256 tokens, valid on the cloud's clock.
	lifetime := c.scn.TokenLifetime
	at := c.issueToken(Claims{
		Aud: GraphResource, Iss: "https://sts.windows.net/" + p.tenant + "/",
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(lifetime).Unix(),
		AppID: desk.ClientID, Azp: desk.ClientID, Idtyp: "user", Oid: p.oid, Sub: pairwiseSub(p.oid, graphAppID),
		Tid: p.tenant, Ver: "1.0", Scp: strings.Join(granted, " "), Upn: p.upn,
	})
	secs := int(lifetime / time.Second)
	if rt, ok := c.clock.(realTimer); ok {
		secs = max(1, int(rt.Real(lifetime)/time.Second))
	}
	info, _ := json.Marshal(map[string]string{"uid": p.oid, "utid": p.tenant})
	resp := map[string]any{
		"token_type": "Bearer", "scope": strings.Join(granted, " "), "expires_in": secs, "ext_expires_in": secs,
		"access_token": at, "client_info": base64.RawURLEncoding.EncodeToString(info),
	}
	if slices.Contains(scopes, "offline_access") {
		rt := "sim-rt." + randomToken(32)
		c.refresh[rt] = &refreshGrant{who: p, scopes: scopes, lastUsed: now}
		resp["refresh_token"] = rt
	}
	if slices.Contains(scopes, "openid") {
		// On the cloud's clock, like every token of the simulator: a rehearsal's desk checks
		// them with that clock (production: Entra ID's time and the desk's agree).
		idt, err := c.signRS256(IDClaims{
			Aud: desk.ClientID, Iss: "https://" + LoginHost + "/" + p.tenant + "/v2.0",
			Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(idTokenLifetime).Unix(),
			Name: p.name, Nonce: nonce, Oid: p.oid, PreferredUsername: p.upn,
			Sub: pairwiseSub(p.oid, desk.ClientID), Tid: p.tenant, Uti: randomToken(16), Ver: "2.0",
			Groups: c.groupsOf(p), Wids: c.widsOf(p),
		})
		if err != nil {
			writeAADError(w, http.StatusInternalServerError, "server_error", 90033, "A transient error has occurred. Please try again: "+err.Error())
			return
		}
		resp["id_token"] = idt
	}
	writeJSON(w, http.StatusOK, resp)
}

// refreshGrant is an issued refresh token.
type refreshGrant struct {
	who      *person
	scopes   []string
	lastUsed time.Time // cloud clock
}

// RefreshTokenInactivity is how long an unused refresh token stays redeemable (Entra ID: 90
// days), on the cloud's clock.
const RefreshTokenInactivity = 90 * 24 * time.Hour

// serveRefreshToken redeems a refresh token of the desk for new tokens (a new refresh token
// each time; the ID token carries no nonce). An unknown token is invalid_grant, one unused
// for RefreshTokenInactivity AADSTS700082.
// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token
func (c *Cloud) serveRefreshToken(w http.ResponseWriter, tenant string, f url.Values) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.countCall("POST login /{tenant}/oauth2/v2.0/token (refresh_token)")
	if !c.deskClientAuthenticated(w, tenant, f) {
		return
	}
	g := c.refresh[f.Get("refresh_token")]
	now := c.clock.Now()
	switch {
	case f.Get("refresh_token") == "":
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'.")
		return
	case g == nil:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the refresh token was not issued by this authority.")
		return
	case now.Sub(g.lastUsed) > RefreshTokenInactivity:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 700082, "The refresh token has expired due to inactivity. The token was issued on "+g.lastUsed.UTC().Format(time.RFC3339)+" and was inactive for 90.00:00:00.")
		return
	case c.disabled(g.who):
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 50057, "The user account is disabled.")
		return
	}
	if want := c.authorityTenant(tenant); want != "" && want != g.who.tenant {
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 9002313, fmt.Sprintf("Invalid request. Request is malformed or invalid: the refresh token was issued in tenant %s, redeemed at tenant %s.", g.who.tenant, want))
		return
	}
	g.lastUsed = now
	c.writeUserTokens(w, g.who, g.scopes, strings.Fields(f.Get("scope")), "")
}

// grantedScopes are the scopes of the token response: the OpenID Connect scopes asked for
// (authorize or token request: MSAL adds openid, profile and offline_access to the latter)
// and the delegated Graph permissions, User.Read at least, as Entra ID grants a user who may
// consent to them. MSAL refuses a response that leaves out a scope it asked for.
func grantedScopes(authorize, token []string) []string {
	out := []string{}
	add := func(s string) {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, s) }) {
			out = append(out, s)
		}
	}
	for _, s := range append(slices.Clone(authorize), token...) {
		switch {
		case s == "openid" || s == "profile" || s == "email" || s == "offline_access":
			add(s)
		case strings.HasPrefix(strings.ToLower(s), GraphResource+"/"):
			if perm := s[len(GraphResource)+1:]; perm != ".default" {
				add(s)
			}
		case !strings.Contains(s, "/"):
			add(s)
		}
	}
	add("User.Read")
	return out
}

// pkceMatches checks RFC 7636's S256 transformation.
func pkceMatches(verifier, challenge string) bool {
	if verifier == "" || challenge == "" {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(b64.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// PKCEChallenge returns the S256 code_challenge of a code_verifier (RFC 7636 section 4.2).
func PKCEChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SignInError is what the sign-in page showed instead of redirecting: a wrong password
// (AADSTS50126), an unknown account (AADSTS50034), a person of another tenant (AADSTS50020),
// an unknown application (AADSTS700016), an unregistered redirect URI (AADSTS50011)...
type SignInError struct {
	// AADSTS is the error's number (0 when the page named none).
	AADSTS int
	// Message is the page's error text.
	Message string
}

func (e *SignInError) Error() string { return "sign-in refused: " + e.Message }

// SignIn signs in on the simulated Entra ID page as a person would: it opens authorizeURL,
// fills #username and #password, submits, and returns the URL the sign-in redirected to (the
// desk's redirect URI with code and state, or with error and error_description when the
// request itself was refused after the redirect URI checked out). A page that shows an error
// instead returns *SignInError. client must reach login.microsoftonline.com at the cloud
// (Cloud.BrowserClient or Cloud.HTTPClient); SignIn adds a cookie jar when it has none and
// never follows the final redirect, so the caller opens it with its own client (the desk
// keeps its own cookies there). response_mode=form_post is not supported here.
func SignIn(ctx context.Context, client *http.Client, authorizeURL, upn, password string) (string, error) {
	hc := *client
	if hc.Jar == nil {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return "", err
		}
		hc.Jar = jar
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base, err := url.Parse(authorizeURL)
	if err != nil {
		return "", fmt.Errorf("sim.SignIn: the authorize URL %q is not a URL: %w", authorizeURL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return "", err
	}
	page, loc, err := fetchPage(&hc, req)
	if err != nil || loc != "" {
		return loc, err
	}
	form, err := parseSignInPage(page)
	if err != nil {
		return "", err
	}
	action, err := base.Parse(form.action)
	if err != nil {
		return "", fmt.Errorf("sim.SignIn: the form's action %q is not a URL: %w", form.action, err)
	}
	form.values.Set("login", upn)
	form.values.Set("passwd", password)
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.values.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	page, loc, err = fetchPage(&hc, req)
	if err != nil || loc != "" {
		return loc, err
	}
	if _, err := parseSignInPage(page); err != nil {
		return "", err
	}
	return "", errors.New("sim.SignIn: the sign-in page answered with neither a redirect nor an error (response_mode=form_post is not supported by SignIn: use query)")
}

// fetchPage sends req and returns the page's HTML, or the Location of a redirect.
func fetchPage(hc *http.Client, req *http.Request) (page []byte, location string, err error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("sim.SignIn: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		loc, err := resp.Location()
		if err != nil {
			return nil, "", fmt.Errorf("sim.SignIn: a redirect without Location from %s: %w", req.URL.Redacted(), err)
		}
		return nil, loc.String(), nil
	}
	page, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("sim.SignIn: read the sign-in page: %w", err)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return nil, "", fmt.Errorf("sim.SignIn: %s answered %d %s, not a sign-in page: %.200s", req.URL.Redacted(), resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	return page, "", nil
}

type signInForm struct {
	action string
	values url.Values
}

var aadstsRE = regexp.MustCompile(`^AADSTS(\d+):`)

// parseSignInPage reads the page's #error (returned as *SignInError) or its #credentials
// form: action and hidden fields.
func parseSignInPage(page []byte) (signInForm, error) {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return signInForm{}, fmt.Errorf("sim.SignIn: the sign-in page is not HTML: %w", err)
	}
	var form *signInForm
	var problem string
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			switch {
			case attr["id"] == "error":
				problem = strings.TrimSpace(textOf(n))
			case n.Data == "form" && attr["id"] == "credentials":
				form = &signInForm{action: attr["action"], values: url.Values{}}
				inForm = true
			case inForm && n.Data == "input" && attr["type"] == "hidden":
				form.values.Set(attr["name"], attr["value"])
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch, inForm)
		}
	}
	walk(doc, false)
	if problem != "" {
		e := &SignInError{Message: problem}
		if m := aadstsRE.FindStringSubmatch(problem); m != nil {
			e.AADSTS, _ = strconv.Atoi(m[1])
		}
		return signInForm{}, e
	}
	if form == nil {
		return signInForm{}, errors.New("sim.SignIn: the page has no #credentials form and no #error")
	}
	return *form, nil
}

func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		b.WriteString(textOf(ch))
	}
	return b.String()
}

// BrowserClient returns a client that behaves like a person's browser in a rehearsal: it
// keeps cookies, follows redirects, reaches Microsoft's hosts at this cloud and loopback
// addresses (a desk on 127.0.0.1) directly, and refuses every other host. The autopilot
// signs in with it: open the desk's link, SignIn at the authorize URL, open the redirect.
func (c *Cloud) BrowserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	direct := http.DefaultTransport.(*http.Transport).Clone()
	direct.Proxy = nil
	return &http.Client{Jar: jar, Timeout: 2 * time.Minute,
		Transport: &browserTransport{sim: Transport(c.Start()), direct: direct}}
}

type browserTransport struct {
	sim, direct http.RoundTripper
}

func (t *browserTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := hostOnly(req.URL.Host)
	switch {
	case Simulated(host):
		return t.sim.RoundTrip(req)
	case loopbackHost(host):
		return t.direct.RoundTrip(req)
	}
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, fmt.Errorf("sim browser: %s is neither a simulated host nor loopback; refusing to reach it", host)
}
