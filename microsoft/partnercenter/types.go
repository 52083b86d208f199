// Package partnercenter speaks the Partner Center REST API, used here as an authenticated probe
// that a re-consented connection works.
package partnercenter

// OrganizationProfile is GET /v1/profiles/organization.
type OrganizationProfile struct {
	ID          string `json:"id"`
	CompanyName string `json:"companyName"`
	TenantID    string `json:"tenantId,omitempty"`
}
