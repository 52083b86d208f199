package sim

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"testing"
)

// Through the proxy, a client that trusts its CA reaches the simulated login host over
// HTTPS; any other host is refused.
func TestProxyAnswersForSimulatedHostsOnly(t *testing.T) {
	cloud := New(Generate(1, 1), Options{})
	defer cloud.Close()
	p, err := NewProxy(cloud)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, err := p.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM())
	u, _ := url.Parse(proxyURL)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{RootCAs: pool}}}

	resp, err := hc.Get("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/common/oauth2/v2.0/authorize")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login through the proxy: %s", resp.Status)
	}
	if _, err := hc.Get("https://example.com/"); err == nil {
		t.Fatal("the proxy tunnelled to a host it does not simulate")
	}
	// Without trusting the proxy's CA, TLS fails: nothing is served unauthenticated.
	plain := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
	if _, err := plain.Get("https://graph.microsoft.com/v1.0/organization"); err == nil {
		t.Fatal("a client that does not trust the proxy's CA got an answer")
	}
}
