package sim

import (
	"fmt"
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/microsoft/work365"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Scenario describes the simulated cloud: the orchestrator application, the customer
// tenants and how the cloud behaves. Load reads one from YAML; Generate makes one.
type Scenario struct {
	// Seed drives every pseudo-random choice (identifiers, faults): same seed, same run.
	Seed int64 `yaml:"seed"`
	// Start is the simulated time when a FakeClock is made from the scenario (NewClock).
	Start time.Time `yaml:"start"`
	// Orchestrator is the multi-tenant application the upgrade runs as.
	Orchestrator App `yaml:"orchestrator"`
	// Desk is the task desk's application registration: people sign in to it with the
	// authorization code flow (default DefaultDesk).
	Desk DeskApp `yaml:"desk"`
	// Partner is the CSP's own tenant, where operators sign in (default DefaultPartner).
	Partner *PartnerTenant `yaml:"partner"`
	// Names overrides Work 365's private names; empty fields keep work365.DefaultNames().
	Names work365.Names `yaml:"names"`
	// LinkValidity is how long Work 365's upgrade link stays valid (default 15m).
	LinkValidity time.Duration `yaml:"linkValidity"`
	// TokenLifetime is the lifetime of issued access tokens (default 1h). Rehearsals with a
	// fast clock need it long: MSAL caches tokens by wall time.
	TokenLifetime time.Duration `yaml:"tokenLifetime"`
	// PageSize is the largest page of a Graph list (default 100); $top can ask for less.
	PageSize int `yaml:"pageSize"`
	// DataversePageSize is the largest page of a Dataverse list (default 5000, Dataverse's);
	// a request's Prefer: odata.maxpagesize can ask for less.
	DataversePageSize int `yaml:"dataversePageSize"`
	// Faults apply to tenants that have none of their own.
	Faults Faults `yaml:"faults"`
	// Limits are the service protection budgets of Dataverse and Graph (default: Microsoft's
	// documented numbers; budget.go).
	Limits Limits `yaml:"limits"`
	// Autopilot holds the human autopilot's defaults for tenants that set none.
	Autopilot AutopilotConfig `yaml:"autopilot"`
	// Tenants are the customer tenants.
	Tenants []Tenant `yaml:"tenants"`
}

// App is the orchestrator's application registration.
type App struct {
	// ClientID is the application (client) ID.
	ClientID string `yaml:"clientId"`
	// ClientSecret is accepted as client_secret; empty means secrets are refused.
	ClientSecret string `yaml:"clientSecret"`
	// Certificate true accepts any well-formed client_assertion JWT for this client.
	Certificate bool `yaml:"certificate"`
	// DisplayName names the app's service principals.
	DisplayName string `yaml:"displayName"`
	// Permissions are the Microsoft Graph application permissions admin-consented to the app
	// in every tenant; Graph tokens carry them as roles and Graph refuses a call whose
	// permission is missing (403 Authorization_RequestDenied). Default: DefaultPermissions.
	Permissions []string `yaml:"permissions"`
}

// DeskApp is the task desk's application registration: a multi-tenant confidential client
// (a web app with a client secret) whose people sign in through the authorization code flow
// with PKCE. Redirect URIs on http://localhost or http://127.0.0.1 match whatever the port,
// as Entra ID's loopback rule says.
// https://learn.microsoft.com/entra/identity-platform/reply-url
type DeskApp struct {
	// ClientID is the application (client) ID.
	ClientID string `yaml:"clientId"`
	// ClientSecret is the client secret the desk redeems codes with (a file in production,
	// never a workflow input).
	ClientSecret string `yaml:"clientSecret"`
	// RedirectURIs are the registered reply URLs; authorize and token requests must name one.
	RedirectURIs []string `yaml:"redirectUris"`
	// DisplayName is the app's name shown on the sign-in page.
	DisplayName string `yaml:"displayName"`
}

// DefaultDesk is the desk registration used when a scenario names none: its redirect URIs
// are the loopback callback of a desk on any port.
func DefaultDesk() DeskApp {
	return DeskApp{
		ClientID:     "0c1a5e00-0000-4000-8000-00000000de5c",
		ClientSecret: "sim-desk-secret",
		RedirectURIs: []string{"http://localhost/auth/callback", "http://127.0.0.1/auth/callback"},
		DisplayName:  "Work 365 Upgrade Task Desk",
	}
}

// PartnerTenant is the CSP's own Entra tenant: its operators confirm tasks on the desk and
// must be members of the operators' security group (the ID token's groups claim).
type PartnerTenant struct {
	// TenantID is the partner's Entra tenant ID.
	TenantID string `yaml:"tenantId"`
	// Name is the partner's organisation name.
	Name string `yaml:"name"`
	// OperatorsGroup is the security group whose members are operators.
	OperatorsGroup Group `yaml:"operatorsGroup"`
	// Operators are the members of OperatorsGroup.
	Operators []User `yaml:"operators"`
	// Users are other people of the partner tenant (not operators): they can sign in, and
	// the desk must refuse them operator tasks.
	Users []User `yaml:"users"`
}

// Group is an Entra security group.
type Group struct {
	// ObjectID is the group's object ID, as the groups claim carries it.
	ObjectID string `yaml:"objectId"`
	// DisplayName names the group.
	DisplayName string `yaml:"displayName"`
}

// DefaultPartner is the partner tenant used when a scenario names none: one operator in the
// operators' group and one colleague who is not.
func DefaultPartner() PartnerTenant {
	return PartnerTenant{
		TenantID:       "c5b0a000-0000-4000-8000-00000000c5b0",
		Name:           "CSP Partner",
		OperatorsGroup: Group{ObjectID: "c5b0a000-0000-4000-8000-0000000090e5", DisplayName: "Work 365 upgrade operators"},
		Operators:      []User{{UPN: "operator@csppartner.onmicrosoft.com", ObjectID: "c5b0a000-0000-4000-8000-000000000001", DisplayName: "On-call Operator"}},
		Users:          []User{{UPN: "sales@csppartner.onmicrosoft.com", ObjectID: "c5b0a000-0000-4000-8000-000000000002", DisplayName: "Sales Colleague"}},
	}
}

// DefaultPassword is the sign-in password of a user whose scenario entry sets none
// (generated fleets): deterministic, so the autopilot and tests can sign in as anyone.
func DefaultPassword(upn string) string { return "Sim-" + strings.ToLower(upn) }

// DefaultPermissions are the Graph application permissions of the permissions manifest (what
// the README asks administrators to grant).
func DefaultPermissions() []string { return permissions.AppRoles() }

// Tenant is one customer tenant with its Dynamics 365 organisation.
type Tenant struct {
	// TenantID is the Entra tenant ID (GUID).
	TenantID string `yaml:"tenantId"`
	// Name is the organisation's name.
	Name string `yaml:"name"`
	// OrgURL is the Dataverse organisation URL, https://{org}.crm[N].dynamics.com.
	OrgURL string `yaml:"orgUrl"`
	// TimeZone is what the autopilot submits on the registration form (default UTC).
	TimeZone string `yaml:"timeZone"`
	// Window is the downtime window the rehearsal's inventory gives the tenant, relative to
	// the rehearsal's start (default: opens now, 8h long). A negative OpensIn with a short
	// Length is a window that has already closed.
	Window *WindowSpec `yaml:"window,omitempty"`
	// Work365Version is the installed Work 365 solution version; empty: not installed.
	Work365Version string `yaml:"work365Version"`
	// Portal is true when the portal solution is installed.
	Portal bool `yaml:"portal"`
	// PortalVersion is the installed portal version (default 1.0.0.0).
	PortalVersion string `yaml:"portalVersion"`
	// Registered tells whether Work 365 registration was done (default: Work 365 installed).
	Registered *bool `yaml:"registered"`
	// ServiceRoleExists tells whether the 'Work 365 Service' role exists in the organisation
	// (default: Work 365 installed at a version above 2.1). A successful Work 365 import
	// creates it.
	ServiceRoleExists *bool `yaml:"serviceRoleExists"`
	// PartnerType is "direct" or "indirect" (default indirect).
	PartnerType string `yaml:"partnerType"`
	// Admin is the Global Administrator who imports and consents.
	Admin User `yaml:"admin"`
	// ServiceAccount is the Work 365 service account that clicks Begin Upgrade.
	ServiceAccount User `yaml:"serviceAccount"`
	// EntraP1 is true when the tenant owns Entra ID P1 (AAD_PREMIUM).
	EntraP1 bool `yaml:"entraP1"`
	// SecurityDefaults is true when security defaults are enabled.
	SecurityDefaults bool `yaml:"securityDefaults"`
	// ConditionalAccessMFA is true when an enabled conditional access policy requires MFA
	// (needs EntraP1; excludes SecurityDefaults).
	ConditionalAccessMFA bool `yaml:"conditionalAccessMfa"`
	// ConditionalAccessStrength makes that policy require an authentication strength
	// (grantControls.authenticationStrength) instead of the built-in "mfa" control.
	ConditionalAccessStrength bool `yaml:"conditionalAccessStrength"`
	// ConditionalAccessGroup scopes that policy to a group holding the admin and the service
	// account instead of all users.
	ConditionalAccessGroup bool `yaml:"conditionalAccessGroup"`
	// OrchestratorConsented tells whether the orchestrator app was admin-consented (default true).
	OrchestratorConsented *bool `yaml:"orchestratorConsented"`
	// DataverseAppUser tells whether the orchestrator has an application user in the
	// organisation (default true).
	DataverseAppUser *bool `yaml:"dataverseAppUser"`
	// OrchestratorPermissions are the Graph application permissions admin-consented to the
	// orchestrator in this tenant (default: orchestrator.permissions): a tenant that consented
	// fewer. Its Graph tokens carry these roles.
	OrchestratorPermissions []string `yaml:"orchestratorPermissions"`
	// Work365Consented is true when the Work 365 app's service principal and tenant-wide grant
	// already exist.
	Work365Consented bool `yaml:"work365Consented"`
	// Jobs are Work 365's background jobs.
	Jobs Jobs `yaml:"jobs"`
	// Import shapes solution imports (duration; failures apply to the Work 365 solution).
	Import Operation `yaml:"import"`
	// Uninstall shapes solution uninstalls.
	Uninstall Operation `yaml:"uninstall"`
	// Upgrade shapes the promotion that Begin Upgrade starts.
	Upgrade Operation `yaml:"upgrade"`
	// PartnerCenters are a direct partner's Partner Center connections.
	PartnerCenters []PartnerConnection `yaml:"partnerCenters"`
	// Faults override the scenario's faults for this tenant.
	Faults *Faults `yaml:"faults"`
	// Autopilot overrides the scenario's autopilot settings for this tenant (merged by key).
	Autopilot *AutopilotConfig `yaml:"autopilot"`
}

// User is a user of a tenant.
type User struct {
	// UPN is the user principal name.
	UPN string `yaml:"upn"`
	// ObjectID is the Entra object ID (GUID).
	ObjectID string `yaml:"objectId"`
	// DisplayName defaults to the UPN's local part.
	DisplayName string `yaml:"displayName"`
	// GlobalAdmin is true when the user holds Global Administrator (actively).
	GlobalAdmin bool `yaml:"globalAdmin"`
	// GlobalAdminVia says how: "direct" (default), "group" (assigned to a role-assignable
	// group the user is a member of; needs globalAdmin), or "eligible" (eligible in PIM and
	// not activated; needs globalAdmin false).
	GlobalAdminVia string `yaml:"globalAdminVia"`
	// SystemAdministrator is true when the user holds System Administrator in Dynamics 365.
	SystemAdministrator bool `yaml:"systemAdministrator"`
	// ServiceRole is true when the user holds 'Work 365 Service' in Dynamics 365.
	ServiceRole bool `yaml:"serviceRole"`
	// DynamicsLicence is true when the user has a Dynamics 365 licence.
	DynamicsLicence bool `yaml:"dynamicsLicence"`
	// MFARegistered is true when the user registered MFA methods.
	MFARegistered bool `yaml:"mfaRegistered"`
	// Disabled is true when the account is disabled.
	Disabled bool `yaml:"disabled"`
	// Password is what the user types on the simulated sign-in page (default
	// DefaultPassword(upn)).
	Password string `yaml:"password"`
}

// Jobs are Work 365's background jobs in the organisation.
type Jobs struct {
	// Pending is the number of pending jobs at the start.
	Pending int `yaml:"pending"`
	// DrainPerMinute is how many pending jobs finish per simulated minute.
	DrainPerMinute float64 `yaml:"drainPerMinute"`
	// ArrivePerMinute is how many new jobs arrive per minute while activity is not frozen.
	ArrivePerMinute float64 `yaml:"arrivePerMinute"`
}

// Operation shapes a long-running operation.
type Operation struct {
	// Duration is the simulated time it takes (defaults: import 10m, uninstall 5m, upgrade 5m).
	Duration time.Duration `yaml:"duration"`
	// Failures is how many of the first attempts fail.
	Failures int `yaml:"failures"`
	// FailMessage is the failure's message.
	FailMessage string `yaml:"failMessage"`
	// StartDelay is how long an accepted import waits before its asynchronous operation
	// starts and creates the import job row (imports only; default DefaultImportStartDelay;
	// negative: none).
	StartDelay time.Duration `yaml:"startDelay"`
}

// PartnerConnection is one Partner Center connection of a direct partner.
type PartnerConnection struct {
	// Name is the provider's name in Work 365.
	Name string `yaml:"name"`
	// TenantID is the partner tenant the Partner Center account lives in.
	TenantID string `yaml:"tenantId"`
	// Primary is true when TenantID is the customer tenant itself.
	Primary bool `yaml:"primary"`
	// MFAPolicies is true when MFA policies are on in a non-primary partner tenant (the
	// primary tenant's own settings apply to it).
	MFAPolicies bool `yaml:"mfaPolicies"`
	// Consented is true when the connection needs no re-consent.
	Consented bool `yaml:"consented"`
	// Admin is the partner admin (admin agent) of the Partner Center account, who signs in
	// to the desk for the connection's tasks. Default: the customer's admin for the primary
	// connection, pcadmin@p{first part of the tenant ID}.onmicrosoft.com in a partner tenant.
	Admin *User `yaml:"admin"`
}

// Faults inject throttling, outages and latency into API calls (not into token requests),
// deterministically from the scenario's seed.
type Faults struct {
	// ThrottleRate is the probability (0..1) that a call is answered 429.
	ThrottleRate float64 `yaml:"throttleRate"`
	// RetryAfter is the Retry-After of 429 and 503 answers (default 1s, whole seconds).
	RetryAfter time.Duration `yaml:"retryAfter"`
	// UnavailableRate is the probability (0..1) that a call is answered 503.
	UnavailableRate float64 `yaml:"unavailableRate"`
	// Latency is real time added to every API call.
	Latency time.Duration `yaml:"latency"`
}

// WindowSpec places a tenant's downtime window relative to the rehearsal's start.
type WindowSpec struct {
	OpensIn time.Duration `yaml:"opensIn"`
	Length  time.Duration `yaml:"length"`
}

// AutopilotConfig tells the human autopilot how people behave. Keys are task kinds
// (workflows.TaskKind values such as "begin-upgrade").
type AutopilotConfig struct {
	// Delays is how long people take for each task kind, one entry per successive task of
	// that kind in the tenant (the last entry repeats). Missing: act at once.
	Delays map[string][]time.Duration `yaml:"delays"`
	// Decisions is what the operator decides for decision tasks, per successive task (the
	// last repeats). Missing: keep-waiting, or retry where keep-waiting is not offered.
	Decisions map[string][]string `yaml:"decisions"`
	// Ignore lists task kinds nobody acts on (to exercise reminders and escalations).
	Ignore []string `yaml:"ignore"`
	// NoAction lists task kinds people confirm without doing what they were asked (a Global
	// Administrator who confirms Get Consent without accepting the permissions).
	NoAction []string `yaml:"noAction"`
	// ConfirmAfter is how long after acting people confirm, per task kind and successive task
	// (the last repeats): a confirmation that may reach a task that already closed.
	ConfirmAfter map[string][]time.Duration `yaml:"confirmAfter"`
	// ViaSignal lists task kinds people confirm by Signal (the fallback while no worker runs)
	// instead of an Update.
	ViaSignal []string `yaml:"viaSignal"`
}

// Defaults.
const (
	DefaultLinkValidity      = 15 * time.Minute
	DefaultTokenLifetime     = time.Hour
	DefaultPageSize          = 100
	DefaultDataversePageSize = 5000
	DefaultImportDuration    = 10 * time.Minute
	DefaultUninstallDuration = 5 * time.Minute
	DefaultUpgradeDuration   = 5 * time.Minute
	DefaultImportStartDelay  = 5 * time.Second
)

// DefaultWork365AppID is the simulated Work 365 application's ID (Names.AppID unless the
// scenario sets one); rehearsals configure the worker with it.
const DefaultWork365AppID = "5b3e7d1c-0a65-4c1e-9d39-5131a0000365"

// DefaultOrchestrator is the application used when a scenario names none.
func DefaultOrchestrator() App {
	return App{
		ClientID:     "0c1a5e00-0000-4000-8000-00000000c5b0",
		ClientSecret: "sim-orchestrator-secret",
		Certificate:  true,
		DisplayName:  "CSP Work 365 Upgrade Orchestrator",
	}
}

// WithDefaults returns a copy of the scenario with every default filled in.
func (s Scenario) WithDefaults() Scenario {
	if s.Orchestrator.ClientID == "" {
		perms := s.Orchestrator.Permissions
		s.Orchestrator = DefaultOrchestrator()
		s.Orchestrator.Permissions = perms
	}
	if s.Orchestrator.DisplayName == "" {
		s.Orchestrator.DisplayName = "Orchestrator"
	}
	if s.Orchestrator.Permissions == nil {
		s.Orchestrator.Permissions = DefaultPermissions()
	}
	if s.Desk.ClientID == "" && s.Desk.ClientSecret == "" && len(s.Desk.RedirectURIs) == 0 {
		name := s.Desk.DisplayName
		s.Desk = DefaultDesk()
		if name != "" {
			s.Desk.DisplayName = name
		}
	}
	if s.Desk.DisplayName == "" {
		s.Desk.DisplayName = "Task desk"
	}
	s.Desk.RedirectURIs = append([]string(nil), s.Desk.RedirectURIs...)
	partner := DefaultPartner()
	if s.Partner != nil {
		partner = *s.Partner
	}
	partner.Operators = userDefaults(partner.Operators)
	partner.Users = userDefaults(partner.Users)
	s.Partner = &partner
	def := work365.DefaultNames()
	def.AppID = DefaultWork365AppID
	s.Names = s.Names.Or(def)
	if s.LinkValidity <= 0 {
		s.LinkValidity = DefaultLinkValidity
	}
	if s.TokenLifetime <= 0 {
		s.TokenLifetime = DefaultTokenLifetime
	}
	if s.PageSize <= 0 {
		s.PageSize = DefaultPageSize
	}
	if s.DataversePageSize <= 0 {
		s.DataversePageSize = DefaultDataversePageSize
	}
	s.Limits = s.Limits.WithDefaults()
	if s.Start.IsZero() {
		s.Start = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	}
	tenants := make([]Tenant, len(s.Tenants))
	for i, t := range s.Tenants {
		if t.TimeZone == "" {
			t.TimeZone = "UTC"
		}
		if t.PartnerType == "" {
			t.PartnerType = "indirect"
		}
		if t.Portal && t.PortalVersion == "" {
			t.PortalVersion = "1.0.0.0"
		}
		installed := t.Work365Version != ""
		if t.Registered == nil {
			t.Registered = &installed
		}
		if t.ServiceRoleExists == nil {
			v := installed && !spec.AtMost21(t.Work365Version)
			t.ServiceRoleExists = &v
		}
		yes := true
		if t.OrchestratorConsented == nil {
			t.OrchestratorConsented = &yes
		}
		if t.DataverseAppUser == nil {
			v := true
			t.DataverseAppUser = &v
		}
		if t.Import.Duration <= 0 {
			t.Import.Duration = DefaultImportDuration
		}
		switch {
		case t.Import.StartDelay == 0:
			t.Import.StartDelay = DefaultImportStartDelay
		case t.Import.StartDelay < 0:
			t.Import.StartDelay = 0
		}
		if t.Uninstall.Duration <= 0 {
			t.Uninstall.Duration = DefaultUninstallDuration
		}
		if t.Upgrade.Duration <= 0 {
			t.Upgrade.Duration = DefaultUpgradeDuration
		}
		for _, u := range []*User{&t.Admin, &t.ServiceAccount} {
			userDefault(u)
		}
		t.PartnerCenters = append([]PartnerConnection(nil), t.PartnerCenters...)
		for j := range t.PartnerCenters {
			pc := &t.PartnerCenters[j]
			var admin User
			switch {
			case pc.Admin != nil:
				admin = *pc.Admin
			case pc.Primary:
				admin = t.Admin
			default:
				// Named after the partner tenant, not the connection: several customers'
				// connections to one partner tenant share its admin.
				short, _, _ := strings.Cut(strings.ToLower(pc.TenantID), "-")
				admin = User{UPN: "pcadmin@p" + short + ".onmicrosoft.com", ObjectID: guidFrom(seededRand(s.Seed, pc.TenantID+"/pcadmin")), DisplayName: "Partner admin"}
			}
			userDefault(&admin)
			pc.Admin = &admin
		}
		tenants[i] = t
	}
	s.Tenants = tenants
	return s
}

// userDefault fills a user's display name and password.
func userDefault(u *User) {
	if u.DisplayName == "" {
		u.DisplayName, _, _ = strings.Cut(u.UPN, "@")
	}
	if u.Password == "" {
		u.Password = DefaultPassword(u.UPN)
	}
}

func userDefaults(us []User) []User {
	out := append([]User(nil), us...)
	for i := range out {
		userDefault(&out[i])
	}
	return out
}

// NewClock returns a FakeClock at the scenario's start (or its default start).
func (s Scenario) NewClock() *FakeClock { return NewFakeClock(s.WithDefaults().Start) }

var (
	guidRE    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	upnRE     = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	versionRE = regexp.MustCompile(`^\d+(\.\d+){1,3}$`)
	orgHostRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*\.crm[0-9]*\.dynamics\.com$`)
)

// FieldProblem is one problem of a scenario: the field's path (e.g. tenants[2].admin.upn)
// and, when the scenario came from a file, where.
type FieldProblem struct {
	File    string
	Line    int
	Field   string
	Problem string
}

func (e *FieldProblem) Error() string {
	loc := ""
	switch {
	case e.File != "" && e.Line > 0:
		loc = fmt.Sprintf("%s:%d: ", e.File, e.Line)
	case e.File != "":
		loc = e.File + ": "
	case e.Line > 0:
		loc = fmt.Sprintf("line %d: ", e.Line)
	}
	return loc + e.Field + ": " + e.Problem
}

// Validate checks the scenario (after defaults) and returns every problem as *FieldProblem.
func (s Scenario) Validate() []*FieldProblem {
	var out []*FieldProblem
	bad := func(field, format string, args ...any) {
		out = append(out, &FieldProblem{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	s.Limits.problems(bad)
	s = s.WithDefaults()
	if !guidRE.MatchString(s.Orchestrator.ClientID) {
		bad("orchestrator.clientId", "%q is not a GUID", s.Orchestrator.ClientID)
	}
	if s.Orchestrator.ClientSecret == "" && !s.Orchestrator.Certificate {
		bad("orchestrator", "needs a clientSecret or certificate: true")
	}
	if !guidRE.MatchString(s.Names.AppID) {
		bad("names.appId", "%q is not a GUID", s.Names.AppID)
	}
	checkFaults := func(field string, f Faults) {
		if f.ThrottleRate < 0 || f.ThrottleRate > 1 {
			bad(field+".throttleRate", "%v is not a probability between 0 and 1", f.ThrottleRate)
		}
		if f.UnavailableRate < 0 || f.UnavailableRate > 1 || f.ThrottleRate+f.UnavailableRate > 1 {
			bad(field+".unavailableRate", "%v is not a probability between 0 and 1 - throttleRate", f.UnavailableRate)
		}
		if f.RetryAfter < 0 || f.Latency < 0 {
			bad(field, "durations must not be negative")
		}
	}
	checkAutopilot := func(field string, a AutopilotConfig) {
		for k, ds := range a.Delays {
			for i, d := range ds {
				if d < 0 {
					bad(fmt.Sprintf("%s.delays.%s[%d]", field, k, i), "must not be negative")
				}
			}
		}
	}
	checkFaults("faults", s.Faults)
	checkAutopilot("autopilot", s.Autopilot)
	s.checkSignIn(bad)
	ids, orgs := map[string]int{}, map[string]int{}
	for i, t := range s.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		if !guidRE.MatchString(t.TenantID) {
			bad(p+".tenantId", "%q is not a GUID", t.TenantID)
		} else if j, dup := ids[strings.ToLower(t.TenantID)]; dup {
			bad(p+".tenantId", "%s is also tenants[%d]", t.TenantID, j)
		} else {
			ids[strings.ToLower(t.TenantID)] = i
		}
		if strings.TrimSpace(t.Name) == "" {
			bad(p+".name", "is required")
		}
		if u, err := url.Parse(t.OrgURL); err != nil || u.Scheme != "https" || !orgHostRE.MatchString(strings.ToLower(u.Host)) || (u.Path != "" && u.Path != "/") {
			bad(p+".orgUrl", "%q is not an organisation URL like https://contoso.crm.dynamics.com", t.OrgURL)
		} else if j, dup := orgs[strings.ToLower(u.Host)]; dup {
			bad(p+".orgUrl", "%s is also tenants[%d]", u.Host, j)
		} else {
			orgs[strings.ToLower(u.Host)] = i
		}
		if t.Work365Version != "" && !versionRE.MatchString(t.Work365Version) {
			bad(p+".work365Version", "%q is not a version like 2.1.0.3", t.Work365Version)
		}
		if t.PortalVersion != "" && !versionRE.MatchString(t.PortalVersion) {
			bad(p+".portalVersion", "%q is not a version like 1.0.0.0", t.PortalVersion)
		}
		if t.PartnerType != "direct" && t.PartnerType != "indirect" {
			bad(p+".partnerType", "%q must be direct or indirect", t.PartnerType)
		}
		for _, u := range []struct {
			f string
			u User
		}{{".admin", t.Admin}, {".serviceAccount", t.ServiceAccount}} {
			if !upnRE.MatchString(u.u.UPN) {
				bad(p+u.f+".upn", "%q is not a user principal name", u.u.UPN)
			}
			if !guidRE.MatchString(u.u.ObjectID) {
				bad(p+u.f+".objectId", "%q is not a GUID", u.u.ObjectID)
			}
		}
		if strings.EqualFold(t.Admin.UPN, t.ServiceAccount.UPN) && t.Admin.UPN != "" {
			bad(p+".serviceAccount.upn", "must differ from admin.upn")
		}
		if strings.EqualFold(t.Admin.ObjectID, t.ServiceAccount.ObjectID) && t.Admin.ObjectID != "" {
			bad(p+".serviceAccount.objectId", "must differ from admin.objectId")
		}
		if t.ConditionalAccessMFA && !t.EntraP1 {
			bad(p+".conditionalAccessMfa", "conditional access needs entraP1: true")
		}
		for _, u := range []struct {
			f string
			u User
		}{{".admin", t.Admin}, {".serviceAccount", t.ServiceAccount}} {
			switch u.u.GlobalAdminVia {
			case "", "direct":
			case "group":
				if !u.u.GlobalAdmin {
					bad(p+u.f+".globalAdminVia", "group needs globalAdmin: true (the group's assignment is active)")
				}
			case "eligible":
				if u.u.GlobalAdmin {
					bad(p+u.f+".globalAdminVia", "eligible needs globalAdmin: false (an eligibility is not active)")
				}
			default:
				bad(p+u.f+".globalAdminVia", "%q must be direct, group or eligible", u.u.GlobalAdminVia)
			}
		}
		if (t.ConditionalAccessStrength || t.ConditionalAccessGroup) && !t.ConditionalAccessMFA {
			bad(p+".conditionalAccessMfa", "conditionalAccessStrength and conditionalAccessGroup shape that policy: set conditionalAccessMfa: true")
		}
		if t.ConditionalAccessMFA && t.SecurityDefaults {
			bad(p+".securityDefaults", "security defaults and conditional access are mutually exclusive")
		}
		if t.Jobs.Pending < 0 || t.Jobs.DrainPerMinute < 0 || t.Jobs.ArrivePerMinute < 0 {
			bad(p+".jobs", "counts and rates must not be negative")
		}
		for _, o := range []struct {
			f string
			o Operation
		}{{".import", t.Import}, {".uninstall", t.Uninstall}, {".upgrade", t.Upgrade}} {
			if o.o.Failures < 0 {
				bad(p+o.f+".failures", "must not be negative")
			}
		}
		if t.PartnerType == "indirect" && len(t.PartnerCenters) > 0 {
			bad(p+".partnerCenters", "indirect resellers have no Partner Center connection")
		}
		names := map[string]bool{}
		for j, c := range t.PartnerCenters {
			cp := fmt.Sprintf("%s.partnerCenters[%d]", p, j)
			if strings.TrimSpace(c.Name) == "" {
				bad(cp+".name", "is required")
			} else if names[c.Name] {
				bad(cp+".name", "%q is listed twice", c.Name)
			}
			names[c.Name] = true
			if !guidRE.MatchString(c.TenantID) {
				bad(cp+".tenantId", "%q is not a GUID", c.TenantID)
			} else if c.Primary != strings.EqualFold(c.TenantID, t.TenantID) {
				bad(cp+".primary", "must be true exactly when tenantId is the customer tenant %s", t.TenantID)
			}
		}
		if t.Faults != nil {
			checkFaults(p+".faults", *t.Faults)
		}
		if t.Autopilot != nil {
			checkAutopilot(p+".autopilot", *t.Autopilot)
		}
	}
	return out
}

// checkSignIn checks what the simulated sign-in needs: the desk's registration, the partner
// tenant and every person's name, object ID and password (one UPN is one person in one
// tenant). s has its defaults.
func (s Scenario) checkSignIn(bad func(field, format string, args ...any)) {
	d := s.Desk
	if !guidRE.MatchString(d.ClientID) {
		bad("desk.clientId", "%q is not a GUID", d.ClientID)
	} else if strings.EqualFold(d.ClientID, s.Orchestrator.ClientID) {
		bad("desk.clientId", "must differ from orchestrator.clientId: the desk signs people in, the orchestrator runs app-only")
	}
	if d.ClientSecret == "" {
		bad("desk.clientSecret", "is required (the desk is a confidential client)")
	}
	if len(d.RedirectURIs) == 0 {
		bad("desk.redirectUris", "needs at least one reply URL, e.g. http://127.0.0.1/auth/callback")
	}
	for i, r := range d.RedirectURIs {
		if err := checkRedirectURI(r); err != nil {
			bad(fmt.Sprintf("desk.redirectUris[%d]", i), "%q %v", r, err)
		}
	}
	type who struct{ field, oid, tenant string }
	seen := map[string]who{}
	person := func(field, tenant string, u User) {
		if !upnRE.MatchString(u.UPN) {
			bad(field+".upn", "%q is not a user principal name", u.UPN)
		}
		if !guidRE.MatchString(u.ObjectID) {
			bad(field+".objectId", "%q is not a GUID", u.ObjectID)
		}
		if n := len(u.Password); n < 8 || n > 256 {
			bad(field+".password", "must be 8 to 256 characters (Entra ID's password policy), not %d", n)
		}
		k := strings.ToLower(u.UPN)
		if w, dup := seen[k]; dup && (!strings.EqualFold(w.oid, u.ObjectID) || !strings.EqualFold(w.tenant, tenant)) {
			bad(field+".upn", "%s is also %s, another person or tenant: a UPN signs in to one tenant as one person", u.UPN, w.field)
		} else if !dup {
			seen[k] = who{field, u.ObjectID, tenant}
		}
	}
	customers := map[string]bool{}
	for i, t := range s.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		customers[strings.ToLower(t.TenantID)] = true
		person(p+".admin", t.TenantID, t.Admin)
		person(p+".serviceAccount", t.TenantID, t.ServiceAccount)
		for j, pc := range t.PartnerCenters {
			if pc.Admin != nil {
				person(fmt.Sprintf("%s.partnerCenters[%d].admin", p, j), pc.TenantID, *pc.Admin)
			}
		}
	}
	pt := s.Partner
	if pt == nil {
		return
	}
	if !guidRE.MatchString(pt.TenantID) {
		bad("partner.tenantId", "%q is not a GUID", pt.TenantID)
	} else if customers[strings.ToLower(pt.TenantID)] {
		bad("partner.tenantId", "%s is a customer tenant: the partner's operators sign in to the partner's own tenant", pt.TenantID)
	}
	if strings.TrimSpace(pt.Name) == "" {
		bad("partner.name", "is required")
	}
	if !guidRE.MatchString(pt.OperatorsGroup.ObjectID) {
		bad("partner.operatorsGroup.objectId", "%q is not a GUID", pt.OperatorsGroup.ObjectID)
	}
	for i, u := range pt.Operators {
		person(fmt.Sprintf("partner.operators[%d]", i), pt.TenantID, u)
	}
	for i, u := range pt.Users {
		person(fmt.Sprintf("partner.users[%d]", i), pt.TenantID, u)
	}
}

// checkRedirectURI applies Entra ID's reply URL rules: absolute, https (http only for
// loopback), no fragment, at most 256 characters.
// https://learn.microsoft.com/entra/identity-platform/reply-url
func checkRedirectURI(r string) error {
	u, err := url.Parse(r)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return fmt.Errorf("is not an absolute URL")
	case len(r) > 256:
		return fmt.Errorf("is longer than 256 characters")
	case u.Fragment != "":
		return fmt.Errorf("must not have a fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("must use https (http only for localhost or 127.0.0.1)")
}

func loopbackHost(h string) bool {
	return strings.EqualFold(h, "localhost") || h == "127.0.0.1" || h == "::1"
}

// Tenant returns the scenario's tenant with this ID.
func (s Scenario) Tenant(tenantID string) (Tenant, bool) {
	for _, t := range s.Tenants {
		if strings.EqualFold(t.TenantID, tenantID) {
			return t, true
		}
	}
	return Tenant{}, false
}

// EffectiveFaults returns the faults that apply to the tenant.
func (s Scenario) EffectiveFaults(t Tenant) Faults {
	if t.Faults != nil {
		return *t.Faults
	}
	return s.Faults
}

// EffectiveAutopilot merges the tenant's autopilot settings over the scenario's.
func (s Scenario) EffectiveAutopilot(t Tenant) AutopilotConfig {
	out := AutopilotConfig{Delays: map[string][]time.Duration{}, Decisions: map[string][]string{}, ConfirmAfter: map[string][]time.Duration{}}
	for _, a := range []*AutopilotConfig{&s.Autopilot, t.Autopilot} {
		if a == nil {
			continue
		}
		for k, v := range a.Delays {
			out.Delays[k] = v
		}
		for k, v := range a.Decisions {
			out.Decisions[k] = v
		}
		out.Ignore = append(out.Ignore, a.Ignore...)
		out.NoAction = append(out.NoAction, a.NoAction...)
		out.ViaSignal = append(out.ViaSignal, a.ViaSignal...)
		for k, v := range a.ConfirmAfter {
			out.ConfirmAfter[k] = v
		}
	}
	return out
}
