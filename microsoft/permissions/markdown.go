package permissions

import (
	"fmt"
	"strings"
)

// README markers around the generated permission table.
const (
	ReadmeBegin = "<!-- permissions manifest: generated from microsoft/permissions, do not edit (UPDATE_README=1 go test ./microsoft/permissions) -->"
	ReadmeEnd   = "<!-- end of permissions manifest -->"
)

var apiNames = map[API]string{
	Graph:         "Microsoft Graph",
	Dataverse:     "Dataverse (each org)",
	PartnerCenter: "Partner Center",
	Login:         "Entra ID sign-in",
}

// Markdown renders the manifest as the README's table: one row per API and permission, with
// the calls that need it (linked to their documentation) and what they are for.
func Markdown() string {
	type row struct {
		api     API
		grant   string
		kind    Kind
		calls   []string
		usedFor []string
		least   []string
	}
	var rows []*row
	index := map[string]*row{}
	for _, e := range Manifest() {
		key := string(e.API) + "\x00" + e.Grant
		r := index[key]
		if r == nil {
			r = &row{api: e.API, grant: e.Grant, kind: e.Kind}
			index[key] = r
			rows = append(rows, r)
		}
		path := e.Path
		if path == "" {
			path = "(API root)"
		}
		r.calls = append(r.calls, fmt.Sprintf("[`%s %s`](%s)", e.Method, path, e.Doc))
		r.usedFor = append(r.usedFor, e.UsedFor)
		if e.Least != "" {
			r.least = append(r.least, fmt.Sprintf("`%s` is the least privileged for `%s`; `%s` covers it and is needed anyway", e.Least, path, e.Grant))
		}
	}
	var b strings.Builder
	b.WriteString("Microsoft Graph application permissions to grant (`permissions.AppRoles()`): `" + strings.Join(AppRoles(), "`, `") + "`.\n\n")
	b.WriteString("| API | permission | kind | calls | used for |\n|---|---|---|---|---|\n")
	last := API("")
	for _, r := range rows {
		api := ""
		if r.api != last {
			api, last = apiNames[r.api], r.api
		}
		grant := r.grant
		if r.kind == AppRole || strings.HasPrefix(grant, "prv") {
			grant = "`" + grant + "`"
		}
		used := strings.Join(dedupe(r.usedFor), "; ")
		if len(r.least) > 0 {
			used += " (" + strings.Join(r.least, "; ") + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", api, grant, r.kind, strings.Join(r.calls, "<br>"), used)
	}
	return b.String()
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
