package sim

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// What a preflight finds missing, and what an administrator does about it: a tenant that
// consented fewer Graph permissions, an organisation without the orchestrator's application
// user, a Global Administrator whose role comes through a group. These controls let a
// rehearsal fix them the way an administrator would.

// consentedRoles are the Graph application permissions consented to the orchestrator in t
// (the scenario's when the tenant set none). Callers hold c.mu.
func (c *Cloud) consentedRoles(t *tenantState) []string {
	if t != nil && t.orchestratorRoles != nil {
		return append([]string(nil), t.orchestratorRoles...)
	}
	return append([]string(nil), c.scn.Orchestrator.Permissions...)
}

// GrantOrchestratorPermission admin-consents one more Graph application permission to the
// orchestrator in a tenant (idempotent); tokens issued afterwards carry it.
func (c *Cloud) GrantOrchestratorPermission(tenantID, permission string) error {
	return c.act("grant-orchestrator-permission", tenantID, func(t *tenantState, _ time.Time) error {
		if strings.Count(permission, ".") < 2 {
			return refuse(ErrNotAllowed, "%q is not a Microsoft Graph application permission like Directory.Read.All", permission)
		}
		roles := c.consentedRoles(t)
		if !slices.ContainsFunc(roles, func(r string) bool { return strings.EqualFold(r, permission) }) {
			roles = append(roles, permission)
		}
		t.orchestratorRoles = roles
		return nil
	})
}

// CreateApplicationUser creates the orchestrator's application user, with a security role, in
// the tenant's organisation (Power Platform admin center › Application users › New app user).
func (c *Cloud) CreateApplicationUser(tenantID string) error {
	return c.act("create-application-user", tenantID, func(t *tenantState, _ time.Time) error {
		if t.org == nil {
			return refuse(ErrNotAllowed, "the tenant has no Dynamics 365 organisation")
		}
		t.org.appUser = true
		return nil
	})
}

// AssignGlobalAdminDirectly assigns Global Administrator to the user in person, active (a
// role that came through a group or a PIM eligibility stays, but no longer matters).
func (c *Cloud) AssignGlobalAdminDirectly(tenantID, upn string) error {
	return c.act("assign-global-admin-directly", tenantID, func(t *tenantState, _ time.Time) error {
		u, err := t.mustUser(upn)
		if err != nil {
			return err
		}
		u.globalAdmin, u.gaVia = true, "direct"
		return nil
	})
}

func (c *Cloud) preflightAction(action string, req ActionRequest) error {
	switch action {
	case "grant-orchestrator-permission":
		return c.GrantOrchestratorPermission(req.Tenant, req.Permission)
	case "create-application-user":
		return c.CreateApplicationUser(req.Tenant)
	default:
		return c.AssignGlobalAdminDirectly(req.Tenant, req.UPN)
	}
}

// dvApplicationUser answers systemusers({id}) for the orchestrator's own application user
// (WhoAmI's UserId): non-interactive, with the System Administrator role. It reports whether
// id was that user.
func (k *call) dvApplicationUser(id string) bool {
	o := k.t.org
	if !strings.EqualFold(id, o.appUserID) {
		return false
	}
	roles := []map[string]any{{"name": "System Administrator", "roleid": o.sysAdminRoleID, "_roletemplateid_value": sysAdminTemplate}}
	row := map[string]any{
		"@odata.etag": `W/"1"`, "systemuserid": o.appUserID, "domainname": "", "fullname": "# " + k.c.scn.Orchestrator.DisplayName,
		"islicensed": false, "isdisabled": false, "accessmode": 4, "applicationid": k.c.scn.Orchestrator.ClientID,
	}
	if exp := k.q.Get("$expand"); strings.HasPrefix(exp, "systemuserroles_association") {
		sel := ""
		if _, inner, ok := strings.Cut(exp, "($select="); ok {
			sel = strings.TrimSuffix(inner, ")")
		}
		out := []map[string]any{}
		for _, r := range roles {
			out = append(out, selectFields(r, sel, "roleid"))
		}
		row["systemuserroles_association"] = out
	}
	row = selectFields(row, k.q.Get("$select"), "systemuserid", "systemuserroles_association")
	row["@odata.context"] = k.dvBase() + "$metadata#systemusers/$entity"
	writeJSON(k.w, http.StatusOK, row)
	return true
}
