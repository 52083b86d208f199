package msapi

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connections sends waves of concurrent requests through c to a TLS server and returns how
// many connections (each a TLS handshake) the server accepted.
func connections(t *testing.T, c *http.Client, waves, concurrent int) int64 {
	t.Helper()
	var opened atomic.Int64
	var inFlight sync.WaitGroup
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		inFlight.Done()
		<-release // every request of a wave is in flight at once, as a fleet's calls are
		_, _ = io.WriteString(w, `{}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	for range waves {
		release = make(chan struct{})
		inFlight.Add(concurrent)
		var done sync.WaitGroup
		for range concurrent {
			done.Go(func() {
				resp, err := c.Get(srv.URL)
				if assert.NoError(t, err) {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		inFlight.Wait()
		close(release)
		done.Wait()
	}
	return opened.Load()
}

func TestHTTPClientKeepsConnectionsForAFleet(t *testing.T) {
	const waves, concurrent = 4, 40
	c := NewHTTPClient()
	assert.Equal(t, DefaultTimeout, c.Timeout)
	tr, ok := c.Transport.(*http.Transport)
	require.True(t, ok)
	require.NotNil(t, tr.Proxy, "HTTPS_PROXY must still be honoured")

	pooled := connections(t, c, waves, concurrent)
	assert.Equal(t, int64(concurrent), pooled, "each later wave reuses the first wave's connections")

	// Go's default transport, for comparison: it keeps 2 per host, so each wave opens most anew.
	def := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: time.Minute}
	fresh := connections(t, def, waves, concurrent)
	assert.GreaterOrEqual(t, fresh, int64(waves*(concurrent-2)), "the default transport's figure, which NewHTTPClient avoids")
}
