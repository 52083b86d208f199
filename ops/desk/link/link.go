// Package link signs and checks the task desk's links: https://desk/t/<token>, where the token
// names a namespace, a workflow and a task and expires. The token is an HMAC-SHA256-signed
// value with a key kept in a file, so nobody can forge or alter a link, and a leaked link
// alone confirms nothing (the desk still asks the person to sign in with Microsoft). It has
// no dependency beyond the standard library: the worker's notification activity signs links
// with it, and the desk checks them.
package link

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultValidity is how long a link opens its task unless configured (desk.linkValidity):
// every reminder carries a fresh link, so a task open for weeks stays reachable.
const DefaultValidity = 7 * 24 * time.Hour

// MinKeyLen is the shortest key accepted: 32 bytes, the HMAC-SHA256 output size.
const MinKeyLen = 32

// Errors Verify returns (wrapped), so the desk can say which page to show.
var (
	// ErrTampered: the token is malformed or its signature does not match.
	ErrTampered = errors.New("this link is not valid: it was changed or cut short")
	// ErrExpired: the token's signature is good but its time is over.
	ErrExpired = errors.New("this link has expired")
)

// Task is what a link names.
type Task struct {
	Namespace  string    `json:"ns"`
	WorkflowID string    `json:"wf"`
	TaskID     string    `json:"task"`
	Expires    time.Time `json:"-"`
}

type payload struct {
	V          int    `json:"v"`
	Namespace  string `json:"ns"`
	WorkflowID string `json:"wf"`
	TaskID     string `json:"task"`
	Exp        int64  `json:"exp"`
}

// Signer signs and verifies links with one key.
type Signer struct {
	key []byte
	// Validity is how long a new link lasts (DefaultValidity when zero).
	Validity time.Duration
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
}

// NewSigner returns a signer with key, which must be at least MinKeyLen bytes.
func NewSigner(key []byte, validity time.Duration) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("the desk's link key is %d bytes: it needs at least %d random bytes (e.g. openssl rand -base64 48 > link-key)", len(key), MinKeyLen)
	}
	if validity < 0 {
		return nil, fmt.Errorf("link validity %v must not be negative", validity)
	}
	return &Signer{key: append([]byte(nil), key...), Validity: validity}, nil
}

// LoadKey reads a link key file: its content, without surrounding whitespace, is the key.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the desk's link key %s: %w (create it with: openssl rand -base64 48 > %s)", path, err, path)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("the desk's link key %s holds %d bytes: it needs at least %d (e.g. openssl rand -base64 48 > %s)", path, len(key), MinKeyLen, path)
	}
	return key, nil
}

// Load reads the key at path and returns its signer.
func Load(path string, validity time.Duration) (*Signer, error) {
	key, err := LoadKey(path)
	if err != nil {
		return nil, err
	}
	return NewSigner(key, validity)
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Key derives a key for another purpose (the desk's cookies) from the link key, so one
// secret file serves both without the two uses ever sharing a key.
func (s *Signer) Key(purpose string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("work365-desk/" + purpose))
	return m.Sum(nil)
}

// Sign returns the token of a task link, valid from now for the signer's validity.
func (s *Signer) Sign(namespace, workflowID, taskID string) string {
	v := s.Validity
	if v == 0 {
		v = DefaultValidity
	}
	p, _ := json.Marshal(payload{V: 1, Namespace: namespace, WorkflowID: workflowID, TaskID: taskID, Exp: s.now().Add(v).Unix()})
	body := base64.RawURLEncoding.EncodeToString(p)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(body))
}

func (s *Signer) mac(body string) []byte {
	m := hmac.New(sha256.New, s.Key("link"))
	m.Write([]byte(body))
	return m.Sum(nil)
}

// URL is the desk page of a task: base + "/t/" + token.
func (s *Signer) URL(base, namespace, workflowID, taskID string) string {
	return strings.TrimRight(base, "/") + "/t/" + url.PathEscape(s.Sign(namespace, workflowID, taskID))
}

// Verify checks a token's signature, then its expiry, and returns the task it names. A
// tampered token wraps ErrTampered, an expired one ErrExpired (with the task, so the page can
// say which task the link was for).
func (s *Signer) Verify(token string) (Task, error) {
	body, sig, ok := strings.Cut(token, ".")
	if !ok || body == "" || len(token) > 4096 {
		return Task{}, ErrTampered
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(body)) {
		return Task{}, ErrTampered
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return Task{}, ErrTampered
	}
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil || p.V != 1 || p.WorkflowID == "" || p.TaskID == "" {
		return Task{}, ErrTampered
	}
	t := Task{Namespace: p.Namespace, WorkflowID: p.WorkflowID, TaskID: p.TaskID, Expires: time.Unix(p.Exp, 0).UTC()}
	if !s.now().Before(t.Expires) {
		return t, fmt.Errorf("%w (on %s UTC): open the task from its latest notification or reminder, which carries a new link", ErrExpired, t.Expires.Format("2 Jan 2006 15:04"))
	}
	return t, nil
}
