package notify

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// render makes the request body of n in a format.
func render(format string, n activities.Notification) ([]byte, error) {
	switch format {
	case FormatJSON:
		return json.Marshal(jsonMessage{IdempotencyKey: n.Key, Notification: n})
	case FormatTeams:
		return json.Marshal(teamsMessage(n))
	case FormatSlack:
		return json.Marshal(slackMessage(n))
	default:
		return nil, fmt.Errorf("unknown format %q", format)
	}
}

// jsonMessage is the generic body: the Notification's fields plus "idempotencyKey".
type jsonMessage struct {
	IdempotencyKey string `json:"idempotencyKey"`
	activities.Notification
}

// headline is the one-line summary of n: its title, prefixed by what happened.
func headline(n activities.Notification) string {
	title := n.Title
	if title == "" {
		switch {
		case n.Event == activities.EventUpgradeEnded:
			title = "Work 365 upgrade ended"
			if n.Outcome != "" {
				title += ": " + n.Outcome
			}
		case n.Fleet != "":
			title = "Fleet " + n.Fleet
		default:
			title = n.Event
		}
	}
	switch n.Event {
	case activities.EventTaskOpened:
		return "Action needed: " + title
	case activities.EventTaskReminder:
		return fmt.Sprintf("Reminder %d: %s", n.Reminder, title)
	case activities.EventTaskEscalated:
		if !strings.HasPrefix(strings.ToUpper(title), "ESCALATED") {
			title = "ESCALATED: " + title
		}
		return title
	case activities.EventTaskClosed:
		return "Closed: " + title
	}
	return title
}

// fact is one labelled value of a message.
type fact struct{ label, value string }

// facts are the labelled values of n that are set, in reading order.
func facts(n activities.Notification) []fact {
	tenant := n.TenantName
	switch {
	case tenant == "":
		tenant = n.TenantID
	case n.TenantID != "":
		tenant += " (" + n.TenantID + ")"
	}
	task := n.TaskID
	if task != "" && n.TaskKind != "" {
		task += " (" + n.TaskKind + ")"
	}
	all := []fact{
		{"Tenant", tenant},
		{"Fleet", n.Fleet},
		{"Stage", n.Stage},
		{"Audience", n.Audience},
		{"Task", task},
		{"Decisions", strings.Join(n.Options, ", ")},
		{"Outcome", n.Outcome},
		{"Workflow", n.WorkflowID},
		{"Task desk (sign in and confirm)", n.DeskLink},
		{"Web UI", n.Link},
	}
	var out []fact
	for _, f := range all {
		if f.value != "" {
			out = append(out, f)
		}
	}
	return out
}

// footer is the small print of n: event, time and key.
func footer(n activities.Notification) string {
	parts := []string{n.Event}
	if !n.At.IsZero() {
		parts = append(parts, n.At.UTC().Format(time.RFC3339))
	}
	return strings.Join(append(parts, "key "+n.Key), " · ")
}

// teamsMessage is an Adaptive Card in the message envelope that Teams Workflows webhooks
// ("When a Teams webhook request is received") accept.
func teamsMessage(n activities.Notification) map[string]any {
	escalated := n.Event == activities.EventTaskEscalated
	title := map[string]any{"type": "TextBlock", "text": teamsEscape(headline(n)), "size": "Large", "weight": "Bolder", "wrap": true}
	style := "emphasis"
	if escalated {
		title["color"] = "Attention"
		style = "attention"
	}
	var fs []map[string]any
	for _, f := range facts(n) {
		fs = append(fs, map[string]any{"title": f.label, "value": teamsEscape(f.value)})
	}
	body := []map[string]any{{"type": "Container", "style": style, "bleed": true, "items": []map[string]any{title}}}
	if len(fs) > 0 {
		body = append(body, map[string]any{"type": "FactSet", "facts": fs})
	}
	if n.Message != "" {
		body = append(body, map[string]any{"type": "TextBlock", "text": teamsEscape(n.Message), "wrap": true, "weight": "Bolder"})
	}
	if n.Instructions != "" {
		body = append(body, map[string]any{"type": "TextBlock", "text": teamsEscape(n.Instructions), "wrap": true})
	}
	if n.Command != "" {
		body = append(body,
			map[string]any{"type": "TextBlock", "text": "To confirm, run:", "wrap": true, "weight": "Bolder"},
			map[string]any{
				"type": "CodeBlock", "codeSnippet": plain(n.Command), "language": "PlainText",
				// Clients without CodeBlock show the command in a monospace block.
				"fallback": map[string]any{"type": "TextBlock", "text": teamsEscape(n.Command), "fontType": "Monospace", "wrap": true},
			})
	}
	body = append(body, map[string]any{"type": "TextBlock", "text": teamsEscape(footer(n)), "size": "Small", "isSubtle": true, "wrap": true})
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content": map[string]any{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type":    "AdaptiveCard",
				"version": "1.4",
				"msteams": map[string]any{"width": "Full"},
				"body":    body,
			},
		}},
	}
}

// Slack limits (https://api.slack.com/reference/block-kit/blocks).
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
)

// slackMessage is a Slack incoming-webhook body: text (the notification fallback) and blocks.
func slackMessage(n activities.Notification) map[string]any {
	head := headline(n)
	if n.Event == activities.EventTaskEscalated {
		head = ":rotating_light: " + head
	}
	var lines []string
	for _, f := range facts(n) {
		lines = append(lines, "*"+f.label+":* "+slackEscape(f.value))
	}
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": truncate(plain(head), slackHeaderMax), "emoji": true}},
		slackSection(strings.Join(lines, "\n")),
	}
	var prose []string
	if n.Message != "" {
		prose = append(prose, "*"+slackEscape(n.Message)+"*")
	}
	if n.Instructions != "" {
		prose = append(prose, slackEscape(n.Instructions))
	}
	if len(prose) > 0 {
		blocks = append(blocks, slackSection(strings.Join(prose, "\n\n")))
	}
	if n.Command != "" {
		blocks = append(blocks, slackSection("*To confirm, run:* `"+slackEscape(n.Command)+"`"))
	}
	blocks = append(blocks, map[string]any{
		"type":     "context",
		"elements": []map[string]any{{"type": "mrkdwn", "text": slackEscape(footer(n))}},
	})
	text := head
	if t := facts(n); len(t) > 0 && t[0].label == "Tenant" {
		text += " — " + t[0].value
	}
	return map[string]any{"text": slackEscape(text), "blocks": blocks}
}

func slackSection(mrkdwn string) map[string]any {
	return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": truncate(mrkdwn, slackSectionMax)}}
}

// slackEscape escapes the three characters Slack's mrkdwn reserves (the confirm command's
// "<your name>" would otherwise read as a link, a tenant named "<!channel>" would ping
// everyone) after removing control characters. Slack has no escape for *, _ and ~: they can
// only change a value's style, never add a link or a mention.
// https://api.slack.com/reference/surfaces/formatting#escaping
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(plain(s))
}

// teamsMarkdown escapes what Adaptive Card TextBlocks and facts read as markdown (bold,
// italic, links, lists), so names and notes people typed show as typed and can add no link.
// https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format
var teamsMarkdown = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "~", `\~`, "`", "\\`")

// teamsEscape makes s literal text in an Adaptive Card: control characters removed (line
// breaks kept), markdown escaped, and a list marker at a line's start ("- ", "1. ") escaped.
func teamsEscape(s string) string {
	lines := strings.Split(plain(s), "\n")
	for i, l := range lines {
		l = teamsMarkdown.Replace(l)
		trimmed := strings.TrimLeft(l, " ")
		lead := l[:len(l)-len(trimmed)]
		switch {
		case strings.HasPrefix(trimmed, "- "), strings.HasPrefix(trimmed, "+ "):
			l = lead + `\` + trimmed
		case listNumberRE.MatchString(trimmed):
			dot := strings.IndexByte(trimmed, '.')
			l = lead + trimmed[:dot] + `\` + trimmed[dot:]
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

var listNumberRE = regexp.MustCompile(`^[0-9]+\. `)

// plain removes terminal escape sequences and control characters other than line breaks and
// tabs from text bound for a chat message.
func plain(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = spec.Printable(l, 0)
	}
	return strings.Join(lines, "\n")
}

// truncate cuts s to max runes, marking the cut.
func truncate(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
