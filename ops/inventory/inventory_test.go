package inventory

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

func TestExampleInventory(t *testing.T) {
	inv, err := Load("../../examples/fleet.yaml")
	require.NoError(t, err)
	require.Equal(t, "example", inv.Fleet)
	require.Len(t, inv.Tenants, 4)
	require.Equal(t, "Europe/London", inv.Tenants[0].Tenant.TimeZone, "defaults apply")
	require.Equal(t, "direct", string(inv.Tenants[3].Tenant.PartnerType), "tenant overrides default")
	require.Len(t, inv.Tenants[3].Tenant.PartnerCenters, 2)
	require.Equal(t, 4*time.Hour, inv.Config.ReminderInterval)
	require.Equal(t, "work365-upgrade/1b0c2a52-5a1e-4d55-9f3e-000000000001/2.5.0.1", WorkflowID(inv.Tenants[0].Tenant))
}

const good = `defaults:
  timeZone: Europe/London
  window: {start: "2026-12-05T22:00", length: 6h}
  targetVersion: 2.5.0.1
  solutionPackage: w.zip
  partnerType: indirect
tenants:
  - tenantId: 00000000-0000-0000-0000-000000000001
    displayName: A
    orgUrl: https://a.crm.dynamics.com
    globalAdminUpn: admin@a.com
    serviceAccountUpn: svc@a.com
`

func TestErrorsNameFileLineAndField(t *testing.T) {
	bad := good + `  - tenantId: not-a-guid
    displayName: B
    orgUrl: https://b.crm.dynamics.com
    globalAdminUpn: admin@b.com
    serviceAccountUpn: svc@b.com
    window: {start: "soon", length: 6h}
  - tenantId: 00000000-0000-0000-0000-000000000001
    displayName: A again
    orgUrl: https://a.crm.dynamics.com
    globalAdminUpn: admin@a.com
    serviceAccountUpn: svc@a.com
`
	_, err := Parse("fleet.yaml", []byte(bad))
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, `fleet.yaml:13: tenant "B": tenantId: "not-a-guid" is not an Entra tenant ID`)
	require.Contains(t, msg, `fleet.yaml:18: tenant "B": window.start: "soon"`)
	require.Contains(t, msg, `fleet.yaml:19: tenantId: "00000000-0000-0000-0000-000000000001" is already listed at line 8`)
}

func TestUnknownKeyAndDefaultsLine(t *testing.T) {
	_, err := Parse("f.yaml", []byte(strings.Replace(good, "    displayName: A\n", "    displayname: A\n", 1)))
	require.ErrorContains(t, err, "f.yaml:9: tenants[0].displayname: unknown field (not a key of spec.Tenant; check its spelling)")
	_, err = Parse("f.yaml", []byte(strings.Replace(good, "targetVersion: 2.5.0.1", "targetVersion: 2.4", 1)))
	require.ErrorContains(t, err, `f.yaml:4: tenant "A": targetVersion: "2.4" is not a 2.5.x version`)
	_, err = Parse("f.yaml", []byte("tenants: []\n"))
	require.ErrorContains(t, err, "f.yaml:1: tenants: the inventory lists no tenant")
	_, err = Parse("f.yaml", []byte("tenants: [\n"))
	require.ErrorContains(t, err, "f.yaml:")
}

// now is the clock the hostile-input tests run at: before the example windows.
var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// TestHostileInputAllErrorsInOnePass is issue 12's list, tried at once: every problem of the
// file is reported in one pass, each naming file:line and the field.
func TestHostileInputAllErrorsInOnePass(t *testing.T) {
	bad := good + `  - tenantId: 00000000-0000-0000-0000-000000000002
    displayName: Past
    orgUrl: https://past.crm4.dynamics.com
    globalAdminUpn: admin@b.com
    serviceAccountUpn: svc@b.com
    window: {start: "2019-01-05T22:00", length: 6h}
  - tenantId: 00000000-0000-0000-0000-000000000003
    displayName: Typo
    orgUrl: https://typo.crm11.dynamics.com
    globalAdminUpn: admin@c.com
    serviceAccountUpn: svc@c.com
    timeZone: Europe/Londn
    solutionPackage: ../../etc/passwd
  - tenantId: 00000000-0000-0000-0000-000000000004
    displayName: Query
    orgUrl: https://q.crm.dynamics.com/?next=https://evil.example
    globalAdminUpn: admin@d.com
    serviceAccountUpn: svc@d.com
    licenseKeyRef: W365-SECRET-LICENCE-KEY-1234
  - tenantId: 00000000-0000-0000-0000-000000000005
    displayName: "Evil\e[2J"
    orgUrl: https://user:hunter2@evil.example.com:8443
    globalAdminUpn: admin@e.com
    serviceAccountUpn: svc@e.com
  - tenantId: 00000000-0000-0000-0000-000000000006
    displayName: Same org
    orgUrl: https://A.CRM.dynamics.com/
    globalAdminUpn: admin@f.com
    serviceAccountUpn: svc@f.com
  - tenantId: 00000000-0000-0000-0000-000000000007
    displayName: IP
    orgUrl: https://10.0.0.1
    globalAdminUpn: admin@g.com
    serviceAccountUpn: svc@g.com
`
	_, err := ParseWith("fleet.yaml", []byte(bad), Rules{Now: now})
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`fleet.yaml:18: tenant "Past": window.start: the window 2019-01-05T22:00 Europe/London for 6h closed at 2019-01-06 04:00 UTC, before now (2026-11-29 12:00 UTC): set a window in the future`,
		`fleet.yaml:24: tenant "Typo": timeZone: "Europe/Londn" is not a known IANA time zone`,
		`fleet.yaml:25: tenant "Typo": solutionPackage: must be a .zip file name inside the worker's packages folder`,
		`fleet.yaml:28: tenant "Query": orgUrl: https://q.crm.dynamics.com has a query (?…): remove it`,
		`fleet.yaml:31: tenant "Query": licenseKeyRef: is not a reference to where the key is kept`,
		`fleet.yaml:33: tenant "Evil\x1b[2J": displayName: contains the control character U+001B`,
		`fleet.yaml:34: tenant "Evil\x1b[2J": orgUrl: https://evil.example.com carries a user name or password`,
		`fleet.yaml:39: tenant "Same org": orgUrl: the organisation a.crm.dynamics.com is already listed at line 10`,
		`fleet.yaml:44: tenant "IP": orgUrl: https://10.0.0.1 is an IP address`,
	} {
		require.Contains(t, msg, want)
	}
	require.NotContains(t, msg, "hunter2", "a password in orgUrl is never repeated")
	require.NotContains(t, msg, "W365-SECRET", "a literal licence key is never repeated")
	require.NotContains(t, msg, "evil.example\n", "")
	for _, line := range strings.Split(msg, "\n") {
		require.Regexp(t, `^fleet\.yaml:\d+: tenant .*: [A-Za-z.\[\]0-9]+: `, line)
	}
}

func TestOrgHostAllowList(t *testing.T) {
	gov := strings.Replace(good, "https://a.crm.dynamics.com", "https://a.crm.microsoftdynamics.us", 1)
	_, err := ParseWith("f.yaml", []byte(gov), Rules{})
	require.ErrorContains(t, err, "f.yaml:10: tenant \"A\": orgUrl: https://a.crm.microsoftdynamics.us is not a Dataverse host allowed here (allowed: .crm*.dynamics.com;")
	hosts, err := spec.HostSuffixesFor([]string{"usgov-high"}, nil)
	require.NoError(t, err)
	_, err = ParseWith("f.yaml", []byte(gov), Rules{OrgHostSuffixes: hosts})
	require.NoError(t, err)
	for _, host := range []string{"https://a.crm.dynamics.com.evil.com", "https://crm.dynamics.com", "https://a.crmx.dynamics.com", "https://a.dynamics.com"} {
		_, err = ParseWith("f.yaml", []byte(strings.Replace(good, "https://a.crm.dynamics.com", host, 1)), Rules{})
		require.ErrorContains(t, err, "f.yaml:10: tenant \"A\": orgUrl: ", host)
	}
}

func TestMultiDocumentInventoryIsRefused(t *testing.T) {
	two := good + "---\n" + strings.Replace(good, "000000000001", "000000000002", 1)
	_, err := Parse("f.yaml", []byte(two))
	require.EqualError(t, err, "f.yaml:13: (document): a second YAML document starts here (a stray ---?): one file holds one document, so nothing after it would be read; remove the ---")
}

func TestExampleInventoryPassesTheStarterRules(t *testing.T) {
	_, err := LoadWith("../../examples/fleet.yaml", Rules{Now: now})
	require.NoError(t, err)
}
