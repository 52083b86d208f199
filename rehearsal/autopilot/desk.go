package autopilot

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// deskUser is who signs in to the desk for a task: the account the task is for.
func (a *Autopilot) deskUser(n activities.Notification, t sim.Tenant) (string, error) {
	switch workflows.Audience(n.Audience) {
	case workflows.GlobalAdmin:
		return t.Admin.UPN, nil
	case workflows.ServiceAccount:
		return t.ServiceAccount.UPN, nil
	case workflows.PartnerAdmin:
		p, err := partnerTenant(n, t)
		if err != nil {
			return "", err
		}
		for _, pc := range t.PartnerCenters {
			if strings.EqualFold(pc.TenantID, p) && pc.Admin != nil {
				return pc.Admin.UPN, nil
			}
		}
		return "", fmt.Errorf("the scenario names no admin of Partner Center tenant %s", p)
	case workflows.Operator:
		if a.scenario.Partner != nil && len(a.scenario.Partner.Operators) > 0 {
			return a.scenario.Partner.Operators[0].UPN, nil
		}
		return "", errors.New("the scenario names no operator of the partner tenant")
	}
	return "", fmt.Errorf("nobody signs in for audience %q", n.Audience)
}

var (
	signInHref = regexp.MustCompile(`id="sign-in" href="([^"]+)"`)
	formAction = regexp.MustCompile(`<form id="confirm" method="post" action="([^"]+)"`)
	csrfValue  = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	refusal    = regexp.MustCompile(`(?s)<div id="refusal"[^>]*>(.*?)</div>`)
	message    = regexp.MustCompile(`(?s)<div id="message"[^>]*>(.*?)</div>`)
)

// confirmAtDesk does what a person does with a task notification: opens its desk link in a
// browser, signs in on the (simulated) Microsoft page with their password, and confirms
// (choosing the decision, if any). The desk, not the autopilot, sends the Update.
func (a *Autopilot) confirmAtDesk(ctx context.Context, n activities.Notification, t sim.Tenant, decision, note string) error {
	upn, err := a.deskUser(n, t)
	if err != nil {
		return err
	}
	a.cloudMu.RLock()
	cloud := a.cloud
	a.cloudMu.RUnlock()
	who, ok := cloud.Person(upn)
	if !ok {
		return fmt.Errorf("%s cannot sign in: not in the simulated directory", upn)
	}
	browser := cloud.BrowserClient()
	page, _, err := get(ctx, browser, n.DeskLink)
	if err != nil {
		return fmt.Errorf("open the desk link: %w", err)
	}
	m := signInHref.FindStringSubmatch(page)
	if m == nil {
		return fmt.Errorf("the desk page offers no sign-in: %s", pageText(page))
	}
	// The desk sends the browser to Microsoft's authorize page.
	noFollow := *browser
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	_, resp, err := get(ctx, &noFollow, html.UnescapeString(m[1]))
	if err != nil {
		return fmt.Errorf("start the sign-in: %w", err)
	}
	authorize := resp.Header.Get("Location")
	if authorize == "" {
		return fmt.Errorf("the desk's sign-in did not redirect (status %d)", resp.StatusCode)
	}
	back, err := sim.SignIn(ctx, browser, authorize, upn, who.Password)
	if err != nil {
		return err
	}
	page, resp, err = get(ctx, browser, back)
	if err != nil {
		return fmt.Errorf("return to the desk: %w", err)
	}
	if r := refusal.FindStringSubmatch(page); r != nil {
		return fmt.Errorf("the desk refused %s: %s", upn, html.UnescapeString(strings.TrimSpace(r[1])))
	}
	action, csrf := formAction.FindStringSubmatch(page), csrfValue.FindStringSubmatch(page)
	if action == nil || csrf == nil {
		return fmt.Errorf("the desk shows no confirm form after the sign-in (status %d): %s", resp.StatusCode, pageText(page))
	}
	form := url.Values{"csrf": {html.UnescapeString(csrf[1])}, "note": {note}}
	if len(n.Options) > 0 {
		form.Set("decision", decision)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, html.UnescapeString(action[1]), strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = browser.Do(req)
	if err != nil {
		return fmt.Errorf("confirm at the desk: %w", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the desk did not confirm (status %d): %s", resp.StatusCode, pageText(string(b)))
	}
	return nil
}

func get(ctx context.Context, c *http.Client, u string) (string, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), resp, err
}

// pageText is what a desk page says (its message or refusal), for errors.
func pageText(page string) string {
	for _, re := range []*regexp.Regexp{refusal, message} {
		if m := re.FindStringSubmatch(page); m != nil {
			return html.UnescapeString(strings.TrimSpace(m[1]))
		}
	}
	if len(page) > 300 {
		page = page[:300]
	}
	return page
}
