package ops

import (
	"net/url"
	"strings"
)

// WebUI builds links into the Temporal Web UI, so the starter's answers open the upgrade or
// the list on-call needs in one click.
type WebUI struct {
	// BaseURL is where the Web UI is served, e.g. http://localhost:8080 (compose) or
	// http://localhost:8233 (devstack).
	BaseURL   string
	Namespace string
}

func (u WebUI) namespaceURL() string {
	ns := u.Namespace
	if ns == "" {
		ns = "default"
	}
	return strings.TrimRight(u.BaseURL, "/") + "/namespaces/" + url.PathEscape(ns)
}

// Workflow is the page of a workflow's latest run (IDs hold slashes: they are escaped).
func (u WebUI) Workflow(workflowID string) string {
	return u.namespaceURL() + "/workflows/" + url.PathEscape(workflowID)
}

// List is the workflow list filtered by a visibility query.
func (u WebUI) List(query string) string {
	return u.namespaceURL() + "/workflows?query=" + url.QueryEscape(query)
}
