package sim

import (
	"encoding/base64"
	"fmt"
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// handlers are a service's simulated calls by permissions-manifest operation
// (permissions.Op…): the manifest says which method and path each answers and what
// authorises it, so the simulated cloud cannot serve or authorise a call the manifest does not
// list.
type handlers map[string]func(*call)

// route is one manifest entry as the simulator matches it: its path with "{}" holes.
type route struct {
	entry   permissions.Entry
	pattern string
}

// call is one API request being served, with c.mu held.
type call struct {
	c      *Cloud
	w      http.ResponseWriter
	r      *http.Request
	t      *tenantState
	p      []string
	q      url.Values
	now    time.Time
	claims Claims
	svc    string
	entry  permissions.Entry
}

// service describes how one API authenticates and names its tenant.
type service struct {
	name string
	api  permissions.API
	// prefix is stripped from the path before matching (e.g. "/v1.0/").
	prefix string
	// unauthorizedCode is the error code of 401 answers.
	unauthorizedCode string
	// audiences accepted for the request.
	audiences []string
	// challenge is the WWW-Authenticate header of 401 answers.
	challenge string
	// tenant resolves the tenant; it writes the answer and returns nil when refused.
	tenant func(w http.ResponseWriter, cl Claims) *tenantState
	// throttleCode and throttleMessage shape 429 answers.
	throttleCode, throttleMessage string
}

var holeRE = regexp.MustCompile(`\{[^}/]*\}`)

// routes are the manifest's entries of an API, as patterns the simulator matches.
func (c *Cloud) routes(api permissions.API) []route {
	var out []route
	for _, e := range permissions.Manifest() {
		if e.API != api {
			continue
		}
		p := holeRE.ReplaceAllString(e.Path, "{}")
		p = strings.ReplaceAll(p, "<"+permissions.VarJobsTable+">", c.names.JobsEntitySet)
		p = strings.ReplaceAll(p, "<"+permissions.VarSettingsTable+">", c.names.SettingsEntitySet)
		out = append(out, route{entry: e, pattern: p})
	}
	return out
}

func matchPattern(pattern, path string) ([]string, bool) {
	ps, segs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(segs) {
		return nil, false
	}
	var params []string
	for i, p := range ps {
		pre, suf, hole := strings.Cut(p, "{}")
		if !hole {
			if !strings.EqualFold(p, segs[i]) {
				return nil, false
			}
			continue
		}
		s := segs[i]
		if len(s) < len(pre)+len(suf) || !strings.EqualFold(s[:len(pre)], pre) || !strings.EqualFold(s[len(s)-len(suf):], suf) {
			return nil, false
		}
		v, err := url.PathUnescape(s[len(pre) : len(s)-len(suf)])
		if err != nil || v == "" {
			return nil, false
		}
		params = append(params, v)
	}
	return params, true
}

// serveAPI runs the pipeline every API call goes through: match a permissions-manifest entry,
// count, authenticate, refuse what the entry's permission does not allow, resolve the tenant,
// inject faults, settle time-driven state, handle.
func (c *Cloud) serveAPI(w http.ResponseWriter, r *http.Request, svc service, hs handlers) {
	path := r.URL.Path
	if !strings.HasPrefix(strings.ToLower(path), strings.ToLower(svc.prefix)) {
		writeAPIError(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("the simulated %s has no path %s", svc.name, path))
		return
	}
	rest := path[len(svc.prefix):]
	var rt *route
	var params []string
	methodSeen := false
	routes := c.routes(svc.api)
	for i := range routes {
		if p, ok := matchPattern(routes[i].pattern, rest); ok {
			methodSeen = true
			if strings.EqualFold(routes[i].entry.Method, r.Method) {
				rt, params = &routes[i], p
				break
			}
		}
	}
	name := fmt.Sprintf("%s %s %s%s", r.Method, svc.name, svc.prefix, "(unknown)")
	if rt != nil {
		name = fmt.Sprintf("%s %s %s%s", r.Method, svc.name, svc.prefix, rt.pattern)
	}

	c.mu.Lock()
	c.countCall(name)
	// Like the real services, authentication comes first: an anonymous request to any path
	// gets the bearer challenge (Dataverse clients discover the tenant from it).
	cl, ok := c.authenticate(w, r, svc.unauthorizedCode, svc.challenge, svc.audiences...)
	if !ok {
		if t := c.tenantByID(cl.Tid); t != nil {
			t.counters.Unauthorized++
		}
		c.mu.Unlock()
		return
	}
	if rt == nil {
		c.mu.Unlock()
		if methodSeen {
			writeAPIError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Sprintf("%s is not allowed on %s", r.Method, path))
			return
		}
		writeAPIError(w, http.StatusBadRequest, "NotInPermissionsManifest", fmt.Sprintf(
			"%s %s%s has no entry in the permissions manifest (microsoft/permissions): the worker may make only the calls it lists; add an entry with the call's least privileged permission and its learn.microsoft.com page", r.Method, svc.prefix, rest))
		return
	}
	h := hs[rt.entry.Operation]
	if h == nil {
		c.mu.Unlock()
		writeAPIError(w, http.StatusNotImplemented, "NotSimulated", fmt.Sprintf("the simulated %s does not implement %s (%s %s)", svc.name, rt.entry.Operation, rt.entry.Method, rt.entry.Path))
		return
	}
	if rt.entry.Kind == permissions.AppUser && cl.Idtyp == "app" {
		// The manifest says this call takes App+User tokens only.
		if t := c.tenantByID(cl.Tid); t != nil {
			t.counters.Unauthorized++
		}
		c.mu.Unlock()
		writeChallenge(w, "", "900421", "App-only authentication is not supported for this operation: use an App+User token (the Secure Application Model).")
		return
	}
	t := svc.tenant(w, cl)
	if t == nil {
		if t := c.tenantByID(cl.Tid); t != nil {
			t.counters.Unauthorized++
		}
		c.mu.Unlock()
		return
	}
	t.counters.Calls[name]++
	release, admitted := c.takeBudget(w, svc, t, cl)
	if !admitted {
		c.mu.Unlock()
		return
	}
	defer release()
	faults := t.faults
	status := 0
	if !c.opts.NoFaults {
		x := t.rng.Float64()
		switch {
		case x < faults.ThrottleRate:
			status = http.StatusTooManyRequests
			t.counters.Throttled++
		case x < faults.ThrottleRate+faults.UnavailableRate:
			status = http.StatusServiceUnavailable
			t.counters.Unavailable++
		}
	}
	c.mu.Unlock()

	if !c.opts.NoFaults {
		sleepLatency(r.Context(), faults.Latency)
	}
	if status != 0 {
		ra := faults.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
		if status == http.StatusTooManyRequests {
			writeAPIError(w, status, svc.throttleCode, svc.throttleMessage)
		} else {
			writeAPIError(w, status, "ServiceUnavailable", "The service is temporarily unavailable. Retry after the delay in Retry-After.")
		}
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	t.settle(now)
	k := &call{c: c, w: w, r: r, t: t, p: params, q: r.URL.Query(), now: now, claims: cl, svc: svc.name, entry: rt.entry}
	if !rt.entry.Allows(cl.Roles) {
		k.forbidden()
		return
	}
	if !k.checkQuery() {
		return
	}
	h(k)
}

// ---- OData helpers ----

// parseEqFilter parses "a eq 'x' and b eq 'y'" (values quoted, or bare GUIDs/numbers/booleans).
func parseEqFilter(f string) (map[string]string, error) {
	out := map[string]string{}
	s := strings.TrimSpace(f)
	for s != "" {
		field, rest, ok := strings.Cut(s, " ")
		if !ok {
			return nil, fmt.Errorf("cannot parse $filter %q", f)
		}
		rest = strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(strings.ToLower(rest), "eq ") {
			return nil, fmt.Errorf("the simulator understands only 'eq' comparisons in $filter %q", f)
		}
		rest = strings.TrimLeft(rest[3:], " ")
		var val string
		if strings.HasPrefix(rest, "'") {
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				if rest[i] == '\'' {
					if i+1 < len(rest) && rest[i+1] == '\'' {
						b.WriteByte('\'')
						i++
						continue
					}
					break
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return nil, fmt.Errorf("unterminated string in $filter %q", f)
			}
			val, rest = b.String(), rest[i+1:]
		} else {
			val, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		out[strings.ToLower(field)] = val
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if !strings.HasPrefix(strings.ToLower(rest), "and ") {
			return nil, fmt.Errorf("the simulator understands only 'and' between comparisons in $filter %q", f)
		}
		s = strings.TrimSpace(rest[4:])
	}
	return out, nil
}

// selectFields keeps the $select'ed fields of m, plus those in keep and OData annotations.
func selectFields(m map[string]any, sel string, keep ...string) map[string]any {
	if strings.TrimSpace(sel) == "" {
		return m
	}
	want := map[string]bool{}
	for _, f := range strings.Split(sel, ",") {
		want[strings.ToLower(strings.TrimSpace(f))] = true
	}
	for _, k := range keep {
		want[strings.ToLower(k)] = true
	}
	out := map[string]any{}
	for k, v := range m {
		if want[strings.ToLower(k)] || strings.HasPrefix(k, "@") {
			out[k] = v
		}
	}
	return out
}

// writePage writes a Graph collection page with @odata.nextLink paging.
func (k *call) writePage(context string, items []map[string]any) {
	size := k.c.scn.PageSize
	if top, err := strconv.Atoi(k.q.Get("$top")); err == nil && top > 0 && top < size {
		size = top
	}
	offset := 0
	if tok := k.q.Get("$skiptoken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "sim-offset-"))
		if err != nil || err2 != nil || n < 0 {
			writeAPIError(k.w, http.StatusBadRequest, "BadRequest", "Invalid $skiptoken.")
			return
		}
		offset = n
	}
	if offset > len(items) {
		offset = len(items)
	}
	end := min(offset+size, len(items))
	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#" + context, "value": items[offset:end]}
	if end < len(items) {
		q := url.Values{}
		for key, v := range k.q {
			q[key] = v
		}
		q.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte("sim-offset-"+strconv.Itoa(end))))
		body["@odata.nextLink"] = "https://" + k.r.Host + k.r.URL.Path + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	writeJSON(k.w, http.StatusOK, body)
}

// sortedKeys returns a map's keys sorted (for stable output).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
