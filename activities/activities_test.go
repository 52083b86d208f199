package activities

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
	"github.com/csp-ops/work365-upgrade/microsoft/partnercenter"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

const (
	dynSku  = "11111111-1111-1111-1111-111111111111"
	p1Sku   = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4"
	org     = "https://contoso.crm.dynamics.com"
	tenant  = "00000000-0000-0000-0000-000000000001"
	admin   = "admin@contoso.onmicrosoft.com"
	service = "svc@contoso.onmicrosoft.com"
)

// fakes implements every port with in-memory state.
type fakes struct {
	initialisation work365.Initialisation
	users          map[string]msgraph.User
	globalAdmins   map[string]bool
	roleStatus     map[string]msgraph.RoleStatus // group-assigned or PIM-eligible roles, by user ID
	groups         map[string][]msgraph.Group    // direct group memberships, by user ID
	spsByApp       map[string]*msgraph.ServicePrincipal
	skus           []msgraph.SubscribedSku
	mfa            map[string]bool
	secDefaults    bool
	caPolicies     []msgraph.ConditionalAccessPolicy
	caErr          error
	sp             *msgraph.ServicePrincipal
	spErr          error
	grants         []msgraph.OAuth2PermissionGrant

	solutions  map[string]dataverse.Solution
	sysUsers   map[string]dataverse.SystemUser
	importJobs map[string]dataverse.ImportJob
	asyncOps   map[string][]dataverse.AsyncOperation // successive reads
	imports    []dataverse.ImportSolutionAsyncRequest
	uninstalls []string

	pending  int
	frozen   bool
	countErr error
	pcErr    error
	notified []Notification
}

func newFakes() *fakes {
	return &fakes{
		users: map[string]msgraph.User{
			admin:   {ID: "u-admin", UserPrincipalName: admin, AssignedLicenses: []msgraph.AssignedLicense{{SkuID: dynSku}}},
			service: {ID: "u-svc", UserPrincipalName: service, AssignedLicenses: []msgraph.AssignedLicense{{SkuID: dynSku}}},
		},
		globalAdmins: map[string]bool{"u-admin": true},
		skus: []msgraph.SubscribedSku{{SkuID: dynSku, SkuPartNumber: "DYN365_ENTERPRISE_PLAN1",
			ServicePlans: []msgraph.ServicePlanInfo{{ServicePlanID: "d56f3deb-50d8-465a-bedb-f079817ccac1", ServicePlanName: "DYN365_ENTERPRISE_P1"}}}},
		mfa:       map[string]bool{},
		solutions: map[string]dataverse.Solution{"Work365": {UniqueName: "Work365", Version: "2.1.0.3"}},
		sysUsers: map[string]dataverse.SystemUser{
			admin:   {DomainName: admin, Roles: []dataverse.Role{{Name: "System Administrator", RoleTemplateID: dataverse.SystemAdministratorRoleTemplateID}}},
			service: {DomainName: service, Roles: []dataverse.Role{{Name: "Work 365 Service"}}},
		},
		importJobs: map[string]dataverse.ImportJob{},
		asyncOps:   map[string][]dataverse.AsyncOperation{},
	}
}

func (f *fakes) GetUser(_ context.Context, _, upn string) (msgraph.User, error) {
	u, ok := f.users[upn]
	if !ok {
		return u, &msapi.Error{Service: "graph", Operation: "get user", Status: http.StatusNotFound}
	}
	return u, nil
}
func (f *fakes) ListRoleAssignments(_ context.Context, _, principal, role string) ([]msgraph.UnifiedRoleAssignment, error) {
	if f.globalAdmins[principal] && role == msgraph.GlobalAdministratorRoleTemplateID {
		return []msgraph.UnifiedRoleAssignment{{PrincipalID: principal, RoleDefinitionID: role}}, nil
	}
	return nil, nil
}
func (f *fakes) ListSubscribedSkus(context.Context, string) ([]msgraph.SubscribedSku, error) {
	return f.skus, nil
}
func (f *fakes) GetMFARegistration(_ context.Context, _, id string) (msgraph.MFARegistration, error) {
	return msgraph.MFARegistration{Registered: f.mfa[id]}, nil
}
func (f *fakes) GetSecurityDefaults(context.Context, string) (msgraph.SecurityDefaultsPolicy, error) {
	return msgraph.SecurityDefaultsPolicy{IsEnabled: f.secDefaults}, nil
}
func (f *fakes) ListConditionalAccessPolicies(context.Context, string) ([]msgraph.ConditionalAccessPolicy, error) {
	return f.caPolicies, f.caErr
}
func (f *fakes) FindServicePrincipal(_ context.Context, _, appID string) (*msgraph.ServicePrincipal, error) {
	if sp, ok := f.spsByApp[appID]; ok {
		return sp, f.spErr
	}
	return f.sp, f.spErr
}
func (f *fakes) ListOAuth2PermissionGrants(context.Context, string, string) ([]msgraph.OAuth2PermissionGrant, error) {
	return f.grants, nil
}
func (f *fakes) ListAppRoleAssignments(context.Context, string, string) ([]msgraph.AppRoleAssignment, error) {
	return nil, nil
}
func (f *fakes) WhoAmI(context.Context, string) (dataverse.WhoAmIResponse, error) {
	return dataverse.WhoAmIResponse{UserID: "app"}, nil
}
func (f *fakes) GetSolution(_ context.Context, _, name string) (*dataverse.Solution, error) {
	if s, ok := f.solutions[name]; ok {
		return &s, nil
	}
	return nil, nil
}
func (f *fakes) ImportSolutionAsync(_ context.Context, _ string, req dataverse.ImportSolutionAsyncRequest) (dataverse.ImportSolutionAsyncResponse, error) {
	f.imports = append(f.imports, req)
	f.importJobs[req.ImportJobID] = dataverse.ImportJob{ImportJobID: req.ImportJobID}
	return dataverse.ImportSolutionAsyncResponse{AsyncOperationID: "op-import"}, nil
}
func (f *fakes) UninstallSolutionAsync(_ context.Context, _, name string) (dataverse.UninstallSolutionAsyncResponse, error) {
	f.uninstalls = append(f.uninstalls, name)
	return dataverse.UninstallSolutionAsyncResponse{AsyncOperationID: "op-uninstall"}, nil
}
func (f *fakes) GetAsyncOperation(_ context.Context, _, id string) (dataverse.AsyncOperation, error) {
	ops := f.asyncOps[id]
	if len(ops) == 0 {
		return dataverse.AsyncOperation{}, &msapi.Error{Service: "dataverse", Status: 404}
	}
	o := ops[0]
	if len(ops) > 1 {
		f.asyncOps[id] = ops[1:]
	}
	return o, nil
}
func (f *fakes) GetImportJob(_ context.Context, _, id string) (*dataverse.ImportJob, error) {
	if j, ok := f.importJobs[id]; ok {
		return &j, nil
	}
	return nil, nil
}
func (f *fakes) RetrieveFormattedImportJobResults(context.Context, string, string) (string, error) {
	return "<result>missing dependency Work365Core</result>", nil
}
func (f *fakes) FindSystemUser(_ context.Context, _, upn string) (*dataverse.SystemUser, error) {
	if u, ok := f.sysUsers[upn]; ok {
		return &u, nil
	}
	return nil, nil
}
func (f *fakes) CountPendingJobs(context.Context, string) (int, error) { return f.pending, f.countErr }
func (f *fakes) Frozen(context.Context, string) (bool, error)          { return f.frozen, nil }
func (f *fakes) SetFrozen(_ context.Context, _ string, v bool) error   { f.frozen = v; return nil }
func (f *fakes) Initialisation(context.Context, string) (work365.Initialisation, error) {
	return f.initialisation, nil
}
func (f *fakes) GetOrganizationProfile(context.Context, string) (partnercenter.OrganizationProfile, error) {
	return partnercenter.OrganizationProfile{CompanyName: "Fabrikam"}, f.pcErr
}
func (f *fakes) Notify(_ context.Context, n Notification) error {
	f.notified = append(f.notified, n)
	return nil
}
func (f *fakes) Read(_ context.Context, ref string) ([]byte, error) {
	if ref == "missing.zip" {
		return nil, errors.New("no such file")
	}
	return []byte("PK-zip-" + ref), nil
}

func newActs(f *fakes) *Activities {
	return &Activities{Graph: f, Dataverse: f, Work365: f, PartnerCenter: f, Notifier: f, Packages: f,
		Names: work365.DefaultNames(), PollInterval: time.Millisecond}
}

var ref = TenantRef{TenantID: tenant, OrgURL: org}

func appErr(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "want an ApplicationError, got %T %v", err, err)
	return ae
}

func TestCheckPrerequisitesAllPass(t *testing.T) {
	f := newFakes()
	r, err := newActs(f).CheckPrerequisites(context.Background(), PrerequisiteInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service})
	require.NoError(t, err)
	require.Len(t, r.Checks, 6)
	for _, c := range r.Checks {
		require.True(t, c.Passed, "%s: %s", c.ID, c.Detail)
	}
}

func TestCheckPrerequisitesFailures(t *testing.T) {
	f := newFakes()
	f.globalAdmins = map[string]bool{}
	f.users[service] = msgraph.User{ID: "u-svc", UserPrincipalName: service}
	f.sysUsers[service] = dataverse.SystemUser{DomainName: service}
	delete(f.sysUsers, admin)
	f.skus = append(f.skus, msgraph.SubscribedSku{SkuID: p1Sku, SkuPartNumber: "AAD_PREMIUM"})
	r, err := newActs(f).CheckPrerequisites(context.Background(), PrerequisiteInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service})
	require.NoError(t, err)
	want := map[string]bool{CheckAdminGlobalAdmin: false, CheckAdminSystemAdmin: false, CheckAdminLicence: true,
		CheckServiceLicence: false, CheckServiceRole: false, CheckPremiumLicences: false}
	for id, passed := range want {
		c, ok := r.Check(id)
		require.True(t, ok, id)
		require.Equal(t, passed, c.Passed, "%s: %s", id, c.Detail)
	}
	c, _ := r.Check(CheckServiceRole)
	require.False(t, c.Blocking, "the runbook allows assigning the role after the import")
	c, _ = r.Check(CheckPremiumLicences)
	require.False(t, c.Blocking)
	require.Contains(t, c.Detail, "assign these licences")
	c, _ = r.Check(CheckAdminSystemAdmin)
	require.Equal(t, "user not found in Dynamics 365", c.Detail)
}

func TestPremiumFromBundleServicePlan(t *testing.T) {
	skus := []msgraph.SubscribedSku{{SkuID: "e3", SkuPartNumber: "SPE_E3", ServicePlans: []msgraph.ServicePlanInfo{{ServicePlanID: aadPremiumServicePlanID, ServicePlanName: "AAD_PREMIUM"}}}}
	has, all := premiumLicences(skus, msgraph.User{AssignedLicenses: []msgraph.AssignedLicense{{SkuID: "E3"}}})
	require.True(t, has)
	require.True(t, all)
}

func TestDrainJobsReportsCount(t *testing.T) {
	f := newFakes()
	f.pending = 7
	err := newActs(f).DrainJobs(context.Background(), ref)
	ae := appErr(t, err)
	require.Equal(t, "7 Work 365 jobs still pending", ae.Message())
	require.Equal(t, ErrJobsPending, ae.Type())
	require.False(t, ae.NonRetryable())
	require.Equal(t, temporal.ApplicationErrorCategoryBenign, ae.Category())
	f.pending = 1
	require.Equal(t, "1 Work 365 job still pending", appErr(t, newActs(f).DrainJobs(context.Background(), ref)).Message())
	f.pending = 0
	require.NoError(t, newActs(f).DrainJobs(context.Background(), ref))
}

func TestErrorClassification(t *testing.T) {
	f := newFakes()
	acts := newActs(f)
	f.countErr = &msapi.Error{Service: "dataverse", Operation: "count", Status: 429, RetryAfter: 7 * time.Second}
	ae := appErr(t, acts.DrainJobs(context.Background(), ref))
	require.False(t, ae.NonRetryable())
	require.Equal(t, 7*time.Second, ae.NextRetryDelay())
	f.countErr = &msapi.Error{Service: "dataverse", Operation: "count", Status: 503}
	require.False(t, appErr(t, acts.DrainJobs(context.Background(), ref)).NonRetryable())
	f.countErr = &msapi.Error{Service: "dataverse", Operation: "count", Status: 403, Hint: "the orchestrator app needs an application user"}
	ae = appErr(t, acts.DrainJobs(context.Background(), ref))
	require.True(t, ae.NonRetryable())
	require.Equal(t, ErrMicrosoftUnauthorized, ae.Type())
	require.Contains(t, ae.Message(), "application user")
	f.countErr = &msapi.Error{Service: "dataverse", Operation: "count", Status: 404}
	require.Equal(t, ErrMicrosoftNotFound, appErr(t, acts.DrainJobs(context.Background(), ref)).Type())
	f.countErr = errors.New("connection reset")
	require.False(t, appErr(t, acts.DrainJobs(context.Background(), ref)).NonRetryable())
}

func TestMFAPolicies(t *testing.T) {
	ctx := context.Background()
	f := newFakes()
	acts := newActs(f)
	p, err := acts.CheckMFAPolicies(ctx, tenant)
	require.NoError(t, err)
	require.False(t, p.Enabled)
	f.caPolicies = []msgraph.ConditionalAccessPolicy{
		{DisplayName: "report only", State: "enabledForReportingButNotEnforced", GrantControls: &msgraph.ConditionalAccessGrantControls{BuiltInControls: []string{"mfa"}}},
		{DisplayName: "Require MFA", State: "enabled", GrantControls: &msgraph.ConditionalAccessGrantControls{BuiltInControls: []string{"mfa"}},
			Conditions: &msgraph.ConditionalAccessConditions{Users: &msgraph.ConditionalAccessUsers{IncludeUsers: []string{"All"}}}},
	}
	p, err = acts.CheckMFAPolicies(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, MFAPolicies{Enabled: true, Source: "conditional access: Require MFA"}, p)
	f.caPolicies = nil
	f.caErr = &msapi.Error{Status: 403}
	p, err = acts.CheckMFAPolicies(ctx, tenant)
	require.NoError(t, err, "no P1: no conditional access")
	require.False(t, p.Enabled)
	f.secDefaults = true
	p, err = acts.CheckMFAPolicies(ctx, tenant)
	require.NoError(t, err)
	require.Equal(t, "security defaults", p.Source)

	f.mfa["u-svc"] = true
	r, err := acts.CheckMFA(ctx, MFAInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service})
	require.NoError(t, err)
	require.True(t, r.ServiceRegistered)
	require.False(t, r.AdminRegistered)
}

func TestStartImportIsIdempotent(t *testing.T) {
	ctx := context.Background()
	f := newFakes()
	acts := newActs(f)
	in := ImportInput{Tenant: ref, PackageRef: "w365.zip", ImportJobID: "job-1", Holding: true, TargetVersion: "2.5.0.1"}
	st, err := acts.StartImport(ctx, in)
	require.NoError(t, err)
	require.Equal(t, "op-import", st.AsyncOperationID)
	require.Len(t, f.imports, 1)
	require.True(t, f.imports[0].HoldingSolution)
	require.Equal(t, "job-1", f.imports[0].ImportJobID)
	require.Equal(t, "UEstemlwLXczNjUuemlw", f.imports[0].CustomizationFile)

	st, err = acts.StartImport(ctx, in) // a retry after a lost answer
	require.NoError(t, err)
	require.Equal(t, "import job already started", st.Already)
	require.Len(t, f.imports, 1, "never imports twice")

	f.solutions["Work365_Upgrade"] = dataverse.Solution{UniqueName: "Work365_Upgrade", Version: "2.5.0.1"}
	st, err = acts.StartImport(ctx, ImportInput{Tenant: ref, PackageRef: "w365.zip", ImportJobID: "job-2", Holding: true, TargetVersion: "2.5.0.1"})
	require.NoError(t, err)
	require.Contains(t, st.Already, "staged upgrade 2.5.0.1 already present")
	require.Len(t, f.imports, 1)

	_, err = acts.StartImport(ctx, ImportInput{Tenant: ref, PackageRef: "missing.zip", ImportJobID: "job-3"})
	ae := appErr(t, err)
	require.True(t, ae.NonRetryable())
	require.Equal(t, ErrSolutionMissing, ae.Type())
	require.Contains(t, ae.Message(), "solutionPackage")
}

func TestWaitForImportHeartbeatsAndFails(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	f := newFakes()
	acts := newActs(f)
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	var beats []ImportProgress
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var p ImportProgress
		if details.HasValues() && details.Get(&p) == nil {
			beats = append(beats, p)
		}
	})
	f.importJobs["job-1"] = dataverse.ImportJob{ImportJobID: "job-1", Progress: 40}
	f.asyncOps["op-1"] = []dataverse.AsyncOperation{{StatusCode: 20}, {StatusCode: 20}, {StateCode: 3, StatusCode: 30}}
	v, err := env.ExecuteActivity(acts.WaitForImport, ImportStarted{Tenant: ref, ImportJobID: "job-1", AsyncOperationID: "op-1"})
	require.NoError(t, err)
	var p ImportProgress
	require.NoError(t, v.Get(&p))
	require.Equal(t, 100.0, p.Percent)
	require.NotEmpty(t, beats, "the import's percent is heartbeated")
	require.Equal(t, 40.0, beats[0].Percent)

	f.asyncOps["op-2"] = []dataverse.AsyncOperation{{StateCode: 3, StatusCode: 31, Message: "Import failed"}}
	_, err = env.ExecuteActivity(acts.WaitForImport, ImportStarted{Tenant: ref, ImportJobID: "job-1", AsyncOperationID: "op-2"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "missing dependency Work365Core")
	require.Contains(t, err.Error(), "retryable: false")
}

func TestPortalUninstall(t *testing.T) {
	ctx := context.Background()
	f := newFakes()
	acts := newActs(f)
	op, err := acts.StartPortalUninstall(ctx, ref)
	require.NoError(t, err)
	require.Empty(t, op.OperationID, "no portal: nothing to do")
	f.solutions["Work365Portal"] = dataverse.Solution{UniqueName: "Work365Portal", Version: "2.0"}
	op, err = acts.StartPortalUninstall(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, "op-uninstall", op.OperationID)
	require.Equal(t, []string{"Work365Portal"}, f.uninstalls)
}

func TestUpgradeProgressChecks(t *testing.T) {
	ctx := context.Background()
	f := newFakes()
	acts := newActs(f)
	c := UpgradeCheck{Tenant: ref, TargetVersion: "2.5.0.1"}
	_, err := acts.VerifyImport(ctx, c)
	require.True(t, appErr(t, err).NonRetryable())
	f.solutions["Work365_Upgrade"] = dataverse.Solution{Version: "2.5.0.1"}
	s, err := acts.VerifyImport(ctx, c)
	require.NoError(t, err)
	require.Equal(t, "2.5.0.1", s.StagedVersion)

	_, err = acts.WaitForUpgradeStarted(ctx, c)
	require.Equal(t, ErrUpgradeNotStarted, appErr(t, err).Type())
	_, err = acts.WaitForCompletion(ctx, c)
	require.Contains(t, appErr(t, err).Message(), `installed "2.1.0.3", staged 2.5.0.1`)

	_, err = acts.VerifyImport(ctx, UpgradeCheck{Tenant: ref, TargetVersion: "2.5.0.1", NewInstall: true})
	require.Contains(t, appErr(t, err).Message(), "is not installed after the import")

	delete(f.solutions, "Work365_Upgrade") // promoted
	_, err = acts.WaitForUpgradeStarted(ctx, c)
	require.NoError(t, err)
	f.solutions["Work365"] = dataverse.Solution{Version: "2.5.0.1"}
	s, err = acts.WaitForCompletion(ctx, c)
	require.NoError(t, err)
	require.Equal(t, "2.5.0.1", s.InstalledVersion)
}

func TestVerifyConsent(t *testing.T) {
	ctx := context.Background()
	f := newFakes()
	acts := newActs(f)
	c, err := acts.VerifyConsent(ctx, ref)
	require.NoError(t, err)
	require.True(t, c.Observable)
	require.False(t, c.Granted)
	f.sp = &msgraph.ServicePrincipal{ID: "sp-1"}
	f.grants = []msgraph.OAuth2PermissionGrant{{ConsentType: "Principal"}, {ConsentType: "AllPrincipals", Scope: "User.Read"}}
	c, err = acts.VerifyConsent(ctx, ref)
	require.NoError(t, err)
	require.True(t, c.Granted)
	f.spErr = &msapi.Error{Status: 403}
	c, err = acts.VerifyConsent(ctx, ref)
	require.NoError(t, err)
	require.False(t, c.Observable)
}

func TestProbePartnerCenter(t *testing.T) {
	ctx := context.Background()
	f := newFakes()
	acts := newActs(f)
	// Partner Center itself refuses app-only tokens (issue 11 item 2): the probe never asks it.
	f.pcErr = &msapi.Error{Service: "partnercenter", Operation: "probe", Status: 401}
	p, err := acts.ProbePartnerCenter(ctx, tenant)
	require.NoError(t, err)
	require.False(t, p.Verified, "no Work 365 app in the partner tenant")
	require.Contains(t, p.Detail, "re-consent")

	f.spsByApp = map[string]*msgraph.ServicePrincipal{
		acts.Names.AppID:    {ID: "sp-w365", AppID: acts.Names.AppID},
		partnercenter.AppID: {ID: "sp-pc", AppID: partnercenter.AppID},
	}
	f.grants = []msgraph.OAuth2PermissionGrant{{ClientID: "sp-w365", ConsentType: "AllPrincipals", ResourceID: "sp-graph", Scope: "User.Read"}}
	p, err = acts.ProbePartnerCenter(ctx, tenant)
	require.NoError(t, err)
	require.False(t, p.Verified, "a grant on another resource is no Partner Center consent")

	f.grants = append(f.grants, msgraph.OAuth2PermissionGrant{ClientID: "sp-w365", ConsentType: "AllPrincipals", ResourceID: "sp-pc", Scope: "user_impersonation"})
	p, err = acts.ProbePartnerCenter(ctx, tenant)
	require.NoError(t, err)
	require.True(t, p.Verified, p.Detail)
	require.Contains(t, p.Detail, "user_impersonation")

	f.spErr = &msapi.Error{Service: "graph", Status: 403}
	p, err = acts.ProbePartnerCenter(ctx, tenant)
	require.NoError(t, err, "a refusal is a result")
	require.False(t, p.Verified)
	f.spErr = &msapi.Error{Service: "graph", Status: 503}
	_, err = acts.ProbePartnerCenter(ctx, tenant)
	require.False(t, appErr(t, err).NonRetryable())
}

func TestResolveWindow(t *testing.T) {
	acts := newActs(newFakes())
	w, err := acts.ResolveWindow(context.Background(), spec.Tenant{TimeZone: "America/New_York", Window: spec.Window{Start: "2026-07-01T22:00", Length: "4h"}})
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 7, 2, 2, 0, 0, 0, time.UTC), w.Opens)
	require.Equal(t, time.Date(2026, 7, 2, 6, 0, 0, 0, time.UTC), w.Closes)
	_, err = acts.ResolveWindow(context.Background(), spec.Tenant{TimeZone: "Mars/Olympus", Window: spec.Window{Start: "2026-07-01T22:00", Length: "4h"}})
	ae := appErr(t, err)
	require.True(t, ae.NonRetryable())
	require.True(t, strings.Contains(ae.Message(), "timeZone"))
}

func TestFreezeAndFinalCheck(t *testing.T) {
	ctx := context.Background()
	f := newFakes()
	acts := newActs(f)
	require.NoError(t, acts.Freeze(ctx, ref))
	require.True(t, f.frozen)
	s, err := acts.FinalCheck(ctx, UpgradeCheck{Tenant: ref, TargetVersion: "2.5.0.1"})
	require.NoError(t, err)
	require.True(t, s.Frozen)
	require.NoError(t, acts.Unfreeze(ctx, ref))
	require.False(t, f.frozen)
}

// An expired orchestrator secret is its own failure type, which the workflow waits out instead
// of failing the tenant; a missing consent in one tenant stays MicrosoftUnauthorized.
func TestClassifyOrchestratorFault(t *testing.T) {
	var app *temporal.ApplicationError
	err := classify(&msapi.Error{Service: "login", Operation: "acquire a token", Code: "AADSTS7000222", Status: http.StatusUnauthorized}, "connect")
	require.ErrorAs(t, err, &app)
	require.Equal(t, ErrOrchestratorFault, app.Type())
	err = classify(&msapi.Error{Service: "login", Operation: "acquire a token", Code: "AADSTS65001", Status: http.StatusUnauthorized}, "connect")
	require.ErrorAs(t, err, &app)
	require.Equal(t, ErrMicrosoftUnauthorized, app.Type())
}
