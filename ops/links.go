package ops

import (
	"net/url"
	"strings"

	"github.com/csp-ops/work365-upgrade/activities"
)

// WebUI builds links into the Temporal Web UI, so the starter's answers open the upgrade or
// the list on-call needs in one click.
type WebUI struct {
	// BaseURL is where the Web UI is served, e.g. http://localhost:8080 (compose) or
	// http://localhost:8233 (devstack).
	BaseURL   string
	Namespace string
}

// Workflow is the page of a workflow's latest run (the link notifications carry too).
func (u WebUI) Workflow(workflowID string) string {
	return activities.WebUILink(u.BaseURL, u.Namespace, workflowID)
}

// List is the workflow list filtered by a visibility query.
func (u WebUI) List(query string) string {
	ns := u.Namespace
	if ns == "" {
		ns = "default"
	}
	return strings.TrimRight(u.BaseURL, "/") + "/namespaces/" + url.PathEscape(ns) + "/workflows?query=" + url.QueryEscape(query)
}
