package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
)

// The Graph fake's answers to the role and group reads (issue 11).

func (f *fakes) DirectoryRoleStatus(_ context.Context, _, userID, role string) (msgraph.RoleStatus, error) {
	if role != msgraph.GlobalAdministratorRoleTemplateID {
		return msgraph.RoleStatus{}, nil
	}
	if f.globalAdmins[userID] {
		return msgraph.RoleStatus{Direct: true}, nil
	}
	return f.roleStatus[userID], nil
}

func (f *fakes) ListGroupMemberships(_ context.Context, _, userID string) ([]msgraph.Group, error) {
	return f.groups[userID], nil
}

// Issue 11 item 6: a Sales Professional SKU (D365_SALES_PRO) carries the DYN365_SALES_PRO plan.
func TestDynamicsLicenceFromServicePlanOfSalesPro(t *testing.T) {
	f := newFakes()
	const salesPro = "22222222-2222-2222-2222-222222222222"
	f.skus = []msgraph.SubscribedSku{{SkuID: salesPro, SkuPartNumber: "D365_SALES_PRO",
		ServicePlans: []msgraph.ServicePlanInfo{{ServicePlanID: "88d83950-ff78-4e85-aa66-abfc787f8090", ServicePlanName: "DYN365_SALES_PRO"}}}}
	for _, upn := range []string{admin, service} {
		u := f.users[upn]
		u.AssignedLicenses = []msgraph.AssignedLicense{{SkuID: salesPro}}
		f.users[upn] = u
	}
	r, err := newActs(f).CheckPrerequisites(context.Background(), PrerequisiteInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service})
	require.NoError(t, err)
	for _, id := range []string{CheckAdminLicence, CheckServiceLicence} {
		c, _ := r.Check(id)
		require.True(t, c.Passed, "%s: %s", id, c.Detail)
	}
}

// Issue 11 item 8: a group assignment passes (and says so); a PIM eligibility blocks with the fix.
func TestGlobalAdministratorThroughGroupOrPIM(t *testing.T) {
	ctx := context.Background()
	in := PrerequisiteInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service}
	f := newFakes()
	f.globalAdmins = map[string]bool{}
	f.roleStatus = map[string]msgraph.RoleStatus{"u-admin": {ViaGroups: []string{"Tenant admins"}}}
	r, err := newActs(f).CheckPrerequisites(ctx, in)
	require.NoError(t, err)
	c, _ := r.Check(CheckAdminGlobalAdmin)
	require.True(t, c.Passed, c.Detail)
	require.Contains(t, c.Detail, "through group Tenant admins")

	f.roleStatus = map[string]msgraph.RoleStatus{"u-admin": {Eligible: true}}
	r, err = newActs(f).CheckPrerequisites(ctx, in)
	require.NoError(t, err)
	c, _ = r.Check(CheckAdminGlobalAdmin)
	require.False(t, c.Passed)
	require.True(t, c.Blocking)
	require.Contains(t, c.Detail, "activate the role in PIM before the window")
}

func caPolicy(name, state string, users msgraph.ConditionalAccessUsers, grant msgraph.ConditionalAccessGrantControls) msgraph.ConditionalAccessPolicy {
	return msgraph.ConditionalAccessPolicy{DisplayName: name, State: state,
		Conditions: &msgraph.ConditionalAccessConditions{Users: &users}, GrantControls: &grant}
}

// Issue 11 item 4: authentication strengths count; a policy scoped to groups is not
// tenant-wide, and counts for the two accounts only when both are included.
func TestMFAPoliciesStrengthAndScope(t *testing.T) {
	ctx := context.Background()
	f := newFakes()
	acts := newActs(f)
	all := msgraph.ConditionalAccessUsers{IncludeUsers: []string{"All"}}
	f.caPolicies = []msgraph.ConditionalAccessPolicy{caPolicy("Phishing-resistant MFA", "enabled", all,
		msgraph.ConditionalAccessGrantControls{AuthenticationStrength: &msgraph.AuthenticationStrengthPolicy{ID: "s4", RequirementsSatisfied: "mfa"}})}
	p, err := acts.CheckMFAPolicies(ctx, tenant)
	require.NoError(t, err)
	require.True(t, p.Enabled, "an authentication strength requires MFA")
	require.Equal(t, "conditional access: Phishing-resistant MFA", p.Source)

	pilot := msgraph.ConditionalAccessUsers{IncludeGroups: []string{"g-pilot"}}
	f.caPolicies = []msgraph.ConditionalAccessPolicy{
		caPolicy("MFA pilot", "enabled", pilot, msgraph.ConditionalAccessGrantControls{BuiltInControls: []string{"mfa"}}),
		caPolicy("Everyone (report only)", "enabledForReportingButNotEnforced", all, msgraph.ConditionalAccessGrantControls{BuiltInControls: []string{"mfa"}}),
	}
	p, err = acts.CheckMFAPolicies(ctx, tenant)
	require.NoError(t, err)
	require.False(t, p.Enabled, "a group-scoped policy is not tenant-wide")
	require.Contains(t, p.Detail, "MFA pilot")
	require.Contains(t, p.Detail, "not tenant-wide")

	in := MFAInput{Tenant: ref, GlobalAdminUPN: admin, ServiceAccountUPN: service}
	f.groups = map[string][]msgraph.Group{"u-admin": {{ID: "g-pilot"}}}
	r, err := acts.CheckMFA(ctx, in)
	require.NoError(t, err)
	require.False(t, r.Policies.Enabled, "the service account is not in the pilot group")
	require.Contains(t, r.Policies.Detail, service)

	f.groups["u-svc"] = []msgraph.Group{{ID: "g-pilot", DisplayName: "Pilot"}}
	r, err = acts.CheckMFA(ctx, in)
	require.NoError(t, err)
	require.True(t, r.Policies.Enabled, "both accounts are included")
	require.Contains(t, r.Policies.Source, "MFA pilot")
	require.Contains(t, r.Policies.Detail, "not tenant-wide")
}

func (f *fakes) ListUnfinishedAsyncOperations(context.Context, string, string) ([]dataverse.AsyncOperation, error) {
	return nil, nil
}

// Issue 11 item 8: a failed operation's friendly text comes first, the technical one is kept.
func TestFailureTextPrefersFriendlyMessage(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	f := newFakes()
	acts := newActs(f)
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	f.asyncOps["op-9"] = []dataverse.AsyncOperation{{StateCode: 3, StatusCode: 31,
		FriendlyMessage: "The solution is missing dependencies.", Message: "0x80048060 MissingDependency Work365Core"}}
	_, err := env.ExecuteActivity(acts.WaitForImport, ImportStarted{Tenant: ref, ImportJobID: "job-9", AsyncOperationID: "op-9"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "The solution is missing dependencies. (technical: 0x80048060 MissingDependency Work365Core)")

	f.asyncOps["op-u"] = []dataverse.AsyncOperation{{StateCode: 3, StatusCode: 31, FriendlyMessage: "Uninstall blocked by a dependency."}}
	_, err = env.ExecuteActivity(acts.WaitForAsyncOperation, AsyncOp{Tenant: ref, OperationID: "op-u", What: "portal uninstall"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "Uninstall blocked by a dependency.")
}
