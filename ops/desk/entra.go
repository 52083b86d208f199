package desk

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/coreos/go-oidc/v3/oidc"
)

// SignIn is Microsoft Entra ID's sign-in as the desk uses it; Entra in production, a fake in
// unit tests.
type SignIn interface {
	// AuthURL is the authorize URL a person's browser goes to: authorization code with PKCE
	// (S256 of the verifier), state and nonce; selectAccount asks Entra to offer another account.
	AuthURL(ctx context.Context, redirectURI, state, nonce, challenge string, selectAccount bool) (string, error)
	// Redeem exchanges the code with the PKCE verifier and returns the claims of the
	// validated ID token, whose nonce must be nonce.
	Redeem(ctx context.Context, code, redirectURI, verifier, nonce string) (Claims, error)
}

// Entra signs people in through MSAL for Go's confidential client (the desk's own app
// registration) and validates their ID tokens with go-oidc against the issuer and signing keys
// of the tenant they signed in to.
//
// Contracts: authorization code flow with PKCE
// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow,
// OpenID Connect https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc,
// ID token claims https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference,
// validating tokens (multi-tenant issuer per tid)
// https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#validate-the-issuer.
type Entra struct {
	app      confidential.Client
	clientID string
	host     string // the authority's scheme and host, e.g. https://login.microsoftonline.com
	http     *http.Client
	now      func() time.Time

	mu        sync.Mutex
	verifiers map[string]*oidc.IDTokenVerifier // per tenant ID
}

// EntraOptions tune Entra for rehearsals; production leaves them empty.
type EntraOptions struct {
	// HTTPClient reaches the authority (default: a client with a 30s timeout).
	HTTPClient *http.Client
	// NoInstanceDiscovery turns off MSAL's instance discovery (rehearsals: the simulator).
	NoInstanceDiscovery bool
	// Now is the clock tokens are checked on (default time.Now); a rehearsal's simulated
	// cloud issues tokens on its own clock.
	Now func() time.Time
}

// maxTenantVerifiers bounds the cache of per-tenant verifiers (people of many tenants sign in).
const maxTenantVerifiers = 512

// NewEntra makes the sign-in of the desk app clientID with its secret, at authority (e.g.
// https://login.microsoftonline.com/organizations).
func NewEntra(authority, clientID, secret string, o EntraOptions) (*Entra, error) {
	u, err := url.Parse(authority)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("desk.authority %q is not an https URL", authority)
	}
	cred, err := confidential.NewCredFromSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("desk.clientSecretFile: %w", err)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	opts := []confidential.Option{confidential.WithHTTPClient(hc)}
	if o.NoInstanceDiscovery {
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	app, err := confidential.New(authority, clientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("the desk's sign-in (MSAL, authority %s): %w", authority, err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Entra{app: app, clientID: clientID, host: u.Scheme + "://" + u.Host, http: hc, now: now, verifiers: map[string]*oidc.IDTokenVerifier{}}, nil
}

// scopes asks for an ID token only: openid and profile (MSAL adds offline_access).
var scopes = []string{"openid", "profile"}

// AuthURL implements SignIn. MSAL for Go builds the authorize URL; the PKCE challenge, state,
// nonce and response mode are added to it as the protocol defines them.
func (e *Entra) AuthURL(ctx context.Context, redirectURI, state, nonce, challenge string, selectAccount bool) (string, error) {
	raw, err := e.app.AuthCodeURL(ctx, e.clientID, redirectURI, scopes)
	if err != nil {
		return "", fmt.Errorf("build the Microsoft sign-in URL: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("state", state)
	q.Set("nonce", nonce)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	q.Set("response_mode", "query")
	if selectAccount {
		q.Set("prompt", "select_account")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Redeem implements SignIn.
func (e *Entra) Redeem(ctx context.Context, code, redirectURI, verifier, nonce string) (Claims, error) {
	res, err := e.app.AcquireTokenByAuthCode(ctx, code, redirectURI, scopes, confidential.WithChallenge(verifier))
	if err != nil {
		return Claims{}, fmt.Errorf("redeem the sign-in code: %w", err)
	}
	raw := res.IDToken.RawToken
	if raw == "" {
		return Claims{}, errors.New("Microsoft's answer carried no ID token")
	}
	return e.Validate(ctx, raw, nonce)
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Validate checks an ID token: its signature with the signing keys of the tenant it names,
// its issuer (https://<host>/<tid>/v2.0, from that tenant's discovery document), its audience
// (the desk's client ID), its lifetime and its nonce. Only then are its claims read.
func (e *Entra) Validate(ctx context.Context, raw, nonce string) (Claims, error) {
	tid, err := unverifiedTenant(raw)
	if err != nil {
		return Claims{}, err
	}
	v, err := e.verifier(ctx, tid)
	if err != nil {
		return Claims{}, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return Claims{}, fmt.Errorf("the ID token is not valid: %w", err)
	}
	if nonce == "" || tok.Nonce != nonce {
		return Claims{}, errors.New("the ID token's nonce is not this sign-in's: start again from the task link")
	}
	var c struct {
		Tid               string            `json:"tid"`
		Oid               string            `json:"oid"`
		PreferredUsername string            `json:"preferred_username"`
		UPN               string            `json:"upn"`
		Name              string            `json:"name"`
		Groups            []string          `json:"groups"`
		Wids              []string          `json:"wids"`
		ClaimNames        map[string]string `json:"_claim_names"`
	}
	if err := tok.Claims(&c); err != nil {
		return Claims{}, fmt.Errorf("read the ID token's claims: %w", err)
	}
	if !strings.EqualFold(c.Tid, tid) {
		return Claims{}, errors.New("the ID token's tid does not match its issuer")
	}
	out := Claims{TenantID: strings.ToLower(c.Tid), ObjectID: c.Oid, UPN: c.PreferredUsername, Name: c.Name, Groups: c.Groups, Roles: c.Wids}
	if out.UPN == "" {
		out.UPN = c.UPN
	}
	_, out.GroupsOverage = c.ClaimNames["groups"]
	return out, nil
}

// verifier returns the verifier of a tenant: its discovery document says its issuer and keys.
func (e *Entra) verifier(ctx context.Context, tid string) (*oidc.IDTokenVerifier, error) {
	e.mu.Lock()
	v := e.verifiers[tid]
	e.mu.Unlock()
	if v != nil {
		return v, nil
	}
	// The key set lives longer than this request: it refreshes itself on unknown key IDs.
	pctx := oidc.ClientContext(context.Background(), e.http)
	dctx, cancel := context.WithTimeout(pctx, 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-dctx.Done():
		}
	}()
	issuer := e.host + "/" + tid + "/v2.0"
	p, err := oidc.NewProvider(dctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("read the OpenID configuration of tenant %s: %w", tid, err)
	}
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		return nil, fmt.Errorf("the OpenID configuration of tenant %s names no jwks_uri", tid)
	}
	v = oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(pctx, meta.JWKS), &oidc.Config{ClientID: e.clientID, Now: e.now})
	e.mu.Lock()
	if len(e.verifiers) >= maxTenantVerifiers {
		clear(e.verifiers)
	}
	e.verifiers[tid] = v
	e.mu.Unlock()
	return v, nil
}

// unverifiedTenant reads the tid claim of a token before it is validated, only to choose the
// tenant whose keys and issuer validate it.
func unverifiedTenant(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("the ID token is not a signed JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("the ID token's payload is not base64url")
	}
	var c struct {
		Tid string `json:"tid"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", errors.New("the ID token's payload is not JSON")
	}
	tid := strings.ToLower(c.Tid)
	if !guidRE.MatchString(tid) {
		return "", fmt.Errorf("the ID token names no tenant (tid %q): sign in with a work account", c.Tid)
	}
	return tid, nil
}

// pkce returns a new PKCE verifier and its S256 challenge (RFC 7636).
func pkce() (verifier, challenge string) {
	verifier = randomString(48)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}
