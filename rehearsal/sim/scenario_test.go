package sim

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExampleScenarioLoads(t *testing.T) {
	s, err := LoadScenario("../../examples/sim-scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tenants) != 2 || s.Tenants[0].Jobs.ArrivePerMinute != 0.5 || s.PageSize != 50 {
		t.Fatalf("unexpected scenario: %+v", s)
	}
	if got := s.EffectiveAutopilot(s.Tenants[0]).Delays["begin-upgrade"]; len(got) != 2 {
		t.Fatalf("tenant delays not merged: %v", got)
	}
	if got := s.EffectiveAutopilot(s.Tenants[0]).Delays["get-consent"]; len(got) != 1 {
		t.Fatalf("scenario delays not inherited: %v", got)
	}
	New(s, Options{}) // must not panic
}

func TestScenarioErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown field", "seed: 1\ntenants:\n  - tenantId: x\n    colour: blue\n", "scn.yaml:4: tenants[0].colour: unknown field"},
		{"bad int", "tenants:\n  - jobs:\n      pending: lots\n", `scn.yaml:3: tenants[0].jobs.pending: cannot use "lots" as an integer`},
		{"bad duration", "linkValidity: fifteen\n", `scn.yaml:1: linkValidity: cannot use "fifteen" as a duration`},
		{"bad tenant id", "tenants:\n  - name: A\n    tenantId: not-a-guid\n", `scn.yaml:3: tenants[0].tenantId: "not-a-guid" is not a GUID`},
		{"ca without p1", validTenantYAML + "    conditionalAccessMfa: true\n", "scn.yaml:17: tenants[0].conditionalAccessMfa: conditional access needs entraP1: true"},
		{"syntax", "tenants: [\n", "scn.yaml:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseScenario("scn.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want it to contain %q", err, c.want)
			}
		})
	}
}

const validTenantYAML = `tenants:
  - tenantId: 6d2b1f0e-8a43-4c5e-9b7a-0f1e2d3c4b5a
    name: Contoso
    orgUrl: https://contoso.crm.dynamics.com
    work365Version: 2.1.0.3
    admin:
      upn: admin@contoso.onmicrosoft.com
      objectId: 11111111-1111-4111-8111-111111111111
      globalAdmin: true
      systemAdministrator: true
      dynamicsLicence: true
    serviceAccount:
      upn: svc@contoso.onmicrosoft.com
      objectId: 22222222-2222-4222-8222-222222222222
      dynamicsLicence: true
    entraP1: false
`

func TestGenerateIsDeterministicAndValid(t *testing.T) {
	a, b := Generate(40, 7), Generate(40, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different scenarios")
	}
	if reflect.DeepEqual(a, Generate(40, 8)) {
		t.Fatal("different seeds gave the same scenario")
	}
	if probs := a.Validate(); len(probs) > 0 {
		t.Fatalf("generated scenario is invalid: %v", probs[0])
	}
	var direct, installed, p1 int
	for _, tn := range a.Tenants {
		if tn.PartnerType == "direct" {
			direct++
		}
		if tn.Work365Version != "" {
			installed++
		}
		if tn.EntraP1 {
			p1++
		}
	}
	if direct == 0 || direct == 40 || installed == 0 || installed == 40 || p1 == 0 || p1 == 40 {
		t.Fatalf("generated tenants do not vary: direct %d installed %d p1 %d", direct, installed, p1)
	}
	c := New(a, Options{})
	if len(c.TenantIDs()) < 40 {
		t.Fatal("tenants missing")
	}
}

// TestScenarioAliasBombIsRefusedQuickly: the node decoder follows aliases, so the shared
// decoder's bound is what keeps a 4 KB file from taking seconds and hundreds of MB.
func TestScenarioAliasBombIsRefusedQuickly(t *testing.T) {
	var b strings.Builder
	b.WriteString("a: &a [x, x, x, x, x, x, x, x, x]\n")
	prev := "a"
	for _, l := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(l + ": &" + l + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+", ", 9), ", ") + "]\n")
		prev = l
	}
	b.WriteString("tenants: *i\n")
	start := time.Now()
	_, err := ParseScenario("bomb.yaml", []byte(b.String()))
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "bomb.yaml:2: (document): aliases expand the file to more than 1048576 nodes") {
		t.Fatalf("want the alias bound, got %v", err)
	}
	if took > 2*time.Second {
		t.Fatalf("took %v: refused before expanding (unbounded, a file like this took 6.5 s and 455 MB)", took)
	}
}

// TestSignInScenarioKeys: the desk's registration, the partner tenant and passwords are read
// from the file, defaulted when absent, and bad values are named with file:line.
func TestSignInScenarioKeys(t *testing.T) {
	const deskYAML = `desk:
  clientId: 1d35c000-0000-4000-8000-000000000001
  clientSecret: desk-secret
  redirectUris: [https://desk.csp.example/auth/callback]
partner:
  tenantId: 9a8b7c6d-0000-4000-8000-000000000000
  name: Our CSP
  operatorsGroup: {objectId: 9a8b7c6d-0000-4000-8000-0000000000aa, displayName: Operators}
  operators:
    - {upn: jane@ourcsp.onmicrosoft.com, objectId: 9a8b7c6d-0000-4000-8000-000000000001, password: Correct-Horse-1}
`
	s, err := ParseScenario("scn.yaml", []byte(deskYAML+validTenantYAML+"    partnerType: direct\n    partnerCenters:\n      - {name: eu, tenantId: 7e3c2a1f-9b54-4d6f-8c8b-1a2b3c4d5e6f}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := s.WithDefaults()
	if d.Desk.RedirectURIs[0] != "https://desk.csp.example/auth/callback" || d.Partner.Operators[0].Password != "Correct-Horse-1" {
		t.Fatalf("desk %+v partner %+v", d.Desk, d.Partner)
	}
	if d.Tenants[0].Admin.Password != DefaultPassword("admin@contoso.onmicrosoft.com") {
		t.Fatalf("admin password not defaulted: %q", d.Tenants[0].Admin.Password)
	}
	pc := d.Tenants[0].PartnerCenters[0].Admin
	if pc == nil || pc.UPN != "pcadmin@p7e3c2a1f.onmicrosoft.com" || !guidRE.MatchString(pc.ObjectID) || pc.Password == "" {
		t.Fatalf("partner center admin not defaulted: %+v", pc)
	}
	// Without the sections: the default desk and partner.
	s, err = ParseScenario("scn.yaml", []byte(validTenantYAML))
	if err != nil {
		t.Fatal(err)
	}
	if d := s.WithDefaults(); d.Desk.ClientID != DefaultDesk().ClientID || d.Partner.TenantID != DefaultPartner().TenantID {
		t.Fatalf("defaults: %+v %+v", d.Desk, d.Partner)
	}

	for _, c := range []struct{ name, yaml, want string }{
		{"password", strings.Replace(validTenantYAML, "      dynamicsLicence: true\n    serviceAccount:", "      dynamicsLicence: true\n      password: short\n    serviceAccount:", 1),
			"scn.yaml:12: tenants[0].admin.password: must be 8 to 256 characters (Entra ID's password policy), not 5"},
		{"http redirect", "desk:\n  clientId: 1d35c000-0000-4000-8000-000000000001\n  clientSecret: s\n  redirectUris:\n    - http://desk.example/cb\n",
			`scn.yaml:5: desk.redirectUris[0]: "http://desk.example/cb" must use https (http only for localhost or 127.0.0.1)`},
		{"no secret", "desk:\n  clientId: 1d35c000-0000-4000-8000-000000000001\n  redirectUris: [https://d.example/cb]\n",
			"scn.yaml:1: desk.clientSecret: is required"},
		{"desk is the orchestrator", "desk:\n  clientId: 0c1a5e00-0000-4000-8000-00000000c5b0\n  clientSecret: s\n  redirectUris: [https://d.example/cb]\n",
			"scn.yaml:2: desk.clientId: must differ from orchestrator.clientId"},
		{"partner is a customer", "partner:\n  tenantId: 6d2b1f0e-8a43-4c5e-9b7a-0f1e2d3c4b5a\n  name: P\n  operatorsGroup: {objectId: 9a8b7c6d-0000-4000-8000-0000000000aa}\n" + validTenantYAML,
			"scn.yaml:2: partner.tenantId: 6d2b1f0e-8a43-4c5e-9b7a-0f1e2d3c4b5a is a customer tenant"},
		{"one UPN two people", "partner:\n  tenantId: 9a8b7c6d-0000-4000-8000-000000000000\n  name: P\n  operatorsGroup: {objectId: 9a8b7c6d-0000-4000-8000-0000000000aa}\n  operators:\n    - upn: admin@contoso.onmicrosoft.com\n      objectId: 9a8b7c6d-0000-4000-8000-000000000001\n" + validTenantYAML,
			"scn.yaml:6: partner.operators[0].upn: admin@contoso.onmicrosoft.com is also tenants[0].admin"},
		{"bad group", "partner:\n  tenantId: 9a8b7c6d-0000-4000-8000-000000000000\n  name: P\n  operatorsGroup:\n    objectId: operators\n",
			`scn.yaml:5: partner.operatorsGroup.objectId: "operators" is not a GUID`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseScenario("scn.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want it to contain %q", err, c.want)
			}
		})
	}
}
