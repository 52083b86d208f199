package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// confirmTemporal answers confirmation Updates as the workflow would (the task's audience
// is checked by the workflow, not here); sent records every request.
type confirmTemporal struct {
	client.Client
	sent []workflows.ConfirmRequest
}

func (f *confirmTemporal) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	req := o.Args[0].(workflows.ConfirmRequest)
	f.sent = append(f.sent, req)
	return confirmHandle{c: workflows.Confirmation{TaskID: req.TaskID, Kind: "consent", Audience: req.As, By: req.By, At: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		Via: "update", Identity: req.Identity, OnBehalfOf: req.OnBehalfOf}}, nil
}

type confirmHandle struct{ c workflows.Confirmation }

func (h confirmHandle) WorkflowID() string { return "wf" }
func (h confirmHandle) RunID() string      { return "run" }
func (h confirmHandle) UpdateID() string   { return "u" }
func (h confirmHandle) Get(_ context.Context, v any) error {
	*(v.(*workflows.Confirmation)) = h.c
	return nil
}

func confirmWith(t *testing.T, f *confirmTemporal, g *globals, args ...string) (string, error) {
	t.Helper()
	g.dialFn = func(context.Context) (ops.Ops, func(), error) {
		return ops.Ops{Client: f, TaskQueue: "q"}, func() {}, nil
	}
	g.clientID = "work365-starter 42@ops-laptop"
	root := newRootWith(g)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"confirm", "wf"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestConfirmForSomeoneElseNeedsOnBehalfOf(t *testing.T) {
	f := &confirmTemporal{}
	anon := &app.ConnIdentity{}
	_, err := confirmWith(t, f, &globals{connID: anon}, "get-consent-1", "--as", "global-admin", "--by", "alice")
	require.ErrorContains(t, err, "this task is for the global-admin, not the operator: add --on-behalf-of")
	_, err = confirmWith(t, f, &globals{connID: anon}, "get-consent-1", "--as", "global-admin", "--on-behalf-of", "Jane (Contoso)")
	require.ErrorContains(t, err, "--by is required: the connection names nobody")
	require.Empty(t, f.sent, "nothing sent while the request is refused")

	out, err := confirmWith(t, f, &globals{connID: anon}, "get-consent-1", "--as", "global-admin", "--by", "alice", "--on-behalf-of", "Jane (Contoso)", "--note", "on the phone")
	require.NoError(t, err)
	require.Contains(t, out, "by operator alice on behalf of Jane (Contoso) (declared)")
	require.Len(t, f.sent, 1)
	req := f.sent[0]
	require.Equal(t, "alice", req.By, "the operator, never the audience")
	require.Equal(t, "Jane (Contoso)", req.OnBehalfOf)
	require.Equal(t, &workflows.Identity{Via: "declared", Name: "alice", Client: "work365-starter 42@ops-laptop"}, req.Identity)

	_, err = confirmWith(t, f, &globals{connID: anon}, "drain-deadline-3", "--as", "operator", "--by", "alice", "--on-behalf-of", "bob", "--decision", "proceed")
	require.ErrorContains(t, err, "an operator task is confirmed by the operator")
	_, err = confirmWith(t, f, &globals{connID: anon}, "drain-deadline-3", "--as", "operator", "--by", "alice", "--decision", "proceed")
	require.NoError(t, err)
	require.Equal(t, "", f.sent[1].OnBehalfOf)
}

func TestConfirmTakesTheOperatorFromTheConnection(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeClientCert(t, dir, "alice.ops@partner.example")
	f := &confirmTemporal{}
	t.Setenv("TEMPORAL_API_KEY", "")
	t.Setenv("TEMPORAL_CONFIG_FILE", filepath.Join(dir, "none.toml"))
	mtls := []string{"--tls-cert", cert, "--tls-key", key}
	out, err := confirmWith(t, f, &globals{}, append(mtls, "get-consent-1", "--as", "global-admin", "--on-behalf-of", "Jane (Contoso)")...)
	require.NoError(t, err)
	require.Contains(t, out, "operator alice.ops@partner.example on behalf of Jane (Contoso) (client-certificate)")
	require.Equal(t, &workflows.Identity{Via: "client-certificate", Name: "alice.ops@partner.example", Client: "work365-starter 42@ops-laptop"}, f.sent[0].Identity)
	require.Equal(t, "alice.ops@partner.example", f.sent[0].By)

	_, err = confirmWith(t, f, &globals{}, append(mtls, "get-consent-1", "--as", "global-admin", "--by", "mallory", "--on-behalf-of", "Jane (Contoso)")...)
	require.ErrorContains(t, err, `--by "mallory" is not who this connection authenticates as (client-certificate "alice.ops@partner.example")`)

	// An API key that is a JWT names its subject; an opaque one names nobody.
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"bob@partner.example","account_id":"a1"}`))
	jwtFile := filepath.Join(dir, "jwt.key")
	require.NoError(t, os.WriteFile(jwtFile, []byte("eyJhbGciOiJFUzI1NiJ9."+claims+".c2ln\n"), 0o600))
	_, err = confirmWith(t, f, &globals{}, "--api-key-file", jwtFile, "drain-deadline-3", "--as", "operator", "--decision", "proceed")
	require.NoError(t, err)
	require.Equal(t, &workflows.Identity{Via: "api-key", Name: "bob@partner.example", Client: "work365-starter 42@ops-laptop"}, f.sent[len(f.sent)-1].Identity)

	opaque := filepath.Join(dir, "opaque.key")
	require.NoError(t, os.WriteFile(opaque, []byte("tmprl_0123456789abcdef"), 0o600))
	_, err = confirmWith(t, f, &globals{}, "--api-key-file", opaque, "drain-deadline-3", "--as", "operator", "--decision", "proceed")
	require.ErrorContains(t, err, "the API key is opaque (it names nobody the starter can read): say who you are with --by")
	_, err = confirmWith(t, f, &globals{}, "--api-key-file", opaque, "drain-deadline-3", "--as", "operator", "--by", "carol", "--decision", "proceed")
	require.NoError(t, err)
	require.Equal(t, &workflows.Identity{Via: "declared", Name: "carol", Client: "work365-starter 42@ops-laptop"}, f.sent[len(f.sent)-1].Identity)
}

// writeClientCert writes a self-signed client certificate whose subject CN is cn.
func writeClientCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Partner"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600))
	return certFile, keyFile
}
