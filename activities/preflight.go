package activities

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// GrantedRoles tells which application permissions a tenant grants the orchestrator app.
type GrantedRoles interface {
	// GrantedRoles reads the roles claim of the session's app-only token for scope in
	// tenantID; the token stays inside the implementation.
	GrantedRoles(ctx context.Context, tenantID, scope string) (msauth.GrantedRoles, error)
}

// ApplicationUsers reads Dataverse users by ID (the orchestrator's own application user).
type ApplicationUsers interface {
	// GetSystemUser reads a user with its security roles; nil when absent.
	GetSystemUser(ctx context.Context, orgURL, id string) (*dataverse.SystemUser, error)
}

// OrchestratorApp names the orchestrator's app registration in fixes (never its credential).
type OrchestratorApp struct {
	ClientID string `json:"clientId"`
	Name     string `json:"name"`
}

// PreflightSession is what one tenant's checks call: adapters whose tokens are issued for
// the check alone (an empty token cache), so that a permission granted a minute ago shows and
// the worker's own cached tokens, those of running upgrades, are left as they are.
type PreflightSession struct {
	Graph     Graph
	Dataverse Dataverse
	AppUsers  ApplicationUsers
	Roles     GrantedRoles
}

// Preflight checks, read-only, that a tenant is ready for its upgrade before any window: the
// worker holds the credentials, so the starter asks it through the Preflight workflow. It is
// registered beside Activities; nothing here writes anything anywhere.
type Preflight struct {
	// Connect opens a session for one tenant's checks.
	Connect func(ctx context.Context) (PreflightSession, error)
	// Names are Work 365's private names (the solution, the app ID).
	Names work365.Names
	App   OrchestratorApp
	// Manifest is the permissions manifest (permissions.Manifest unless a test gives another):
	// the token must allow every application-permission call in it.
	Manifest func() []permissions.Entry
}

// Readiness check IDs, in the order they are reported.
const (
	ReadyOrchestratorConsent     = "orchestrator-consent"
	ReadyOrchestratorPermissions = "orchestrator-permissions"
	ReadyDataverseAppUser        = "dataverse-application-user"
	ReadyWork365Version          = "work365-version"
	ReadyWork365App              = "work365-app"
	ReadyGlobalAdminAccount      = "global-admin-account"
	ReadyServiceAccount          = "service-account"
	ReadyGlobalAdminRole         = "global-admin-role"
)

// Statuses of a readiness check: fail and skip make a tenant not ready; warn is advice.
const (
	ReadyPass = "pass"
	ReadyFail = "fail"
	ReadyWarn = "warn"
	// ReadySkip is a check that could not run because an earlier one failed.
	ReadySkip = "skip"
)

// ReadinessInput is one tenant of an inventory, as much as the checks need (no secret).
type ReadinessInput struct {
	TenantID          string `json:"tenantId"`
	DisplayName       string `json:"displayName"`
	OrgURL            string `json:"orgUrl"`
	GlobalAdminUPN    string `json:"globalAdminUpn"`
	ServiceAccountUPN string `json:"serviceAccountUpn"`
	TargetVersion     string `json:"targetVersion"`
}

// ReadinessInputOf takes what the checks need from a tenant spec.
func ReadinessInputOf(t spec.Tenant) ReadinessInput {
	return ReadinessInput{TenantID: t.TenantID, DisplayName: t.DisplayName, OrgURL: t.OrgURL,
		GlobalAdminUPN: t.GlobalAdminUPN, ServiceAccountUPN: t.ServiceAccountUPN, TargetVersion: t.TargetVersion}
}

// ReadinessCheck is one verified condition, with the exact fix when it failed.
type ReadinessCheck struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	// Fix says who does what where (the admin-center path), when the check did not pass.
	Fix string `json:"fix,omitempty"`
}

// Readiness is one tenant's preflight report. It holds no secret: no token, only role names.
type Readiness struct {
	TenantID    string `json:"tenantId"`
	DisplayName string `json:"displayName"`
	Ready       bool   `json:"ready"`
	// Path is what the upgrade will do: "upgrade from 2.1.0.3", "new install",
	// "already current (2.5.0.1)", or "unknown" when Work 365 could not be read.
	Path             string           `json:"path"`
	InstalledVersion string           `json:"installedVersion,omitempty"`
	Checks           []ReadinessCheck `json:"checks"`
}

// Failed returns the checks that make the tenant not ready.
func (r Readiness) Failed() []ReadinessCheck {
	var out []ReadinessCheck
	for _, c := range r.Checks {
		if c.Status == ReadyFail || c.Status == ReadySkip {
			out = append(out, c)
		}
	}
	return out
}

// CheckReadiness runs every preflight check of one tenant, read-only. Refusals (403, missing
// users, a missing application user) are findings with their fix, not errors; only transient
// failures (throttling, outages) fail the activity, so that Temporal retries it.
func (p *Preflight) CheckReadiness(ctx context.Context, in ReadinessInput) (Readiness, error) {
	r := Readiness{TenantID: in.TenantID, DisplayName: in.DisplayName, Path: "unknown"}
	s, err := p.Connect(ctx)
	if err != nil {
		return r, permanent(ErrMisconfigured, "open a preflight session: %v — check the worker's Microsoft credential", err)
	}
	consentFix := fmt.Sprintf("a Global Administrator of tenant %s grants admin consent to %s: open %s (or Entra admin center › Applications › Enterprise applications › %s › Permissions › Grant admin consent)",
		in.TenantID, p.appName(), p.consentURL(in.TenantID), p.appName())

	roles, err := s.Roles.GrantedRoles(ctx, in.TenantID, msauth.GraphScope)
	if err != nil {
		if transient(err) {
			return r, classify(err, "sign in to tenant "+in.TenantID)
		}
		fix := consentFix
		if msauth.OrchestratorFault(err) {
			fix = "fix the orchestrator's own credential in the worker (it fails in every tenant): " + hintOf(err)
		}
		r.add(ReadyOrchestratorConsent, ReadyFail, "the orchestrator app cannot sign in to the tenant: "+messageOf(err), fix)
		for _, id := range []string{ReadyOrchestratorPermissions, ReadyDataverseAppUser, ReadyWork365Version, ReadyWork365App, ReadyGlobalAdminAccount, ReadyServiceAccount, ReadyGlobalAdminRole} {
			r.add(id, ReadySkip, "not checked: the orchestrator app cannot sign in to the tenant", "")
		}
		return r.done(), nil
	}
	r.add(ReadyOrchestratorConsent, ReadyPass, "the orchestrator app signs in to the tenant", "")

	p.checkRoles(in, roles, &r)
	if err := p.checkDataverse(ctx, s, in, &r); err != nil {
		return r, err
	}
	if err := p.checkWork365App(ctx, s, in, &r); err != nil {
		return r, err
	}
	if err := p.checkAccounts(ctx, s, in, &r); err != nil {
		return r, err
	}
	return r.done(), nil
}

// checkRoles compares the token's roles with every application-permission call of the
// manifest (a broader permission Microsoft documents for a call counts).
func (p *Preflight) checkRoles(in ReadinessInput, roles msauth.GrantedRoles, r *Readiness) {
	manifest := permissions.Manifest
	if p.Manifest != nil {
		manifest = p.Manifest
	}
	var grants, calls []string
	total := 0
	for _, e := range manifest() {
		if e.Kind != permissions.AppRole {
			continue
		}
		total++
		if e.Allows(roles.Roles) {
			continue
		}
		calls = append(calls, e.Method+" "+e.Path)
		if !slices.Contains(grants, e.Grant) {
			grants = append(grants, e.Grant)
		}
	}
	if len(grants) == 0 {
		r.add(ReadyOrchestratorPermissions, ReadyPass, fmt.Sprintf("the token allows all %d Microsoft Graph calls of the permissions manifest", total), "")
		return
	}
	r.add(ReadyOrchestratorPermissions, ReadyFail,
		fmt.Sprintf("the orchestrator's Microsoft Graph token in this tenant lacks %s, needed by %s (it carries %s)",
			strings.Join(grants, ", "), strings.Join(calls, ", "), orWord(strings.Join(roles.Roles, ", "), "no application permission")),
		fmt.Sprintf("Entra admin center › Applications › App registrations › %s › API permissions › add %s and grant admin consent; in this customer tenant a Global Administrator grants it by opening %s",
			p.appName(), strings.Join(suffixAll(grants, " (Application)"), ", "), p.consentURL(in.TenantID)))
}

// checkDataverse checks the application user and its role, then reads Work 365's version.
func (p *Preflight) checkDataverse(ctx context.Context, s PreflightSession, in ReadinessInput, r *Readiness) error {
	env := "Power Platform admin center › Environments › " + orgHost(in.OrgURL) + " › Settings › Users + permissions › Application users"
	newAppUser := fmt.Sprintf("%s › New app user › add %s (%s) with a security role that reads solutions, users and roles and imports solutions (e.g. System Administrator)", env, p.appName(), p.App.ClientID)
	me, err := s.Dataverse.WhoAmI(ctx, in.OrgURL)
	if err != nil {
		if transient(err) {
			return classify(err, "connect to Dynamics "+in.OrgURL)
		}
		r.add(ReadyDataverseAppUser, ReadyFail, "the orchestrator app cannot call "+in.OrgURL+": "+messageOf(err), newAppUser)
		r.add(ReadyWork365Version, ReadySkip, "not checked: no access to Dynamics", "")
		return nil
	}
	u, err := s.AppUsers.GetSystemUser(ctx, in.OrgURL, me.UserID)
	switch {
	case err != nil && transient(err):
		return classify(err, "read the orchestrator's application user")
	case err != nil:
		// An application user with no role signs in but may read nothing, itself included.
		r.add(ReadyDataverseAppUser, ReadyFail, "the orchestrator's application user cannot read itself (no security role?): "+messageOf(err),
			fmt.Sprintf("%s › %s › Edit security roles › add a role that reads solutions, users and roles and imports solutions", env, p.appName()))
	case u == nil || len(u.Roles) == 0:
		r.add(ReadyDataverseAppUser, ReadyFail, "the orchestrator's application user has no security role",
			fmt.Sprintf("%s › %s › Edit security roles › add a role that reads solutions, users and roles and imports solutions", env, p.appName()))
	case u.IsDisabled:
		r.add(ReadyDataverseAppUser, ReadyFail, "the orchestrator's application user is disabled", fmt.Sprintf("%s › %s › Activate", env, p.appName()))
	default:
		names := make([]string, len(u.Roles))
		for i, role := range u.Roles {
			names[i] = role.Name
		}
		r.add(ReadyDataverseAppUser, ReadyPass, "application user with role "+strings.Join(names, ", "), "")
	}

	sol, err := s.Dataverse.GetSolution(ctx, in.OrgURL, p.Names.SolutionUniqueName)
	if err != nil {
		if transient(err) {
			return classify(err, "read the Work 365 solution")
		}
		r.add(ReadyWork365Version, ReadyFail, "cannot read the installed solutions: "+messageOf(err),
			fmt.Sprintf("%s › %s › Edit security roles › add a role that can read solutions", env, p.appName()))
		return nil
	}
	staged, err := s.Dataverse.GetSolution(ctx, in.OrgURL, p.Names.HoldingSolutionName())
	if err != nil {
		if transient(err) {
			return classify(err, "read the staged Work 365 upgrade")
		}
		r.add(ReadyWork365Version, ReadyFail, "cannot read the staged upgrade: "+messageOf(err), "")
		return nil
	}
	detail := ""
	switch {
	case sol == nil:
		r.Path, detail = "new install", "Work 365 is not installed: "+in.TargetVersion+" is installed directly"
	case spec.CompareVersions(sol.Version, in.TargetVersion) >= 0:
		r.InstalledVersion = sol.Version
		r.Path, detail = "already current ("+sol.Version+")", "Work 365 "+sol.Version+" is installed: the upgrade ends at discovery with no change"
	default:
		r.InstalledVersion = sol.Version
		r.Path, detail = "upgrade from "+sol.Version, "Work 365 "+sol.Version+" → "+in.TargetVersion+" as a staged upgrade"
		if spec.AtMost21(sol.Version) {
			detail += " (2.1 or lower: the portal is uninstalled first if present)"
		}
	}
	if staged != nil {
		detail += "; a staged upgrade " + staged.Version + " is already present"
	}
	r.add(ReadyWork365Version, ReadyPass, detail, "")
	return nil
}

// checkWork365App looks for the Work 365 app's service principal. Its absence is advice, not
// a block: Get Consent during the upgrade creates it. With Work 365 installed it usually means
// the configured app ID is wrong, which is said.
func (p *Preflight) checkWork365App(ctx context.Context, s PreflightSession, in ReadinessInput, r *Readiness) error {
	sp, err := s.Graph.FindServicePrincipal(ctx, in.TenantID, p.Names.AppID)
	switch {
	case err != nil && transient(err):
		return classify(err, "look for the Work 365 app")
	case err != nil:
		r.add(ReadyWork365App, ReadyFail, "cannot look for the Work 365 app "+p.Names.AppID+": "+messageOf(err), "see "+ReadyOrchestratorPermissions)
	case sp != nil:
		r.add(ReadyWork365App, ReadyPass, fmt.Sprintf("Work 365 app %s resolves: service principal %q", p.Names.AppID, sp.DisplayName), "")
	case r.InstalledVersion != "":
		r.add(ReadyWork365App, ReadyWarn,
			fmt.Sprintf("no service principal for Work 365 app %s although Work 365 %s is installed: Get Consent will create it, unless the configured app ID is wrong", p.Names.AppID, r.InstalledVersion),
			"compare work365.appId in the worker config with Entra admin center › Applications › Enterprise applications › All applications › Work 365 › Application ID")
	default:
		r.add(ReadyWork365App, ReadyPass, fmt.Sprintf("no service principal for Work 365 app %s yet: a new install's Get Consent creates it", p.Names.AppID), "")
	}
	return nil
}

// checkAccounts checks that both accounts exist and are enabled, and that the Global
// Administrator's role is active and assigned to the person: a role held only through a group
// or only eligible in PIM is reported with its fix.
func (p *Preflight) checkAccounts(ctx context.Context, s PreflightSession, in ReadinessInput, r *Readiness) error {
	var admin *msgraph.User
	for _, a := range []struct{ id, upn, field string }{
		{ReadyGlobalAdminAccount, in.GlobalAdminUPN, "globalAdminUpn"},
		{ReadyServiceAccount, in.ServiceAccountUPN, "serviceAccountUpn"},
	} {
		u, err := s.Graph.GetUser(ctx, in.TenantID, a.upn)
		var me *msapi.Error
		switch {
		case err != nil && transient(err):
			return classify(err, "read "+a.upn)
		case errors.As(err, &me) && me.NotFound():
			r.add(a.id, ReadyFail, a.upn+" does not exist in the tenant",
				fmt.Sprintf("Microsoft 365 admin center › Users › Active users: create %s, or fix %s in the inventory", a.upn, a.field))
			continue
		case err != nil:
			r.add(a.id, ReadyFail, "cannot read "+a.upn+": "+messageOf(err), "see "+ReadyOrchestratorPermissions)
			continue
		case u.AccountEnabled != nil && !*u.AccountEnabled:
			r.add(a.id, ReadyFail, a.upn+" is disabled (sign-in blocked)",
				"Microsoft 365 admin center › Users › Active users › "+a.upn+" › Unblock sign-in (or Entra admin center › Users › "+a.upn+" › Edit properties › Account enabled)")
		default:
			r.add(a.id, ReadyPass, a.upn+" exists and is enabled", "")
		}
		if a.id == ReadyGlobalAdminAccount {
			admin = &u
		}
	}
	if admin == nil {
		r.add(ReadyGlobalAdminRole, ReadySkip, "not checked: the Global Administrator account was not found", "")
		return nil
	}
	st, err := s.Graph.DirectoryRoleStatus(ctx, in.TenantID, admin.ID, msgraph.GlobalAdministratorRoleTemplateID)
	assign := "Entra admin center › Roles & admins › Global Administrator › Add assignments › " + in.GlobalAdminUPN + " (assignment type Active)"
	switch {
	case err != nil && transient(err):
		return classify(err, "read the directory roles of "+in.GlobalAdminUPN)
	case err != nil:
		r.add(ReadyGlobalAdminRole, ReadyFail, "cannot read the directory roles of "+in.GlobalAdminUPN+": "+messageOf(err), "see "+ReadyOrchestratorPermissions)
	case st.Direct:
		r.add(ReadyGlobalAdminRole, ReadyPass, "Global Administrator assigned to "+in.GlobalAdminUPN+" (active)", "")
	case len(st.ViaGroups) > 0:
		// Power Platform admin tooling recognises admin roles assigned to the person, not
		// always those inherited through a group (e.g. microsoft/coe-starter-kit#6592); the
		// consent and import are done as this person, so the preflight asks for a direct one.
		r.add(ReadyGlobalAdminRole, ReadyFail,
			"Global Administrator is held only through group "+strings.Join(st.ViaGroups, ", ")+": Dynamics 365 and Power Platform may not recognise a role inherited through a group",
			assign)
	case st.Eligible:
		r.add(ReadyGlobalAdminRole, ReadyFail,
			in.GlobalAdminUPN+" is only eligible for Global Administrator in Privileged Identity Management (not active)",
			"Entra admin center › ID Governance › Privileged Identity Management › Microsoft Entra roles › Assignments › Global Administrator › "+in.GlobalAdminUPN+" › Update to Active (or activate it in PIM › My roles before the window)")
	default:
		r.add(ReadyGlobalAdminRole, ReadyFail, in.GlobalAdminUPN+" is not a Global Administrator", assign)
	}
	return nil
}

func (r *Readiness) add(id, status, detail, fix string) {
	r.Checks = append(r.Checks, ReadinessCheck{ID: id, Status: status, Detail: detail, Fix: fix})
}

func (r Readiness) done() Readiness {
	r.Ready = len(r.Failed()) == 0
	return r
}

func (p *Preflight) appName() string {
	if p.App.Name != "" {
		return p.App.Name
	}
	return p.App.ClientID
}

func (p *Preflight) consentURL(tenantID string) string {
	return fmt.Sprintf("%s/%s/adminconsent?client_id=%s", msauth.DefaultAuthorityHost, url.PathEscape(tenantID), url.QueryEscape(p.App.ClientID))
}

// transient reports whether a retry may cure err (throttling, outages, no answer).
func transient(err error) bool {
	var me *msapi.Error
	if !errors.As(err, &me) {
		return true
	}
	return me.Retryable() && !msauth.OrchestratorFault(err)
}

// messageOf is an adapter error as one line (msapi errors never hold a token).
func messageOf(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

func hintOf(err error) string {
	var me *msapi.Error
	if errors.As(err, &me) && me.Hint != "" {
		return me.Hint
	}
	return messageOf(err)
}

func orgHost(orgURL string) string {
	if u, err := url.Parse(orgURL); err == nil && u.Host != "" {
		return u.Host
	}
	return orgURL
}

func suffixAll(xs []string, suffix string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x + suffix
	}
	return out
}
