package inventory

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	require.Contains(t, msg, `fleet.yaml:19: tenantId: 00000000-0000-0000-0000-000000000001 is already listed at line 8`)
}

func TestUnknownKeyAndDefaultsLine(t *testing.T) {
	_, err := Parse("f.yaml", []byte(strings.Replace(good, "    displayName: A\n", "    displayname: A\n", 1)))
	require.ErrorContains(t, err, "f.yaml:9: field displayname not found")
	_, err = Parse("f.yaml", []byte(strings.Replace(good, "targetVersion: 2.5.0.1", "targetVersion: 2.4", 1)))
	require.ErrorContains(t, err, `f.yaml:4: tenant "A": targetVersion: "2.4" is not a 2.5.x version`)
	_, err = Parse("f.yaml", []byte("tenants: []\n"))
	require.ErrorContains(t, err, "f.yaml:1: tenants: the inventory lists no tenant")
	_, err = Parse("f.yaml", []byte("tenants: [\n"))
	require.ErrorContains(t, err, "f.yaml:")
}
