package notify

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/csp-ops/work365-upgrade/activities"
)

// Formats of a webhook body.
const (
	// FormatJSON posts the Notification as JSON with a top-level "idempotencyKey".
	FormatJSON = "json"
	// FormatTeams posts an Adaptive Card message, as Microsoft Teams Workflows webhooks accept.
	FormatTeams = "teams"
	// FormatSlack posts a Slack incoming-webhook message (text and blocks).
	FormatSlack = "slack"
)

// Formats lists the formats a Target accepts.
func Formats() []string { return []string{FormatJSON, FormatTeams, FormatSlack} }

// Events lists the notification events a Target's events filter accepts.
func Events() []string {
	return []string{
		activities.EventTaskOpened, activities.EventTaskReminder, activities.EventTaskEscalated,
		activities.EventTaskClosed, activities.EventUpgradeEnded, activities.EventFleet,
		activities.EventOrchestratorFault, activities.EventFrozenTooLong, activities.EventCleanupFailed,
	}
}

// Target is one webhook of the worker configuration (notify.webhooks[i]). Its URL is a
// secret (Teams, Slack and most receivers authenticate by the URL alone), so the
// configuration names the file or environment variable that holds it, and logs and errors
// name the target by Name only.
type Target struct {
	// Name identifies the target in logs and errors; unique among the targets.
	Name string `yaml:"name"`
	// URLFile or URLEnv (exactly one) names where the webhook URL is kept.
	URLFile string `yaml:"urlFile,omitempty"`
	URLEnv  string `yaml:"urlEnv,omitempty"`
	// Format is json, teams or slack.
	Format string `yaml:"format"`
	// Events, when set, limits the target to these events (Event* values); all otherwise.
	Events []string `yaml:"events,omitempty"`
	// Audiences, when set, limits the target to notifications for these audiences (for
	// example operator, global-admin). A notification without an audience (an upgrade's
	// outcome) counts as addressed to the operator.
	Audiences []string `yaml:"audiences,omitempty"`
}

// Problem is one invalid setting of a Target. Field is its YAML key relative to the target
// ("format", "events[2]"), or empty when the problem concerns the target as a whole.
type Problem struct {
	Field   string
	Message string
}

// Problems reports what is wrong with the target's settings, without reading its URL (the
// file or variable may exist only where the worker runs). Audiences are not checked here:
// the caller knows the audiences of the workflows.
func (t Target) Problems() []Problem {
	var ps []Problem
	if strings.TrimSpace(t.Name) == "" {
		ps = append(ps, Problem{"name", "required (logs and errors name the target, never its URL)"})
	}
	if (t.URLFile == "") == (t.URLEnv == "") {
		ps = append(ps, Problem{"", "set exactly one of urlFile, urlEnv (the webhook URL is a secret: keep it in a file or an environment variable, never in this file)"})
	}
	if !slices.Contains(Formats(), t.Format) {
		ps = append(ps, Problem{"format", fmt.Sprintf("%q must be json, teams or slack", t.Format)})
	}
	for i, e := range t.Events {
		if !slices.Contains(Events(), e) {
			ps = append(ps, Problem{fmt.Sprintf("events[%d]", i), fmt.Sprintf("%q is not an event: use %s", e, strings.Join(Events(), ", "))})
		}
	}
	return ps
}

// where says where the target's URL is kept, for messages (a file path or a variable name,
// never the URL).
func (t Target) where() string {
	if t.URLFile != "" {
		return "urlFile " + t.URLFile
	}
	return "urlEnv " + t.URLEnv
}

// readURL reads the target's URL. Errors never include the URL or the file's content.
func (t Target) readURL() (string, error) {
	var raw string
	if t.URLFile != "" {
		b, err := os.ReadFile(t.URLFile)
		if err != nil {
			return "", fmt.Errorf("webhook %q: read %s: %w", t.Name, t.where(), err)
		}
		raw = string(b)
	} else {
		v, ok := os.LookupEnv(t.URLEnv)
		if !ok {
			return "", fmt.Errorf("webhook %q: environment variable %s is not set (it must hold the webhook URL)", t.Name, t.URLEnv)
		}
		raw = v
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("webhook %q: %s is empty (it must hold the webhook URL)", t.Name, t.where())
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// The parse error quotes the URL: leave it out.
		return "", fmt.Errorf("webhook %q: %s does not hold an http(s) URL", t.Name, t.where())
	}
	return raw, nil
}
