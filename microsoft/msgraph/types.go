// Package msgraph speaks the Microsoft Graph v1.0 calls the upgrade needs, app-only, per tenant.
package msgraph

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

// ConditionalAccessPolicy is the part of a CA policy that tells whether it requires MFA.
type ConditionalAccessPolicy struct {
	ID            string                          `json:"id"`
	DisplayName   string                          `json:"displayName"`
	State         string                          `json:"state"` // enabled, disabled, enabledForReportingButNotEnforced
	GrantControls *ConditionalAccessGrantControls `json:"grantControls,omitempty"`
}

// ConditionalAccessGrantControls lists the built-in controls of a CA policy.
type ConditionalAccessGrantControls struct {
	Operator        string   `json:"operator,omitempty"`
	BuiltInControls []string `json:"builtInControls"`
}

// RequiresMFA reports whether the policy is enforced and requires MFA.
func (p ConditionalAccessPolicy) RequiresMFA() bool {
	if p.State != "enabled" || p.GrantControls == nil {
		return false
	}
	for _, c := range p.GrantControls.BuiltInControls {
		if c == "mfa" {
			return true
		}
	}
	return false
}

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
