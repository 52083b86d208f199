package sim

import (
	"errors"
	"testing"
	"time"
)

// stage imports Work 365 2.5 as a holding solution in tenant A and waits for it.
func (e *env) stage() {
	e.t.Helper()
	e.dv(tenantA, orgA, "POST", "ImportSolutionAsync", importBody("Work365", "2.5.0.1", job1, true), 200)
	e.clock.Advance(10 * time.Minute)
}

func mustState(t *testing.T, c *Cloud, tenant string) TenantState {
	t.Helper()
	s, ok := c.State(tenant)
	if !ok {
		t.Fatalf("no tenant %s", tenant)
	}
	return s
}

func TestBeginUpgradeNeedsAValidLinkAndAStagedUpgrade(t *testing.T) {
	e := newEnv(t, nil)
	c := e.cloud
	// No link yet, nothing staged.
	if err := c.BeginUpgrade(tenantA, "made-up"); !errors.Is(err, ErrLinkUnknown) {
		t.Fatalf("unknown link: %v", err)
	}
	link, err := c.GetConsent(tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if link.ExpiresAt.Sub(link.IssuedAt) != 15*time.Minute {
		t.Fatalf("validity: %v", link)
	}
	if err := c.BeginUpgrade(tenantA, link.Token); !errors.Is(err, ErrNoStagedUpgrade) {
		t.Fatalf("nothing staged: %v", err)
	}
	e.stage()
	// The first link (issued 10 minutes ago) is still valid but the service account lacks its role.
	if err := c.BeginUpgrade(tenantA, link.Token); !errors.Is(err, ErrMissingRight) {
		t.Fatalf("service role missing: %v", err)
	}
	if err := c.AssignRole(tenantA, "svc@contoso.onmicrosoft.com", RoleWork365Service); err != nil {
		t.Fatalf("role after import: %v", err)
	}
	e.clock.Advance(6 * time.Minute) // 16 minutes after issue
	if err := c.BeginUpgrade(tenantA, link.Token); !errors.Is(err, ErrLinkExpired) {
		t.Fatalf("expired link: %v", err)
	}
	link2, err := c.GetConsent(tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.BeginUpgrade(tenantA, link2.Token); err != nil {
		t.Fatal(err)
	}
	if err := c.BeginUpgrade(tenantA, link2.Token); !errors.Is(err, ErrLinkUnknown) {
		t.Fatalf("a used link is spent: %v", err)
	}
	if s := mustState(t, c, tenantA); s.Work365Version != "2.1.0.3" || s.StagedVersion != "2.5.0.1" || s.RunningOperation == "" {
		t.Fatalf("upgrading: %+v", s)
	}
	e.clock.Advance(5 * time.Minute)
	s := mustState(t, c, tenantA)
	if s.Work365Version != "2.5.0.1" || s.StagedVersion != "" || s.RunningOperation != "" || !s.Work365Consented {
		t.Fatalf("promoted: %+v", s)
	}
	if sol := e.solution("Work365"); sol["version"] != "2.5.0.1" || e.solution("Work365_Upgrade") != nil {
		t.Fatalf("dataverse after promotion: %v", sol)
	}
	k := c.TenantCounters(tenantA)
	if k.BeginUpgradeAttempts != 6 || k.BeginUpgradeRefusals != 5 || k.Promotions != 1 || k.LinksIssued != 2 || k.Consents != 1 {
		t.Fatalf("counters: %+v", k)
	}
}

func TestConsentMakesServicePrincipalAndGrantAppear(t *testing.T) {
	e := newEnv(t, nil)
	appID := e.cloud.Names().AppID
	path := "servicePrincipals?$filter=" + q("appId eq '"+appID+"'")
	if sps := e.graphAll(tenantA, path); len(sps) != 0 {
		t.Fatalf("before: %v", sps)
	}
	if err := e.cloud.GrantAdminConsent(tenantA); err != nil {
		t.Fatal(err)
	}
	sps := e.graphAll(tenantA, path)
	if len(sps) != 1 {
		t.Fatalf("after: %v", sps)
	}
	grants := e.graphAll(tenantA, "servicePrincipals/"+sps[0]["id"].(string)+"/oauth2PermissionGrants")
	if len(grants) == 0 || grants[0]["consentType"] != "AllPrincipals" {
		t.Fatalf("grants: %v", grants)
	}
	// Consenting again changes nothing; MFA policies on make the admin register MFA at sign-in.
	if err := e.cloud.GrantAdminConsent(tenantA); err != nil {
		t.Fatal(err)
	}
	if k := e.cloud.TenantCounters(tenantA); k.Consents != 1 || k.Actions["grant-admin-consent"] != 2 {
		t.Fatalf("counters: %+v", k)
	}
}

func TestConsentRequiresTheRunbookRights(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.Tenants[0].Admin.DynamicsLicence = false; s.Tenants[0].Admin.GlobalAdmin = false })
	c := e.cloud
	if err := c.GrantAdminConsent(tenantA); !errors.Is(err, ErrMissingRight) {
		t.Fatalf("not a global admin: %v", err)
	}
	if err := c.AssignRole(tenantA, "admin@contoso.onmicrosoft.com", RoleGlobalAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetConsent(tenantA); !errors.Is(err, ErrMissingRight) {
		t.Fatalf("no dynamics licence: %v", err)
	}
	if err := c.AssignLicence(tenantA, "admin@contoso.onmicrosoft.com", LicenceDynamics); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetConsent(tenantA); err != nil {
		t.Fatal(err)
	}
	if err := c.AssignLicence(tenantB, "admin@fabrikam.onmicrosoft.com", LicenceEntraP1); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("no P1 in B: %v", err)
	}
	if k := c.TenantCounters(tenantA); k.ActionsRefused["grant-admin-consent"] != 1 || k.ActionsRefused["get-consent"] != 1 {
		t.Fatalf("refusals: %+v", k.ActionsRefused)
	}
}

func TestMFAAndPolicies(t *testing.T) {
	e := newEnv(t, nil)
	c := e.cloud
	if err := c.RegisterMFA(tenantA, "svc@contoso.onmicrosoft.com"); err != nil {
		t.Fatal(err)
	}
	if rd := e.graph(tenantA, "reports/authenticationMethods/userRegistrationDetails/"+svcA, 200); rd["isMfaRegistered"] != true {
		t.Fatalf("registered: %v", rd)
	}
	if err := c.EnableConditionalAccessMFA(tenantB); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("CA without P1: %v", err)
	}
	if err := c.EnableConditionalAccessMFA(tenantA); err != nil {
		t.Fatal(err)
	}
	if err := c.EnableSecurityDefaults(tenantA); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("security defaults with CA: %v", err)
	}
	found := false
	for _, p := range e.graphAll(tenantA, "identity/conditionalAccess/policies") {
		for _, b := range p["grantControls"].(map[string]any)["builtInControls"].([]any) {
			found = found || b == "mfa"
		}
	}
	if !found {
		t.Fatal("no CA policy requiring MFA")
	}
	if err := c.RegisterMFA(tenantA, "ghost@contoso.onmicrosoft.com"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := c.RegisterMFA("00000000-0000-0000-0000-000000000000", "x@y.z"); !errors.Is(err, ErrUnknownTenant) {
		t.Fatalf("unknown tenant: %v", err)
	}
}

func TestPartnerCenterReconsent(t *testing.T) {
	e := newEnv(t, nil)
	c := e.cloud
	probe := func(tenant string) int {
		st, _, _ := e.do("GET", "https://api.partnercenter.microsoft.com/v1/profiles/organization", e.token(tenant, PartnerCenterResource), nil)
		return st
	}
	if st := probe(partnerX); st != 401 {
		t.Fatalf("before reconsent: %d", st)
	}
	if err := c.ReconsentPartnerCenter(partnerX); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("reconsent without MFA policies: %v", err)
	}
	if err := c.EnableSecurityDefaults(partnerX); err != nil {
		t.Fatal(err)
	}
	if err := c.ReconsentPartnerCenter(partnerX); err != nil {
		t.Fatal(err)
	}
	// Partner Center takes App+User tokens only: app-only stays refused after the re-consent,
	// which shows instead as Work 365's delegated Partner Center grant in the partner tenant.
	if st := probe(partnerX); st != 401 {
		t.Fatalf("app-only after reconsent: %d", st)
	}
	sps := e.graphAll(partnerX, "servicePrincipals")
	ids := map[string]string{}
	for _, sp := range sps {
		ids[sp["appId"].(string)] = sp["id"].(string)
	}
	w365, pcSP := ids[c.Names().AppID], ids[PartnerCenterAppID]
	if w365 == "" || pcSP == "" {
		t.Fatalf("partner tenant's service principals: %v", sps)
	}
	grants := e.graphAll(partnerX, "servicePrincipals/"+w365+"/oauth2PermissionGrants")
	if len(grants) != 1 || grants[0]["resourceId"] != pcSP || grants[0]["scope"] != "user_impersonation" {
		t.Fatalf("Work 365's Partner Center grant: %v", grants)
	}
	if s := mustState(t, c, partnerX); s.Customer || s.PartnerCenterConsented == nil || !*s.PartnerCenterConsented {
		t.Fatalf("partner state: %+v", s)
	}
}

func TestNewInstallRegistrationAndInitialisation(t *testing.T) {
	e := newEnv(t, func(s *Scenario) {
		s.Tenants[0].Work365Version = ""
		s.Tenants[0].Portal = false
		s.Tenants[0].ServiceAccount.ServiceRole = true
	})
	c := e.cloud
	n := c.Names()
	e.dv(tenantA, orgA, "GET", n.JobsEntitySet+"?$count=true", nil, 404) // no Work 365 tables yet
	if err := c.SubmitRegistration(tenantA, "Contoso", "Europe/London", "vault:contoso"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("registration before install: %v", err)
	}
	e.dv(tenantA, orgA, "POST", "ImportSolutionAsync", importBody("Work365", "2.5.0.1", job1, false), 200)
	e.clock.Advance(10 * time.Minute)
	if _, err := c.GetConsent(tenantA); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("consent before registration: %v", err)
	}
	if err := c.SubmitRegistration(tenantA, "Contoso", "Europe/London", "vault:contoso"); err != nil {
		t.Fatal(err)
	}
	if err := c.SubmitRegistration(tenantA, "Contoso", "Europe/London", "vault:contoso"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("second registration: %v", err)
	}
	link, err := c.GetConsent(tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.BeginUpgrade(tenantA, link.Token); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Minute)
	s := mustState(t, c, tenantA)
	if s.Work365Version != "2.5.0.1" || !s.Registered || s.Registration.TimeZone != "Europe/London" {
		t.Fatalf("state: %+v", s)
	}
	link, _ = c.GetConsent(tenantA)
	if err := c.BeginUpgrade(tenantA, link.Token); !errors.Is(err, ErrNoStagedUpgrade) {
		t.Fatalf("second initialisation: %v", err)
	}
	if k := c.TenantCounters(tenantA); k.Initialisations != 1 || k.Registrations != 1 {
		t.Fatalf("counters: %+v", k)
	}
}
