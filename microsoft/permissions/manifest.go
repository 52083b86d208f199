// Package permissions is the permissions manifest: every Microsoft call the worker makes, with
// the least privileged permission Microsoft documents for it. It is the one place that says
// what the orchestrator app needs: the README's permission table is generated from it (a test
// fails when they differ), the adapters name its permissions in their 401/403 hints, the
// simulated cloud refuses calls the way the manifest says Microsoft does (and answers calls that
// have no entry with an error naming them), and the preflight checks a tenant's token against
// AppRoles.
package permissions

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// API is the Microsoft service a call goes to.
type API string

// The APIs the worker calls.
const (
	Graph         API = "graph"
	Dataverse     API = "dataverse"
	PartnerCenter API = "partnercenter"
	Login         API = "login"
)

// Kind says what authorises a call.
type Kind string

const (
	// AppRole calls need a Microsoft Graph application permission (an app role in the token's
	// roles claim), admin-consented in the tenant.
	AppRole Kind = "application permission"
	// DataverseRole calls need the orchestrator's application user in the organisation, with a
	// security role holding the privilege (Dataverse ignores token roles).
	DataverseRole Kind = "Dataverse application user privilege"
	// AppUser calls accept App+User (delegated) tokens only; app-only tokens are refused.
	AppUser Kind = "delegated (App+User only)"
	// Anonymous calls need nothing (sign-in itself, discovery).
	Anonymous Kind = "none"
)

// Operation names, one per entry; adapters pass them so hints and the manifest cannot drift.
const (
	OpGraphGetUser                  = "graph.getUser"
	OpGraphListRoleAssignments      = "graph.listRoleAssignments"
	OpGraphListRoleEligibilities    = "graph.listRoleEligibilities"
	OpGraphListGroupMemberships     = "graph.listGroupMemberships"
	OpGraphListSubscribedSkus       = "graph.listSubscribedSkus"
	OpGraphGetRegistrationDetails   = "graph.getRegistrationDetails"
	OpGraphListAuthMethods          = "graph.listAuthenticationMethods"
	OpGraphGetSecurityDefaults      = "graph.getSecurityDefaults"
	OpGraphListCAPolicies           = "graph.listConditionalAccessPolicies"
	OpGraphFindServicePrincipal     = "graph.findServicePrincipal"
	OpGraphListDelegatedGrants      = "graph.listDelegatedGrants"
	OpGraphListAppRoleAssignments   = "graph.listAppRoleAssignments"
	OpLoginToken                    = "login.token"
	OpLoginOpenIDConfiguration      = "login.openidConfiguration"
	OpLoginInstanceDiscovery        = "login.instanceDiscovery"
	OpDataverseDiscoverTenant       = "dataverse.discoverTenant"
	OpDataverseWhoAmI               = "dataverse.whoAmI"
	OpDataverseReadSolutions        = "dataverse.readSolutions"
	OpDataverseImportSolution       = "dataverse.importSolutionAsync"
	OpDataverseUninstallSolution    = "dataverse.uninstallSolutionAsync"
	OpDataverseReadAsyncOperation   = "dataverse.readAsyncOperation"
	OpDataverseListAsyncOperations  = "dataverse.listAsyncOperations"
	OpDataverseReadImportJob        = "dataverse.readImportJob"
	OpDataverseReadImportLog        = "dataverse.readImportLog"
	OpDataverseFindSystemUser       = "dataverse.findSystemUser"
	OpDataverseReadSystemUser       = "dataverse.readSystemUser"
	OpWork365ListJobs               = "work365.listJobs"
	OpWork365ReadSettings           = "work365.readSettings"
	OpWork365WriteSettings          = "work365.writeSettings"
	OpPartnerCenterOrganizationProf = "partnercenter.getOrganizationProfile"
)

// Table placeholders in Dataverse paths: Work 365's entity set names are configuration
// (work365.Names), so Lookup takes their values.
const (
	VarJobsTable     = "jobs"
	VarSettingsTable = "settings"
)

// Entry is one Microsoft call of the worker.
type Entry struct {
	// Operation names the call (Op… constants).
	Operation string
	API       API
	Method    string
	// Path is relative to the API root (Graph /v1.0/, Dataverse /api/data/v9.2/, Partner
	// Center and login /). A "{name}" part matches any non-empty text within one segment;
	// "<jobs>" and "<settings>" are Work 365's configured table names.
	Path string
	Kind Kind
	// Grant is the permission the orchestrator holds for this call: what an administrator
	// grants, listed in the README and checked by the preflight.
	Grant string
	// Least is the least privileged permission Microsoft documents for the call when it
	// differs from Grant (Grant then covers it and is needed by another call anyway).
	Least string
	// Accepted are all the permissions Microsoft documents as sufficient, Least first; the
	// simulated cloud accepts any of them.
	Accepted []string
	// UsedFor says why the worker calls it (the README's words).
	UsedFor string
	// Doc is the learn.microsoft.com page that documents the call and its permissions.
	Doc string
}

// Manifest returns every Microsoft call the worker makes (a fresh copy each time).
func Manifest() []Entry {
	const graphDoc = "https://learn.microsoft.com/en-us/graph/api/"
	const dvRole = "https://learn.microsoft.com/en-us/power-platform/admin/security-roles-privileges"
	return []Entry{
		{OpGraphGetUser, Graph, "GET", "users/{id}", AppRole, "User.Read.All", "",
			[]string{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
			"the admin's and service account's licences (service plans: a Dynamics 365 plan such as `DYN365_SALES_PRO`, `DYN365_ENTERPRISE_P1` or `CRMSTANDARD`, not the SKU's name; table in `microsoft/msgraph/licences.go`) and whether they are enabled",
			graphDoc + "user-get"},
		{OpGraphListRoleAssignments, Graph, "GET", "roleManagement/directory/roleAssignments", AppRole, "RoleManagement.Read.Directory", "",
			[]string{"RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory", "Directory.Read.All", "Directory.ReadWrite.All"},
			"Global Administrator check: direct assignments, and assignments to a group the admin is in (passes, and says so)",
			graphDoc + "rbacapplication-list-roleassignments"},
		{OpGraphListRoleEligibilities, Graph, "GET", "roleManagement/directory/roleEligibilityScheduleInstances", AppRole, "RoleManagement.Read.Directory", "RoleEligibilitySchedule.Read.Directory",
			[]string{"RoleEligibilitySchedule.Read.Directory", "RoleEligibilitySchedule.ReadWrite.Directory", "RoleManagement.Read.All", "RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory"},
			"PIM eligibilities of Global Administrator (blocks until the role is activated in PIM before the window)",
			graphDoc + "rbacapplication-list-roleeligibilityscheduleinstances"},
		{OpGraphListGroupMemberships, Graph, "GET", "users/{id}/memberOf", AppRole, "Directory.Read.All", "",
			[]string{"Directory.Read.All", "Directory.ReadWrite.All"},
			"the admin's and service account's group memberships (role-assignable groups, conditional access groups)",
			graphDoc + "user-list-memberof"},
		{OpGraphListSubscribedSkus, Graph, "GET", "subscribedSkus", AppRole, "LicenseAssignment.Read.All", "",
			[]string{"LicenseAssignment.Read.All", "Directory.Read.All", "Directory.ReadWrite.All", "Organization.Read.All", "Organization.ReadWrite.All"},
			"the tenant's SKUs and their service plans",
			graphDoc + "subscribedsku-list"},
		{OpGraphGetRegistrationDetails, Graph, "GET", "reports/authenticationMethods/userRegistrationDetails/{id}", AppRole, "AuditLog.Read.All", "",
			[]string{"AuditLog.Read.All"},
			"MFA registration (tenants with Entra ID P1)",
			graphDoc + "userregistrationdetails-get"},
		{OpGraphListAuthMethods, Graph, "GET", "users/{id}/authentication/methods", AppRole, "UserAuthenticationMethod.Read.All", "",
			[]string{"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"},
			"MFA registration without P1: only methods that can satisfy MFA count (Authenticator, phone, FIDO2, software/hardware OATH, Windows Hello, platform credential, external method), not email (SSPR only) nor a temporary access pass",
			graphDoc + "authentication-list-methods"},
		{OpGraphGetSecurityDefaults, Graph, "GET", "policies/identitySecurityDefaultsEnforcementPolicy", AppRole, "Policy.Read.All", "",
			[]string{"Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"},
			"security defaults",
			graphDoc + "identitysecuritydefaultsenforcementpolicy-get"},
		{OpGraphListCAPolicies, Graph, "GET", "identity/conditionalAccess/policies", AppRole, "Policy.Read.All", "",
			[]string{"Policy.Read.All"},
			"conditional access: an enabled (not report-only) policy requiring MFA by the `mfa` control or an authentication strength; a policy for all users counts; one scoped to users or groups counts only when it includes both the admin and the service account (in a Partner Center tenant only tenant-wide policies count); roles in conditions are not evaluated",
			graphDoc + "conditionalaccessroot-list-policies"},
		{OpGraphFindServicePrincipal, Graph, "GET", "servicePrincipals", AppRole, "Application.Read.All", "",
			[]string{"Application.Read.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy", "Directory.Read.All", "Directory.ReadWrite.All"},
			"finding the Work 365 app's service principal (without it the consent is not verified, with a warning)",
			graphDoc + "serviceprincipal-list"},
		{OpGraphListDelegatedGrants, Graph, "GET", "servicePrincipals/{id}/oauth2PermissionGrants", AppRole, "Directory.Read.All", "",
			[]string{"Directory.Read.All", "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"},
			"the Work 365 app's delegated grants (Graph's least privileged permission for this list; `Application.Read.All` is refused with 403); in a Partner Center tenant, Work 365's delegated *Microsoft Partner Center* grant",
			graphDoc + "serviceprincipal-list-oauth2permissiongrants"},
		{OpGraphListAppRoleAssignments, Graph, "GET", "servicePrincipals/{id}/appRoleAssignments", AppRole, "Application.Read.All", "",
			[]string{"Application.Read.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy", "Directory.Read.All", "Directory.ReadWrite.All"},
			"the application permissions granted to the Work 365 app",
			graphDoc + "serviceprincipal-list-approleassignments"},

		{OpLoginToken, Login, "POST", "{tenant}/oauth2/v2.0/token", Anonymous, "admin consent of the orchestrator app in the tenant", "", nil,
			"app-only tokens (client credentials, MSAL)",
			"https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow"},
		{OpLoginOpenIDConfiguration, Login, "GET", "{tenant}/v2.0/.well-known/openid-configuration", Anonymous, "none", "", nil,
			"MSAL's authority metadata",
			"https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc"},
		{OpLoginInstanceDiscovery, Login, "GET", "{tenant}/discovery/instance", Anonymous, "none", "", nil,
			"MSAL's instance discovery (off in rehearsals)",
			"https://learn.microsoft.com/en-us/entra/msal/dotnet/advanced/instance-metadata-caching"},

		{OpDataverseDiscoverTenant, Dataverse, "GET", "", Anonymous, "none", "", nil,
			"the organisation's tenant, from the bearer challenge of an anonymous request",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/authenticate-oauth"},
		{OpDataverseWhoAmI, Dataverse, "GET", "WhoAmI", DataverseRole, "application user (any security role)", "", nil,
			"the application user's ID (owner of its import operations)",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/whoami"},
		{OpDataverseReadSolutions, Dataverse, "GET", "solutions", DataverseRole, "prvReadSolution", "", nil,
			"the installed Work 365 version, the staged upgrade, the portal",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/solution"},
		{OpDataverseImportSolution, Dataverse, "POST", "ImportSolutionAsync", DataverseRole, "System Customizer", "", nil,
			"the import: ImportSolution's privileges (prvCreateCustomization, prvWriteCustomization, prvReadSolution, prvWriteSolution and reads of the components it holds) are in the System Customizer and System Administrator roles",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/importsolutionasync"},
		{OpDataverseUninstallSolution, Dataverse, "POST", "UninstallSolutionAsync", DataverseRole, "System Customizer", "", nil,
			"the portal's uninstall (from 2.1 or lower): deleting a solution and its components",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/uninstallsolutionasync"},
		{OpDataverseReadAsyncOperation, Dataverse, "GET", "asyncoperations({id})", DataverseRole, "prvReadAsyncOperation", "", nil,
			"following the import and uninstall operations",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/asyncoperation"},
		{OpDataverseListAsyncOperations, Dataverse, "GET", "asyncoperations", DataverseRole, "prvReadAsyncOperation", "", nil,
			"finding its own unfinished import operation after a retried start",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/asyncoperation"},
		{OpDataverseReadImportJob, Dataverse, "GET", "importjobs({id})", DataverseRole, "prvReadImportJob", "", nil,
			"the import's progress",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/importjob"},
		{OpDataverseReadImportLog, Dataverse, "GET", "RetrieveFormattedImportJobResults({params})", DataverseRole, "prvReadImportJob", "", nil,
			"the import log of a failed import",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/retrieveformattedimportjobresults"},
		{OpDataverseFindSystemUser, Dataverse, "GET", "systemusers", DataverseRole, "prvReadUser, prvReadRole", "", nil,
			"the admin's and service account's Dynamics users and security roles",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/systemuser"},
		{OpDataverseReadSystemUser, Dataverse, "GET", "systemusers({id})", DataverseRole, "prvReadUser, prvReadRole", "", nil,
			"the preflight: the orchestrator's own application user (WhoAmI's ID) and its security roles",
			"https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/systemuser"},
		{OpWork365ListJobs, Dataverse, "GET", "<jobs>", DataverseRole, "read on Work 365's jobs table", "", nil,
			"counting pending Work 365 jobs before the import",
			dvRole},
		{OpWork365ReadSettings, Dataverse, "GET", "<settings>", DataverseRole, "read on Work 365's settings table", "", nil,
			"the activity freeze and Work 365's initialisation record",
			dvRole},
		{OpWork365WriteSettings, Dataverse, "PATCH", "<settings>({id})", DataverseRole, "write on Work 365's settings table", "", nil,
			"freezing and unfreezing Work 365 activity",
			dvRole},

		{OpPartnerCenterOrganizationProf, PartnerCenter, "GET", "v1/profiles/organization", AppUser, "user_impersonation (App+User)", "", nil,
			"not called by the upgrade: the orchestrator runs app-only, so a re-consent is verified through Graph in the partner tenant (Work 365's delegated *Microsoft Partner Center* grant, above) and the partner admin's confirmation",
			"https://learn.microsoft.com/en-us/partner-center/developer/get-an-organization-profile"},
	}
}

// Get returns the manifest entry of an operation.
func Get(operation string) (Entry, bool) {
	for _, e := range Manifest() {
		if e.Operation == operation {
			return e, true
		}
	}
	return Entry{}, false
}

// Allows reports whether a token with these roles may make the call: an AppRole call needs
// one of Accepted; other kinds are not decided by token roles.
func (e Entry) Allows(roles []string) bool {
	if e.Kind != AppRole {
		return true
	}
	for _, p := range e.Accepted {
		for _, r := range roles {
			if strings.EqualFold(p, r) {
				return true
			}
		}
	}
	return false
}

// AppRoles are the Microsoft Graph application permissions the orchestrator app needs in every
// tenant (each entry's Grant), sorted: what an administrator consents to and what the
// preflight expects in the token's roles claim.
func AppRoles() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range Manifest() {
		if e.Kind == AppRole && !seen[e.Grant] {
			seen[e.Grant] = true
			out = append(out, e.Grant)
		}
	}
	sort.Strings(out)
	return out
}

// Missing returns the AppRole entries a token with these roles cannot call (none of their
// Accepted permissions is held), in manifest order: what a preflight reports per tenant.
func Missing(roles []string) []Entry {
	var out []Entry
	for _, e := range Manifest() {
		if !e.Allows(roles) {
			out = append(out, e)
		}
	}
	return out
}

var holeRE = regexp.MustCompile(`\{[^}/]*\}`)

// Match reports whether a path relative to the API root (already unescaped or not) matches
// the entry's Path, with vars giving the Work 365 table names.
func (e Entry) Match(api API, method, path string, vars map[string]string) bool {
	if api != e.API || !strings.EqualFold(method, e.Method) {
		return false
	}
	pattern := e.Path
	for k, v := range vars {
		pattern = strings.ReplaceAll(pattern, "<"+k+">", v)
	}
	if strings.Contains(pattern, "<") {
		return false // a table name that was not given
	}
	ps, segs := strings.Split(pattern, "/"), strings.Split(strings.Trim(path, "/"), "/")
	if pattern == "" {
		return strings.Trim(path, "/") == ""
	}
	if len(ps) != len(segs) {
		return false
	}
	for i, p := range ps {
		loc := holeRE.FindStringIndex(p)
		if loc == nil {
			if !strings.EqualFold(p, segs[i]) {
				return false
			}
			continue
		}
		pre, suf, s := p[:loc[0]], p[loc[1]:], segs[i]
		if len(s) <= len(pre)+len(suf) || !strings.EqualFold(s[:len(pre)], pre) || !strings.EqualFold(s[len(s)-len(suf):], suf) {
			return false
		}
	}
	return true
}

// Lookup finds the entry of a call given by API and path relative to the API root.
func Lookup(api API, method, path string, vars map[string]string) (Entry, bool) {
	for _, e := range Manifest() {
		if e.Match(api, method, path, vars) {
			return e, true
		}
	}
	return Entry{}, false
}

var dataverseRootRE = regexp.MustCompile(`(?i)^/api/data/v9\.[0-9]+/?`)

// Split tells which API a URL belongs to and its path relative to that API's root; ok is false
// for a host or root that is not one of the worker's Microsoft APIs.
func Split(u *url.URL) (api API, rel string, ok bool) {
	host := strings.ToLower(u.Hostname())
	p := u.EscapedPath()
	if unescaped, err := url.PathUnescape(p); err == nil {
		p = unescaped
	}
	switch {
	case host == "graph.microsoft.com":
		if !strings.HasPrefix(p, "/v1.0/") {
			return "", "", false
		}
		return Graph, strings.TrimPrefix(p, "/v1.0/"), true
	case host == "login.microsoftonline.com":
		return Login, strings.TrimPrefix(p, "/"), true
	case host == "api.partnercenter.microsoft.com":
		return PartnerCenter, strings.TrimPrefix(p, "/"), true
	case strings.HasSuffix(host, ".dynamics.com"):
		root := dataverseRootRE.FindString(p)
		if root == "" {
			return "", "", false
		}
		return Dataverse, p[len(root):], true
	}
	return "", "", false
}

// LookupURL finds the entry of a request URL.
func LookupURL(method string, u *url.URL, vars map[string]string) (Entry, bool) {
	api, rel, ok := Split(u)
	if !ok {
		return Entry{}, false
	}
	return Lookup(api, method, rel, vars)
}
