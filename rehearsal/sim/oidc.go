package sim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1 by RFC 7517; it names the key, it protects nothing
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// signingKey is the RSA key the simulated Entra ID signs ID tokens with (RS256), published on
// the jwks_uri with a self-signed certificate as Entra ID publishes its keys.
type signingKey struct {
	key  *rsa.PrivateKey
	cert []byte // DER
	kid  string // x5t: base64url(SHA-1(cert)), what Entra ID uses as kid
}

// idTokenLifetime is the lifetime of ID tokens (Entra ID's default: one hour).
// https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
const idTokenLifetime = time.Hour

// signer returns the cloud's signing key, made on first use (an RSA key costs tens of
// milliseconds, and most clouds never sign anyone in). Callers hold c.mu.
func (c *Cloud) signer() (*signingKey, error) {
	if c.sign != nil {
		return c.sign, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("sim: make the ID token signing key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "login.microsoftonline.com (simulated)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sim: make the ID token signing certificate: %w", err)
	}
	sum := sha1.Sum(der) //nolint:gosec // see import
	c.sign = &signingKey{key: key, cert: der, kid: b64.EncodeToString(sum[:])}
	return c.sign, nil
}

// IDClaims are the claims of an ID token the simulated Entra ID issues (v2.0), as the ID
// token claims reference lists them.
// https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
type IDClaims struct {
	Aud               string   `json:"aud"`
	Iss               string   `json:"iss"`
	Iat               int64    `json:"iat"`
	Nbf               int64    `json:"nbf"`
	Exp               int64    `json:"exp"`
	Name              string   `json:"name,omitempty"`
	Nonce             string   `json:"nonce,omitempty"`
	Oid               string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Sub               string   `json:"sub"`
	Tid               string   `json:"tid"`
	Uti               string   `json:"uti,omitempty"`
	Ver               string   `json:"ver"`
	Groups            []string `json:"groups,omitempty"`
	// Wids are the template IDs of the person's active directory roles (the app registration
	// asks for them with groupMembershipClaims, as the desk's does).
	Wids []string `json:"wids,omitempty"`
}

// signRS256 signs claims into a JWS with the cloud's RSA key. Callers hold c.mu.
func (c *Cloud) signRS256(claims any) (string, error) {
	k, err := c.signer()
	if err != nil {
		return "", err
	}
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": k.kid, "x5t": k.kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

// jwks is the JSON Web Key Set of the jwks_uri: the signing key's modulus and exponent, its
// certificate, and the issuer it signs for ({tenantid} for multi-tenant authorities).
// https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-signature
func (c *Cloud) jwks(issuer string) (map[string]any, error) {
	k, err := c.signer()
	if err != nil {
		return nil, err
	}
	pub := k.key.PublicKey
	return map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.kid,
		"n":      b64.EncodeToString(pub.N.Bytes()),
		"e":      b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"x5c":    []string{base64.StdEncoding.EncodeToString(k.cert)},
		"issuer": issuer,
	}}}, nil
}

// VerifyIDToken checks an ID token's RS256 signature against the cloud's key and returns its
// claims; lifetime, audience, issuer and nonce are for the caller (the relying party) to
// check, as a desk does. Tests use it to read what the desk received.
func (c *Cloud) VerifyIDToken(token string) (IDClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return IDClaims{}, errors.New("the ID token is not a JWT (header.payload.signature)")
	}
	c.mu.Lock()
	k, err := c.signer()
	c.mu.Unlock()
	if err != nil {
		return IDClaims{}, err
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return IDClaims{}, errors.New("the ID token's signature is not base64url")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&k.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return IDClaims{}, fmt.Errorf("the ID token's signature is invalid: %w", err)
	}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		return IDClaims{}, errors.New("the ID token's payload is not base64url")
	}
	var cl IDClaims
	if err := json.Unmarshal(raw, &cl); err != nil {
		return IDClaims{}, fmt.Errorf("the ID token's payload is not the expected JSON: %w", err)
	}
	return cl, nil
}

// pairwiseSub is the sub claim: unique per user and application, as Entra ID's pairwise
// subject is (a different app sees a different sub for the same person).
func pairwiseSub(oid, clientID string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(oid) + "/" + strings.ToLower(clientID)))
	return b64.EncodeToString(sum[:])
}
