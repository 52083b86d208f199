package desk

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// pageData is what a desk page shows.
type pageData struct {
	Heading string
	Message string
	Back    string
	// Task fields.
	Tenant       string
	Title        string
	Kind         string
	Stage        string
	Instructions []string
	Options      []string
	For          string
	SignInURL    string
	AnotherURL   string
	ConfirmURL   string
	// SignedIn names the signed-in person; Refusal says why they may not confirm.
	SignedIn   string
	Refusal    string
	CanConfirm bool
	CSRF       string
	Done       bool
}

func (s *Server) taskData(token string, v TaskView) pageData {
	base := s.cfg.PublicURL + "/t/" + url.PathEscape(token)
	title := v.Task.Title
	if title == "" {
		title = string(v.Task.Kind)
	}
	return pageData{
		Heading: title, Tenant: v.TenantName, Title: title, Kind: string(v.Task.Kind), Stage: string(v.Task.Stage),
		Instructions: strings.Split(strings.TrimSpace(v.Task.Instructions), "\n"), Options: v.Task.Options,
		For: v.For.Describe(), SignInURL: base + "/signin", AnotherURL: base + "/signin?another=1", ConfirmURL: base + "/confirm",
	}
}

func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := page.Execute(w, d); err != nil {
		s.logger.Warn("render desk page", zap.Error(err))
	}
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Heading}} — Work 365 upgrade task desk</title>
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#1b1b1b}
h1{font-size:1.4rem} .meta{color:#555} .box{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}
.refusal{border-color:#b00020;background:#fff4f4} .done{border-color:#107c10;background:#f3fff3}
.button{display:inline-block;background:#0067b8;color:#fff;padding:.6rem 1.2rem;border:0;border-radius:4px;text-decoration:none;font-size:1rem;cursor:pointer}
label{display:block;margin:.3rem 0} textarea{width:100%;min-height:4rem}
</style></head><body>
<p class="meta">Work 365 v2.5 upgrade — task desk</p>
<h1 id="heading">{{.Heading}}</h1>
{{if .Message}}<div id="message" class="box{{if .Done}} done{{end}}">{{.Message}}</div>{{end}}
{{if .Title}}
<p class="meta">{{if .Tenant}}Tenant: <b>{{.Tenant}}</b> · {{end}}Task {{.Kind}}{{if .Stage}} · stage {{.Stage}}{{end}}</p>
<p id="for">This task is for <b>{{.For}}</b>.</p>
{{if not .Done}}<div class="box" id="instructions">{{range .Instructions}}<p>{{.}}</p>{{end}}</div>{{end}}
{{if .SignedIn}}<p id="signed-in">Signed in as <b>{{.SignedIn}}</b>.</p>{{end}}
{{if .Refusal}}<div id="refusal" class="box refusal">{{.Refusal}}</div>{{end}}
{{if and .CanConfirm (not .Done)}}
<form id="confirm" method="post" action="{{.ConfirmURL}}" class="box">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .Options}}<p><b>Your decision:</b></p>{{range .Options}}<label><input type="radio" name="decision" value="{{.}}"> {{.}}</label>{{end}}{{end}}
<label for="note">Note (optional)</label><textarea id="note" name="note" maxlength="2000"></textarea>
<p><button class="button" id="confirm-button" type="submit">{{if .Options}}Send my decision{{else}}I have done this — confirm{{end}}</button></p>
</form>
{{else if and (not .Done) (not .Message)}}
<p><a class="button" id="sign-in" href="{{if .SignedIn}}{{.AnotherURL}}{{else}}{{.SignInURL}}{{end}}">{{if .SignedIn}}Sign in with another Microsoft account{{else}}Sign in with Microsoft{{end}}</a></p>
<p class="meta">You sign in with your own Microsoft work account; the desk checks that you are the person this task is for before it records your confirmation.</p>
{{end}}
{{end}}
{{if .Back}}<p><a href="{{.Back}}">Back to the task</a></p>{{end}}
</body></html>
`))
