package msgraph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
)

// DefaultBaseURL is Microsoft Graph v1.0.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

// Graph application permissions by name; the permissions manifest (microsoft/permissions) says
// which call needs which, and the 401/403 hints name the manifest's.
const (
	PermUserReadAll                  = "User.Read.All"
	PermRoleManagementReadDirectory  = "RoleManagement.Read.Directory"
	PermOrganizationReadAll          = "Organization.Read.All"
	PermLicenseAssignmentReadAll     = "LicenseAssignment.Read.All"
	PermAuditLogReadAll              = "AuditLog.Read.All"
	PermUserAuthenticationMethodRead = "UserAuthenticationMethod.Read.All"
	PermPolicyReadAll                = "Policy.Read.All"
	PermApplicationReadAll           = "Application.Read.All"
	// PermDirectoryReadAll is the least privileged application permission to list a service
	// principal's delegated grants and a user's group memberships.
	PermDirectoryReadAll = "Directory.Read.All"
)

// Sources of an MFARegistration.
const (
	SourceUserRegistrationDetails = "userRegistrationDetails"
	SourceAuthenticationMethods   = "authenticationMethods"
)

const (
	// codeNonPremiumTenant is the 403 of the registration report in a tenant without P1.
	codeNonPremiumTenant = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
	userSelect           = "id,userPrincipalName,displayName,accountEnabled,assignedLicenses"
)

// Client is Microsoft Graph, app-only, in any tenant that consented to the orchestrator app.
// It implements activities.Graph. Every failed call is an *msapi.Error with Service "graph".
type Client struct {
	api *msapi.Client
}

// New returns a Graph client taking tokens for msauth.GraphScope from tokens
// ((*msauth.TokenProvider).Token fits). Options are msapi's: msapi.WithHTTPClient routes
// requests (rehearsals), msapi.WithBaseURL replaces DefaultBaseURL (tests).
func New(tokens msapi.TokenSource, opts ...msapi.ClientOption) *Client {
	return &Client{api: msapi.NewClient("graph", tokens, append([]msapi.ClientOption{msapi.WithBaseURL(DefaultBaseURL)}, opts...)...)}
}

// request builds a Graph call in tenantID; path is already escaped. operation is the call's
// entry in the permissions manifest, whose permission the 401/403 hint names.
func (c *Client) request(tenantID, op, path string, query url.Values, operation string) msapi.Request {
	permission := operation
	if e, ok := permissions.Get(operation); ok {
		permission = e.Grant
	}
	return msapi.Request{
		Operation:  op,
		URL:        c.api.URL(path, query),
		TenantID:   tenantID,
		Scope:      msauth.GraphScope,
		DeniedHint: deniedHint(permission, tenantID),
	}
}

// required refuses an empty path segment, which would turn a read of one object into a
// listing of all.
func required(op, what, v string) error {
	if strings.TrimSpace(v) == "" {
		return msapi.LocalError("graph", op, what+" is empty", "the caller must pass the "+what)
	}
	return nil
}

func deniedHint(permission, tenantID string) string {
	return fmt.Sprintf("the orchestrator app needs the Microsoft Graph application permission %s, admin-consented in tenant %s", permission, tenantID)
}

// GetUser reads a user by object ID or UPN, with assignedLicenses.
func (c *Client) GetUser(ctx context.Context, tenantID, idOrUPN string) (User, error) {
	if err := required("read user", "user ID or UPN", idOrUPN); err != nil {
		return User{}, err
	}
	req := c.request(tenantID, "read user "+idOrUPN, "users/"+url.PathEscape(idOrUPN),
		url.Values{"$select": {userSelect}}, permissions.OpGraphGetUser)
	req.NotFoundHint = fmt.Sprintf("no user %s in tenant %s: check the UPN in the inventory", idOrUPN, tenantID)
	var u User
	err := c.api.Do(ctx, req, &u)
	return u, err
}

// ListRoleAssignments lists directory role assignments of a principal for one role definition.
func (c *Client) ListRoleAssignments(ctx context.Context, tenantID, principalID, roleDefinitionID string) ([]UnifiedRoleAssignment, error) {
	filter := "principalId eq " + msapi.ODataString(principalID) + " and roleDefinitionId eq " + msapi.ODataString(roleDefinitionID)
	req := c.request(tenantID, "list role assignments of "+principalID, "roleManagement/directory/roleAssignments",
		url.Values{"$filter": {filter}}, permissions.OpGraphListRoleAssignments)
	return msapi.GetAll[UnifiedRoleAssignment](ctx, c.api, req)
}

// ListSubscribedSkus lists the tenant's licence SKUs.
func (c *Client) ListSubscribedSkus(ctx context.Context, tenantID string) ([]SubscribedSku, error) {
	req := c.request(tenantID, "list subscribed SKUs", "subscribedSkus", nil, permissions.OpGraphListSubscribedSkus)
	return msapi.GetAll[SubscribedSku](ctx, c.api, req)
}

// GetMFARegistration tells whether a user registered MFA: from the authentication methods
// report, or, when the tenant lacks Entra ID P1 (403
// Authentication_RequestFromNonPremiumTenantOrB2CTenant), from the user's authentication
// methods, where only methods that can satisfy MFA count (CanSatisfyMFA: not a password, not
// email, not a temporary access pass).
// https://learn.microsoft.com/en-us/graph/api/authenticationmethodsroot-get-userregistrationdetails
func (c *Client) GetMFARegistration(ctx context.Context, tenantID, userID string) (MFARegistration, error) {
	if err := required("read MFA registration", "user ID", userID); err != nil {
		return MFARegistration{}, err
	}
	req := c.request(tenantID, "read MFA registration of "+userID,
		"reports/authenticationMethods/userRegistrationDetails/"+url.PathEscape(userID), nil, permissions.OpGraphGetRegistrationDetails)
	req.NotFoundHint = fmt.Sprintf("no registration details for user %s in tenant %s: check the user ID", userID, tenantID)
	var d UserRegistrationDetails
	err := c.api.Do(ctx, req, &d)
	if err == nil {
		return MFARegistration{Registered: d.IsMfaRegistered, Methods: d.MethodsRegistered, Source: SourceUserRegistrationDetails}, nil
	}
	var me *msapi.Error
	if !errors.As(err, &me) || me.Status != http.StatusForbidden || me.Code != codeNonPremiumTenant {
		return MFARegistration{}, err
	}

	// https://learn.microsoft.com/en-us/graph/api/authentication-list-methods
	req = c.request(tenantID, "list authentication methods of "+userID,
		"users/"+url.PathEscape(userID)+"/authentication/methods", nil, permissions.OpGraphListAuthMethods)
	req.NotFoundHint = fmt.Sprintf("no user %s in tenant %s: check the user ID", userID, tenantID)
	methods, err := msapi.GetAll[AuthenticationMethod](ctx, c.api, req)
	if err != nil {
		return MFARegistration{}, err
	}
	reg := MFARegistration{Source: SourceAuthenticationMethods, Methods: []string{}}
	for _, m := range methods {
		if !CanSatisfyMFA(m.ODataType) {
			continue
		}
		reg.Registered = true
		reg.Methods = append(reg.Methods, methodName(m.ODataType))
	}
	return reg, nil
}

// methodName shortens "#microsoft.graph.fido2AuthenticationMethod" to "fido2".
func methodName(odataType string) string {
	n := strings.TrimPrefix(odataType, "#microsoft.graph.")
	if s := strings.TrimSuffix(n, "AuthenticationMethod"); s != "" {
		n = s
	}
	return n
}

// GetSecurityDefaults reads the security defaults policy.
func (c *Client) GetSecurityDefaults(ctx context.Context, tenantID string) (SecurityDefaultsPolicy, error) {
	req := c.request(tenantID, "read security defaults", "policies/identitySecurityDefaultsEnforcementPolicy", nil, permissions.OpGraphGetSecurityDefaults)
	var p SecurityDefaultsPolicy
	err := c.api.Do(ctx, req, &p)
	return p, err
}

// ListConditionalAccessPolicies lists conditional access policies.
func (c *Client) ListConditionalAccessPolicies(ctx context.Context, tenantID string) ([]ConditionalAccessPolicy, error) {
	req := c.request(tenantID, "list conditional access policies", "identity/conditionalAccess/policies", nil, permissions.OpGraphListCAPolicies)
	return msapi.GetAll[ConditionalAccessPolicy](ctx, c.api, req)
}

// FindServicePrincipal finds an application's service principal; nil when the application is
// not in the tenant (never consented).
func (c *Client) FindServicePrincipal(ctx context.Context, tenantID, appID string) (*ServicePrincipal, error) {
	req := c.request(tenantID, "find service principal of app "+appID, "servicePrincipals",
		url.Values{"$filter": {"appId eq " + msapi.ODataString(appID)}}, permissions.OpGraphFindServicePrincipal)
	sps, err := msapi.GetAll[ServicePrincipal](ctx, c.api, req)
	if err != nil || len(sps) == 0 {
		return nil, err
	}
	return &sps[0], nil
}

// ListOAuth2PermissionGrants lists delegated grants of a service principal. Graph documents
// Directory.Read.All as the least privileged application permission for this list
// (Application.Read.All is refused with 403 Authorization_RequestDenied).
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list-oauth2permissiongrants
func (c *Client) ListOAuth2PermissionGrants(ctx context.Context, tenantID, servicePrincipalID string) ([]OAuth2PermissionGrant, error) {
	if err := required("list delegated permission grants", "service principal ID", servicePrincipalID); err != nil {
		return nil, err
	}
	req := c.request(tenantID, "list delegated permission grants of service principal "+servicePrincipalID,
		"servicePrincipals/"+url.PathEscape(servicePrincipalID)+"/oauth2PermissionGrants", nil, permissions.OpGraphListDelegatedGrants)
	req.NotFoundHint = fmt.Sprintf("no service principal %s in tenant %s", servicePrincipalID, tenantID)
	return msapi.GetAll[OAuth2PermissionGrant](ctx, c.api, req)
}

// ListAppRoleAssignments lists application permissions granted to a service principal.
func (c *Client) ListAppRoleAssignments(ctx context.Context, tenantID, servicePrincipalID string) ([]AppRoleAssignment, error) {
	if err := required("list application permissions", "service principal ID", servicePrincipalID); err != nil {
		return nil, err
	}
	req := c.request(tenantID, "list application permissions of service principal "+servicePrincipalID,
		"servicePrincipals/"+url.PathEscape(servicePrincipalID)+"/appRoleAssignments", nil, permissions.OpGraphListAppRoleAssignments)
	req.NotFoundHint = fmt.Sprintf("no service principal %s in tenant %s", servicePrincipalID, tenantID)
	return msapi.GetAll[AppRoleAssignment](ctx, c.api, req)
}

// ListGroupMemberships lists the groups a user is a direct member of (directory roles and
// administrative units in the answer are skipped). Role-assignable groups cannot be nested, so
// direct memberships are the ones that carry directory roles.
// https://learn.microsoft.com/en-us/graph/api/user-list-memberof
func (c *Client) ListGroupMemberships(ctx context.Context, tenantID, userID string) ([]Group, error) {
	if err := required("list group memberships", "user ID", userID); err != nil {
		return nil, err
	}
	req := c.request(tenantID, "list group memberships of "+userID, "users/"+url.PathEscape(userID)+"/memberOf",
		url.Values{"$select": {"id,displayName,isAssignableToRole"}}, permissions.OpGraphListGroupMemberships)
	req.NotFoundHint = fmt.Sprintf("no user %s in tenant %s: check the user ID", userID, tenantID)
	type member struct {
		ODataType string `json:"@odata.type"`
		Group
	}
	ms, err := msapi.GetAll[member](ctx, c.api, req)
	if err != nil {
		return nil, err
	}
	groups := []Group{}
	for _, m := range ms {
		if m.ODataType == "#microsoft.graph.group" {
			groups = append(groups, m.Group)
		}
	}
	return groups, nil
}

// ListRoleEligibilities lists a principal's PIM eligibilities for one role definition: roles
// it may activate but does not hold until it does.
// https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roleeligibilityscheduleinstances
func (c *Client) ListRoleEligibilities(ctx context.Context, tenantID, principalID, roleDefinitionID string) ([]RoleEligibility, error) {
	filter := "principalId eq " + msapi.ODataString(principalID) + " and roleDefinitionId eq " + msapi.ODataString(roleDefinitionID)
	req := c.request(tenantID, "list role eligibilities of "+principalID, "roleManagement/directory/roleEligibilityScheduleInstances",
		url.Values{"$filter": {filter}}, permissions.OpGraphListRoleEligibilities)
	return msapi.GetAll[RoleEligibility](ctx, c.api, req)
}

// DirectoryRoleStatus tells how a user holds a directory role: an active assignment to the
// user, an active assignment to a group the user belongs to, or only a PIM eligibility. Three
// documented reads: role assignments of the user, assignments of the role (matched with the
// user's groups), eligibility schedule instances.
// https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roleassignments
func (c *Client) DirectoryRoleStatus(ctx context.Context, tenantID, userID, roleDefinitionID string) (RoleStatus, error) {
	var st RoleStatus
	direct, err := c.ListRoleAssignments(ctx, tenantID, userID, roleDefinitionID)
	if err != nil {
		return st, err
	}
	if len(direct) > 0 {
		st.Direct = true
		return st, nil
	}
	groups, err := c.ListGroupMemberships(ctx, tenantID, userID)
	if err != nil {
		return st, err
	}
	if len(groups) > 0 {
		req := c.request(tenantID, "list assignments of role "+roleDefinitionID, "roleManagement/directory/roleAssignments",
			url.Values{"$filter": {"roleDefinitionId eq " + msapi.ODataString(roleDefinitionID)}}, permissions.OpGraphListRoleAssignments)
		all, err := msapi.GetAll[UnifiedRoleAssignment](ctx, c.api, req)
		if err != nil {
			return st, err
		}
		for _, g := range groups {
			for _, a := range all {
				if strings.EqualFold(a.PrincipalID, g.ID) {
					name := g.DisplayName
					if name == "" {
						name = g.ID
					}
					st.ViaGroups = append(st.ViaGroups, name)
					break
				}
			}
		}
		if len(st.ViaGroups) > 0 {
			return st, nil
		}
	}
	el, err := c.ListRoleEligibilities(ctx, tenantID, userID, roleDefinitionID)
	if err != nil {
		return st, err
	}
	st.Eligible = len(el) > 0
	return st, nil
}
