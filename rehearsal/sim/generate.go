package sim

import (
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"
)

// generatedNames, generatedZones and generatedVersions are the generator's vocabulary.
func generatedNames() []string {
	return []string{
		"Contoso", "Fabrikam", "Northwind", "Adatum", "Litware", "Tailspin", "Woodgrove", "Proseware",
		"Lamna", "Relecloud", "Trey", "Wingtip", "Alpine", "Coho", "Humongous", "Margie", "Lucerne", "Fourth Coffee",
	}
}

func generatedZones() []string {
	return []string{"UTC", "Europe/London", "America/New_York", "Australia/Sydney", "Europe/Berlin", "America/Los_Angeles"}
}

func generatedVersions() []string {
	return []string{"2.0.4.1", "2.1.0.3", "2.1.2.0", "2.2.1.5", "2.3.0.0", "2.4.1.7"}
}

// Generate makes a scenario of n varied tenants, deterministically from seed: same n and
// seed, same scenario. About a third are direct partners with Partner Center connections;
// versions, portal, roles, licences, MFA, P1, policies, jobs and durations vary. Faults and
// autopilot delays are left at zero for the caller to set.
func Generate(n int, seed int64) *Scenario {
	r := mrand.New(mrand.NewPCG(uint64(seed), 0x6e4e))
	chance := func(p float64) bool { return r.Float64() < p }
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	s := &Scenario{Seed: seed, Orchestrator: DefaultOrchestrator()}
	generatedNames, generatedZones, generatedVersions := generatedNames(), generatedZones(), generatedVersions()
	for i := 0; i < n; i++ {
		base := generatedNames[i%len(generatedNames)]
		slug := strings.ToLower(strings.ReplaceAll(base, " ", ""))
		if i >= len(generatedNames) {
			slug = fmt.Sprintf("%s%d", slug, i/len(generatedNames)+1)
		}
		domain := slug + ".onmicrosoft.com"
		t := Tenant{
			TenantID: guidFrom(r),
			Name:     fmt.Sprintf("%s %d", base, i+1),
			OrgURL:   fmt.Sprintf("https://%s.crm%s.dynamics.com", slug, pick([]string{"", "", "4", "11"})),
			TimeZone: pick(generatedZones),
			Admin: User{
				UPN: "admin@" + domain, ObjectID: guidFrom(r), GlobalAdmin: chance(0.9),
				SystemAdministrator: chance(0.85), DynamicsLicence: chance(0.8), MFARegistered: chance(0.5),
			},
			ServiceAccount: User{
				UPN: "work365svc@" + domain, ObjectID: guidFrom(r), DynamicsLicence: chance(0.9),
				MFARegistered: chance(0.3),
			},
			EntraP1:          chance(0.5),
			Work365Consented: chance(0.3),
			PartnerType:      "indirect",
			Jobs: Jobs{
				Pending:        r.IntN(40),
				DrainPerMinute: float64(1 + r.IntN(5)),
			},
			Import:    Operation{Duration: time.Duration(5+r.IntN(40)) * time.Minute},
			Uninstall: Operation{Duration: time.Duration(2+r.IntN(10)) * time.Minute},
			Upgrade:   Operation{Duration: time.Duration(2+r.IntN(15)) * time.Minute},
		}
		if chance(0.1) {
			t.Jobs.ArrivePerMinute = 1
		}
		if chance(0.9) {
			t.Work365Version = pick(generatedVersions)
			t.Portal = chance(0.4)
			t.ServiceAccount.ServiceRole = chance(0.6) && t.Work365Version >= "2.2"
			sre := t.Work365Version >= "2.2"
			t.ServiceRoleExists = &sre
		}
		switch {
		case t.EntraP1 && chance(0.5):
			t.ConditionalAccessMFA = true
		case chance(0.4):
			t.SecurityDefaults = true
		}
		if chance(0.05) {
			t.Import.Failures = 1
			t.Import.FailMessage = "Solution manifest import: FAILURE: a dependency is missing (simulated)."
		}
		if chance(0.35) {
			t.PartnerType = "direct"
			t.PartnerCenters = append(t.PartnerCenters, PartnerConnection{Name: slug + "-primary", TenantID: t.TenantID, Primary: true})
			if chance(0.5) {
				t.PartnerCenters = append(t.PartnerCenters, PartnerConnection{Name: slug + "-partner", TenantID: guidFrom(r), MFAPolicies: chance(0.5)})
			}
		}
		s.Tenants = append(s.Tenants, t)
	}
	return s
}
