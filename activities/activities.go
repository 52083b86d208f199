// Package activities holds the side effects of a tenant upgrade: every read and write of
// Microsoft Graph, Dataverse, Work 365 and Partner Center, and every notification to people.
//
// Activities are idempotent: Temporal retries them, so each one checks before it acts.
// Dependencies are small interfaces (ports.go); the HTTP adapters implement them.
package activities

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
	"github.com/csp-ops/work365-upgrade/microsoft/partnercenter"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Activities is registered with the worker; the workflow calls its methods by reference.
type Activities struct {
	Graph         Graph
	Dataverse     Dataverse
	Work365       Work365
	PartnerCenter PartnerCenter
	Notifier      Notifier
	Packages      Packages
	// Workflows reads the fleet's tenant upgrades (the worker's Temporal client): a tenant's
	// end is taken from its workflow, never from a signal alone.
	Workflows WorkflowReader
	// Reports keeps fleets' final reports (nil: not written, with a warning in the fleet).
	Reports ReportStore
	// Names are Work 365's private names (work365.DefaultNames unless configured).
	Names work365.Names
	// PollInterval is the time between two reads of an asynchronous operation inside one
	// heartbeating activity (default 10s).
	PollInterval time.Duration
	// WebUIURL and Namespace make every notification carry the link of its workflow in the
	// Temporal Web UI (notify.webUIURL); empty: no link.
	WebUIURL  string
	Namespace string
	// DeskLinks, when set, returns the task desk link of a task (desk.publicURL and
	// desk.linkKeyFile): every task notification then carries one. It runs inside the
	// activity, so the signed token never enters history.
	DeskLinks func(namespace, workflowID, taskID string) string
	// Preflight is the read-only readiness checks (the Preflight workflow's activity), wired
	// with the same adapters; the worker registers it beside these activities.
	Preflight *Preflight
}

// TenantRef addresses a tenant's directory and its Dynamics organisation.
type TenantRef struct {
	TenantID string `json:"tenantId"`
	OrgURL   string `json:"orgUrl"`
}

// bind makes every Dataverse call under ctx refuse an organisation that reports a tenant
// other than t.TenantID (dataverse.Guard checks it before a token is minted).
func (t TenantRef) bind(ctx context.Context) context.Context {
	return dataverse.ExpectTenant(ctx, t.TenantID)
}

// WindowTimes is a downtime window resolved in the tenant's time zone.
type WindowTimes struct {
	Opens  time.Time `json:"opens"`
	Closes time.Time `json:"closes"`
}

// ResolveWindow resolves the downtime window in the tenant's time zone (the time zone database
// is I/O, hence an activity). An unknown zone or bad window is permanent.
func (a *Activities) ResolveWindow(ctx context.Context, t spec.Tenant) (WindowTimes, error) {
	opens, closes, err := t.LoadWindow()
	if err != nil {
		return WindowTimes{}, permanent(ErrInvalidSpec, "invalid tenant spec: %v", err)
	}
	return WindowTimes{Opens: opens.UTC(), Closes: closes.UTC()}, nil
}

// Discovery is what the tenant has installed today.
type Discovery struct {
	// InstalledVersion is Work 365's version; empty for a new install.
	InstalledVersion string `json:"installedVersion,omitempty"`
	PortalInstalled  bool   `json:"portalInstalled"`
	PortalVersion    string `json:"portalVersion,omitempty"`
	// StagedVersion is the version of a staged (holding) upgrade already present, if any.
	StagedVersion string `json:"stagedVersion,omitempty"`
}

// Discover reads the installed Work 365 and portal solutions.
func (a *Activities) Discover(ctx context.Context, t TenantRef) (Discovery, error) {
	ctx = t.bind(ctx)
	ctx, reads := startReads(ctx)
	if _, err := remember(ctx, reads, "whoami", func() (dataverse.WhoAmIResponse, error) { return a.Dataverse.WhoAmI(ctx, t.OrgURL) }); err != nil {
		return Discovery{}, classify(err, "connect to Dynamics "+t.OrgURL)
	}
	solution := func(name string) (*dataverse.Solution, error) {
		return remember(ctx, reads, "solution-"+name, func() (*dataverse.Solution, error) { return a.Dataverse.GetSolution(ctx, t.OrgURL, name) })
	}
	var d Discovery
	main, err := solution(a.Names.SolutionUniqueName)
	if err != nil {
		return d, classify(err, "read the Work 365 solution")
	}
	if main != nil {
		d.InstalledVersion = main.Version
	}
	portal, err := solution(a.Names.PortalSolutionUniqueName)
	if err != nil {
		return d, classify(err, "read the Work 365 portal solution")
	}
	if portal != nil {
		d.PortalInstalled, d.PortalVersion = true, portal.Version
	}
	staged, err := solution(a.Names.HoldingSolutionName())
	if err != nil {
		return d, classify(err, "read the staged Work 365 upgrade")
	}
	if staged != nil {
		d.StagedVersion = staged.Version
	}
	return d, nil
}

// Prerequisite check IDs, one per row of the runbook's table (row 1 split in two).
const (
	CheckAdminGlobalAdmin = "admin-global-administrator"
	CheckAdminSystemAdmin = "admin-system-administrator"
	CheckAdminLicence     = "admin-dynamics-licence"
	CheckServiceLicence   = "service-account-dynamics-licence"
	CheckServiceRole      = "service-account-work365-role"
	CheckPremiumLicences  = "entra-p1-ems-licences"
)

// PrerequisiteInput names the people the prerequisites are about.
type PrerequisiteInput struct {
	Tenant            TenantRef `json:"tenant"`
	GlobalAdminUPN    string    `json:"globalAdminUpn"`
	ServiceAccountUPN string    `json:"serviceAccountUpn"`
}

// Check is one verified prerequisite.
type Check struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Passed bool   `json:"passed"`
	// Blocking checks must pass before the upgrade goes on; others are advice.
	Blocking bool `json:"blocking"`
	// Detail says what was found.
	Detail string `json:"detail,omitempty"`
}

// PrerequisiteReport lists every check.
type PrerequisiteReport struct {
	Checks []Check `json:"checks"`
}

// Check returns the check with id.
func (r PrerequisiteReport) Check(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// CheckPrerequisites verifies the runbook's prerequisites table. It reports; deciding what
// blocks is the workflow's job.
func (a *Activities) CheckPrerequisites(ctx context.Context, in PrerequisiteInput) (PrerequisiteReport, error) {
	ctx = in.Tenant.bind(ctx)
	t := in.Tenant
	ctx, reads := startReads(ctx)
	skus, err := remember(ctx, reads, "skus", func() ([]msgraph.SubscribedSku, error) { return a.Graph.ListSubscribedSkus(ctx, t.TenantID) })
	if err != nil {
		return PrerequisiteReport{}, classify(err, "list the tenant's licences")
	}
	admin, err := remember(ctx, reads, "admin", func() (msgraph.User, error) { return a.Graph.GetUser(ctx, t.TenantID, in.GlobalAdminUPN) })
	if err != nil {
		return PrerequisiteReport{}, classify(err, "read the Global Administrator "+in.GlobalAdminUPN)
	}
	svc, err := remember(ctx, reads, "service", func() (msgraph.User, error) { return a.Graph.GetUser(ctx, t.TenantID, in.ServiceAccountUPN) })
	if err != nil {
		return PrerequisiteReport{}, classify(err, "read the Work 365 service account "+in.ServiceAccountUPN)
	}
	roles, err := remember(ctx, reads, "admin-roles", func() (msgraph.RoleStatus, error) {
		return a.Graph.DirectoryRoleStatus(ctx, t.TenantID, admin.ID, msgraph.GlobalAdministratorRoleTemplateID)
	})
	if err != nil {
		return PrerequisiteReport{}, classify(err, "read the directory roles of "+in.GlobalAdminUPN)
	}
	adminDV, err := remember(ctx, reads, "admin-dynamics", func() (*dataverse.SystemUser, error) {
		return a.Dataverse.FindSystemUser(ctx, t.OrgURL, in.GlobalAdminUPN)
	})
	if err != nil {
		return PrerequisiteReport{}, classify(err, "read the Dynamics user "+in.GlobalAdminUPN)
	}
	svcDV, err := remember(ctx, reads, "service-dynamics", func() (*dataverse.SystemUser, error) {
		return a.Dataverse.FindSystemUser(ctx, t.OrgURL, in.ServiceAccountUPN)
	})
	if err != nil {
		return PrerequisiteReport{}, classify(err, "read the Dynamics user "+in.ServiceAccountUPN)
	}

	var r PrerequisiteReport
	add := func(id, title string, blocking, passed bool, detail string) {
		r.Checks = append(r.Checks, Check{ID: id, Title: title, Blocking: blocking, Passed: passed, Detail: detail})
	}
	add(CheckAdminGlobalAdmin, in.GlobalAdminUPN+" is a Global Administrator of the tenant", true, roles.Active(), globalAdminDetail(roles))
	sysAdmin := adminDV != nil && adminDV.HasRoleTemplate(dataverse.SystemAdministratorRoleTemplateID)
	add(CheckAdminSystemAdmin, in.GlobalAdminUPN+" has the 'System Administrator' role in Dynamics 365", true, sysAdmin,
		userDetail(adminDV, sysAdmin, "System Administrator role found", "no System Administrator role in Dynamics"))
	adminLic := msgraph.HasDynamicsLicence(admin, skus)
	add(CheckAdminLicence, in.GlobalAdminUPN+" has a Dynamics 365 licence", true, adminLic,
		yesNo(adminLic, "Dynamics 365 licence assigned", "no Dynamics 365 licence assigned (needed only for the upgrade)"))
	svcLic := msgraph.HasDynamicsLicence(svc, skus)
	add(CheckServiceLicence, in.ServiceAccountUPN+" has a Dynamics 365 licence", true, svcLic,
		yesNo(svcLic, "Dynamics 365 licence assigned", "no Dynamics 365 licence assigned (it must stay assigned)"))
	svcRole := svcDV != nil && svcDV.HasRoleNamed(a.Names.ServiceRoleName)
	// Not blocking: the runbook allows assigning it after the import when the installed
	// version lacks the role; the workflow re-checks it then.
	add(CheckServiceRole, in.ServiceAccountUPN+" has the '"+a.Names.ServiceRoleName+"' role", false, svcRole,
		userDetail(svcDV, svcRole, "role assigned", "role not assigned yet"))
	premium, assigned := premiumLicences(skus, admin, svc)
	advice := "the tenant has no Entra ID P1 or EMS plan"
	if premium {
		advice = yesNo(assigned, "Entra ID P1 / EMS licences assigned to both accounts",
			"the tenant owns Entra ID P1 / EMS: assign these licences to users before enabling MFA (recommended)")
	}
	add(CheckPremiumLicences, "Entra ID P1 / EMS licences assigned before MFA enablement", false, !premium || assigned, advice)
	return r, nil
}

// CheckServiceRole re-checks that the service account holds the Work 365 Service role (after
// the import, when the old solution had no such role).
func (a *Activities) CheckServiceRole(ctx context.Context, in PrerequisiteInput) (bool, error) {
	ctx = in.Tenant.bind(ctx)
	u, err := a.Dataverse.FindSystemUser(ctx, in.Tenant.OrgURL, in.ServiceAccountUPN)
	if err != nil {
		return false, classify(err, "read the Dynamics user "+in.ServiceAccountUPN)
	}
	return u != nil && u.HasRoleNamed(a.Names.ServiceRoleName), nil
}

// Freeze freezes Work 365 activity (idempotent).
func (a *Activities) Freeze(ctx context.Context, t TenantRef) error {
	ctx = t.bind(ctx)
	return classify(a.Work365.SetFrozen(ctx, t.OrgURL, true), "freeze Work 365 activity")
}

// Unfreeze unfreezes Work 365 activity (idempotent).
func (a *Activities) Unfreeze(ctx context.Context, t TenantRef) error {
	ctx = t.bind(ctx)
	return classify(a.Work365.SetFrozen(ctx, t.OrgURL, false), "unfreeze Work 365 activity")
}

// DrainJobs succeeds when no Work 365 job is pending; otherwise it fails with the count, and
// the retry policy polls it.
func (a *Activities) DrainJobs(ctx context.Context, t TenantRef) error {
	ctx = t.bind(ctx)
	n, err := a.Work365.CountPendingJobs(ctx, t.OrgURL)
	if err != nil {
		return classify(err, "count pending Work 365 jobs")
	}
	if n > 0 {
		return pending(ErrJobsPending, "%d Work 365 %s still pending", n, plural(n, "job", "jobs"))
	}
	return nil
}

// MFAInput names the accounts whose MFA registration matters.
type MFAInput struct {
	Tenant            TenantRef `json:"tenant"`
	GlobalAdminUPN    string    `json:"globalAdminUpn"`
	ServiceAccountUPN string    `json:"serviceAccountUpn"`
}

// MFAPolicies says whether MFA is enforced in a tenant, and how.
type MFAPolicies struct {
	Enabled bool `json:"enabled"`
	// Source is "security defaults", "conditional access: <name>[, <name>…]" or empty.
	Source string `json:"source,omitempty"`
	// Detail tells what was seen when it matters: policies that require MFA of selected users
	// or groups only (not tenant-wide), or an account no policy covers.
	Detail string `json:"detail,omitempty"`
}

// MFAReport is the MFA state of a tenant and its two accounts.
type MFAReport struct {
	Policies          MFAPolicies `json:"policies"`
	AdminRegistered   bool        `json:"adminRegistered"`
	ServiceRegistered bool        `json:"serviceRegistered"`
}

// CheckMFAPolicies tells whether MFA policies are enabled tenant-wide: security defaults on, or
// an enabled (not report-only) conditional-access policy for all users that requires MFA, by
// the built-in control or an authentication strength (the runbook's retired "baseline
// policies"). A policy scoped to users or groups is reported in Detail, not counted.
func (a *Activities) CheckMFAPolicies(ctx context.Context, tenantID string) (MFAPolicies, error) {
	ctx, reads := startReads(ctx)
	return a.mfaPolicies(ctx, reads, tenantID, nil)
}

// mfaAccount is an account whose MFA enforcement matters, with its group memberships.
type mfaAccount struct {
	upn, id  string
	groupIDs []string
}

// mfaPolicies decides whether MFA is enforced. Without accounts, only tenant-wide policies
// count. With accounts (the Global Administrator and the service account), a policy scoped to
// users or groups counts too, but only when every account is covered by some enforced policy
// requiring MFA (included, not excluded); roles in conditions are not evaluated.
// https://learn.microsoft.com/en-us/graph/api/conditionalaccessroot-list-policies
func (a *Activities) mfaPolicies(ctx context.Context, reads *readLog, tenantID string, accounts []mfaAccount) (MFAPolicies, error) {
	sd, err := remember(ctx, reads, "security-defaults", func() (msgraph.SecurityDefaultsPolicy, error) { return a.Graph.GetSecurityDefaults(ctx, tenantID) })
	if err != nil {
		return MFAPolicies{}, classify(err, "read security defaults")
	}
	if sd.IsEnabled {
		return MFAPolicies{Enabled: true, Source: "security defaults"}, nil
	}
	policies, err := remember(ctx, reads, "conditional-access", func() ([]msgraph.ConditionalAccessPolicy, error) {
		return a.Graph.ListConditionalAccessPolicies(ctx, tenantID)
	})
	if err != nil {
		var me *msapi.Error
		// Conditional access needs Entra ID P1: a tenant without it cannot have such policies.
		if errors.As(err, &me) && me.Unauthorized() && !sd.IsEnabled {
			return MFAPolicies{}, nil
		}
		return MFAPolicies{}, classify(err, "list conditional access policies")
	}
	var scoped []string
	for _, p := range policies {
		if !p.RequiresMFA() {
			continue
		}
		if p.TenantWide() && len(accounts) == 0 {
			return MFAPolicies{Enabled: true, Source: "conditional access: " + p.DisplayName}, nil
		}
		if !p.TenantWide() {
			scoped = append(scoped, "'"+p.DisplayName+"'")
		}
	}
	scopedNote := ""
	if len(scoped) > 0 {
		scopedNote = "conditional access " + strings.Join(scoped, ", ") + " requires MFA of selected users or groups only: not tenant-wide"
	}
	if len(accounts) == 0 {
		return MFAPolicies{Detail: scopedNote}, nil
	}
	var sources, uncovered []string
	for _, acct := range accounts {
		covered := false
		for _, p := range policies {
			if p.RequiresMFA() && p.Covers(acct.id, acct.groupIDs) {
				covered = true
				if !slices.Contains(sources, p.DisplayName) {
					sources = append(sources, p.DisplayName)
				}
			}
		}
		if !covered {
			uncovered = append(uncovered, acct.upn)
		}
	}
	if len(uncovered) > 0 {
		detail := "no enforced conditional access policy requiring MFA covers " + strings.Join(uncovered, " and ")
		if scopedNote != "" {
			detail += "; " + scopedNote
		}
		return MFAPolicies{Detail: detail}, nil
	}
	return MFAPolicies{Enabled: true, Source: "conditional access: " + strings.Join(sources, ", "), Detail: scopedNote}, nil
}

// CheckMFA reads MFA policies as they apply to both accounts, and their registrations.
func (a *Activities) CheckMFA(ctx context.Context, in MFAInput) (MFAReport, error) {
	ctx, reads := startReads(ctx)
	var users []msgraph.User
	for _, upn := range []string{in.ServiceAccountUPN, in.GlobalAdminUPN} {
		u, err := remember(ctx, reads, "user-"+upn, func() (msgraph.User, error) { return a.Graph.GetUser(ctx, in.Tenant.TenantID, upn) })
		if err != nil {
			return MFAReport{}, classify(err, "read "+upn)
		}
		users = append(users, u)
	}
	accounts := make([]mfaAccount, len(users))
	for i, u := range users {
		groups, err := remember(ctx, reads, "groups-"+u.ID, func() ([]msgraph.Group, error) { return a.Graph.ListGroupMemberships(ctx, in.Tenant.TenantID, u.ID) })
		if err != nil {
			return MFAReport{}, classify(err, "read the group memberships of "+u.UserPrincipalName)
		}
		accounts[i] = mfaAccount{upn: u.UserPrincipalName, id: u.ID}
		for _, g := range groups {
			accounts[i].groupIDs = append(accounts[i].groupIDs, g.ID)
		}
	}
	pol, err := a.mfaPolicies(ctx, reads, in.Tenant.TenantID, accounts)
	if err != nil {
		return MFAReport{}, err
	}
	r := MFAReport{Policies: pol}
	for i, out := range []*bool{&r.ServiceRegistered, &r.AdminRegistered} {
		reg, err := remember(ctx, reads, "mfa-"+users[i].ID, func() (msgraph.MFARegistration, error) {
			return a.Graph.GetMFARegistration(ctx, in.Tenant.TenantID, users[i].ID)
		})
		if err != nil {
			return MFAReport{}, classify(err, "read the MFA registration of "+users[i].UserPrincipalName)
		}
		*out = reg.Registered
	}
	return r, nil
}

// AsyncOp is an asynchronous Dataverse operation started by an activity.
type AsyncOp struct {
	Tenant TenantRef `json:"tenant"`
	// OperationID is the asyncoperation to poll; empty when nothing had to be done.
	OperationID string `json:"operationId,omitempty"`
	// What names the operation for messages, e.g. "portal uninstall".
	What string `json:"what"`
}

// StartPortalUninstall starts uninstalling the Work 365 portal solution; nothing to do when it
// is already gone (an earlier attempt got through).
func (a *Activities) StartPortalUninstall(ctx context.Context, t TenantRef) (AsyncOp, error) {
	ctx = t.bind(ctx)
	op := AsyncOp{Tenant: t, What: "portal uninstall"}
	sol, err := a.Dataverse.GetSolution(ctx, t.OrgURL, a.Names.PortalSolutionUniqueName)
	if err != nil {
		return op, classify(err, "read the portal solution")
	}
	if sol == nil {
		return op, nil
	}
	// A retry whose earlier attempt started the uninstall (its answer lost, or its worker
	// killed) follows that operation: Dataverse refuses a second start while the first runs
	// (0x80071151), which would fail the upgrade. The orchestrator uninstalls nothing else.
	me, err := a.Dataverse.WhoAmI(ctx, t.OrgURL)
	if err != nil {
		return op, classify(err, "identify the orchestrator's application user")
	}
	running, err := a.Dataverse.ListUnfinishedAsyncOperations(ctx, t.OrgURL, me.UserID)
	if err != nil {
		return op, classify(err, "look for a portal uninstall already started")
	}
	for _, o := range running {
		if strings.Contains(strings.ToLower(o.Name), "uninstall") {
			op.OperationID = o.AsyncOperationID
			return op, nil
		}
	}
	resp, err := a.Dataverse.UninstallSolutionAsync(ctx, t.OrgURL, a.Names.PortalSolutionUniqueName)
	if err != nil {
		return op, classify(err, "start the portal uninstall")
	}
	op.OperationID = resp.AsyncOperationID
	return op, nil
}

// WaitForAsyncOperation polls an asynchronous operation, heartbeating, until it completes.
func (a *Activities) WaitForAsyncOperation(ctx context.Context, op AsyncOp) error {
	ctx = op.Tenant.bind(ctx)
	if op.OperationID == "" {
		return nil
	}
	for {
		o, err := a.Dataverse.GetAsyncOperation(ctx, op.Tenant.OrgURL, op.OperationID)
		if err != nil {
			return classify(err, "read the "+op.What+" operation")
		}
		if o.Done() {
			if o.Succeeded() {
				return nil
			}
			return permanent(ErrOperationFailed, "%s failed (status %d): %s — fix the cause in Dynamics, then retry the upgrade", op.What, o.StatusCode, o.FailureText())
		}
		activity.RecordHeartbeat(ctx, fmt.Sprintf("%s: status %d", op.What, o.StatusCode))
		if err := a.sleep(ctx); err != nil {
			return err
		}
	}
}

// ImportInput describes one solution import.
type ImportInput struct {
	Tenant TenantRef `json:"tenant"`
	// PackageRef references the solution file in the package store.
	PackageRef string `json:"packageRef"`
	// ImportJobID is derived from the workflow, so a retried activity finds its own import.
	ImportJobID string `json:"importJobId"`
	// Holding stages the Work 365 import as an upgrade without applying it; false installs
	// directly (the portal reinstall).
	Holding bool `json:"holding"`
	// TargetVersion is the version the package brings (checked for a holding import).
	TargetVersion string `json:"targetVersion,omitempty"`
}

// ImportStarted tells the wait which import to follow.
type ImportStarted struct {
	Tenant           TenantRef `json:"tenant"`
	ImportJobID      string    `json:"importJobId"`
	AsyncOperationID string    `json:"asyncOperationId,omitempty"`
	// ImportJobKey is what ImportSolutionAsync returned to find the import job.
	ImportJobKey string `json:"importJobKey,omitempty"`
	// Already says why no new import was started ("staged upgrade present", "import job exists").
	Already string `json:"already,omitempty"`
}

// StartImport starts an asynchronous solution import, unless this import (same job ID) or its
// result already exists: a retry never imports twice. Dataverse creates the import job row
// only when the asynchronous operation starts, so an earlier attempt whose answer was lost is
// recognised by its import job or, before that row exists, by the orchestrator's own
// unfinished import operation, which is then followed instead of starting another.
// https://learn.microsoft.com/en-us/power-platform/alm/solution-async
func (a *Activities) StartImport(ctx context.Context, in ImportInput) (ImportStarted, error) {
	ctx = in.Tenant.bind(ctx)
	st := ImportStarted{Tenant: in.Tenant, ImportJobID: in.ImportJobID}
	if in.Holding {
		staged, err := a.Dataverse.GetSolution(ctx, in.Tenant.OrgURL, a.Names.HoldingSolutionName())
		if err != nil {
			return st, classify(err, "read the staged upgrade")
		}
		if staged != nil && spec.CompareVersions(staged.Version, in.TargetVersion) >= 0 {
			st.Already = "staged upgrade " + staged.Version + " already present"
			return st, nil
		}
	}
	job, err := a.Dataverse.GetImportJob(ctx, in.Tenant.OrgURL, in.ImportJobID)
	if err != nil {
		return st, classify(err, "look for import job "+in.ImportJobID)
	}
	if job != nil {
		st.Already = "import job already started"
		return st, nil
	}
	me, err := a.Dataverse.WhoAmI(ctx, in.Tenant.OrgURL)
	if err != nil {
		return st, classify(err, "identify the orchestrator's application user")
	}
	ops, err := a.Dataverse.ListUnfinishedAsyncOperations(ctx, in.Tenant.OrgURL, me.UserID)
	if err != nil {
		return st, classify(err, "look for an import already started")
	}
	for _, o := range ops {
		if strings.Contains(strings.ToLower(o.Name), "import") {
			st.AsyncOperationID = o.AsyncOperationID
			st.Already = "import already started (async operation " + o.AsyncOperationID + ", its import job not created yet)"
			return st, nil
		}
	}
	data, err := a.Packages.Read(ctx, in.PackageRef)
	if err != nil {
		return st, permanent(ErrSolutionMissing, "read solution package %q: %v — put the file in the package store or fix solutionPackage in the inventory", in.PackageRef, err)
	}
	resp, err := a.Dataverse.ImportSolutionAsync(ctx, in.Tenant.OrgURL, dataverse.ImportSolutionAsyncRequest{
		CustomizationFile:                base64.StdEncoding.EncodeToString(data),
		OverwriteUnmanagedCustomizations: false,
		PublishWorkflows:                 true,
		ImportJobID:                      in.ImportJobID,
		HoldingSolution:                  in.Holding,
	})
	if isDuplicateImportJob(err) {
		// An earlier send of this very start got through (its answer was lost): the job ID is
		// ours, so the import is ours, and WaitForImport follows it by its job.
		st.Already = "import job already started (Dataverse refused a second start of import job " + in.ImportJobID + " as a duplicate)"
		return st, nil
	}
	if err != nil {
		return st, classify(err, "start the solution import")
	}
	st.AsyncOperationID, st.ImportJobKey = resp.AsyncOperationID, resp.ImportJobKey
	return st, nil
}

// dataverseDuplicateRecord is Dataverse's DuplicateRecord error ("Cannot insert duplicate
// key"): the answer to a start whose ImportJobId, the import job's primary key, exists.
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/web-service-error-codes
const dataverseDuplicateRecord = "0x80040237"

// isDuplicateImportJob tells whether ImportSolutionAsync was refused because its import job
// ID is already used.
func isDuplicateImportJob(err error) bool {
	var me *msapi.Error
	return errors.As(err, &me) && me.Status == http.StatusBadRequest && strings.EqualFold(me.Code, dataverseDuplicateRecord)
}

// ImportProgress is the heartbeat of WaitForImport and its result.
type ImportProgress struct {
	Percent float64 `json:"percent"`
}

// WaitForImport polls an import, heartbeating its percent, until it completes: the async
// operation decides (done, succeeded), the import job — which may not exist until the
// operation starts — gives the percent; without an operation ID the job alone decides. A
// failed import fails permanently with the friendly and technical failure text and Dataverse's
// formatted results.
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/importsolutionasync
func (a *Activities) WaitForImport(ctx context.Context, st ImportStarted) (ImportProgress, error) {
	ctx = st.Tenant.bind(ctx)
	if st.Already == "" && st.AsyncOperationID == "" && st.ImportJobID == "" {
		return ImportProgress{}, permanent(ErrMisconfigured, "no import to wait for")
	}
	if strings.HasPrefix(st.Already, "staged upgrade") {
		return ImportProgress{Percent: 100}, nil
	}
	org := st.Tenant.OrgURL
	for {
		var p ImportProgress
		job, err := a.Dataverse.GetImportJob(ctx, org, st.ImportJobID)
		if err != nil {
			return p, classify(err, "read import job "+st.ImportJobID)
		}
		if job != nil {
			p.Percent = job.Progress
		}
		done, failed, msg := false, false, ""
		if st.AsyncOperationID != "" {
			o, err := a.Dataverse.GetAsyncOperation(ctx, org, st.AsyncOperationID)
			if err != nil {
				return p, classify(err, "read the import operation")
			}
			done, failed = o.Done(), o.Done() && !o.Succeeded()
			if failed {
				msg = o.FailureText()
			}
		} else if job != nil && job.CompletedOn != nil {
			done, failed = true, job.Progress < 100
		}
		if failed {
			details, err := a.Dataverse.RetrieveFormattedImportJobResults(ctx, org, st.ImportJobID)
			if err != nil {
				details = "(import log unavailable: " + err.Error() + ")"
			}
			return p, permanent(ErrOperationFailed, "solution import %s failed: %s %s — read the import log in Dynamics (Settings > Solutions > History), fix it, then retry the upgrade", st.ImportJobID, msg, truncate(details, 2000))
		}
		if done {
			p.Percent = 100
			return p, nil
		}
		activity.RecordHeartbeat(ctx, p)
		if err := a.sleep(ctx); err != nil {
			return p, err
		}
	}
}

// UpgradeCheck asks about the Work 365 solution against a target version.
type UpgradeCheck struct {
	Tenant        TenantRef `json:"tenant"`
	TargetVersion string    `json:"targetVersion"`
	// NewInstall is true when Work 365 was not installed before: it is installed directly,
	// not staged.
	NewInstall bool `json:"newInstall,omitempty"`
}

// SolutionState is the Work 365 solution's installed and staged versions.
type SolutionState struct {
	InstalledVersion string `json:"installedVersion,omitempty"`
	StagedVersion    string `json:"stagedVersion,omitempty"`
	Frozen           bool   `json:"frozen"`
	// Initialisation is Work 365's own record of Begin Upgrade ("InProgress", "Completed",
	// "Failed"; empty when it never ran), read where it decides.
	Initialisation string `json:"initialisation,omitempty"`
}

// initialisation reads Work 365's record of Begin Upgrade for the target version; it is empty
// when the record is about another version or absent.
func (a *Activities) initialisation(ctx context.Context, c UpgradeCheck) (string, error) {
	ctx = c.Tenant.bind(ctx)
	in, err := a.Work365.Initialisation(ctx, c.Tenant.OrgURL)
	var me *msapi.Error
	switch {
	case errors.As(err, &me) && me.NotFound():
		return "", nil // no settings table yet: never initialised
	case err != nil:
		return "", classify(err, "read Work 365's upgrade initialisation record")
	}
	if in.Version != "" && spec.CompareVersions(in.Version, c.TargetVersion) < 0 {
		return "", nil
	}
	return in.Status, nil
}

func (a *Activities) solutionState(ctx context.Context, t TenantRef) (SolutionState, error) {
	ctx = t.bind(ctx)
	var s SolutionState
	main, err := a.Dataverse.GetSolution(ctx, t.OrgURL, a.Names.SolutionUniqueName)
	if err != nil {
		return s, classify(err, "read the Work 365 solution")
	}
	if main != nil {
		s.InstalledVersion = main.Version
	}
	staged, err := a.Dataverse.GetSolution(ctx, t.OrgURL, a.Names.HoldingSolutionName())
	if err != nil {
		return s, classify(err, "read the staged Work 365 upgrade")
	}
	if staged != nil {
		s.StagedVersion = staged.Version
	}
	return s, nil
}

// VerifyImport checks that the import left a staged (holding) upgrade of the target version,
// not applied — or, for a new install, the target version installed.
func (a *Activities) VerifyImport(ctx context.Context, c UpgradeCheck) (SolutionState, error) {
	s, err := a.solutionState(ctx, c.Tenant)
	if err != nil {
		return s, err
	}
	if c.NewInstall {
		if spec.CompareVersions(s.InstalledVersion, c.TargetVersion) < 0 {
			return s, permanent(ErrSolutionMissing, "Work 365 %s is not installed after the import (installed: %q) — check Settings > Solutions in Dynamics", c.TargetVersion, s.InstalledVersion)
		}
		return s, nil
	}
	if s.StagedVersion == "" || spec.CompareVersions(s.StagedVersion, c.TargetVersion) < 0 {
		return s, permanent(ErrSolutionMissing, "no staged upgrade %s found after the import (staged: %q) — check Settings > Solutions in Dynamics; do not click Upgrade there", c.TargetVersion, s.StagedVersion)
	}
	return s, nil
}

// WaitForUpgradeStarted succeeds once Begin Upgrade has visibly started: Work 365 records its
// initialisation for the target version, or (upgrades) the staged upgrade was promoted
// (holding solution gone) or the target version is installed. A new install has nothing
// staged, so only Work 365's record shows its Begin Upgrade.
func (a *Activities) WaitForUpgradeStarted(ctx context.Context, c UpgradeCheck) (SolutionState, error) {
	s, err := a.solutionState(ctx, c.Tenant)
	if err != nil {
		return s, err
	}
	if s.Initialisation, err = a.initialisation(ctx, c); err != nil {
		return s, err
	}
	if s.Initialisation != "" {
		return s, nil
	}
	if c.NewInstall {
		return s, pending(ErrUpgradeNotStarted, "Begin Upgrade not clicked yet: Work 365 %s is installed but not initialised", s.InstalledVersion)
	}
	if s.StagedVersion == "" || spec.CompareVersions(s.InstalledVersion, c.TargetVersion) >= 0 {
		return s, nil
	}
	return s, pending(ErrUpgradeNotStarted, "Begin Upgrade not clicked yet: staged upgrade %s still waiting", s.StagedVersion)
}

// WaitForCompletion succeeds once the target version is installed and no staged upgrade
// remains; otherwise it fails with what it sees, and the retry policy polls it.
func (a *Activities) WaitForCompletion(ctx context.Context, c UpgradeCheck) (SolutionState, error) {
	s, err := a.solutionState(ctx, c.Tenant)
	if err != nil {
		return s, err
	}
	if c.NewInstall {
		if s.Initialisation, err = a.initialisation(ctx, c); err != nil {
			return s, err
		}
		if spec.CompareVersions(s.InstalledVersion, c.TargetVersion) >= 0 && s.Initialisation == work365.UpgradeCompleted {
			return s, nil
		}
		return s, pending(ErrUpgradeNotComplete, "initialisation of Work 365 %s: %s", c.TargetVersion, orWord(s.Initialisation, "not started"))
	}
	if spec.CompareVersions(s.InstalledVersion, c.TargetVersion) >= 0 && s.StagedVersion == "" {
		return s, nil
	}
	staged := "none"
	if s.StagedVersion != "" {
		staged = s.StagedVersion
	}
	return s, pending(ErrUpgradeNotComplete, "upgrade still running: installed %q, staged %s", s.InstalledVersion, staged)
}

// FinalCheck reads the end state for the final verification.
func (a *Activities) FinalCheck(ctx context.Context, c UpgradeCheck) (SolutionState, error) {
	s, err := a.solutionState(ctx, c.Tenant)
	if err != nil {
		return s, err
	}
	frozen, err := a.Work365.Frozen(ctx, c.Tenant.OrgURL)
	var me *msapi.Error
	switch {
	case errors.As(err, &me) && me.NotFound():
		// A new install may not have its settings row yet: nothing is frozen.
	case err != nil:
		return s, classify(err, "read the Work 365 freeze setting")
	default:
		s.Frozen = frozen
	}
	return s, nil
}

// ConsentState is what the tenant shows of the Global Administrator's consent to Work 365.
type ConsentState struct {
	// Observable is false when the orchestrator may not read service principals.
	Observable bool   `json:"observable"`
	Granted    bool   `json:"granted"`
	Detail     string `json:"detail"`
}

// VerifyConsent looks for the Work 365 app's service principal and tenant-wide grants.
func (a *Activities) VerifyConsent(ctx context.Context, t TenantRef) (ConsentState, error) {
	ctx = t.bind(ctx)
	ctx, reads := startReads(ctx)
	sp, err := remember(ctx, reads, "work365-app", func() (*msgraph.ServicePrincipal, error) {
		return a.Graph.FindServicePrincipal(ctx, t.TenantID, a.Names.AppID)
	})
	if err != nil {
		var me *msapi.Error
		if errors.As(err, &me) && me.Status == http.StatusForbidden {
			return ConsentState{Detail: "cannot read service principals (Application.Read.All missing): consent not verified"}, nil
		}
		return ConsentState{}, classify(err, "look for the Work 365 app in the tenant")
	}
	if sp == nil {
		return ConsentState{Observable: true, Detail: "the Work 365 app has no service principal in the tenant: consent was not given"}, nil
	}
	grants, err := remember(ctx, reads, "grants", func() ([]msgraph.OAuth2PermissionGrant, error) {
		return a.Graph.ListOAuth2PermissionGrants(ctx, t.TenantID, sp.ID)
	})
	if err != nil {
		return ConsentState{}, classify(err, "read the Work 365 app's delegated grants")
	}
	for _, g := range grants {
		if g.ConsentType == "AllPrincipals" {
			return ConsentState{Observable: true, Granted: true, Detail: "tenant-wide grant found: " + g.Scope}, nil
		}
	}
	roles, err := remember(ctx, reads, "app-roles", func() ([]msgraph.AppRoleAssignment, error) {
		return a.Graph.ListAppRoleAssignments(ctx, t.TenantID, sp.ID)
	})
	if err != nil {
		return ConsentState{}, classify(err, "read the Work 365 app's application permissions")
	}
	if len(roles) > 0 {
		return ConsentState{Observable: true, Granted: true, Detail: fmt.Sprintf("%d application permissions granted", len(roles))}, nil
	}
	return ConsentState{Observable: true, Detail: "the Work 365 app is present but has no tenant-wide grant: admin consent missing"}, nil
}

// PartnerCenterProbe is the result of probing a Partner Center connection.
type PartnerCenterProbe struct {
	Verified bool   `json:"verified"`
	Detail   string `json:"detail"`
}

// ProbePartnerCenter verifies a Partner Center re-consent with what Work 365's own connection
// leaves in the partner tenant: the Work 365 app's delegated grant on Microsoft Partner Center
// (user_impersonation, the Secure Application Model consent), read app-only through Graph.
// Partner Center's own API accepts App+User tokens only, which the orchestrator never holds,
// so it is not called. A refusal is a result (not verified), not an error.
// https://learn.microsoft.com/en-us/partner-center/developer/partner-center-authentication
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list-oauth2permissiongrants
func (a *Activities) ProbePartnerCenter(ctx context.Context, partnerTenantID string) (PartnerCenterProbe, error) {
	refused := func(err error, what string) (PartnerCenterProbe, error) {
		var me *msapi.Error
		if errors.As(err, &me) && !me.Retryable() {
			return PartnerCenterProbe{Detail: "cannot " + what + " in partner tenant " + partnerTenantID + ": " + me.Error()}, nil
		}
		return PartnerCenterProbe{}, classify(err, what+" in partner tenant "+partnerTenantID)
	}
	w365, err := a.Graph.FindServicePrincipal(ctx, partnerTenantID, a.Names.AppID)
	if err != nil {
		return refused(err, "look for the Work 365 app")
	}
	if w365 == nil {
		return PartnerCenterProbe{Detail: "the Work 365 app has no service principal in partner tenant " + partnerTenantID + ": the Partner Center re-consent was not given there"}, nil
	}
	pc, err := a.Graph.FindServicePrincipal(ctx, partnerTenantID, partnercenter.AppID)
	if err != nil {
		return refused(err, "look for Microsoft Partner Center")
	}
	if pc == nil {
		return PartnerCenterProbe{Detail: "partner tenant " + partnerTenantID + " has no Microsoft Partner Center service principal: check the connection's tenant ID (indirect resellers have no Partner Center API)"}, nil
	}
	grants, err := a.Graph.ListOAuth2PermissionGrants(ctx, partnerTenantID, w365.ID)
	if err != nil {
		return refused(err, "read the Work 365 app's delegated grants")
	}
	for _, g := range grants {
		if strings.EqualFold(g.ResourceID, pc.ID) && slices.Contains(strings.Fields(g.Scope), "user_impersonation") {
			return PartnerCenterProbe{Verified: true, Detail: fmt.Sprintf("the Work 365 app holds the delegated Partner Center permission (user_impersonation, consent %s) in partner tenant %s", g.ConsentType, partnerTenantID)}, nil
		}
	}
	return PartnerCenterProbe{Detail: "the Work 365 app has no delegated Partner Center permission in partner tenant " + partnerTenantID + ": the Partner Center re-consent was not completed"}, nil
}

// Notify delivers a notification.
func (a *Activities) Notify(ctx context.Context, n Notification) error {
	if n.Link == "" && a.WebUIURL != "" && n.WorkflowID != "" {
		n.Link = WebUILink(a.WebUIURL, a.Namespace, n.WorkflowID)
	}
	if a.DeskLinks != nil && n.TaskID != "" && n.WorkflowID != "" && n.DeskLink == "" {
		switch n.Event {
		case EventTaskOpened, EventTaskReminder, EventTaskEscalated:
			ns := a.Namespace
			if ns == "" {
				ns = "default"
			}
			n.DeskLink = a.DeskLinks(ns, n.WorkflowID, n.TaskID)
		}
	}
	err := a.Notifier.Notify(ctx, n)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotificationRejected):
		return permanent(ErrMisconfigured, "notify %s for task %q: %v — fix the notification channel in the worker config", n.Event, n.TaskID, err)
	}
	return fmt.Errorf("notify %s for task %q: %w", n.Event, n.TaskID, err)
}

// WebUILink is a workflow's page (its latest run) in the Temporal Web UI at base.
func WebUILink(base, namespace, workflowID string) string {
	if namespace == "" {
		namespace = "default"
	}
	return strings.TrimRight(base, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
}

// ErrNotificationRejected is what a Notifier wraps when the channel refused a notification
// for good (a 4xx): retrying will not help.
var ErrNotificationRejected = errors.New("notification rejected: retrying will not help")

func (a *Activities) sleep(ctx context.Context) error {
	d := a.PollInterval
	if d <= 0 {
		d = 10 * time.Second
	}
	return ctxtime.Sleep(ctx, d)
}

// globalAdminDetail says how the Global Administrator role is held. An active group
// assignment passes (the role is in effect); a PIM eligibility does not: the role must be
// activated before the window, since consent and MFA enablement need it active.
func globalAdminDetail(s msgraph.RoleStatus) string {
	switch {
	case s.Direct:
		return "Global Administrator role assigned"
	case len(s.ViaGroups) > 0:
		return "Global Administrator role assigned through group " + strings.Join(s.ViaGroups, ", ") + " (active)"
	case s.Eligible:
		return "Global Administrator role is eligible in Privileged Identity Management but not active: activate the role in PIM before the window"
	}
	return "no Global Administrator role assignment found"
}

// Entra ID P1 comes as its own SKU, inside EMS, or inside bundles: match the service plan.
const aadPremiumServicePlanID = "41781fb2-bc02-4b7c-bd55-b576c07bb09d"

func premiumLicences(skus []msgraph.SubscribedSku, users ...msgraph.User) (tenantHas, allAssigned bool) {
	premium := map[string]bool{}
	for _, s := range skus {
		isP := s.SkuPartNumber == "AAD_PREMIUM" || s.SkuPartNumber == "EMS" || s.SkuPartNumber == "EMSPREMIUM"
		for _, p := range s.ServicePlans {
			isP = isP || strings.EqualFold(p.ServicePlanID, aadPremiumServicePlanID)
		}
		if isP {
			premium[strings.ToLower(s.SkuID)] = true
		}
	}
	if len(premium) == 0 {
		return false, false
	}
	for _, u := range users {
		has := false
		for _, l := range u.AssignedLicenses {
			has = has || premium[strings.ToLower(l.SkuID)]
		}
		if !has {
			return true, false
		}
	}
	return true, true
}

func userDetail(u *dataverse.SystemUser, ok bool, yes, no string) string {
	if u == nil {
		return "user not found in Dynamics 365"
	}
	return yesNo(ok, yes, no)
}

func yesNo(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func orWord(s, word string) string {
	if s == "" {
		return word
	}
	return s
}
