package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func runCLI(args ...string) (string, error) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// futureExample copies examples/fleet.yaml with its windows a year from now: the starter
// refuses windows that have closed, and the example's dates will pass.
func futureExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../examples/fleet.yaml")
	require.NoError(t, err)
	next := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
	s := regexp.MustCompile(`"\d{4}-\d{2}-\d{2}T`).ReplaceAllString(string(b), `"`+next+`T`)
	p := filepath.Join(t.TempDir(), "example.yaml")
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

func TestPlanShowsEachTenantAndStartsNothing(t *testing.T) {
	out, err := runCLI("plan", futureExample(t))
	require.NoError(t, err)
	require.Contains(t, out, "Fleet example: 4 tenants")
	_, err = runCLI("plan", "../examples/fleet.yaml", "--dataverse-cloud", "mars")
	require.ErrorContains(t, err, `--dataverse-cloud/--org-host-suffix: cloud "mars" is not one of public, usgov-high, usgov-dod, china`)
	require.Contains(t, out, "wave 1 canary     1 tenants, concurrency 1, approval gate after it")
	require.Contains(t, out, "wave 2 bulk       3 tenants, concurrency 20")
	require.Contains(t, out, "partner center  skipped: indirect reseller")
	require.Contains(t, out, "re-consent tailspin-emea (tenant 1b0c2a52-5a1e-4d55-9f3e-0000000000e4: MFA policies first)")
	require.Contains(t, out, "licence key at vault://work365/licences/northwind")
	require.Contains(t, out, "Nothing was started")
}

func TestLaunchRefusesAnInvalidInventoryBeforeConnecting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte("tenants:\n  - tenantId: nope\n"), 0o600))
	// The address is unreachable: the error must come from the file, before any connection.
	_, err := runCLI("launch", p, "--address", "127.0.0.1:1")
	require.Error(t, err)
	require.Contains(t, err.Error(), p+":2: tenant \"nope\": tenantId")
}

func TestConfirmNeedsAudienceAndWho(t *testing.T) {
	_, err := runCLI("confirm", "wf", "task-1", "--as", "admin", "--by", "me")
	require.ErrorContains(t, err, `audience "admin"`)
	_, err = runCLI("confirm", "wf", "task-1", "--as", "operator")
	require.ErrorContains(t, err, "--by is required")
}

const hostile = `defaults:
  timeZone: Europe/London
  window: {start: "2030-12-05T22:00", length: 6h}
  targetVersion: 2.5.0.1
  solutionPackage: w.zip
  partnerType: indirect
tenants:
  - tenantId: 00000000-0000-0000-0000-000000000001
    displayName: Past
    orgUrl: https://a.crm.dynamics.com
    globalAdminUpn: admin@a.com
    serviceAccountUpn: svc@a.com
    window: {start: "2019-01-05T22:00", length: 6h}
  - tenantId: 00000000-0000-0000-0000-000000000002
    displayName: Typo
    orgUrl: https://b.crm.dynamics.com?x=1
    globalAdminUpn: admin@b.com
    serviceAccountUpn: svc@b.com
    timeZone: Europe/Londn
    solutionPackage: ../../etc/passwd
`

// TestOneValidationForPlanLaunchAndFleetLaunch: the three commands refuse the same file with the
// same errors, all of them at once, before connecting anywhere (the address is unreachable).
func TestOneValidationForPlanLaunchAndFleetLaunch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hostile.yaml")
	require.NoError(t, os.WriteFile(p, []byte(hostile), 0o600))
	var msgs []string
	for _, args := range [][]string{{"plan", p}, {"launch", p}, {"fleet", "launch", p}} {
		_, err := runCLI(append(args, "--address", "127.0.0.1:1", "--timeout", "2s")...)
		require.Error(t, err, args)
		msgs = append(msgs, err.Error())
	}
	require.Equal(t, msgs[0], msgs[1])
	require.Equal(t, msgs[0], msgs[2])
	for _, want := range []string{
		p + `:13: tenant "Past": window.start: the window 2019-01-05T22:00 Europe/London for 6h closed at 2019-01-06 04:00 UTC, before now`,
		p + `:16: tenant "Typo": orgUrl: https://b.crm.dynamics.com has a query`,
		p + `:19: tenant "Typo": timeZone: "Europe/Londn" is not a known IANA time zone`,
		p + `:20: tenant "Typo": solutionPackage: must be a .zip file name inside the worker's packages folder`,
	} {
		require.Contains(t, msgs[0], want)
	}
}

func TestHostileTextIsRefusedBeforeSending(t *testing.T) {
	_, err := runCLI("confirm", "wf", "task-1", "--as", "operator", "--by", "eve\x1b[31m", "--address", "127.0.0.1:1")
	require.ErrorContains(t, err, "by contains the control character U+001B")
	_, err = runCLI("start-now", "wf", "--by", "alice", "--note", strings.Repeat("x", 2001), "--address", "127.0.0.1:1")
	require.ErrorContains(t, err, "note is 2001 characters long; at most 2000")
	_, err = runCLI("fleet", "approve", "f", "canary", "--by", "bob\u202e", "--why", "ok", "--address", "127.0.0.1:1")
	require.ErrorContains(t, err, "by contains the control character U+202E")
}

func TestTerminalOutputIsSanitized(t *testing.T) {
	in := "name \x1b]0;pwned\x07\x1b[31mred\x1b[0m ok\x07\u009b\u202e\n\tnext\r\x1b[2K\xff"
	require.Equal(t, "name red ok\n\tnext\r\x1b[2K\uFFFD", string(sanitizeTerminal([]byte(in))))
	var out, errOut bytes.Buffer
	code := run([]string{"confirm", "wf", "t", "--as", "operator", "--by", "\x1b]52;c;ZXZpbA==\x07x\x1b[1;1H"}, &out, &errOut)
	require.Equal(t, 1, code)
	require.NotContains(t, errOut.String(), "\x1b")
	require.Contains(t, errOut.String(), "starter: by contains the control character U+001B")
}
