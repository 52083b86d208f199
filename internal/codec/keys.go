// Package codec encrypts Temporal payloads (workflow inputs, results, activity arguments,
// queries, user metadata) with AES-256-GCM before they leave the process, so histories hold no
// tenant data in the clear, and serves Temporal's remote codec protocol so the Web UI and the
// CLI can still show them decoded. Search attributes are not payload-encoded by the SDK and
// stay readable. Keys rotate: the first key of the list encrypts, every key decrypts.
package codec

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// DefaultKeysEnv is the environment variable read for keys when neither a keys file nor another
// variable is configured.
const DefaultKeysEnv = "W365_PAYLOAD_KEYS"

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// Key is one named AES-256 key.
type Key struct {
	ID     string
	Secret []byte
}

// String names the key without its secret, so a key that ends up in a log line reveals nothing.
func (k Key) String() string { return k.ID + "=<redacted>" }

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// Keys are the keys a process knows, the active (encrypting) one first.
type Keys struct {
	list []Key
	byID map[string][]byte
}

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// NewKeys checks the keys (IDs unique and well formed, 32-byte secrets); the first one encrypts.
func NewKeys(keys ...Key) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("no payload key: give at least one (id=base64 of 32 random bytes)")
	}
	k := &Keys{byID: map[string][]byte{}}
	for _, key := range keys {
		if !keyIDRE.MatchString(key.ID) {
			return nil, fmt.Errorf("payload key ID %q: use 1 to 64 letters, digits, '.', '_' or '-' (e.g. 2026-11)", key.ID)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("payload key %q: %d bytes, AES-256 needs %d (generate one with: openssl rand -base64 32)", key.ID, len(key.Secret), KeySize)
		}
		if _, dup := k.byID[key.ID]; dup {
			return nil, fmt.Errorf("payload key %q is listed twice: key IDs must be unique", key.ID)
		}
		k.byID[key.ID] = key.Secret
		k.list = append(k.list, key)
	}
	return k, nil
}

// String lists the key IDs without their secrets.
func (k *Keys) String() string { return "payload keys " + strings.Join(k.IDs(), ", ") }

// GoString is String, for %#v.
func (k *Keys) GoString() string { return k.String() }

// ActiveID is the ID of the key that encrypts.
func (k *Keys) ActiveID() string { return k.list[0].ID }

// IDs lists the key IDs, the active one first.
func (k *Keys) IDs() []string {
	out := make([]string, len(k.list))
	for i, key := range k.list {
		out[i] = key.ID
	}
	return out
}

// GenerateKey makes a new random key (for rehearsals and for operators' key files).
func GenerateKey(id string) (Key, error) {
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("generate payload key: %w", err)
	}
	return Key{ID: id, Secret: secret}, nil
}

// Format writes keys in the keys-file format, one "id=base64" line each, active first.
func Format(keys ...Key) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k.ID, base64.StdEncoding.EncodeToString(k.Secret))
	}
	return b.String()
}

// Parse reads keys from text: entries "id=base64" separated by newlines or commas; blank lines
// and lines starting with # are ignored. source names where the text came from (a file, an
// environment variable) in errors, with the line for files.
func Parse(source, text string) (*Keys, error) {
	var keys []Key
	var errs []error
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			at := fmt.Sprintf("%s:%d", source, n+1)
			id, b64, ok := strings.Cut(entry, "=")
			if !ok {
				errs = append(errs, fmt.Errorf("%s: a payload key is written id=base64 (e.g. 2026-11=<openssl rand -base64 32>); found no '='", at))
				continue
			}
			id = strings.TrimSpace(id)
			secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: payload key %q is not standard base64: %w", at, id, err))
				continue
			}
			keys = append(keys, Key{ID: id, Secret: secret})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	k, err := NewKeys(keys...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return k, nil
}

// Load reads keys from a file, else from the environment variable env, else from
// DefaultKeysEnv. It returns nil, nil when none is configured (payloads stay unencrypted).
func Load(file, env string) (*Keys, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read payload keys file: %w (codec.keysFile names it)", err)
		}
		return Parse(file, string(b))
	case env != "":
		v := os.Getenv(env)
		if strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("payload keys: environment variable %s (codec.keysEnv) is empty: set it to id=base64[,id=base64…]", env)
		}
		return Parse("$"+env, v)
	default:
		if v := os.Getenv(DefaultKeysEnv); strings.TrimSpace(v) != "" {
			return Parse("$"+DefaultKeysEnv, v)
		}
		return nil, nil
	}
}
