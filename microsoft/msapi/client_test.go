package msapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const secretToken = "tok-SECRET-do-not-leak"

func tokens(t *testing.T) TokenSource {
	return func(_ context.Context, tenantID, scope string) (string, error) {
		assert.Equal(t, "tenant-1", tenantID)
		assert.Equal(t, "https://example.test/.default", scope)
		return secretToken, nil
	}
}

func req(u, op string) Request {
	return Request{Operation: op, URL: u, TenantID: "tenant-1", Scope: "https://example.test/.default"}
}

func TestDoSendsHeadersAndDecodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Equal(t, "/v1/things/a b", r.URL.Path)
		assert.Equal(t, "Bearer "+secretToken, r.Header.Get("Authorization"))
		assert.Equal(t, "application/json", r.Header.Get("Accept"))
		assert.Equal(t, "4.0", r.Header.Get("OData-Version"))
		assert.Equal(t, "eventual", r.Header.Get("ConsistencyLevel"))
		assert.Empty(t, r.Header.Get("Content-Type"))
		_, _ = io.WriteString(w, `{"name":"x"}`)
	}))
	defer srv.Close()

	c := NewClient("graph", tokens(t), WithHeader("OData-Version", "4.0"))
	r := req(srv.URL+"/v1/things/a%20b", "read thing")
	r.Header = http.Header{"ConsistencyLevel": {"eventual"}}
	var out struct{ Name string }
	require.NoError(t, c.Do(context.Background(), r, &out))
	assert.Equal(t, "x", out.Name)
}

func TestDoPostsJSONBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
		b, _ := io.ReadAll(r.Body)
		assert.JSONEq(t, `{"A":1}`, string(b))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := NewClient("dataverse", tokens(t))
	r := req(srv.URL+"/x", "post")
	r.Method = http.MethodPost
	r.Body = map[string]int{"A": 1}
	require.NoError(t, c.Do(context.Background(), r, nil))
}

func TestDoStripsBOM(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "\xef\xbb\xbf{\"id\":\"p\"}")
	}))
	defer srv.Close()
	var out struct{ ID string }
	require.NoError(t, NewClient("partnercenter", tokens(t)).Do(context.Background(), req(srv.URL, "probe"), &out))
	assert.Equal(t, "p", out.ID)
}

func statusServer(status int, header http.Header, body string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
}

func callErr(t *testing.T, c *Client, r Request) *Error {
	t.Helper()
	err := c.Do(context.Background(), r, &struct{}{})
	require.Error(t, err)
	var e *Error
	require.True(t, errors.As(err, &e), "want *msapi.Error, got %T %v", err, err)
	assert.NotContains(t, err.Error(), secretToken)
	return e
}

func TestThrottlingSetsRetryAfter(t *testing.T) {
	srv := statusServer(http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}},
		`{"error":{"code":"TooManyRequests","message":"slow down"}}`)
	defer srv.Close()
	// WithRetry(1, 0): one send, to see the error mapping (retry_test.go tests the retry).
	e := callErr(t, NewClient("graph", tokens(t), WithRetry(1, 0)), req(srv.URL+"/users/u", "read user"))
	assert.Equal(t, 429, e.Status)
	assert.Equal(t, 7*time.Second, e.RetryAfter)
	assert.True(t, e.Retryable())
	assert.Equal(t, "TooManyRequests", e.Code)
	assert.Equal(t, "slow down", e.Message)
	assert.Equal(t, "/users/u", e.Path)
	assert.Equal(t, "GET", e.Method)
}

func TestServiceUnavailableWithHTTPDate(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	srv := statusServer(http.StatusServiceUnavailable,
		http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, "")
	defer srv.Close()
	c := NewClient("dataverse", tokens(t), WithClock(func() time.Time { return now }), WithRetry(1, 0))
	e := callErr(t, c, req(srv.URL, "who am i"))
	assert.Equal(t, 90*time.Second, e.RetryAfter)
	assert.True(t, e.Retryable())
	assert.Equal(t, "Service Unavailable", e.Message)
}

func TestDeniedIsPermanentWithHint(t *testing.T) {
	for _, status := range []int{401, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := statusServer(status, nil,
				`{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}`)
			defer srv.Close()
			r := req(srv.URL+"/subscribedSkus", "list subscribed SKUs")
			r.DeniedHint = "grant Organization.Read.All"
			e := callErr(t, NewClient("graph", tokens(t)), r)
			assert.Equal(t, status, e.Status)
			assert.False(t, e.Retryable())
			assert.True(t, e.Unauthorized())
			assert.Equal(t, "grant Organization.Read.All", e.Hint)
			assert.Equal(t, "Authorization_RequestDenied", e.Code)
			assert.Contains(t, e.Error(), "grant Organization.Read.All")
		})
	}
}

func TestNotFoundHint(t *testing.T) {
	srv := statusServer(404, nil, `{"error":{"code":"0x80040217","message":"Entity not found"}}`)
	defer srv.Close()
	r := req(srv.URL, "read import job")
	r.NotFoundHint = "no such job"
	e := callErr(t, NewClient("dataverse", tokens(t)), r)
	assert.True(t, e.NotFound())
	assert.False(t, e.Retryable())
	assert.Equal(t, "0x80040217", e.Code)
	assert.Equal(t, "no such job", e.Hint)
}

func TestHTMLErrorBodyIsNotCopied(t *testing.T) {
	srv := statusServer(502, nil, "<html><body>Bad gateway from some proxy</body></html>")
	defer srv.Close()
	e := callErr(t, NewClient("graph", tokens(t)), req(srv.URL, "x"))
	assert.Equal(t, "Bad Gateway", e.Message)
	assert.True(t, e.Retryable())
}

func TestTransportFailureIsRetryable(t *testing.T) {
	srv := statusServer(200, nil, "{}")
	u := srv.URL
	srv.Close() // nothing listens any more
	e := callErr(t, NewClient("graph", tokens(t), WithRetry(1, 0)), req(u+"/users", "list users"))
	assert.Equal(t, 0, e.Status)
	assert.True(t, e.Retryable())
	assert.Equal(t, "/users", e.Path)
}

func TestUndecodableAnswerIsPermanent(t *testing.T) {
	srv := statusServer(200, nil, "not json")
	defer srv.Close()
	e := callErr(t, NewClient("graph", tokens(t)), req(srv.URL, "x"))
	assert.Equal(t, "UnexpectedResponse", e.Code)
	assert.False(t, e.Retryable())
}

func TestTokenFailurePassesThrough(t *testing.T) {
	var called atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) }))
	defer srv.Close()
	login := &Error{Service: "login", Operation: "acquire token", Status: 401, Code: "AADSTS65001", Hint: "grant admin consent"}
	c := NewClient("graph", func(context.Context, string, string) (string, error) { return "", login })
	err := c.Do(context.Background(), req(srv.URL, "read user"), nil)
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Same(t, login, e)
	assert.False(t, called.Load(), "no request without a token")
	assert.Contains(t, err.Error(), "read user")
}

func TestGetAllFollowsNextLink(t *testing.T) {
	var srv *httptest.Server
	var calls atomic.Int32
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		assert.Equal(t, "Bearer "+secretToken, r.Header.Get("Authorization"))
		switch r.URL.Query().Get("$skiptoken") {
		case "":
			assert.Equal(t, "id", r.URL.Query().Get("$select"))
			fmt.Fprintf(w, `{"value":[{"id":"1"},{"id":"2"}],"@odata.nextLink":"%s/items?$select=id&$skiptoken=p2"}`, srv.URL)
		case "p2":
			fmt.Fprintf(w, `{"value":[{"id":"3"}],"@odata.nextLink":"%s/items?$select=id&$skiptoken=p3"}`, srv.URL)
		case "p3":
			_, _ = io.WriteString(w, `{"value":[]}`)
		}
	}))
	defer srv.Close()
	type item struct{ ID string }
	got, err := GetAll[item](context.Background(), NewClient("graph", tokens(t)),
		req(srv.URL+"/items?"+EncodeQuery(url.Values{"$select": {"id"}}), "list items"))
	require.NoError(t, err)
	assert.Equal(t, []item{{"1"}, {"2"}, {"3"}}, got)
	assert.EqualValues(t, 3, calls.Load())
}

func TestGetAllIsBounded(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"value":[1],"@odata.nextLink":"%s/again"}`, srv.URL)
	}))
	defer srv.Close()
	_, err := GetAll[int](context.Background(), NewClient("graph", tokens(t), WithMaxPages(5)), req(srv.URL, "loop"))
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Contains(t, e.Message, "more than 5 pages")
	assert.False(t, e.Retryable())
}

func TestGetAllRefusesForeignNextLink(t *testing.T) {
	var foreign atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { foreign.Store(true) }))
	defer other.Close()
	srv := statusServer(200, nil, `{"value":[],"@odata.nextLink":"`+other.URL+`/steal"}`)
	defer srv.Close()
	_, err := GetAll[int](context.Background(), NewClient("graph", tokens(t)), req(srv.URL, "list"))
	require.Error(t, err)
	assert.False(t, foreign.Load(), "the token must not be sent to another host")
}

func TestCount(t *testing.T) {
	srv := statusServer(200, nil, `{"@odata.count":42,"value":[{}]}`)
	defer srv.Close()
	n, err := NewClient("dataverse", tokens(t)).Count(context.Background(), req(srv.URL, "count"))
	require.NoError(t, err)
	assert.Equal(t, 42, n)

	missing := statusServer(200, nil, `{"value":[]}`)
	defer missing.Close()
	_, err = NewClient("dataverse", tokens(t)).Count(context.Background(), req(missing.URL, "count"))
	require.Error(t, err)
}

func TestParseErrorBody(t *testing.T) {
	cases := []struct{ body, code, msg string }{
		{`{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist."}}`, "Request_ResourceNotFound", "Resource 'x' does not exist."},
		{`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}`, "invalid_client", "AADSTS7000215: Invalid client secret provided."},
		{`{"code":600,"description":"Partner not found"}`, "600", "Partner not found"},
		{`not json`, "", ""},
	}
	for _, c := range cases {
		code, msg := ParseErrorBody([]byte(c.body))
		assert.Equal(t, c.code, code, c.body)
		assert.Equal(t, c.msg, msg, c.body)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, 3*time.Second, ParseRetryAfter("3", now))
	assert.Equal(t, time.Duration(0), ParseRetryAfter("", now))
	assert.Equal(t, time.Duration(0), ParseRetryAfter("-1", now))
	assert.Equal(t, time.Duration(0), ParseRetryAfter("soon", now))
	assert.Equal(t, time.Minute, ParseRetryAfter(now.Add(time.Minute).Format(http.TimeFormat), now))
	assert.Equal(t, time.Duration(0), ParseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now))
}

func TestEncodeQueryAndLiterals(t *testing.T) {
	q := url.Values{
		"$filter": {"principalId eq " + ODataString("o'brien") + " and x eq 'a&b+c'"},
		"$select": {"id,displayName"},
		"@p1":     {"abc"},
	}
	enc := EncodeQuery(q)
	assert.Equal(t, "$filter=principalId%20eq%20%27o%27%27brien%27%20and%20x%20eq%20%27a%26b%2Bc%27&$select=id%2CdisplayName&@p1=abc", enc)
	back, err := url.ParseQuery(enc)
	require.NoError(t, err)
	assert.Equal(t, q, back)
	assert.Equal(t, "https://h/v1.0/users/a?$select=id", JoinURL("https://h/v1.0/", "/users/a", url.Values{"$select": {"id"}}))
	assert.Equal(t, "https://h/x", JoinURL("https://h", "x", nil))
}

func TestErrorsNeverCarryTheToken(t *testing.T) {
	srv := statusServer(401, nil, `{"error":{"code":"InvalidAuthenticationToken","message":"Access token validation failure."}}`)
	defer srv.Close()
	err := NewClient("graph", tokens(t)).Do(context.Background(), req(srv.URL, "x"), nil)
	b, _ := json.Marshal(err)
	assert.NotContains(t, string(b), secretToken)
	assert.False(t, strings.Contains(err.Error(), secretToken))
}

func TestLocalErrorsArePermanent(t *testing.T) {
	e := NewClient("graph", nil).Do(context.Background(), req("https://h/x", "read"), nil)
	var me *Error
	require.True(t, errors.As(e, &me))
	assert.True(t, me.Local)
	assert.False(t, me.Retryable())
	assert.Contains(t, me.Error(), "no token source")

	_, err := GetAll[int](context.Background(), NewClient("graph", tokens(t)), req("://bad", "list"))
	require.True(t, errors.As(err, &me))
	assert.False(t, me.Retryable())
}
