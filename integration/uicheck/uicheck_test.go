// Package uicheck proves that on-call can find a stuck upgrade in the real Temporal Web UI and
// read what to do about it, as a person would: it runs a rehearsal whose Global Administrator
// never clicks Get Consent, finds the upgrade with the runbook's visibility query (through the
// Temporal client, then in the Web UI driven by headless Chromium), opens it and reads its
// input and current details, which the history holds encrypted and the Web UI decodes through
// the rehearsal's codec server.
package uicheck

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/csp-ops/work365-upgrade/internal/codec"
	"github.com/csp-ops/work365-upgrade/rehearsal/browser"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

const (
	speed      = 60
	stuckQuery = "WorkWaitingOn = 'global-admin' AND WorkUpgradeStage = 'registration' AND ExecutionStatus = 'Running'"
	tenantName = "Litware stuck at consent"
	orgURL     = "https://litware.crm.dynamics.com"
	namespace  = stack.DefaultNamespace
	// browserWait bounds the whole browser session. On 2 shared cores it took 86 s (the Web UI
	// also asks the codec server for every payload it shows); 60 s was not enough.
	browserWait = 180 * time.Second
)

func TestStuckUpgradeIsFoundAndReadInTheWebUI(t *testing.T) {
	began := time.Now()
	scn, err := sim.LoadScenario("testdata/stuck.yaml")
	require.NoError(t, err)
	uiPort := freePort(t)
	startCtx, cancelStart := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelStart()
	s, err := stack.Start(startCtx, stack.Options{Scenario: scn, Speed: speed, UIPort: uiPort})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	uiURL := s.Server.UIURL()
	require.NotEmpty(t, uiURL, "the rehearsal serves the Web UI")
	t.Logf("rehearsal up in %s; Web UI at %s", time.Since(began).Round(time.Millisecond), uiURL)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	launched, err := s.Ops.Launch(ctx, s.Inventory("uicheck"))
	require.NoError(t, err)
	require.Len(t, launched, 1)
	require.Equal(t, "started", launched[0].State)
	id, runID := launched[0].WorkflowID, launched[0].RunID

	// The upgrade reaches registration and waits on the Global Administrator, for good.
	stuckAt := time.Now()
	var stage, waiting string
	for {
		d, err := s.Client.DescribeWorkflow(ctx, id, runID)
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, d.Status, "the upgrade must still run")
		stage, _ = d.TypedSearchAttributes.GetKeyword(searchattr.Stage)
		waiting, _ = d.TypedSearchAttributes.GetKeyword(searchattr.WaitingOn)
		if stage == "registration" && waiting == "global-admin" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the upgrade never got stuck at registration waiting on global-admin (last: stage %q, waiting on %q)", stage, waiting)
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Logf("upgrade %s stuck at stage %s, waiting on %s, %s after launch", id, stage, waiting, time.Since(stuckAt).Round(time.Millisecond))

	// a. The runbook's query finds exactly that upgrade through the Temporal client
	// (visibility is updated asynchronously: wait for it).
	var found []string
	for {
		resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: stuckQuery})
		require.NoError(t, err)
		found = found[:0]
		for _, e := range resp.GetExecutions() {
			found = append(found, e.GetExecution().GetWorkflowId()+"/"+e.GetExecution().GetRunId())
			var name string
			require.NoError(t, converter.GetDefaultDataConverter().FromPayload(
				e.GetSearchAttributes().GetIndexedFields()[searchattr.TenantName.GetName()], &name))
			require.Equal(t, tenantName, name, "WorkTenantName of the listed upgrade")
		}
		if len(found) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("ListWorkflow(%q) never found the stuck upgrade", stuckQuery)
		case <-time.After(250 * time.Millisecond):
		}
	}
	require.Equal(t, []string{id + "/" + runID}, found, "the visibility query finds exactly the stuck upgrade")

	// The inbox (starter tasks) lists its open task for the Global Administrator.
	tasks, err := s.Ops.OpenTasks(ctx, workflows.GlobalAdmin, "")
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	require.Equal(t, "get-consent-1", tasks[0].Task.ID)
	require.Equal(t, id, tasks[0].WorkflowID)
	none, err := s.Ops.OpenTasks(ctx, workflows.ServiceAccount, "")
	require.NoError(t, err)
	require.Empty(t, none)

	// The history holds the upgrade's input and user metadata encrypted (the rehearsal's
	// default): what the Web UI shows below, it decoded through the stack's codec server.
	require.NotEmpty(t, s.CodecURL, "the rehearsal's Web UI decodes through a codec server")
	raw, err := client.Dial(client.Options{HostPort: s.Server.FrontendAddress(), Namespace: namespace})
	require.NoError(t, err)
	defer raw.Close()
	it := raw.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := it.Next()
	require.NoError(t, err)
	started := first.GetWorkflowExecutionStartedEventAttributes()
	require.NotNil(t, started)
	for what, p := range map[string]*commonpb.Payload{"input": started.GetInput().GetPayloads()[0], "summary": first.GetUserMetadata().GetSummary()} {
		require.True(t, codec.Encrypted(p), "the %s is encrypted in the history", what)
		require.NotContains(t, string(p.GetData()), orgURL, "the %s holds no plaintext", what)
	}

	// b. The same query in the Web UI, as a runbook link opens it.
	checkInBrowser(t, uiURL, id, runID)
	t.Logf("whole check took %s", time.Since(began).Round(time.Millisecond))
}

// checkInBrowser drives headless Chromium through the Web UI as on-call would: the list
// filtered by the runbook's query shows the stuck upgrade alone, its row opens it, and its User
// Metadata tab shows the current details: stage, who must act, the task and the command.
func checkInBrowser(t *testing.T, uiURL, id, runID string) {
	browser.Require(t) // the Temporal client checks above passed either way
	began := time.Now()
	artifacts := artifactsDir(t)

	opts := browser.Options(t.TempDir(), "", chromedp.WindowSize(1600, 1250))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, browserWait)
	defer cancelTimeout()

	// On failure, keep what the browser showed for whoever reads the CI log.
	step := "start the browser"
	defer func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(bctx), 10*time.Second)
		defer cancel()
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		png, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		base := filepath.Join(artifacts, "failed-page")
		_ = os.WriteFile(base+".txt", []byte(text), 0o644)
		_ = os.WriteFile(base+".html", []byte(html), 0o644)
		if len(png) > 0 {
			_ = os.WriteFile(base+".png", png, 0o644)
		}
		t.Logf("browser failed at step %q; the page is in %s.{txt,html,png}", step, base)
	}()
	check := func(err error) {
		t.Helper()
		require.NoError(t, err, "browser step: %s", step)
	}

	// The list, as on-call opens it from the README's ready-made link "waiting on
	// global-admin" (pointed at this rehearsal's Web UI).
	step = "open the README's link to the upgrades waiting on global-admin"
	listURL := readmeLink(t, "waiting on global-admin", uiURL)
	row := chromedp.CSS(`[data-testid="workflows-summary-configurable-table-row"]`)
	// The page scrolls inside its own panes: a viewport tall enough for the current details
	// keeps the whole of them in the screenshot.
	check(chromedp.Do(bctx, chromedp.EmulateViewport(1600, 1250), chromedp.Navigate(listURL), chromedp.WaitVisible(row)))
	rows, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid="workflows-summary-configurable-table-row"]')].map(r => r.innerText)`))
	check(err)
	require.Len(t, rows, 1, "the Web UI lists exactly the stuck upgrade: %q", rows)
	require.Contains(t, rows[0], id)
	require.Contains(t, rows[0], runID)
	require.Contains(t, strings.ToLower(rows[0]), "running")
	listText, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	check(err)
	for _, filter := range []string{`WorkWaitingOn = "global-admin"`, `ExecutionStatus = Running`} {
		require.Contains(t, listText, filter, "the Web UI applied the query from the URL")
	}
	listPNG, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	check(err)
	listShot := filepath.Join(artifacts, "stuck-upgrade-list.png")
	require.NoError(t, os.WriteFile(listShot, listPNG, 0o644))

	// Open it from its row, as a person clicks the workflow ID.
	step = "click the stuck upgrade's row"
	link := chromedp.CSS(`[data-testid="workflows-summary-configurable-table-row"] a[href*="/workflows/` + url.PathEscape(id) + `/` + runID + `/"]`)
	check(chromedp.Do(bctx, chromedp.Click(link), chromedp.WaitVisible(chromedp.CSS(`#user-metadata-tab`))))
	loc, err := chromedp.Run(bctx, chromedp.Location())
	check(err)
	require.Contains(t, loc, "/workflows/"+url.PathEscape(id)+"/"+runID+"/", "the row opened the stuck upgrade")

	// The input, decoded by the codec server: the tenant's org URL, which the history holds
	// only encrypted.
	step = "read the decoded input"
	_, err = chromedp.Run(bctx, chromedp.Poll[bool](fmt.Sprintf(`document.body.innerText.includes(%q)`, orgURL),
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	check(err)
	inputPNG, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	check(err)
	require.NoError(t, os.WriteFile(filepath.Join(artifacts, "decoded-input.png"), inputPNG, 0o644))

	// The User Metadata tab shows the summary and the current details (markdown, rendered
	// in iframes served by the UI itself).
	step = "open the User Metadata tab and read the current details"
	check(chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#user-metadata-tab`))))
	frameText := func(frameID, want string) string {
		t.Helper()
		text, err := chromedp.Run(bctx, chromedp.Poll[string](fmt.Sprintf(`(() => {
			const f = document.getElementById(%q);
			const b = f && f.contentDocument && f.contentDocument.body;
			const s = b ? b.innerText : "";
			return s.includes(%q) ? s : "";
		})()`, frameID, want), chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		check(err)
		return squeeze(text)
	}
	summary := frameText("user-metadata-summary", tenantName)
	require.Contains(t, summary, "Upgrade "+tenantName)
	details := frameText("user-metadata-current-details", "Waiting on")
	t.Logf("current details as the Web UI shows them:\n%s", details)
	for _, want := range []string{
		"Waiting for: the customer", // the Web UI's markdown turns ' into ’
		"Global Administrator: Get Consent and copy the upgrade link (round 1) — task get-consent-1, open since",
		"Stage: registration",
		"Waiting on: global-admin",
		"get-consent-1",
		"Get Consent and copy the upgrade link",
		"For global-admin",
		"click the Get Consent button",
		"starter confirm " + id + " get-consent-1 --as global-admin",
	} {
		require.Contains(t, details, want, "the current details in the Web UI")
	}
	pageText, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	check(err)
	require.Contains(t, pageText, "Current Details")
	require.Contains(t, pageText, id)

	step = "take the screenshot"
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	check(err)
	shot := filepath.Join(artifacts, "stuck-upgrade-current-details.png")
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("screenshots: %s (current details), %s (filtered list)", shot, listShot)
	t.Logf("browser check took %s", time.Since(began).Round(time.Millisecond))
}

// readmeLink returns the URL of the README's ready-made Web UI link with this label, pointed
// at the Web UI under test: the link itself is what is checked, not a copy of it.
func readmeLink(t *testing.T, label, uiURL string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	const devstackUI = "http://localhost:8233"
	prefix := "- [" + label + "](" + devstackUI
	for _, line := range strings.Split(string(readme), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			path, _, found := strings.Cut(rest, ")")
			require.True(t, found, "README link %q is not closed", label)
			u, err := url.Parse(uiURL + path)
			require.NoError(t, err, "README link %q", label)
			return u.String()
		}
	}
	t.Fatalf("README.md has no ready-made link %q (a line starting %q)", label, prefix)
	return ""
}

// squeeze drops the blank lines and indentation of rendered text.
func squeeze(text string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// artifactsDir is $ARTIFACTS_DIR, or uicheck/artifacts (ignored by git).
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = "artifacts"
	}
	dir, err := filepath.Abs(dir)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
