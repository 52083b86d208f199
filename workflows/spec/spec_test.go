package spec

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func valid() Tenant {
	return Tenant{
		TenantID: "00000000-0000-0000-0000-000000000001", DisplayName: "Contoso",
		OrgURL: "https://contoso.crm.dynamics.com", PartnerType: Direct,
		GlobalAdminUPN: "admin@contoso.onmicrosoft.com", ServiceAccountUPN: "svc@contoso.onmicrosoft.com",
		TimeZone: "Europe/London", Window: Window{Start: "2026-12-05T22:00", Length: "4h"},
		TargetVersion: "2.5.0.1", SolutionPackage: "w365.zip",
		PartnerCenters: []PartnerCenter{{Name: "main", TenantID: "00000000-0000-0000-0000-000000000001", ConnectedToPrimary: true}},
	}
}

func fields(err error) []string {
	var out []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Field)
		}
	}
	return out
}

func TestValidSpec(t *testing.T) {
	require.NoError(t, valid().Validate())
}

func TestEveryProblemNamesItsField(t *testing.T) {
	tn := Tenant{
		TenantID: "contoso", OrgURL: "http://contoso", PartnerType: "reseller",
		GlobalAdminUPN: "admin", ServiceAccountUPN: "admin", TimeZone: "London",
		Window: Window{Start: "tomorrow", Length: "-1h"}, TargetVersion: "2.6",
		PartnerCenters: []PartnerCenter{{Name: "a", TenantID: "x"}, {Name: "a", TenantID: "00000000-0000-0000-0000-000000000009", ConnectedToPrimary: true}},
	}
	err := tn.Validate()
	require.Error(t, err)
	require.ElementsMatch(t, []string{"tenantId", "displayName", "orgUrl", "partnerType", "globalAdminUpn", "serviceAccountUpn",
		"serviceAccountUpn", "timeZone", "window.start", "window.length", "targetVersion", "solutionPackage",
		"partnerCenters[0].tenantId", "partnerCenters[1].name", "partnerCenters[1].tenantId"}, fields(err))
	require.Contains(t, err.Error(), `tenantId: "contoso" is not an Entra tenant ID`)
}

func TestIndirectWithPartnerCentersRefused(t *testing.T) {
	tn := valid()
	tn.PartnerType = Indirect
	require.Equal(t, []string{"partnerCenters"}, fields(tn.Validate()))
}

func TestLoadWindow(t *testing.T) {
	tn := valid()
	opens, closes, err := tn.LoadWindow()
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC), opens.UTC())
	require.Equal(t, 4*time.Hour, closes.Sub(opens))
	tn.TimeZone = "Europe/Atlantis"
	_, _, err = tn.LoadWindow()
	require.ErrorContains(t, err, "timeZone")
}

func TestVersions(t *testing.T) {
	require.Equal(t, 0, CompareVersions("2.5", "2.5.0.0"))
	require.Equal(t, -1, CompareVersions("2.1.0.9", "2.5.0.1"))
	require.Equal(t, 1, CompareVersions("2.10", "2.5"))
	require.Equal(t, -1, CompareVersions("", "2.5"))
	require.True(t, AtMost21("2.1.3.4"))
	require.True(t, AtMost21("2.0"))
	require.False(t, AtMost21("2.2"))
	require.False(t, AtMost21(""))
	_, err := ParseVersion("2.x")
	require.Error(t, err)
}
