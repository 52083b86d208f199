package link

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func testSigner(t *testing.T, now *time.Time) *Signer {
	t.Helper()
	s, err := NewSigner([]byte(strings.Repeat("k", 40)), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return *now }
	return s
}

func TestLinkRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := testSigner(t, &now)
	tok := s.Sign("ns", "work365-upgrade/contoso", "global-admin-3")
	got, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Namespace != "ns" || got.WorkflowID != "work365-upgrade/contoso" || got.TaskID != "global-admin-3" || !got.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("verified %+v", got)
	}
	if u := s.URL("https://desk.example.com/", "ns", "wf", "t1"); !strings.HasPrefix(u, "https://desk.example.com/t/") {
		t.Fatalf("url %s", u)
	}
}

func TestLinkTampered(t *testing.T) {
	now := time.Now()
	s := testSigner(t, &now)
	tok := s.Sign("ns", "wf-a", "task-1")
	body, sig, _ := strings.Cut(tok, ".")
	other := s.Sign("ns", "wf-b", "task-1")
	otherBody, _, _ := strings.Cut(other, ".")
	flipped := []byte(body)
	flipped[5] ^= 1
	for name, bad := range map[string]string{
		"another body, this signature": otherBody + "." + sig,
		"one bit flipped":              string(flipped) + "." + sig,
		"no signature":                 body,
		"empty":                        "",
		"signature cut":                body + "." + sig[:10],
		"garbage":                      "not-a-token.at-all",
	} {
		if _, err := s.Verify(bad); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: err %v, want ErrTampered", name, err)
		}
	}
	// Another key does not accept the link.
	s2, _ := NewSigner([]byte(strings.Repeat("x", 40)), time.Hour)
	if _, err := s2.Verify(tok); !errors.Is(err, ErrTampered) {
		t.Errorf("other key: err %v", err)
	}
}

func TestLinkExpires(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := testSigner(t, &now)
	tok := s.Sign("ns", "wf", "task")
	now = now.Add(59 * time.Minute)
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	now = now.Add(time.Minute)
	got, err := s.Verify(tok)
	if !errors.Is(err, ErrExpired) || got.TaskID != "task" {
		t.Fatalf("at expiry: %v %+v", err, got)
	}
	if !strings.Contains(err.Error(), "latest notification") {
		t.Fatalf("the expiry message should say what to do: %v", err)
	}
}

func TestShortKeyRefused(t *testing.T) {
	if _, err := NewSigner([]byte("short"), 0); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("err %v", err)
	}
}

func TestDefaultValidity(t *testing.T) {
	now := time.Now()
	s := testSigner(t, &now)
	s.Validity = 0
	tok := s.Sign("ns", "wf", "task")
	got, err := s.Verify(tok)
	if err != nil || got.Expires.Before(now.Add(DefaultValidity-time.Second)) {
		t.Fatalf("%v %v", err, got.Expires)
	}
}
