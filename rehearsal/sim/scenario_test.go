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
