package sim_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

func selfSigned(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orchestrator"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestRealMSAL acquires tokens from the simulated login endpoint with MSAL's confidential
// client, unmodified, as production does: real authority, instance discovery off, the sim's
// HTTP client.
func TestRealMSAL(t *testing.T) {
	scn := sim.Generate(2, 3)
	cloud := sim.New(scn, sim.Options{})
	defer cloud.Close()
	app := cloud.Scenario().Orchestrator
	tenant := scn.Tenants[0].TenantID
	ctx := context.Background()

	cert, key := selfSigned(t)
	certCred, err := confidential.NewCredFromCert([]*x509.Certificate{cert}, key)
	if err != nil {
		t.Fatal(err)
	}
	secretCred, err := confidential.NewCredFromSecret(app.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	for name, cred := range map[string]confidential.Credential{"certificate": certCred, "secret": secretCred} {
		t.Run(name, func(t *testing.T) {
			client, err := confidential.New("https://login.microsoftonline.com/organizations", app.ClientID, cred,
				confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(cloud.HTTPClient()))
			if err != nil {
				t.Fatal(err)
			}
			before := cloud.TenantCounters(tenant).TokensIssued
			res, err := client.AcquireTokenByCredential(ctx, []string{"https://graph.microsoft.com/.default"}, confidential.WithTenantID(tenant))
			if err != nil {
				t.Fatal(err)
			}
			claims, err := cloud.VerifyToken(res.AccessToken)
			if err != nil || claims.Tid != tenant || claims.Aud != sim.GraphResource || claims.AppID != app.ClientID {
				t.Fatalf("claims %+v, %v", claims, err)
			}
			// MSAL serves the second call from its cache.
			if _, err := client.AcquireTokenByCredential(ctx, []string{"https://graph.microsoft.com/.default"}, confidential.WithTenantID(tenant)); err != nil {
				t.Fatal(err)
			}
			if got := cloud.TenantCounters(tenant).TokensIssued - before; got != 1 {
				t.Fatalf("tokens issued: %d", got)
			}
			// A tenant where the app is not consented fails with the AADSTS code.
			_, err = client.AcquireTokenByCredential(ctx, []string{"https://graph.microsoft.com/.default"}, confidential.WithTenantID("00000000-0000-0000-0000-000000000001"))
			if err == nil {
				t.Fatal("unknown tenant accepted")
			}
		})
	}
}
