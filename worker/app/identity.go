package app

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// How a connection to Temporal names who uses it (workflows.Identity.Via).
const (
	ViaClientCertificate = "client-certificate"
	ViaAPIKey            = "api-key"
)

// ConnIdentity is who a connection to Temporal authenticates as, as far as the client can
// read it: the server's authorizer sees the same certificate or key, so an operator's
// confirmation names the person the namespace's roles were granted to.
type ConnIdentity struct {
	// Via is ViaClientCertificate, ViaAPIKey, or empty when the connection names nobody.
	Via string
	// Principal is the certificate subject's common name (else the whole subject), or the
	// API key's subject claim; empty for an opaque API key.
	Principal string
}

// ConnectionIdentity reads who cfg's connection authenticates as (flags, worker config or
// the Temporal CLI profile): an API key's subject when the key is a JWT, else the client
// certificate's subject. An opaque API key gives Via ViaAPIKey and no Principal.
func ConnectionIdentity(cfg TemporalConfig) (ConnIdentity, error) {
	key, err := secretFrom(cfg.APIKeyFile, cfg.APIKeyEnv, "TEMPORAL_API_KEY")
	if err != nil {
		return ConnIdentity{}, err
	}
	if key == "" {
		prof, err := loadProfile(cfg)
		if err != nil {
			return ConnIdentity{}, err
		}
		key = prof.APIKey
	}
	if key != "" {
		return ConnIdentity{Via: ViaAPIKey, Principal: keySubject(key)}, nil
	}
	o, err := ClientOptions(cfg, zap.NewNop())
	if err != nil {
		return ConnIdentity{}, err
	}
	tc := o.ConnectionOptions.TLS
	if tc == nil || len(tc.Certificates) == 0 || len(tc.Certificates[0].Certificate) == 0 {
		return ConnIdentity{}, nil
	}
	leaf, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
	if err != nil {
		return ConnIdentity{}, fmt.Errorf("temporal.tls: read the client certificate's subject: %w", err)
	}
	name := leaf.Subject.CommonName
	if name == "" {
		name = leaf.Subject.String()
	}
	return ConnIdentity{Via: ViaClientCertificate, Principal: name}, nil
}

// keySubject is the subject a JWT-shaped API key names (sub, else email, preferred_username
// or name), or "" for an opaque key. The claims are only read, never trusted: the server
// verifies the key, this names the person in the record.
func keySubject(key string) string {
	parts := strings.Split(key, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims map[string]any
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	for _, c := range []string{"sub", "email", "preferred_username", "name"} {
		if s, ok := claims[c].(string); ok && strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}
