package msapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// TokenSource returns a bearer token for scope in tenantID. (*msauth.TokenProvider).Token has
// this shape. A failure should be an *Error (Service "login"); the client passes it on wrapped.
type TokenSource func(ctx context.Context, tenantID, scope string) (string, error)

// Defaults of a Client.
const (
	// DefaultMaxPages bounds how many @odata.nextLink pages one listing follows.
	DefaultMaxPages = 1000
	// DefaultMaxBodyBytes bounds how much of one response body is read.
	DefaultMaxBodyBytes = 64 << 20
	// DefaultTimeout is the timeout of the http.Client a Client makes when given none; the
	// context's deadline (the activity's) usually ends a call first.
	DefaultTimeout = 2 * time.Minute
)

// Client sends JSON requests with a bearer token to one Microsoft service and turns every
// failure into an *Error. Throttling (429), 503, 504 and transport failures of a request that
// is safe to resend (Request.Idempotent) are retried in place, waiting at least the delay the
// service asked for, within a bounded number of attempts, a bounded total wait and the
// context's deadline; what is left over goes back to the caller (Temporal's activity retry
// policy), guided by Error.Retryable and Error.RetryAfter. See retry.go.
//
// A Client is safe for concurrent use.
type Client struct {
	service  string
	http     *http.Client
	tokens   TokenSource
	header   http.Header
	maxPages int
	maxBody  int64
	now      func() time.Time
	base     string
	retry    retryConfig
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sends requests through hc (for example one whose transport routes Microsoft
// hosts to a simulator). Nil keeps the default.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithBaseURL sets the service root that URL joins paths to (adapters set their real default;
// tests point it at a test server).
func WithBaseURL(u string) ClientOption {
	return func(c *Client) { c.base = strings.TrimRight(u, "/") }
}

// URL joins an already-escaped path and a query to the client's base URL.
func (c *Client) URL(path string, query url.Values) string { return JoinURL(c.base, path, query) }

// WithHeader adds a header sent on every request, e.g. OData-Version for Dataverse.
func WithHeader(key, value string) ClientOption {
	return func(c *Client) { c.header.Set(key, value) }
}

// WithMaxPages bounds how many pages one listing follows (default DefaultMaxPages).
func WithMaxPages(n int) ClientOption {
	return func(c *Client) {
		if n > 0 {
			c.maxPages = n
		}
	}
}

// WithClock sets the clock used to turn an HTTP-date Retry-After into a delay and to check
// whether a wait fits the context's deadline (tests; see also WithSleep).
func WithClock(now func() time.Time) ClientOption {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// NewClient returns a Client for service ("graph", "dataverse", "partnercenter"), which names
// the service in every *Error, taking tokens from tokens.
func NewClient(service string, tokens TokenSource, opts ...ClientOption) *Client {
	c := &Client{
		service:  service,
		http:     &http.Client{Timeout: DefaultTimeout},
		tokens:   tokens,
		header:   http.Header{},
		maxPages: DefaultMaxPages,
		maxBody:  DefaultMaxBodyBytes,
		now:      time.Now,
		retry:    defaultRetry(),
	}
	c.header.Set("Accept", "application/json")
	for _, o := range opts {
		o(c)
	}
	return c
}

// Service is the service name the client reports in errors.
func (c *Client) Service() string { return c.service }

// Request is one call.
type Request struct {
	// Operation names the call in words for errors, e.g. "read user".
	Operation string
	// Method is the HTTP method; empty means GET.
	Method string
	// URL is the absolute URL, query included (see EncodeQuery).
	URL string
	// TenantID and Scope select the token.
	TenantID, Scope string
	// Header holds extra headers of this call (e.g. ConsistencyLevel, If-Match, Prefer).
	Header http.Header
	// Body, when not nil, is sent as JSON.
	Body any
	// DeniedHint is the Error.Hint of a 401 or 403: which permission, consent or role the call
	// needs, and where.
	DeniedHint string
	// NotFoundHint is the Error.Hint of a 404.
	NotFoundHint string
	// Idempotent says that sending this POST, PATCH, PUT or DELETE twice has the effect of
	// sending it once, so the client may resend it after a 503, a 504 or a lost answer, when it
	// cannot know whether the first one was carried out. Set it only when the call is
	// idempotent by design (If-Match with fixed values, a client-chosen ID the service
	// deduplicates) and say why at the call site. GET and HEAD are always resent.
	Idempotent bool
}

func (r Request) method() string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

// Do sends req and decodes a 2xx JSON answer into out (nil: the body is discarded). Any
// failure is an *Error, except a token failure, which is the token source's error wrapped.
func (c *Client) Do(ctx context.Context, req Request, out any) error {
	body, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return c.decode(req, body, out)
}

// Count sends req (a listing with $count=true) and returns its @odata.count.
func (c *Client) Count(ctx context.Context, req Request) (int, error) {
	var page struct {
		Count *int `json:"@odata.count"`
	}
	if err := c.Do(ctx, req, &page); err != nil {
		return 0, err
	}
	if page.Count == nil {
		return 0, c.invalid(req, "the answer has no @odata.count (was $count=true sent?)")
	}
	return *page.Count, nil
}

// GetAll lists a collection: it GETs req.URL, collects "value", and follows @odata.nextLink
// until a page has none, at most the client's page bound. A nextLink to another host than
// req.URL's is refused, so the token never leaves the service.
func GetAll[T any](ctx context.Context, c *Client, req Request) ([]T, error) {
	first, err := url.Parse(req.URL)
	if err != nil {
		return nil, LocalError(c.service, req.Operation, fmt.Sprintf("bad request URL %q: %v", req.URL, err), "")
	}
	var all []T
	for page := 1; ; page++ {
		var p struct {
			Value    []T    `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := c.Do(ctx, req, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Value...)
		if p.NextLink == "" {
			return all, nil
		}
		if page >= c.maxPages {
			return nil, c.invalid(req, fmt.Sprintf("more than %d pages; narrow the query or raise the page bound", c.maxPages))
		}
		next, err := first.Parse(p.NextLink)
		if err != nil || next.Scheme != first.Scheme || next.Host != first.Host {
			return nil, c.invalid(req, fmt.Sprintf("@odata.nextLink %q does not point at %s://%s", p.NextLink, first.Scheme, first.Host))
		}
		req.URL = next.String()
	}
}

// send performs the request, retrying in place what may be retried (retry.go), and returns
// the body of a 2xx answer.
func (c *Client) send(ctx context.Context, req Request) ([]byte, error) {
	if c.tokens == nil {
		return nil, LocalError(c.service, req.Operation, "no token source configured", "wire the msauth token provider into the adapter")
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, LocalError(c.service, req.Operation, fmt.Sprintf("bad request URL %q: %v", req.URL, err), "")
	}
	var payload []byte
	if req.Body != nil {
		if payload, err = json.Marshal(req.Body); err != nil {
			return nil, LocalError(c.service, req.Operation, "encode request body: "+err.Error(), "")
		}
	}
	// One client-request-id for every send of this request, so that the service (and the
	// simulated cloud's throttling record) can tell a resend from another caller's request.
	// https://learn.microsoft.com/en-us/graph/best-practices-concept#reliability-and-support
	id := newRequestID()
	return c.withRetry(ctx, req, u, func() ([]byte, error) { return c.sendOnce(ctx, req, u, payload, id) })
}

// newRequestID returns a random GUID (version 4) for the client-request-id header.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// sendOnce makes one attempt: a token (MSAL's cache makes this cheap, and a long wait between
// attempts may outlive a token), the request, the answer.
func (c *Client) sendOnce(ctx context.Context, req Request, u *url.URL, payload []byte, requestID string) ([]byte, error) {
	token, err := c.tokens(ctx, req.TenantID, req.Scope)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: get a token for %s in tenant %s: %w", c.service, req.Operation, req.Scope, req.TenantID, err)
	}
	var reader io.Reader
	if payload != nil {
		reader = bytes.NewReader(payload)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method(), u.String(), reader)
	if err != nil {
		return nil, LocalError(c.service, req.Operation, "build request: "+err.Error(), "")
	}
	for k, vs := range c.header {
		hr.Header[k] = append([]string(nil), vs...)
	}
	for k, vs := range req.Header {
		hr.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	if hr.Header.Get("client-request-id") == "" {
		hr.Header.Set("client-request-id", requestID)
	}

	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, &Error{
			Service: c.service, Operation: req.Operation, Method: hr.Method, Path: u.Path,
			Message: transportMessage(err),
			Hint:    "the request got no answer (network, DNS or timeout); it is retried",
		}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, &Error{
			Service: c.service, Operation: req.Operation, Method: hr.Method, Path: u.Path,
			Message: "reading the answer failed: " + transportMessage(err),
		}
	}
	if int64(len(body)) > c.maxBody {
		return nil, &Error{
			Service: c.service, Operation: req.Operation, Method: hr.Method, Path: u.Path,
			Status: resp.StatusCode, Code: "ResponseTooLarge",
			Message: fmt.Sprintf("the answer is larger than %d bytes", c.maxBody),
		}
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // Partner Center answers with a BOM
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, nil
	}
	return nil, c.statusError(req, hr.Method, u.Path, resp, body)
}

func (c *Client) statusError(req Request, method, path string, resp *http.Response, body []byte) *Error {
	code, msg := ParseErrorBody(body)
	if msg == "" && code == "" {
		msg = http.StatusText(resp.StatusCode)
		if s := snippet(body); s != "" && !looksLikeHTML(body) {
			msg += ": " + s
		}
	}
	e := &Error{
		Service: c.service, Operation: req.Operation, Method: method, Path: path,
		Status: resp.StatusCode, Code: code, Message: msg,
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		e.Hint = req.DeniedHint
	case http.StatusNotFound:
		e.Hint = req.NotFoundHint
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		e.RetryAfter = retryAfter(resp.Header, c.now())
		if resp.StatusCode == http.StatusTooManyRequests {
			e.Hint = c.service + " is throttling the orchestrator app; the call is retried after the delay it asked for"
		}
	}
	return e
}

func (c *Client) decode(req Request, body []byte, out any) error {
	if err := json.Unmarshal(body, out); err != nil {
		return c.invalid(req, fmt.Sprintf("the answer is not the JSON expected: %v", err))
	}
	return nil
}

// invalid reports an answer that does not fit the contract: permanent (Status 200-ish), so no
// retry loops on it.
func (c *Client) invalid(req Request, msg string) *Error {
	path := req.URL
	if u, err := url.Parse(req.URL); err == nil {
		path = u.Path
	}
	return &Error{
		Service: c.service, Operation: req.Operation, Method: req.method(), Path: path,
		Status: http.StatusOK, Code: "UnexpectedResponse", Message: msg,
		Hint: "the service answered outside the contract this adapter speaks; report it with the request path",
	}
}

// LocalError is a call the adapter refused before sending it: a wrong argument or
// configuration. It is never retryable (Error.Local).
func LocalError(service, operation, message, hint string) *Error {
	return &Error{Service: service, Operation: operation, Message: message, Hint: hint, Local: true}
}

// ParseErrorBody extracts the code and message of an error answer. It knows the OData shape
// of Graph and Dataverse ({"error":{"code","message"}}), the OAuth shape of Entra ID
// ({"error":"…","error_description":"…"}) and Partner Center's ({"code":…,"description":"…"}).
func ParseErrorBody(body []byte) (code, message string) {
	var b struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
		Code             json.RawMessage `json:"code"`
		Description      string          `json:"description"`
		Message          string          `json:"message"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", ""
	}
	if len(b.Error) > 0 && b.Error[0] == '{' {
		var inner struct {
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
		}
		if json.Unmarshal(b.Error, &inner) == nil {
			return rawString(inner.Code), clip(inner.Message)
		}
	}
	if len(b.Error) > 0 && b.Error[0] == '"' {
		return rawString(b.Error), clip(firstLine(b.ErrorDescription))
	}
	msg := b.Description
	if msg == "" {
		msg = b.Message
	}
	return rawString(b.Code), clip(msg)
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date (relative to now).
// Unparseable or past values give 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func rawString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw) // a number
}

func transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error repeats the URL; the path is already in Error.Path.
		return ue.Err.Error()
	}
	return err.Error()
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

const maxMessage = 1000

func clip(s string) string {
	return cut(strings.TrimSpace(s), maxMessage)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func snippet(body []byte) string {
	return cut(strings.Join(strings.Fields(string(body)), " "), 200)
}

func looksLikeHTML(body []byte) bool {
	s := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 100)])))
	return strings.HasPrefix(s, "<!doctype") || strings.HasPrefix(s, "<html")
}
