// Package partnercenter speaks the Partner Center REST API, used here as an authenticated probe
// that a re-consented connection works.
package partnercenter

// OrganizationProfile is GET /v1/profiles/organization.
type OrganizationProfile struct {
	ID          string `json:"id"`
	CompanyName string `json:"companyName"`
	TenantID    string `json:"tenantId,omitempty"`
}

// AppID is the application ID of Microsoft Partner Center: the resource of the delegated
// permission (user_impersonation) a Partner Center connection consents to, whose grant in the
// partner tenant is visible app-only through Microsoft Graph.
const AppID = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd"
