package msapi

import "net/http"

// DefaultIdleConnsPerHost is how many idle connections NewHTTPClient keeps per host. Go's
// default transport keeps 2: a worker running hundreds of tenants at once calls the same
// few hosts (login.microsoftonline.com, graph.microsoft.com, api.partnercenter.microsoft.com)
// from hundreds of goroutines, and with 2 kept most calls would open, TLS-handshake and
// close a connection of their own.
const DefaultIdleConnsPerHost = 64

// DefaultMaxIdleConns bounds the idle connections NewHTTPClient keeps in all hosts together.
const DefaultMaxIdleConns = 256

// NewHTTPClient is the one HTTP client a worker shares between MSAL and every Microsoft
// adapter, so they share one connection pool: Go's default transport (HTTPS_PROXY and the
// system's CAs honoured, HTTP/2 when the host offers it) keeping DefaultIdleConnsPerHost
// idle connections per host (DefaultMaxIdleConns in all), and DefaultTimeout per request.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = DefaultIdleConnsPerHost
	// In all, room for the shared hosts' connections and some of the per-tenant Dataverse
	// hosts'. Not one per tenant: each idle TLS connection holds buffers and two goroutines,
	// and 1,024 of them took ≈ 50 MB of a worker with 1,000 upgrades in flight.
	t.MaxIdleConns = DefaultMaxIdleConns
	return &http.Client{Transport: t, Timeout: DefaultTimeout}
}
