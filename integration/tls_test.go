package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"

	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// TestTLSAndAPIKey runs the production worker and starter binaries against an embedded server
// that requires mTLS (certificates generated here) and a bearer API key, the way a hardened
// self-hosted cluster or Temporal Cloud does: configured by worker.yaml and flags, and again
// from a Temporal CLI profile (temporal.toml) alone. A wrong key and a missing client
// certificate are refused.
func TestTLSAndAPIKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	apiKey := "tk-" + rand.Text()
	keyFile := filepath.Join(dir, "api-key")
	require.NoError(t, os.WriteFile(keyFile, []byte(apiKey+"\n"), 0o600))

	systemTLS, err := tlsClientConfig(pki.systemCert, pki.systemKey, pki.ca)
	require.NoError(t, err)
	srv, err := devserver.Start(ctx, devserver.Options{
		LogLevel: "off",
		Security: &devserver.Security{
			TLS: config.RootTLS{
				Frontend: config.GroupTLS{
					Server: config.ServerTLS{CertFile: pki.serverCert, KeyFile: pki.serverKey, ClientCAFiles: []string{pki.ca}, RequireClientAuth: true},
					Client: config.ClientTLS{RootCAFiles: []string{pki.ca}, ServerName: "localhost"},
				},
				SystemWorker: config.WorkerTLS{CertFile: pki.systemCert, KeyFile: pki.systemKey,
					Client: config.ClientTLS{RootCAFiles: []string{pki.ca}, ServerName: "localhost"}},
			},
			ClaimMapper: apiKeyClaims{key: apiKey},
			Authorizer:  authorization.NewDefaultAuthorizer(),
			ClientTLS:   systemTLS,
		},
	})
	require.NoError(t, err)
	defer srv.Stop()

	worker, starter := buildBinary(t, dir, "worker"), buildBinary(t, dir, "starter")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("not-a-real-secret"), 0o600))
	msft := fmt.Sprintf("microsoft: {clientId: 00000000-0000-0000-0000-0000000000aa, secretFile: %s}\nwork365: {appId: 5b3e7d1c-0a65-4c1e-9d39-5131a0000365}\npackagesDir: %s\n",
		filepath.Join(dir, "secret"), dir)
	// The connection as the Temporal CLI keeps it (temporal config set …).
	toml := filepath.Join(dir, "temporal.toml")
	require.NoError(t, os.WriteFile(toml, fmt.Appendf(nil, `[profile.secure]
address = %q
namespace = %q
api_key = %q
[profile.secure.tls]
client_cert_path = %q
client_key_path = %q
server_ca_cert_path = %q
server_name = "localhost"
`, srv.FrontendAddress(), srv.Namespace(), apiKey, pki.clientCert, pki.clientKey, pki.ca), 0o600))
	// No TEMPORAL_* variable leaks in from the environment running the test.
	env := cleanEnv("HOME=" + dir)

	t.Run("worker.yaml with mTLS and an API key file", func(t *testing.T) {
		cfg := msft + fmt.Sprintf("temporal: {address: %q, namespace: %q, taskQueue: tls-yaml, apiKeyFile: %q, tls: {certFile: %q, keyFile: %q, caFile: %q, serverName: localhost}}\n",
			srv.FrontendAddress(), srv.Namespace(), keyFile, pki.clientCert, pki.clientKey, pki.ca)
		runWorkerUntilPolling(t, worker, dir, "yaml", cfg, env, "tls-yaml", systemTLS, srv)
	})
	t.Run("worker.yaml naming a Temporal CLI profile", func(t *testing.T) {
		cfg := msft + fmt.Sprintf("temporal: {profile: secure, configFile: %q, taskQueue: tls-profile}\n", toml)
		runWorkerUntilPolling(t, worker, dir, "profile", cfg, env, "tls-profile", systemTLS, srv)
	})
	t.Run("starter with flags and TEMPORAL_API_KEY", func(t *testing.T) {
		out, err := runStarter(starter, append(env, "TEMPORAL_API_KEY="+apiKey), "--address", srv.FrontendAddress(), "--namespace", srv.Namespace(),
			"--tls-cert", pki.clientCert, "--tls-key", pki.clientKey, "--tls-ca", pki.ca, "--tls-server-name", "localhost", "tasks")
		require.NoError(t, err, out)
	})
	t.Run("starter from the profile alone (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE)", func(t *testing.T) {
		out, err := runStarter(starter, append(env, "TEMPORAL_CONFIG_FILE="+toml, "TEMPORAL_PROFILE=secure"), "tasks")
		require.NoError(t, err, out)
		out, err = runStarter(starter, env, "--config-file", toml, "--profile", "secure", "status", "--query", "WorkflowType = 'TenantUpgrade'")
		require.NoError(t, err, out)
	})
	t.Run("a wrong API key is refused", func(t *testing.T) {
		out, err := runStarter(starter, append(env, "TEMPORAL_API_KEY=tk-wrong"), "--address", srv.FrontendAddress(), "--namespace", srv.Namespace(),
			"--tls-cert", pki.clientCert, "--tls-key", pki.clientKey, "--tls-ca", pki.ca, "--tls-server-name", "localhost", "tasks")
		require.Error(t, err, out)
		require.Contains(t, strings.ToLower(out), "unauthorized", out)
	})
	t.Run("no client certificate is refused", func(t *testing.T) {
		out, err := runStarter(starter, append(env, "TEMPORAL_API_KEY="+apiKey, "TEMPORAL_TLS_SERVER_CA_CERT_PATH="+pki.ca, "TEMPORAL_TLS_SERVER_NAME=localhost"),
			"--address", srv.FrontendAddress(), "--namespace", srv.Namespace(), "--timeout", "15s", "tasks")
		require.Error(t, err, out)
	})
	t.Run("an unknown profile names itself", func(t *testing.T) {
		out, err := runStarter(starter, env, "--config-file", toml, "--profile", "nope", "tasks")
		require.Error(t, err, out)
		require.Contains(t, out, "nope", out)
	})
}

// runWorkerUntilPolling starts the worker binary with cfg, waits until it polls taskQueue on
// the secured server (it connected, passed authorization and registered the search
// attributes), then stops it with SIGTERM.
func runWorkerUntilPolling(t *testing.T, bin, dir, name, cfg string, env []string, taskQueue string, adminTLS *tls.Config, srv *devserver.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	metrics := ln.Addr().String()
	ln.Close()
	path := filepath.Join(dir, name+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg+fmt.Sprintf("metrics: {address: %q}\n", metrics)), 0o600))
	cmd := exec.Command(bin, "--config", path)
	cmd.Env = env
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()

	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(),
		ConnectionOptions: client.ConnectionOptions{TLS: adminTLS}})
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			done <- err
			return true // fails below with the logs
		default:
		}
		resp, err := c.WorkflowService().DescribeTaskQueue(context.Background(), &workflowservice.DescribeTaskQueueRequest{
			Namespace: srv.Namespace(), TaskQueue: &taskqueuepb.TaskQueue{Name: taskQueue}, TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW})
		return err == nil && len(resp.GetPollers()) > 0
	}, 2*time.Minute, 250*time.Millisecond, "the worker polls %s; logs:\n%s", taskQueue, &logs)
	select {
	case err := <-done:
		t.Fatalf("worker exited (%v); logs:\n%s", err, logs.String())
	default:
	}
	resp, err := http.Get("http://" + metrics + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "health through the TLS connection; logs:\n%s", logs.String())
	attrs, err := c.OperatorService().ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: srv.Namespace()})
	require.NoError(t, err)
	for name := range searchattr.All() {
		require.Contains(t, attrs.GetCustomAttributes(), name, "registered by the worker over TLS")
	}
	require.NotContains(t, logs.String(), "tk-", "the API key never reaches the logs")
}

// apiKeyClaims grants access to a bearer API key, and to the server's own system worker
// (client certificate CN temporal-system); everything else gets no claims and is refused.
type apiKeyClaims struct{ key string }

func (m apiKeyClaims) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	if ai.AuthToken == "Bearer "+m.key {
		return &authorization.Claims{Subject: "api-key", System: authorization.RoleAdmin}, nil
	}
	if ai.AuthToken == "" && ai.TLSSubject != nil && ai.TLSSubject.CommonName == "temporal-system" {
		return &authorization.Claims{Subject: "temporal-system", System: authorization.RoleAdmin}, nil
	}
	return nil, nil
}

type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey, systemCert, systemKey string
}

// newTestPKI writes a CA, a server certificate for localhost/127.0.0.1 and two client
// certificates (the worker's, the server's system worker's) into dir.
func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "work365 test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := testPKI{ca: filepath.Join(dir, "ca.pem")}
	require.NoError(t, os.WriteFile(p.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, server bool) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
		require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
		return certPath, keyPath
	}
	// The server certificate also authenticates the frontend as a client of itself.
	p.serverCert, p.serverKey = issue("localhost", 2, x509.ExtKeyUsageServerAuth, true)
	p.clientCert, p.clientKey = issue("work365-worker", 3, x509.ExtKeyUsageClientAuth, false)
	p.systemCert, p.systemKey = issue("temporal-system", 4, x509.ExtKeyUsageClientAuth, false)
	return p
}

func tlsClientConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}, nil
}

// buildBinary builds one of this module's commands into dir.
func buildBinary(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, "../"+pkg).CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

func runStarter(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cleanEnv is the test's environment without TEMPORAL_* variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
