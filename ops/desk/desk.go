// Package desk is the task desk: a small web service where the people of an upgrade open a
// task from the signed link in its notification, read the runbook's instructions, sign in
// with Microsoft Entra ID, and confirm (or decide). The desk checks that the signed-in person
// is the one the task is for before it sends the confirm-task Update, whose by, audience and
// identity come from the validated ID token, never from what someone typed. The worker/desk
// binary serves it; the rehearsal stack runs it too.
package desk

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/ops/desk/link"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// ClientName is the confirmations' Identity.Client: the program that sent them.
const ClientName = "work365-desk"

// Cookie names and lifetimes.
const (
	authCookie    = "w365desk_auth"
	sessionCookie = "w365desk_session"
	authTTL       = 15 * time.Minute
	sessionTTL    = 30 * time.Minute
	// callbackPath is the redirect URI's path on the desk.
	callbackPath = "/auth/callback"
)

// Config is what a desk needs.
type Config struct {
	// PublicURL is the desk's base URL as people reach it; the redirect URI is PublicURL + /auth/callback
	// (register it on the desk's app registration).
	PublicURL string
	// Namespace is the Temporal namespace the desk serves: links for another are refused.
	Namespace string
	Links     *link.Signer
	Backend   Backend
	SignIn    SignIn
	Logger    *zap.Logger
}

// Server is the desk's HTTP handler.
type Server struct {
	cfg    Config
	seal   *sealer
	mux    *http.ServeMux
	logger *zap.Logger
}

// New makes a desk.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("desk.publicURL %q is not a URL", cfg.PublicURL)
	}
	if cfg.Links == nil || cfg.Backend == nil || cfg.SignIn == nil {
		return nil, errors.New("a desk needs its link key, Temporal and Microsoft sign-in")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	seal, err := newSealer(cfg.Links.Key("cookie"), u.Scheme == "https")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, seal: seal, mux: http.NewServeMux(), logger: cfg.Logger}
	s.mux.HandleFunc("GET /t/{token}", s.page)
	s.mux.HandleFunc("GET /t/{token}/signin", s.signIn)
	s.mux.HandleFunc("POST /t/{token}/confirm", s.confirm)
	s.mux.HandleFunc("GET /auth/callback", s.callback)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		s.render(w, http.StatusOK, pageData{Heading: "Work 365 upgrade task desk", Message: "Open a task from the link in its notification."})
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// pending is a sign-in in progress (the auth cookie).
type pending struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Token    string `json:"t"`
}

// session is a signed-in person (the session cookie), bound to one task link.
type session struct {
	Claims  Claims `json:"c"`
	Token   string `json:"t"`
	CSRF    string `json:"x"`
	Expires int64  `json:"e"`
}

// task checks the link and reads its task; on failure it has written the page.
func (s *Server) task(w http.ResponseWriter, r *http.Request) (string, TaskView, bool) {
	token := r.PathValue("token")
	lt, err := s.cfg.Links.Verify(token)
	switch {
	case errors.Is(err, link.ErrExpired):
		s.render(w, http.StatusGone, pageData{Heading: "This link has expired", Message: err.Error()})
		return "", TaskView{}, false
	case err != nil:
		s.render(w, http.StatusBadRequest, pageData{Heading: "This link is not valid", Message: "This link is not valid: it was changed or cut short. Open the task from its notification again, or ask the operators for a new one."})
		return "", TaskView{}, false
	case lt.Namespace != s.cfg.Namespace:
		s.render(w, http.StatusNotFound, pageData{Heading: "This link is for another desk", Message: fmt.Sprintf("This link is for upgrades in namespace %q; this desk serves %q.", lt.Namespace, s.cfg.Namespace)})
		return "", TaskView{}, false
	}
	v, err := s.cfg.Backend.Task(r.Context(), lt.WorkflowID, lt.TaskID)
	if err != nil {
		s.logger.Warn("task not readable", zap.String("workflowId", lt.WorkflowID), zap.String("taskId", lt.TaskID), zap.Error(err))
		status := http.StatusBadGateway
		if errors.Is(err, ErrNoTask) {
			status = http.StatusNotFound
		}
		s.render(w, status, pageData{Heading: "The task cannot be shown", Message: err.Error()})
		return "", TaskView{}, false
	}
	return token, v, true
}

// page shows a task: its instructions, who it is for, and sign-in or the confirm form.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	token, v, ok := s.task(w, r)
	if !ok {
		return
	}
	d := s.taskData(token, v)
	if !v.Open {
		d.Heading = "This task is closed"
		d.Message = closedText(v)
		s.render(w, http.StatusOK, d)
		return
	}
	var sess session
	if err := s.seal.get(r, sessionCookie, &sess); err == nil && sess.Token == token && time.Now().Unix() < sess.Expires {
		d.SignedIn = sess.Claims.Who()
		if err := Check(v.For, sess.Claims); err != nil {
			d.Refusal = err.Error()
			s.render(w, http.StatusForbidden, d)
			return
		}
		d.CanConfirm, d.CSRF = true, sess.CSRF
	}
	s.render(w, http.StatusOK, d)
}

// signIn starts the sign-in: a new state, nonce and PKCE verifier in the sealed auth cookie,
// then Microsoft's authorize page.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	token, v, ok := s.task(w, r)
	if !ok {
		return
	}
	if !v.Open {
		http.Redirect(w, r, s.cfg.PublicURL+"/t/"+url.PathEscape(token), http.StatusSeeOther)
		return
	}
	verifier, challenge := pkce()
	p := pending{State: randomString(24), Nonce: randomString(24), Verifier: verifier, Token: token}
	to, err := s.cfg.SignIn.AuthURL(r.Context(), s.cfg.PublicURL+callbackPath, p.State, p.Nonce, challenge, r.URL.Query().Has("another"))
	if err != nil {
		s.logger.Error("sign-in URL", zap.Error(err))
		s.render(w, http.StatusBadGateway, pageData{Heading: "Microsoft sign-in is not reachable", Message: "The desk could not reach Microsoft's sign-in: try again in a minute, or tell the operators."})
		return
	}
	if err := s.seal.set(w, authCookie, p, authTTL); err != nil {
		s.render(w, http.StatusInternalServerError, pageData{Heading: "Sign-in failed", Message: err.Error()})
		return
	}
	s.seal.clear(w, sessionCookie)
	http.Redirect(w, r, to, http.StatusFound)
}

// callback is the redirect URI: it checks state, redeems the code with the verifier and
// validates the ID token, then returns to the task.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	var p pending
	if err := s.seal.get(r, authCookie, &p); err != nil {
		s.render(w, http.StatusBadRequest, pageData{Heading: "Sign-in expired", Message: "This sign-in was not started here or took longer than 15 minutes: open the task link again and sign in."})
		return
	}
	q := r.URL.Query()
	if q.Get("state") == "" || q.Get("state") != p.State {
		s.render(w, http.StatusBadRequest, pageData{Heading: "Sign-in refused", Message: "The answer from Microsoft does not belong to this sign-in (state mismatch): open the task link again and sign in."})
		return
	}
	s.seal.clear(w, authCookie)
	back := s.cfg.PublicURL + "/t/" + url.PathEscape(p.Token)
	if e := q.Get("error"); e != "" {
		s.render(w, http.StatusUnauthorized, pageData{Heading: "Microsoft did not sign you in", Message: fmt.Sprintf("%s: %s", e, q.Get("error_description")), Back: back})
		return
	}
	claims, err := s.cfg.SignIn.Redeem(r.Context(), q.Get("code"), s.cfg.PublicURL+callbackPath, p.Verifier, p.Nonce)
	if err != nil {
		s.logger.Warn("sign-in refused", zap.Error(err))
		s.render(w, http.StatusUnauthorized, pageData{Heading: "Sign-in refused", Message: err.Error(), Back: back})
		return
	}
	s.logger.Info("signed in", zap.String("upn", claims.UPN), zap.String("tid", claims.TenantID))
	sess := session{Claims: claims, Token: p.Token, CSRF: randomString(24), Expires: time.Now().Add(sessionTTL).Unix()}
	if err := s.seal.set(w, sessionCookie, sess, sessionTTL); err != nil {
		s.render(w, http.StatusInternalServerError, pageData{Heading: "Sign-in failed", Message: err.Error()})
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// confirm sends the confirmation of the signed-in person, after checking them again.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request) {
	token, v, ok := s.task(w, r)
	if !ok {
		return
	}
	var sess session
	if err := s.seal.get(r, sessionCookie, &sess); err != nil || sess.Token != token || time.Now().Unix() >= sess.Expires {
		s.render(w, http.StatusUnauthorized, pageData{Heading: "Sign in first", Message: "Your sign-in is missing or older than 30 minutes: sign in again.", Back: s.cfg.PublicURL + "/t/" + url.PathEscape(token)})
		return
	}
	if r.PostFormValue("csrf") != sess.CSRF {
		s.render(w, http.StatusForbidden, pageData{Heading: "Confirmation refused", Message: "This form did not come from the desk's page: open the task link again."})
		return
	}
	d := s.taskData(token, v)
	d.SignedIn = sess.Claims.Who()
	if !v.Open {
		d.Heading, d.Message = "This task is closed", closedText(v)
		s.render(w, http.StatusConflict, d)
		return
	}
	if err := Check(v.For, sess.Claims); err != nil {
		d.Refusal = err.Error()
		s.render(w, http.StatusForbidden, d)
		return
	}
	decision := r.PostFormValue("decision")
	if len(v.Task.Options) > 0 && !slices.Contains(v.Task.Options, decision) {
		d.CanConfirm, d.CSRF = true, sess.CSRF
		d.Refusal = "Choose one of the decisions before you confirm."
		s.render(w, http.StatusBadRequest, d)
		return
	}
	c := sess.Claims
	req := workflows.ConfirmRequest{
		TaskID: v.Task.ID, As: v.Task.Audience, By: byName(c), Decision: decision,
		Note: strings.TrimSpace(r.PostFormValue("note")),
		Identity: &workflows.Identity{Verified: true, Via: "entra-id-token", TenantID: c.TenantID, ObjectID: c.ObjectID,
			UPN: c.UPN, Name: c.Name, Client: ClientName},
	}
	if err := req.CheckText(); err != nil {
		d.CanConfirm, d.CSRF = true, sess.CSRF
		d.Refusal = "The note cannot be sent: " + err.Error()
		s.render(w, http.StatusBadRequest, d)
		return
	}
	got, err := s.cfg.Backend.Confirm(r.Context(), v.WorkflowID, req)
	if err != nil {
		s.logger.Warn("confirmation refused", zap.String("workflowId", v.WorkflowID), zap.String("taskId", v.Task.ID), zap.Error(err))
		d.Heading, d.Message = "The upgrade did not accept the confirmation", err.Error()
		s.render(w, http.StatusConflict, d)
		return
	}
	s.logger.Info("task confirmed", zap.String("workflowId", v.WorkflowID), zap.String("taskId", v.Task.ID), zap.String("by", c.UPN), zap.String("tid", c.TenantID))
	d.Heading = "Confirmed — thank you"
	d.Message = fmt.Sprintf("Recorded: %s confirmed %q as %s", got.By, v.Task.Title, v.For.Describe())
	if got.Decision != "" {
		d.Message += ", decision " + got.Decision
	}
	d.Message += ". The upgrade goes on; you may close this page."
	d.Done = true
	s.render(w, http.StatusOK, d)
}

// byName is the confirmation's by: the verified user name, with the display name when known.
func byName(c Claims) string {
	by := c.Who()
	if len(by) > 128 {
		by = c.UPN
	}
	return by
}

func closedText(v TaskView) string {
	if v.Closed == nil {
		return "Nothing more is needed from you for this task."
	}
	who := v.Closed.By
	if v.Closed.Identity != nil && v.Closed.Identity.Verified {
		who += " (verified Microsoft sign-in)"
	}
	return fmt.Sprintf("It was confirmed by %s at %s UTC. Nothing more is needed from you.", who, v.Closed.At.UTC().Format("2 Jan 2006 15:04"))
}
