package sim

import (
	"net/http"
)

func (c *Cloud) servePartnerCenter(w http.ResponseWriter, r *http.Request) {
	svc := service{
		name: "partnercenter", prefix: "/v1/", unauthorizedCode: "Unauthorized",
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
	c.serveAPI(w, r, svc, []route{
		{"GET", "profiles/organization", (*call).pcOrganizationProfile},
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
