package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"
)

// Proxy is an HTTPS proxy (CONNECT) that answers for Microsoft's hosts with the simulated
// cloud, so that an unmodified production worker process reaches the simulator through the
// standard environment alone: HTTPS_PROXY=<URL> and SSL_CERT_FILE=<the proxy's CA>. It
// terminates TLS with certificates it issues from its own CA for each simulated host, and
// refuses to tunnel to any other host, so a rehearsal never reaches the real cloud. Loopback
// addresses (Temporal, webhooks) are never proxied by Go clients.
type Proxy struct {
	cloud *Cloud
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	caPEM []byte

	mu    sync.Mutex
	certs map[string]*tls.Certificate
	srv   *http.Server
	url   string
}

// NewProxy makes a proxy in front of the simulated cloud, with a fresh CA. Inside each
// tunnel it serves the cloud's handler itself: a request reaches the simulator as it left
// the client, Host and all, without a second HTTP hop to the cloud's own listener.
func NewProxy(cloud *Cloud) (*Proxy, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "work365 rehearsal proxy CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Proxy{cloud: cloud, ca: ca, caKey: key, certs: map[string]*tls.Certificate{},
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// CAPEM is the CA certificate clients must trust (SSL_CERT_FILE).
func (p *Proxy) CAPEM() []byte { return p.caPEM }

// Start listens on addr (e.g. 127.0.0.1:0) and returns the proxy's URL for HTTPS_PROXY.
func (p *Proxy) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sim proxy: listen: %w", err)
	}
	p.mu.Lock()
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serveConnect), ReadHeaderTimeout: 10 * time.Second}
	p.url = "http://" + ln.Addr().String()
	srv := p.srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return p.url, nil
}

// Close stops listening (open tunnels end with their clients).
func (p *Proxy) Close() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "sim proxy: only CONNECT to Microsoft's hosts", http.StatusMethodNotAllowed)
		return
	}
	host := hostOnly(r.Host)
	if !Simulated(host) {
		http.Error(w, fmt.Sprintf("sim proxy: %s is not a simulated host; refusing to reach the real cloud", host), http.StatusForbidden)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "sim proxy: cannot hijack", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	if _, err := buf.WriteString("HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil || buf.Flush() != nil {
		_ = conn.Close()
		return
	}
	tconn := tls.Server(conn, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := hello.ServerName
		if name == "" {
			name = host
		}
		if !Simulated(name) {
			return nil, fmt.Errorf("sim proxy: no certificate for %s", name)
		}
		return p.certFor(name)
	}})
	// One HTTP/1.1 server per tunnel; it ends when the client closes the connection.
	l := &oneConnListener{conn: tconn, done: make(chan struct{})}
	_ = (&http.Server{Handler: p.cloud, ReadHeaderTimeout: 30 * time.Second}).Serve(l)
}

// certFor issues (once) a certificate for host signed by the proxy's CA.
func (p *Proxy) certFor(host string) (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.certs[host]; ok {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	p.certs[host] = c
	return c, nil
}

// oneConnListener hands out one connection, then blocks until that connection is closed.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
	used bool
	mu   sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if !l.used {
		l.used = true
		l.mu.Unlock()
		return &closeNotifyConn{Conn: l.conn, close: func() { l.once.Do(func() { close(l.done) }) }}, nil
	}
	l.mu.Unlock()
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

type closeNotifyConn struct {
	net.Conn
	close func()
}

func (c *closeNotifyConn) Close() error {
	err := c.Conn.Close()
	c.close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
