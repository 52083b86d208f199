// Package notify delivers notifications (human tasks, reminders, escalations, outcomes,
// fleet events) to people through webhooks: a generic JSON receiver, Microsoft Teams
// (Workflows webhooks, Adaptive Cards) or Slack (incoming webhooks).
//
// Delivery is at most once per worker process and target: Webhook remembers the idempotency
// keys it delivered to each target, so an activity retry in the same worker never posts
// twice, and a fan-out that failed for one target retries only that target. Every request
// also carries the header "Idempotency-Key: <key>"; receivers that honour it (a generic
// JSON receiver can) also drop the duplicates that another worker, or a restarted one,
// would send. Teams and Slack ignore the header.
//
// Webhook URLs are secrets: they are read from a file or an environment variable, and never
// appear in logs or errors, which name the target instead.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/activities"
)

// ErrPermanent marks a failure that retrying will not fix: the receiver refused the
// request (4xx other than 408 and 429, or a redirect). errors.Is(err, ErrPermanent) tells.
// It is activities.ErrNotificationRejected, so the Notify activity stops retrying.
var ErrPermanent = activities.ErrNotificationRejected

// DefaultTimeout bounds one POST when no HTTP client is injected.
const DefaultTimeout = 10 * time.Second

// DefaultMemory is how many delivered keys Webhook remembers per target.
const DefaultMemory = 10000

// Webhook is an activities.Notifier that POSTs each notification to the configured targets
// that want it. It is safe for concurrent use.
type Webhook struct {
	client  *http.Client
	logger  *zap.Logger
	memory  int
	targets []*target

	// mu guards every target's sent and inflight.
	mu sync.Mutex
}

type target struct {
	Target
	url string // secret: never logged, never in an error
	// sent holds the keys delivered to this target (bounded, oldest forgotten first).
	sent *keyRing
	// inflight holds the keys being sent to this target; the channel closes when done.
	inflight map[string]chan struct{}
}

// Option configures a Webhook.
type Option func(*Webhook)

// WithHTTPClient sends through c (tests; proxies). Redirects are never followed: a webhook
// URL that redirects is a configuration error. Without it, a client with DefaultTimeout.
func WithHTTPClient(c *http.Client) Option { return func(w *Webhook) { w.client = c } }

// WithLogger logs deliveries and failures (target names, never URLs).
func WithLogger(l *zap.Logger) Option { return func(w *Webhook) { w.logger = l } }

// WithMemory sets how many delivered keys are remembered per target (DefaultMemory).
func WithMemory(n int) Option { return func(w *Webhook) { w.memory = n } }

// New makes a Webhook for targets, reading their URLs now: a missing file or variable is
// an error naming the target and where its URL was expected.
func New(targets []Target, opts ...Option) (*Webhook, error) {
	w := &Webhook{memory: DefaultMemory}
	for _, o := range opts {
		o(w)
	}
	if w.memory <= 0 {
		w.memory = DefaultMemory
	}
	if w.logger == nil {
		w.logger = zap.NewNop()
	}
	c := &http.Client{Timeout: DefaultTimeout}
	if w.client != nil {
		cp := *w.client
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	w.client = c

	if len(targets) == 0 {
		return nil, errors.New("notify: no webhook configured")
	}
	var errs []error
	names := map[string]bool{}
	for i, t := range targets {
		for _, p := range t.Problems() {
			key := fmt.Sprintf("webhooks[%d]", i)
			if p.Field != "" {
				key += "." + p.Field
			}
			errs = append(errs, fmt.Errorf("%s: %s", key, p.Message))
		}
		if t.Name != "" && names[t.Name] {
			errs = append(errs, fmt.Errorf("webhooks[%d].name: %q is used twice", i, t.Name))
		}
		names[t.Name] = true
		if (t.URLFile == "") == (t.URLEnv == "") {
			continue // reported by Problems
		}
		u, err := t.readURL()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		w.targets = append(w.targets, &target{Target: t, url: u, sent: newKeyRing(w.memory), inflight: map[string]chan struct{}{}})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return w, nil
}

// Notify POSTs n to every target that wants it, concurrently, skipping the targets that
// already received n.Key from this process. It fails when a target fails; the retry then
// posts only to the targets that have not received it. The error wraps ErrPermanent only
// when every failed target refused the request for good.
func (w *Webhook) Notify(ctx context.Context, n activities.Notification) error {
	if n.Key == "" {
		return fmt.Errorf("notify %s: the notification has no idempotency key (a bug in the caller): %w", n.Event, ErrPermanent)
	}
	var todo []*target
	for _, t := range w.targets {
		if t.wants(n) {
			todo = append(todo, t)
		}
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, t := range todo {
		wg.Go(func() { errs[i] = w.deliver(ctx, t, n) })
	}
	wg.Wait()

	var failed []error
	permanent := true
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
			permanent = permanent && errors.Is(err, ErrPermanent)
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case !permanent:
		// Some target may succeed on retry: keep ErrPermanent out of the chain, so that the
		// activity is retried (the refusing targets are retried too, harmlessly).
		for i, err := range failed {
			if errors.Is(err, ErrPermanent) {
				failed[i] = errors.New(err.Error())
			}
		}
	}
	return fmt.Errorf("notification %s reached %d of %d webhooks: %w", n.Key, len(todo)-len(failed), len(todo), errors.Join(failed...))
}

// wants tells whether the target's filters let n through.
func (t *target) wants(n activities.Notification) bool {
	if len(t.Events) > 0 && !slices.Contains(t.Events, n.Event) {
		return false
	}
	audience := n.Audience
	if audience == "" {
		audience = "operator"
	}
	return len(t.Audiences) == 0 || slices.Contains(t.Audiences, audience)
}

// deliver posts n to t unless t already has it; concurrent deliveries of one key to one
// target wait for each other rather than both posting.
func (w *Webhook) deliver(ctx context.Context, t *target, n activities.Notification) error {
	for {
		w.mu.Lock()
		if t.sent.has(n.Key) {
			w.mu.Unlock()
			w.logger.Debug("notification already delivered", zap.String("target", t.Name), zap.String("key", n.Key))
			return nil
		}
		ch, busy := t.inflight[n.Key]
		if !busy {
			ch = make(chan struct{})
			t.inflight[n.Key] = ch
			w.mu.Unlock()
			break
		}
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("webhook %q: an earlier attempt of %s is still sending: %w", t.Name, n.Key, ctx.Err())
		}
	}
	err := w.post(ctx, t, n)
	w.mu.Lock()
	if err == nil {
		t.sent.add(n.Key)
	}
	close(t.inflight[n.Key])
	delete(t.inflight, n.Key)
	w.mu.Unlock()
	if err != nil {
		w.logger.Warn("notification not delivered", zap.String("target", t.Name), zap.String("key", n.Key),
			zap.String("event", n.Event), zap.Bool("permanent", errors.Is(err, ErrPermanent)), zap.Error(err))
	}
	return err
}

func (w *Webhook) post(ctx context.Context, t *target, n activities.Notification) error {
	body, err := render(t.Format, n)
	if err != nil {
		return fmt.Errorf("webhook %q: render %s: %w", t.Name, n.Event, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		// The error would quote the URL.
		return fmt.Errorf("webhook %q: cannot build a request for the URL in %s: %w", t.Name, t.where(), ErrPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", n.Key)
	req.Header.Set("User-Agent", "work365-upgrade")
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (ue != nil && ue.Timeout()) {
			return fmt.Errorf("webhook %q: no answer in time (is the receiver up and reachable from the worker?): %w", t.Name, redactErr(err, t.url))
		}
		return fmt.Errorf("webhook %q: POST failed (is the receiver reachable from the worker?): %w", t.Name, redactErr(err, t.url))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		w.logger.Info("notification delivered", zap.String("target", t.Name), zap.String("key", n.Key),
			zap.String("event", n.Event), zap.Int("status", resp.StatusCode))
		return nil
	}
	what := fmt.Sprintf("webhook %q answered %s", t.Name, resp.Status)
	if s := clean(string(snippet), t.url); s != "" {
		what += ": " + s
	}
	switch code := resp.StatusCode; {
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("%s (temporary: the activity retries)", what)
	case code >= 300 && code < 400:
		return fmt.Errorf("%s (the URL in %s redirects: set the final webhook URL): %w", what, t.where(), ErrPermanent)
	default:
		return fmt.Errorf("%s (check the URL in %s and that the receiver accepts %s messages): %w", what, t.where(), t.Format, ErrPermanent)
	}
}

// clean makes a receiver's answer fit for an error: one line, printable, short, and without
// the URL should the receiver echo it.
func clean(s, secret string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, redact(s, secret))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// redact removes the URL from s, and its path and query, which carry the secret.
func redact(s, secret string) string {
	s = strings.ReplaceAll(s, secret, "<webhook URL>")
	if u, err := url.Parse(secret); err == nil {
		for _, part := range []string{u.RawQuery, u.EscapedPath()} {
			if len(part) > 1 {
				s = strings.ReplaceAll(s, part, "<redacted>")
			}
		}
	}
	return s
}

// redactErr returns err, or its redacted text when it quotes the URL or part of it.
func redactErr(err error, secret string) error {
	if msg := err.Error(); redact(msg, secret) != msg {
		return errors.New(redact(msg, secret))
	}
	return err
}

// keyRing is a set of the last max keys added.
type keyRing struct {
	max  int
	keys []string // oldest at next once full
	next int
	set  map[string]struct{}
}

func newKeyRing(max int) *keyRing {
	return &keyRing{max: max, set: map[string]struct{}{}}
}

func (r *keyRing) has(k string) bool {
	_, ok := r.set[k]
	return ok
}

func (r *keyRing) add(k string) {
	if r.has(k) {
		return
	}
	if len(r.keys) < r.max {
		r.keys = append(r.keys, k)
	} else {
		delete(r.set, r.keys[r.next])
		r.keys[r.next] = k
		r.next = (r.next + 1) % r.max
	}
	r.set[k] = struct{}{}
}
