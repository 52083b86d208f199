package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckOrgURL(t *testing.T) {
	for _, ok := range []string{"https://contoso.crm.dynamics.com", "https://Contoso.CRM4.dynamics.com/", "https://x-1.crm11.dynamics.com", "https://contoso.api.crm.dynamics.com"} {
		host, err := CheckOrgURL(ok, nil)
		require.NoError(t, err, ok)
		require.Equal(t, strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(ok, "https://"), "/")), host)
	}
	for bad, want := range map[string]string{
		"http://contoso.crm.dynamics.com":               "must start with https://",
		"https://attacker.example.com":                  "https://attacker.example.com is not a Dataverse host allowed here (allowed: .crm*.dynamics.com;",
		"https://contoso.crm.dynamics.com.evil.com":     "is not a Dataverse host allowed here",
		"https://crm.dynamics.com":                      "is not a Dataverse host allowed here",
		"https://contoso.crmx.dynamics.com":             "is not a Dataverse host allowed here",
		"https://20.50.1.2":                             "is an IP address",
		"https://[::1]":                                 "is an IP address",
		"https://contoso.crm.dynamics.com:8443":         "names a port",
		"https://admin:s3cret@contoso.crm.dynamics.com": "carries a user name or password",
		"https://contoso.crm.dynamics.com/?x=1":         "has a query",
		"https://contoso.crm.dynamics.com?":             "has a query",
		"https://contoso.crm.dynamics.com#frag":         "has a fragment",
		"https://contoso.crm.dynamics.com/main.aspx":    "has a path",
		"https://contoso_x.crm.dynamics.com":            "is not a DNS host name",
		"https:contoso":                                 "is not a URL",
		"https://contoso.crm.microsoftdynamics.us":      "is not a Dataverse host allowed here",
	} {
		_, err := CheckOrgURL(bad, nil)
		require.ErrorContains(t, err, want, bad)
		require.NotContains(t, err.Error(), "s3cret")
	}
	gov, err := HostSuffixesFor([]string{CloudUSGovHigh, CloudUSGovDoD, CloudChina}, nil)
	require.NoError(t, err)
	for _, ok := range []string{"https://a.crm.microsoftdynamics.us", "https://a.crm.appsplatform.us", "https://a.crm.dynamics.cn"} {
		_, err := CheckOrgURL(ok, gov)
		require.NoError(t, err, ok)
	}
	_, err = CheckOrgURL("https://a.crm.dynamics.com", gov)
	require.Error(t, err, "the public cloud is not in that list")
}

func TestCheckPackageRef(t *testing.T) {
	for _, ok := range []string{"w.zip", "work365/Work365_2_5_0_1_managed.zip", "a/b/c/d.ZIP"} {
		require.NoError(t, CheckPackageRef(ok), ok)
	}
	for _, bad := range []string{"../../etc/passwd", "/etc/passwd.zip", `..\x.zip`, "work365/../../x.zip", "./w.zip", ".hidden.zip", "a/b/c/d/e.zip", "w.txt", "", "a//b.zip", "w\n.zip"} {
		require.Error(t, CheckPackageRef(bad), bad)
	}
}

func TestCheckSecretRefNeverRepeatsTheValue(t *testing.T) {
	require.NotContains(t, CheckSecretRef("W365-AAAA-BBBB-CCCC").Error(), "W365")
	for _, ok := range []string{"vault://work365/licences/northwind", "https://partner-kv.vault.azure.net/secrets/work365-contoso",
		"https://partner-kv.vault.azure.net/secrets/work365-contoso/0123456789abcdef0123456789abcdef"} {
		require.NoError(t, CheckSecretRef(ok), ok)
	}
	for _, bad := range []string{"W365-AAAA-BBBB-CCCC", "vault://", "https://evil.example.com/secrets/x", "vault://a/../b", "https://kv.vault.azure.net/keys/x"} {
		require.Error(t, CheckSecretRef(bad), bad)
	}
}

func TestCheckTextAndPrintable(t *testing.T) {
	require.NoError(t, CheckText("Jane (Contoso) — é ✓", MaxNameLen))
	require.ErrorContains(t, CheckText("a\x1b[2Jb", MaxNameLen), "U+001B")
	require.ErrorContains(t, CheckText("a\u202eb", MaxNameLen), "U+202E")
	require.ErrorContains(t, CheckText(strings.Repeat("é", 129), MaxNameLen), "129 characters long; at most 128")
	require.ErrorContains(t, CheckText("\xff", MaxNameLen), "not valid UTF-8")
	require.Equal(t, "title red text", Printable("title \x1b]0;x\x07\x1b[31mred\x1b[0m\x00 text", 0))
	require.Equal(t, "a b\uFFFD", Printable("a\nb\xff", 0))
	require.Equal(t, "abc…", Printable("abcdef", 3))
}

func TestCheckInputWindowAndTimeZone(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ten := Tenant{DisplayName: "A", TimeZone: "Europe/London", Window: Window{Start: "2026-11-29T08:00", Length: "6h"}}
	require.NoError(t, ten.CheckInput(InputRules{Now: now}), "a window still open may start now")
	ten.Window.Length = "2h"
	require.ErrorContains(t, ten.CheckInput(InputRules{Now: now}), "window.start: the window 2026-11-29T08:00 Europe/London for 2h closed at 2026-11-29 10:00 UTC")
	require.NoError(t, ten.CheckInput(InputRules{}), "without a clock the window is not judged")
	ten.TimeZone = "Europe/Londn"
	require.ErrorContains(t, ten.CheckInput(InputRules{Now: now}), `timeZone: "Europe/Londn" is not a known IANA time zone`)
}
