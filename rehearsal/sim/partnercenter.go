package sim

import (
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
	"net/http"
)

// PartnerCenterAppID is the application ID of Microsoft Partner Center, the resource of the
// delegated permission (user_impersonation) that a Partner Center connection consents to.
const PartnerCenterAppID = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd"

// pcConsented reports whether the tenant's Partner Center connection is consented.
func (t *tenantState) pcConsented() bool { return t.pc != nil && t.pc.consented }

func (c *Cloud) servePartnerCenter(w http.ResponseWriter, r *http.Request) {
	svc := service{
		name: "partnercenter", api: permissions.PartnerCenter, prefix: "/", unauthorizedCode: "Unauthorized",
		audiences: []string{PartnerCenterResource},
		tenant: func(w http.ResponseWriter, cl Claims) *tenantState {
			t := c.tenantByID(cl.Tid)
			switch {
			case t == nil:
				writeChallenge(w, "", "Unauthorized", "Unknown tenant "+cl.Tid+".")
				return nil
			case t.pc == nil:
				writeAPIError(w, http.StatusForbidden, "Forbidden", "Tenant "+t.id+" has no Partner Center account.")
				return nil
			case !t.pc.consented:
				writeChallenge(w, "", "ConsentRequired", "The Partner Center connection of tenant "+t.id+" must be re-consented (MFA policies changed): follow 'Configuring the Partner Center using the Consent Framework'.")
				return nil
			}
			return t
		},
		throttleCode:    "TooManyRequests",
		throttleMessage: "Rate limit is exceeded. Try again later.",
	}
	// Partner Center accepts App+User tokens only on these endpoints: the manifest's entry
	// (kind AppUser) makes serveAPI refuse app-only tokens.
	// https://learn.microsoft.com/en-us/partner-center/developer/partner-center-authentication
	c.serveAPI(w, r, svc, handlers{
		permissions.OpPartnerCenterOrganizationProf: (*call).pcOrganizationProfile,
	})
}

func (k *call) pcOrganizationProfile() {
	writeJSON(k.w, http.StatusOK, map[string]any{
		"id":          k.t.id,
		"companyName": k.t.pc.name,
		"tenantId":    k.t.id,
		"attributes":  map[string]any{"objectType": "OrganizationProfile"},
	})
}
