// Package msgraph speaks the Microsoft Graph v1.0 calls the upgrade needs, app-only, per tenant.
package msgraph

import (
	"slices"
	"strings"
)

// GlobalAdministratorRoleTemplateID is the Entra role template of Global Administrator.
const GlobalAdministratorRoleTemplateID = "62e90394-69f5-4237-9190-012177145e10"

// User is the part of a Graph user the upgrade reads.
type User struct {
	ID                string            `json:"id"`
	UserPrincipalName string            `json:"userPrincipalName"`
	DisplayName       string            `json:"displayName,omitempty"`
	AccountEnabled    *bool             `json:"accountEnabled,omitempty"`
	AssignedLicenses  []AssignedLicense `json:"assignedLicenses"`
}

// AssignedLicense is one licence on a user.
type AssignedLicense struct {
	SkuID         string   `json:"skuId"`
	DisabledPlans []string `json:"disabledPlans,omitempty"`
}

// SubscribedSku is a licence SKU the tenant owns (GET /subscribedSkus).
type SubscribedSku struct {
	ID            string            `json:"id,omitempty"`
	SkuID         string            `json:"skuId"`
	SkuPartNumber string            `json:"skuPartNumber"`
	ServicePlans  []ServicePlanInfo `json:"servicePlans,omitempty"`
}

// ServicePlanInfo is one service plan inside a SKU.
type ServicePlanInfo struct {
	ServicePlanID   string `json:"servicePlanId"`
	ServicePlanName string `json:"servicePlanName"`
}

// UnifiedRoleAssignment is a directory role assignment.
type UnifiedRoleAssignment struct {
	ID               string `json:"id"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	DirectoryScopeID string `json:"directoryScopeId"`
}

// UserRegistrationDetails is /reports/authenticationMethods/userRegistrationDetails/{id}.
type UserRegistrationDetails struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	IsMfaRegistered   bool     `json:"isMfaRegistered"`
	IsMfaCapable      bool     `json:"isMfaCapable"`
	MethodsRegistered []string `json:"methodsRegistered"`
}

// AuthenticationMethod is one entry of /users/{id}/authentication/methods.
type AuthenticationMethod struct {
	ODataType string `json:"@odata.type"`
	ID        string `json:"id"`
}

// MFARegistration is what the adapter learned of a user's MFA registration, from the report
// (tenants with Entra ID P1) or the authentication methods fallback.
type MFARegistration struct {
	Registered bool
	Methods    []string
	// Source is "userRegistrationDetails" or "authenticationMethods".
	Source string
}

// SecurityDefaultsPolicy is /policies/identitySecurityDefaultsEnforcementPolicy.
type SecurityDefaultsPolicy struct {
	ID        string `json:"id,omitempty"`
	IsEnabled bool   `json:"isEnabled"`
}

// ConditionalAccessPolicy is the part of a CA policy that tells whether it requires MFA, and
// of whom.
// https://learn.microsoft.com/en-us/graph/api/resources/conditionalaccesspolicy
type ConditionalAccessPolicy struct {
	ID            string                          `json:"id"`
	DisplayName   string                          `json:"displayName"`
	State         string                          `json:"state"` // enabled, disabled, enabledForReportingButNotEnforced
	Conditions    *ConditionalAccessConditions    `json:"conditions,omitempty"`
	GrantControls *ConditionalAccessGrantControls `json:"grantControls,omitempty"`
}

// ConditionalAccessConditions is the part of a policy's conditions that says whom it covers.
type ConditionalAccessConditions struct {
	Users *ConditionalAccessUsers `json:"users,omitempty"`
}

// ConditionalAccessUsers lists the users, groups and roles a policy includes and excludes;
// includeUsers ["All"] is every user.
// https://learn.microsoft.com/en-us/graph/api/resources/conditionalaccessusers
type ConditionalAccessUsers struct {
	IncludeUsers  []string `json:"includeUsers,omitempty"`
	ExcludeUsers  []string `json:"excludeUsers,omitempty"`
	IncludeGroups []string `json:"includeGroups,omitempty"`
	ExcludeGroups []string `json:"excludeGroups,omitempty"`
	IncludeRoles  []string `json:"includeRoles,omitempty"`
	ExcludeRoles  []string `json:"excludeRoles,omitempty"`
}

// ConditionalAccessGrantControls lists the controls of a CA policy: built-in ones ("mfa") or
// an authentication strength, which requires MFA too.
// https://learn.microsoft.com/en-us/graph/api/resources/conditionalaccessgrantcontrols
type ConditionalAccessGrantControls struct {
	Operator               string                        `json:"operator,omitempty"`
	BuiltInControls        []string                      `json:"builtInControls"`
	AuthenticationStrength *AuthenticationStrengthPolicy `json:"authenticationStrength,omitempty"`
}

// AuthenticationStrengthPolicy is the authentication strength a policy requires; every
// built-in strength (MFA, passwordless MFA, phishing-resistant MFA) satisfies "mfa".
// https://learn.microsoft.com/en-us/graph/api/resources/authenticationstrengthpolicy
type AuthenticationStrengthPolicy struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
	// RequirementsSatisfied is "mfa" or "none" (empty when Graph did not say).
	RequirementsSatisfied string `json:"requirementsSatisfied,omitempty"`
}

// RequiresMFA reports whether the policy is enforced (state "enabled"; report-only does not
// enforce) and requires MFA, by the built-in control or by an authentication strength.
func (p ConditionalAccessPolicy) RequiresMFA() bool {
	if p.State != "enabled" || p.GrantControls == nil {
		return false
	}
	if s := p.GrantControls.AuthenticationStrength; s != nil && s.RequirementsSatisfied != "none" {
		return true
	}
	for _, c := range p.GrantControls.BuiltInControls {
		if c == "mfa" {
			return true
		}
	}
	return false
}

// TenantWide reports whether the policy includes all users (exclusions may still leave some
// out: see Covers).
func (p ConditionalAccessPolicy) TenantWide() bool {
	return p.Conditions != nil && p.Conditions.Users != nil && slices.Contains(p.Conditions.Users.IncludeUsers, "All")
}

// Covers reports whether the policy applies to a user with these group memberships: included
// (all users, the user, or one of the groups) and not excluded (the user or one of the
// groups). Inclusion by directory role is not evaluated and does not count.
func (p ConditionalAccessPolicy) Covers(userID string, groupIDs []string) bool {
	if p.Conditions == nil || p.Conditions.Users == nil {
		return false
	}
	u := p.Conditions.Users
	has := func(list []string, ids ...string) bool {
		for _, x := range list {
			for _, id := range ids {
				if strings.EqualFold(x, id) {
					return true
				}
			}
		}
		return false
	}
	if has(u.ExcludeUsers, userID) || has(u.ExcludeGroups, groupIDs...) {
		return false
	}
	return has(u.IncludeUsers, "All", userID) || has(u.IncludeGroups, groupIDs...)
}

// Group is a group a user is a direct member of (GET /users/{id}/memberOf).
type Group struct {
	ID                 string `json:"id"`
	DisplayName        string `json:"displayName,omitempty"`
	IsAssignableToRole *bool  `json:"isAssignableToRole,omitempty"`
}

// RoleEligibility is a PIM eligibility for a directory role (roleEligibilityScheduleInstance):
// the principal may activate the role but does not hold it until then.
type RoleEligibility struct {
	ID               string `json:"id"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	DirectoryScopeID string `json:"directoryScopeId,omitempty"`
}

// RoleStatus is how a user holds a directory role: directly assigned (active), through
// role-assignable groups (active), or only eligible in PIM (not active until activated).
type RoleStatus struct {
	Direct bool `json:"direct"`
	// ViaGroups names the groups (display name, else ID) the role is assigned to that the user
	// is a member of.
	ViaGroups []string `json:"viaGroups,omitempty"`
	// Eligible is true when the user may activate the role in PIM.
	Eligible bool `json:"eligible"`
}

// Active reports whether the user holds the role now.
func (s RoleStatus) Active() bool { return s.Direct || len(s.ViaGroups) > 0 }

// ServicePrincipal is an application's presence in a tenant.
type ServicePrincipal struct {
	ID          string `json:"id"`
	AppID       string `json:"appId"`
	DisplayName string `json:"displayName,omitempty"`
}

// OAuth2PermissionGrant is a delegated permission grant.
type OAuth2PermissionGrant struct {
	ID          string `json:"id"`
	ClientID    string `json:"clientId"`
	ConsentType string `json:"consentType"` // AllPrincipals or Principal
	PrincipalID string `json:"principalId,omitempty"`
	ResourceID  string `json:"resourceId"`
	Scope       string `json:"scope"`
}

// AppRoleAssignment is an application permission granted to a service principal.
type AppRoleAssignment struct {
	ID          string `json:"id"`
	AppRoleID   string `json:"appRoleId"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
}
