package desk

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// sealer keeps the desk's state in the person's browser, encrypted and authenticated
// (AES-256-GCM): the PKCE verifier, state and nonce of a sign-in in progress, then the
// verified claims. Nothing of it travels in a URL, and desks behind a load balancer share it
// through the key alone.
type sealer struct {
	aead   cipher.AEAD
	secure bool
}

func newSealer(key []byte, secure bool) (*sealer, error) {
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, secure: secure}, nil
}

// set seals v into cookie name, bound to that name, for ttl.
func (s *sealer) set(w http.ResponseWriter, name string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := s.aead.Seal(nonce, nonce, b, []byte(name))
	http.SetCookie(w, &http.Cookie{Name: name, Value: base64.RawURLEncoding.EncodeToString(sealed), Path: "/",
		MaxAge: int(ttl.Seconds()), HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	return nil
}

var errNoCookie = errors.New("no desk cookie")

// get opens cookie name into v.
func (s *sealer) get(r *http.Request, name string, v any) error {
	c, err := r.Cookie(name)
	if err != nil {
		return errNoCookie
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) < s.aead.NonceSize() {
		return errNoCookie
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(name))
	if err != nil {
		return errNoCookie
	}
	return json.Unmarshal(plain, v)
}

func (s *sealer) clear(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// randomString is n random bytes, base64url.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
