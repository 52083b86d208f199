package sim

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/csp-ops/work365-upgrade/microsoft/work365"
)

// Hosts the simulator answers for.
const (
	LoginHost         = "login.microsoftonline.com"
	GraphHost         = "graph.microsoft.com"
	PartnerCenterHost = "api.partnercenter.microsoft.com"
	// AdminHost is the simulator's own host: actions, counters, state and clock.
	AdminHost = "sim.local"
)

// Well-known resources (token audiences).
const (
	GraphResource         = "https://graph.microsoft.com"
	PartnerCenterResource = "https://api.partnercenter.microsoft.com"
)

// Options tune a Cloud.
type Options struct {
	// Clock is the simulated time (default: the real clock).
	Clock Clock
	// Addr, when set, is the TCP address Start listens on (default: a free local port).
	Addr string
	// NoFaults disables fault injection whatever the scenario says.
	NoFaults bool
	// Logf, when set, receives one line per request and action.
	Logf func(format string, args ...any)
}

// Cloud is the simulated Microsoft cloud. It is safe for concurrent use.
type Cloud struct {
	scn   Scenario
	names work365.Names
	clock Clock
	opts  Options
	key   []byte // signs tokens

	mu      sync.Mutex
	rng     *mrand.Rand // identifiers
	tenants map[string]*tenantState
	order   []string // tenant IDs in scenario order
	orgs    map[string]*tenantState
	calls   map[string]int
	// limits and budgets are the service protection budgets (budget.go).
	limits  Limits
	budgets map[string]*budget
	// credentialExpired makes the token endpoint refuse the orchestrator's credential as
	// expired (AADSTS7000222 / AADSTS700027), as Entra ID does after its end date.
	credentialExpired bool

	// Sign-in (signin.go, oidc.go): the ID token signing key (made on first use), the people
	// who can sign in by lower-case UPN, the tenants they sign in to (ID → name), sign-in
	// pages waiting for a password, issued authorization codes and refresh tokens. Derived from the scenario
	// or short-lived: none of it is persisted.
	sign      *signingKey
	people    map[string]*person
	directory map[string]string
	pending   map[string]*authzRequest
	codes     map[string]*authCode
	refresh   map[string]*refreshGrant

	srv *httptest.Server
	// waits records 429s and how long their callers waited (throttle.go).
	waits waitLog
}

// New builds a simulated cloud from a scenario (defaults filled in; an invalid scenario
// panics, so validate YAML with LoadScenario first). Call Start to serve HTTP.
func New(scenario *Scenario, opts Options) *Cloud {
	s := scenario.WithDefaults()
	if probs := s.Validate(); len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, p := range probs {
			errs[i] = p
		}
		panic(fmt.Sprintf("sim.New: invalid scenario: %v", errors.Join(errs...)))
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c := &Cloud{
		scn:     s,
		names:   s.Names,
		clock:   opts.Clock,
		opts:    opts,
		key:     key,
		rng:     mrand.New(mrand.NewPCG(uint64(s.Seed), 0x5e1f)),
		tenants: map[string]*tenantState{},
		orgs:    map[string]*tenantState{},
		calls:   map[string]int{},
		limits:  s.Limits,
		budgets: map[string]*budget{},
	}
	c.buildDirectory()
	now := c.clock.Now()
	for i, t := range s.Tenants {
		ts := c.newTenant(t, i, now)
		c.tenants[strings.ToLower(t.TenantID)] = ts
		c.order = append(c.order, strings.ToLower(t.TenantID))
		c.orgs[ts.org.host] = ts
	}
	// Partner tenants that are not customer tenants get a bare directory.
	for _, t := range s.Tenants {
		for _, pc := range t.PartnerCenters {
			id := strings.ToLower(pc.TenantID)
			pt := c.tenants[id]
			if pt == nil {
				pt = c.newPartnerTenant(pc, len(c.order), s.Seed)
				c.tenants[id] = pt
				c.order = append(c.order, id)
			} else if !pc.Primary {
				pt.securityDefaults = pt.securityDefaults || pc.MFAPolicies
			}
			if pt.pc == nil {
				pt.pc = &pcAccount{name: pc.Name, consented: pc.Consented}
				pt.pcSPID, pt.pcGrantID = c.newID(), c.newID()
				if pt.work365SPID == "" {
					pt.work365SPID = c.newID()
				}
			} else {
				pt.pc.consented = pt.pc.consented && pc.Consented
			}
		}
	}
	return c
}

// Scenario returns the scenario the cloud was built from, defaults filled in.
func (c *Cloud) Scenario() Scenario { return c.scn }

// Names returns the Work 365 names the cloud uses.
func (c *Cloud) Names() work365.Names { return c.names }

// Clock returns the cloud's clock.
func (c *Cloud) Clock() Clock { return c.clock }

// Start serves the cloud over HTTP on a local port (or Options.Addr) and returns its base URL.
// Calling Start twice returns the same URL.
func (c *Cloud) Start() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		return c.srv.URL
	}
	srv := httptest.NewUnstartedServer(c)
	if c.opts.Addr != "" {
		l, err := net.Listen("tcp", c.opts.Addr)
		if err != nil {
			panic(fmt.Sprintf("sim: listen %s: %v", c.opts.Addr, err))
		}
		_ = srv.Listener.Close()
		srv.Listener = l
	}
	srv.Start()
	c.srv = srv
	return srv.URL
}

// URL returns the base URL of the started server ("" before Start).
func (c *Cloud) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return ""
	}
	return c.srv.URL
}

// Close stops the server.
func (c *Cloud) Close() {
	c.mu.Lock()
	srv := c.srv
	c.srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// HTTPClient returns a client whose requests for Microsoft hosts (and AdminHost) reach this
// cloud; it starts the server if needed.
func (c *Cloud) HTTPClient() *http.Client {
	return &http.Client{Transport: Transport(c.Start()), Timeout: 2 * time.Minute}
}

// Transport returns a RoundTripper that sends requests for simulated hosts
// (login.microsoftonline.com, graph.microsoft.com, api.partnercenter.microsoft.com,
// *.dynamics.com, sim.local) to the simulator at cloudURL, rewriting the URL's scheme and
// host and keeping the original host in req.Host. Requests for any other host fail, so a
// rehearsal never reaches the real cloud.
func Transport(cloudURL string) http.RoundTripper {
	u, err := url.Parse(cloudURL)
	if err != nil || u.Host == "" {
		panic(fmt.Sprintf("sim.Transport: bad cloud URL %q", cloudURL))
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	// Every Microsoft host is this one local server: keep as many idle connections to it as
	// a fleet has calls in flight (Go's default of 2 made a new connection for most calls).
	base.MaxIdleConns, base.MaxIdleConnsPerHost = 1024, 1024
	return &transport{scheme: u.Scheme, host: u.Host, base: base}
}

type transport struct {
	scheme, host string
	base         http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := hostOnly(req.URL.Host)
	if !Simulated(host) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("sim transport: %s is not a simulated host; refusing to reach the real cloud", host)
	}
	r := req.Clone(req.Context())
	r.URL.Scheme = t.scheme
	r.URL.Host = t.host
	r.Host = req.URL.Host
	return t.base.RoundTrip(r)
}

// Simulated reports whether host (without port) is one the simulator answers for.
func Simulated(host string) bool {
	host = strings.ToLower(host)
	switch host {
	case LoginHost, GraphHost, PartnerCenterHost, AdminHost:
		return true
	}
	return strings.HasSuffix(host, ".dynamics.com")
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return strings.ToLower(host)
	}
	return strings.ToLower(h)
}

// ServeHTTP dispatches on the request's Host header.
func (c *Cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := hostOnly(r.Host)
	c.logf("%s %s%s", r.Method, host, r.URL.RequestURI())
	switch {
	case host == LoginHost:
		c.serveLogin(w, r)
	case host == GraphHost:
		c.serveGraph(w, r)
	case host == PartnerCenterHost:
		c.servePartnerCenter(w, r)
	case strings.HasSuffix(host, ".dynamics.com"):
		c.serveDataverse(w, r, host)
	case host == AdminHost:
		c.serveAdmin(w, r)
	default:
		writeAPIError(w, http.StatusMisdirectedRequest, "UnknownHost", fmt.Sprintf("the simulator does not answer for host %q", host))
	}
}

func (c *Cloud) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// newID returns a pseudo-random GUID from the cloud's seeded generator. Callers hold c.mu
// (or run during New).
func (c *Cloud) newID() string {
	return guidFrom(c.rng)
}

func guidFrom(r *mrand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeAPIError writes the Graph/Dataverse error shape {"error":{"code","message"}}.
func writeAPIError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message}})
}

// countCall records a call per route globally. Callers hold c.mu.
func (c *Cloud) countCall(route string) { c.calls[route]++ }

// tenantByID finds a tenant by GUID (case-insensitive) or by a verified domain. Callers hold c.mu.
func (c *Cloud) tenantByID(id string) *tenantState {
	id = strings.ToLower(id)
	if t := c.tenants[id]; t != nil {
		return t
	}
	for _, k := range c.order {
		t := c.tenants[k]
		for _, d := range t.domains {
			if d == id {
				return t
			}
		}
	}
	return nil
}

// sleepLatency waits the tenant's simulated latency (real time).
func sleepLatency(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// SetOrchestratorCredentialExpired makes Entra ID refuse (or accept again) the orchestrator's
// own credential in every tenant: the fault of ours that must never fail a tenant.
func (c *Cloud) SetOrchestratorCredentialExpired(expired bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.credentialExpired = expired
}
