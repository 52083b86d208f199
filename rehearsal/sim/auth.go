package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Claims are the claims of a token the simulator issues.
type Claims struct {
	Aud   string   `json:"aud"`
	Iss   string   `json:"iss"`
	Iat   int64    `json:"iat"`
	Nbf   int64    `json:"nbf"`
	Exp   int64    `json:"exp"`
	AppID string   `json:"appid"`
	Azp   string   `json:"azp,omitempty"`
	Idtyp string   `json:"idtyp,omitempty"`
	Oid   string   `json:"oid,omitempty"`
	Sub   string   `json:"sub,omitempty"`
	Tid   string   `json:"tid"`
	Roles []string `json:"roles,omitempty"`
	// Scp and Upn are set in delegated (user) tokens only.
	Scp string `json:"scp,omitempty"`
	Upn string `json:"upn,omitempty"`
	Ver string `json:"ver"`
}

var b64 = base64.RawURLEncoding

// issueToken signs claims into a JWT-shaped token (HS256 with the cloud's secret key).
func (c *Cloud) issueToken(cl Claims) string {
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "HS256", "kid": "sim"})
	payload, _ := json.Marshal(cl)
	signing := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte(signing))
	return signing + "." + b64.EncodeToString(mac.Sum(nil))
}

// IssueToken returns a token as the login endpoint would issue it for the orchestrator in
// tenantID for resource, with its lifetime measured on the cloud's clock (for tests of
// expiry and audience checks).
func (c *Cloud) IssueToken(tenantID, resource string, lifetime time.Duration) string {
	now := c.clock.Now()
	c.mu.Lock()
	roles := c.rolesFor(c.tenantByID(tenantID), resource)
	c.mu.Unlock()
	return c.issueToken(Claims{
		Aud: resource, Iss: "https://sts.windows.net/" + strings.ToLower(tenantID) + "/",
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(lifetime).Unix(),
		AppID: c.scn.Orchestrator.ClientID, Azp: c.scn.Orchestrator.ClientID, Idtyp: "app",
		Tid: strings.ToLower(tenantID), Ver: "1.0", Roles: roles,
	})
}

// rolesFor returns the roles claim of an app-only token for resource in tenant t: the Graph
// application permissions consented there for Graph, none elsewhere (Dataverse authorises by
// application user, Partner Center by the signed-in user).
func (c *Cloud) rolesFor(t *tenantState, resource string) []string {
	if strings.TrimSuffix(strings.ToLower(resource), "/") != GraphResource {
		return nil
	}
	return c.consentedRoles(t)
}

// VerifyToken checks a token's signature and lifetime on the cloud's clock and returns its claims.
func (c *Cloud) VerifyToken(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, errors.New("the token is not a JWT (header.payload.signature)")
	}
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return Claims{}, errors.New("the token's signature is invalid")
	}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		return Claims{}, errors.New("the token's payload is not base64url")
	}
	var cl Claims
	if err := json.Unmarshal(raw, &cl); err != nil {
		return Claims{}, errors.New("the token's payload is not JSON")
	}
	now := c.clock.Now().Unix()
	if now >= cl.Exp {
		return cl, fmt.Errorf("the token expired at %s", time.Unix(cl.Exp, 0).UTC().Format(time.RFC3339))
	}
	if now+300 < cl.Nbf {
		return cl, errors.New("the token is not valid yet")
	}
	return cl, nil
}

// bearer extracts the bearer token of a request.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate checks the bearer token against the audiences accepted. It returns the claims
// or writes a 401 and returns false. Callers hold c.mu.
func (c *Cloud) authenticate(w http.ResponseWriter, r *http.Request, code, challenge string, audiences ...string) (Claims, bool) {
	tok := bearer(r)
	if tok == "" {
		writeChallenge(w, challenge, code, "Access token is empty.")
		return Claims{}, false
	}
	cl, err := c.VerifyToken(tok)
	if err != nil {
		writeChallenge(w, challenge, code, "Access token validation failure: "+err.Error()+".")
		return cl, false
	}
	aud := strings.TrimSuffix(strings.ToLower(cl.Aud), "/")
	for _, a := range audiences {
		if aud == strings.TrimSuffix(strings.ToLower(a), "/") {
			return cl, true
		}
	}
	writeChallenge(w, challenge, code, fmt.Sprintf("Invalid audience %q: this API accepts %s.", cl.Aud, strings.Join(audiences, " or ")))
	return cl, false
}

// commonChallenge is the bearer challenge of multi-tenant APIs.
const commonChallenge = `Bearer authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token"`

// writeChallenge answers 401 with a bearer challenge (default: the common authority).
func writeChallenge(w http.ResponseWriter, challenge, code, msg string) {
	if challenge == "" {
		challenge = commonChallenge
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeAPIError(w, http.StatusUnauthorized, code, msg)
}

// ---- login.microsoftonline.com ----

func (c *Cloud) serveLogin(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && len(segs) == 4 && segs[1] == "v2.0" && segs[2] == ".well-known" && segs[3] == "openid-configuration":
		c.serveOpenIDConfig(w, segs[0])
	case r.Method == http.MethodGet && len(segs) == 3 && segs[1] == "discovery" && segs[2] == "instance":
		c.mu.Lock()
		c.countCall("GET login /{tenant}/discovery/instance")
		c.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"tenant_discovery_endpoint": "https://login.microsoftonline.com/" + segs[0] + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata": []any{map[string]any{
				"preferred_network": LoginHost, "preferred_cache": "login.windows.net",
				"aliases": []string{LoginHost, "login.windows.net", "login.microsoft.com", "sts.windows.net"},
			}},
		})
	case r.Method == http.MethodGet && len(segs) == 4 && segs[1] == "discovery" && segs[2] == "v2.0" && segs[3] == "keys":
		c.serveKeys(w, segs[0])
	case r.Method == http.MethodGet && len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "authorize":
		c.serveAuthorize(w, r, segs[0])
	case r.Method == http.MethodGet && len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "logout":
		c.serveLogout(w, r)
	case r.Method == http.MethodPost && len(segs) == 2 && segs[1] == "login":
		c.serveSignIn(w, r)
	case r.Method == http.MethodPost && len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token":
		c.serveToken(w, r, segs[0])
	default:
		writeAADError(w, http.StatusNotFound, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Or the path is unknown to the simulator: "+r.URL.Path)
	}
}

func isMetaTenant(t string) bool {
	switch strings.ToLower(t) {
	case "organizations", "common", "consumers":
		return true
	}
	return false
}

func (c *Cloud) serveOpenIDConfig(w http.ResponseWriter, tenant string) {
	c.mu.Lock()
	c.countCall("GET login /{tenant}/v2.0/.well-known/openid-configuration")
	known := c.knownAuthority(tenant)
	issuerTenant := strings.ToLower(tenant)
	if t := c.tenantByID(tenant); t != nil {
		issuerTenant = t.id
	}
	c.mu.Unlock()
	if !known {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	if isMetaTenant(tenant) {
		issuerTenant = "{tenantid}" // what Entra ID answers for multi-tenant authorities
	}
	base := "https://" + LoginHost + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                "https://" + LoginHost + "/" + issuerTenant + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"kerberos_endpoint":                     base + "/kerberos",
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          GraphHost,
		"rbac_url":                              "https://pas.windows.net",
	})
}

// serveKeys answers the jwks_uri: the key ID tokens are signed with, for the tenant's issuer
// ({tenantid} for multi-tenant authorities, as Entra ID's common keys say).
// https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
func (c *Cloud) serveKeys(w http.ResponseWriter, tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.countCall("GET login /{tenant}/discovery/v2.0/keys")
	if !c.knownAuthority(tenant) {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	issuerTenant := "{tenantid}"
	if !isMetaTenant(tenant) {
		issuerTenant = c.authorityTenant(tenant)
	}
	keys, err := c.jwks("https://" + LoginHost + "/" + issuerTenant + "/v2.0")
	if err != nil {
		writeAADError(w, http.StatusInternalServerError, "server_error", 90033, "A transient error has occurred. Please try again: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, keys)
}

// writeAADError writes Entra ID's token error shape.
func writeAADError(w http.ResponseWriter, status int, errCode string, aadsts int, desc string) {
	writeJSON(w, status, map[string]any{
		"error":             errCode,
		"error_description": fmt.Sprintf("AADSTS%d: %s", aadsts, desc),
		"error_codes":       []int{aadsts},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          "00000000-0000-0000-0000-000000000000",
		"correlation_id":    "00000000-0000-0000-0000-000000000000",
	})
}

// resourceOfScopes returns the resource of the requested scopes and whether every scope is
// a /.default one.
func resourceOfScopes(scope string) (resource string, allDefault bool, err error) {
	allDefault = true
	for _, s := range strings.Fields(scope) {
		switch s {
		case "openid", "profile", "offline_access", "email":
			continue
		}
		i := strings.LastIndex(s, "/")
		if i <= len("https://") || !strings.HasPrefix(s, "https://") {
			return "", false, fmt.Errorf("the scope %q is not of the form {resource}/{permission}", s)
		}
		res, perm := s[:i], s[i+1:]
		if perm != ".default" {
			allDefault = false
		}
		if resource != "" && !strings.EqualFold(resource, res) {
			return "", false, fmt.Errorf("scopes of several resources were requested (%s and %s)", resource, res)
		}
		resource = res
	}
	if resource == "" {
		return "", false, errors.New("no resource scope was requested")
	}
	return resource, allDefault, nil
}

func knownResource(res string) bool {
	r := strings.TrimSuffix(strings.ToLower(res), "/")
	if r == GraphResource || r == PartnerCenterResource {
		return true
	}
	host := strings.TrimPrefix(r, "https://")
	return orgHostRE.MatchString(normaliseOrgHost(host))
}

// wellFormedAssertion checks a client_assertion is a JWT whose claims name the client.
func wellFormedAssertion(a, clientID string) bool {
	parts := strings.Split(a, ".")
	if len(parts) != 3 || parts[2] == "" {
		return false
	}
	for _, p := range parts[:2] {
		raw, err := b64.DecodeString(strings.TrimRight(p, "="))
		if err != nil || !json.Valid(raw) {
			return false
		}
	}
	raw, _ := b64.DecodeString(strings.TrimRight(parts[1], "="))
	var cl struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud any    `json:"aud"`
	}
	if json.Unmarshal(raw, &cl) != nil {
		return false
	}
	return strings.EqualFold(cl.Iss, clientID) && strings.EqualFold(cl.Sub, clientID) && cl.Aud != nil
}

func (c *Cloud) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain form parameters.")
		return
	}
	f := r.PostForm
	switch f.Get("grant_type") {
	case "authorization_code":
		c.serveAuthCodeToken(w, tenant, f)
		return
	case "refresh_token":
		c.serveRefreshToken(w, tenant, f)
		return
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.countCall("POST login /{tenant}/oauth2/v2.0/token")
	if isMetaTenant(tenant) {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900023, fmt.Sprintf("Specified tenant identifier '%s' is not valid for the client credentials flow: use a tenant ID.", tenant))
		return
	}
	t := c.tenantByID(tenant)
	if t == nil {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	t.counters.Calls["POST login /{tenant}/oauth2/v2.0/token"]++
	resource, allDefault, scopeErr := resourceOfScopes(f.Get("scope"))
	resKey := strings.TrimSuffix(strings.ToLower(resource), "/")
	if scopeErr != nil {
		resKey = "(invalid scope)"
	}
	t.counters.TokenRequests[resKey]++

	app := c.scn.Orchestrator
	clientID := f.Get("client_id")
	switch {
	case f.Get("grant_type") != "client_credentials":
		writeAADError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s': the simulator supports client_credentials (the orchestrator), authorization_code and refresh_token (the task desk).", f.Get("grant_type")))
		return
	case !strings.EqualFold(clientID, app.ClientID):
		writeAADError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clientID, t.id))
		return
	}
	switch {
	case c.credentialExpired && f.Get("client_secret") != "":
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000222, "The provided client secret keys for app '"+app.ClientID+"' are expired. Visit the Azure portal to create new keys for your app.")
		return
	case c.credentialExpired:
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 700027, "The certificate used to sign the client assertion has expired.")
		return
	case f.Get("client_secret") != "":
		if app.ClientSecret == "" || f.Get("client_secret") != app.ClientSecret {
			writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+app.ClientID+"'.")
			return
		}
	case f.Get("client_assertion") != "":
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || !wellFormedAssertion(f.Get("client_assertion"), app.ClientID) {
			writeAADError(w, http.StatusUnauthorized, "invalid_client", 50027, "JWT token is invalid or malformed.")
			return
		}
		if !app.Certificate {
			writeAADError(w, http.StatusUnauthorized, "invalid_client", 700027, "The certificate with identifier used to sign the client assertion is not registered on application.")
			return
		}
	default:
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	if !t.orchestratorConsented {
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000229, fmt.Sprintf("The client application %s is missing service principal in the tenant %s. Ask a Global Administrator of the tenant to give admin consent to the application.", app.ClientID, t.id))
		return
	}
	switch {
	case scopeErr != nil:
		writeAADError(w, http.StatusBadRequest, "invalid_scope", 70011, "The provided request must include a 'scope' input parameter: "+scopeErr.Error())
		return
	case !allDefault:
		writeAADError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", f.Get("scope")))
		return
	case !knownResource(resource):
		writeAADError(w, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s.", resource, t.id))
		return
	}
	lifetime := c.scn.TokenLifetime
	tok := c.issueToken(Claims{
		Aud: resource, Iss: "https://sts.windows.net/" + t.id + "/",
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(lifetime).Unix(),
		AppID: app.ClientID, Azp: app.ClientID, Idtyp: "app",
		Oid: t.orchestratorSPID, Sub: t.orchestratorSPID, Tid: t.id, Ver: "1.0",
		Roles: c.rolesFor(t, resource),
	})
	t.counters.TokensIssued++
	// expires_in in the client's (real) seconds: the token is valid for lifetime on the
	// simulated clock, which runs faster than the client's.
	secs := int(lifetime / time.Second)
	if rt, ok := c.clock.(realTimer); ok {
		secs = max(1, int(rt.Real(lifetime)/time.Second))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok,
	})
}
