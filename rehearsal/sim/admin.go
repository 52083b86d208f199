package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// ActionRequest is the JSON body of POST http://sim.local/actions/{action}.
type ActionRequest struct {
	Tenant        string  `json:"tenant"`
	UPN           string  `json:"upn,omitempty"`
	Role          Role    `json:"role,omitempty"`
	Licence       Licence `json:"licence,omitempty"`
	Organization  string  `json:"organization,omitempty"`
	TimeZone      string  `json:"timeZone,omitempty"`
	LicenceKeyRef string  `json:"licenceKeyRef,omitempty"`
	LinkToken     string  `json:"linkToken,omitempty"`
	Version       string  `json:"version,omitempty"`
	Count         int     `json:"count,omitempty"`
	// Permission is a Graph application permission (grant-orchestrator-permission).
	Permission string `json:"permission,omitempty"`
}

// serveAdmin answers the simulator's own host:
//
//	POST /actions/{register-mfa|enable-security-defaults|enable-conditional-access-mfa|
//	              assign-role|assign-licence|grant-admin-consent|submit-registration|
//	              get-consent|begin-upgrade|reconsent-partner-center|drain-jobs|
//	              set-pending-jobs|install-portal|grant-orchestrator-permission|
//	              create-application-user|assign-global-admin-directly}   body: ActionRequest
//	GET  /counters            all counters (Counters)
//	GET  /counters/{tenant}   one tenant's counters
//	GET  /state/{tenant}      TenantState
//	GET  /tenants             tenant IDs
//	GET  /clock               {"now": ...}
//	POST /clock/advance       {"by": "15m"} (FakeClock only)
//
// Refused actions answer 409 {"error":{"code":"ActionRefused","message"}} (404 for an
// unknown tenant).
func (c *Cloud) serveAdmin(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(segs) == 2 && segs[0] == "actions":
		c.adminAction(w, r, segs[1])
	case r.Method == http.MethodGet && len(segs) == 1 && segs[0] == "counters":
		writeJSON(w, http.StatusOK, c.Counters())
	case r.Method == http.MethodGet && len(segs) == 2 && segs[0] == "counters":
		writeJSON(w, http.StatusOK, c.TenantCounters(segs[1]))
	case r.Method == http.MethodGet && len(segs) == 2 && segs[0] == "state":
		s, ok := c.State(segs[1])
		if !ok {
			writeAPIError(w, http.StatusNotFound, "UnknownTenant", "no tenant "+segs[1])
			return
		}
		writeJSON(w, http.StatusOK, s)
	case r.Method == http.MethodGet && len(segs) == 1 && segs[0] == "tenants":
		writeJSON(w, http.StatusOK, c.TenantIDs())
	case r.Method == http.MethodGet && len(segs) == 1 && segs[0] == "clock":
		writeJSON(w, http.StatusOK, map[string]any{"now": c.clock.Now().UTC().Format(time.RFC3339Nano)})
	case r.Method == http.MethodPost && len(segs) == 2 && segs[0] == "clock" && segs[1] == "advance":
		adv, ok := c.clock.(advancer)
		var body struct {
			By string `json:"by"`
		}
		d, err := time.Duration(0), json.NewDecoder(r.Body).Decode(&body)
		if err == nil {
			d, err = time.ParseDuration(body.By)
		}
		switch {
		case !ok:
			writeAPIError(w, http.StatusConflict, "ClockNotAdvanceable", "the cloud runs on a clock that cannot be advanced")
		case err != nil:
			writeAPIError(w, http.StatusBadRequest, "BadRequest", `the body must be {"by": "15m"}`)
		default:
			adv.Advance(d)
			writeJSON(w, http.StatusOK, map[string]any{"now": c.clock.Now().UTC().Format(time.RFC3339Nano)})
		}
	default:
		writeAPIError(w, http.StatusNotFound, "ResourceNotFound", "the simulator's admin API has no "+r.Method+" "+r.URL.Path)
	}
}

func (c *Cloud) adminAction(w http.ResponseWriter, r *http.Request, action string) {
	var req ActionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeAPIError(w, http.StatusBadRequest, "BadRequest", "the body must be a JSON ActionRequest: "+err.Error())
		return
	}
	var result any = map[string]any{"done": true}
	var err error
	switch action {
	case "register-mfa":
		err = c.RegisterMFA(req.Tenant, req.UPN)
	case "enable-security-defaults":
		err = c.EnableSecurityDefaults(req.Tenant)
	case "enable-conditional-access-mfa":
		err = c.EnableConditionalAccessMFA(req.Tenant)
	case "assign-role":
		err = c.AssignRole(req.Tenant, req.UPN, req.Role)
	case "assign-licence":
		err = c.AssignLicence(req.Tenant, req.UPN, req.Licence)
	case "grant-admin-consent":
		err = c.GrantAdminConsent(req.Tenant)
	case "submit-registration":
		err = c.SubmitRegistration(req.Tenant, req.Organization, req.TimeZone, req.LicenceKeyRef)
	case "get-consent":
		var l Link
		l, err = c.GetConsent(req.Tenant)
		result = l
	case "begin-upgrade":
		err = c.BeginUpgrade(req.Tenant, req.LinkToken)
	case "reconsent-partner-center":
		err = c.ReconsentPartnerCenter(req.Tenant)
	case "drain-jobs":
		err = c.DrainJobs(req.Tenant)
	case "set-pending-jobs":
		err = c.SetPendingJobs(req.Tenant, req.Count)
	case "install-portal":
		err = c.InstallPortal(req.Tenant, req.Version)
	case "grant-orchestrator-permission", "create-application-user", "assign-global-admin-directly":
		err = c.preflightAction(action, req)
	default:
		writeAPIError(w, http.StatusNotFound, "UnknownAction", "no simulator action "+action)
		return
	}
	switch {
	case errors.Is(err, ErrUnknownTenant):
		writeAPIError(w, http.StatusNotFound, "UnknownTenant", err.Error())
	case err != nil:
		writeAPIError(w, http.StatusConflict, "ActionRefused", err.Error())
	default:
		writeJSON(w, http.StatusOK, result)
	}
}
