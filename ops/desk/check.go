package desk

import (
	"fmt"
	"slices"
	"strings"

	"github.com/csp-ops/work365-upgrade/workflows"
)

// GlobalAdminRoleTemplateID is the Global Administrator role's template ID in Entra ID: the
// wids claim lists the template IDs of the person's directory roles
// (https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/permissions-reference#global-administrator).
const GlobalAdminRoleTemplateID = "62e90394-69f5-4237-9190-012177145e10"

// Claims are the claims of a validated ID token the desk uses
// (https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference).
type Claims struct {
	// TenantID is tid: the tenant the person signed in to.
	TenantID string `json:"tid"`
	// ObjectID is oid: the person's immutable ID in that tenant.
	ObjectID string `json:"oid"`
	// UPN is preferred_username (v2.0 tokens), else upn.
	UPN string `json:"upn"`
	// Name is name.
	Name string `json:"name,omitempty"`
	// Groups are the group object IDs of the groups claim (groupMembershipClaims).
	Groups []string `json:"groups,omitempty"`
	// GroupsOverage is true when the token says the groups did not fit (_claim_names).
	GroupsOverage bool `json:"groupsOverage,omitempty"`
	// Roles are the directory role template IDs of the wids claim.
	Roles []string `json:"wids,omitempty"`
}

// Who is the person in plain words: "Jane Doe (jane@contoso.com)".
func (c Claims) Who() string {
	if c.Name == "" || strings.EqualFold(c.Name, c.UPN) {
		return c.UPN
	}
	return c.Name + " (" + c.UPN + ")"
}

// Account is who a task is for, from the upgrade's tenant spec and the desk's configuration.
type Account struct {
	Audience workflows.Audience
	// TenantID is the tenant the person must sign in to; TenantName names it.
	TenantID   string
	TenantName string
	// UPN is the account the task is for (global admin, service account); empty when any
	// holder of a role may act (partner admin, operators).
	UPN string
	// GroupID is the group operators must be in (operator tasks).
	GroupID string
}

// Describe says who the task is for: "the Global Administrator of Contoso
// (admin@contoso.onmicrosoft.com)".
func (a Account) Describe() string {
	switch a.Audience {
	case workflows.GlobalAdmin:
		return fmt.Sprintf("the Global Administrator of %s (%s)", a.TenantName, a.UPN)
	case workflows.ServiceAccount:
		return fmt.Sprintf("the Work 365 service account of %s (%s)", a.TenantName, a.UPN)
	case workflows.PartnerAdmin:
		if a.UPN != "" {
			return fmt.Sprintf("the Partner Center admin of %s (%s)", a.TenantName, a.UPN)
		}
		return fmt.Sprintf("a Global Administrator of the Partner Center tenant %s (%s)", a.TenantName, a.TenantID)
	case workflows.Operator:
		return "an operator of the partner (signed in to the partner's own tenant, member of the operators' group)"
	}
	return "nobody: this task is not confirmed through the desk"
}

// Refusal is why a signed-in person may not confirm a task; its message is the page's text.
type Refusal struct{ Message string }

func (r *Refusal) Error() string { return r.Message }

// Check decides whether the person of claims may confirm a task for account: the tenant
// they signed in to is the account's tenant, and they are the account (UPN) or hold what the
// audience needs (operators' group, Global Administrator role). A nil error allows; a
// *Refusal says, in plain words, who is signed in and who the task is for.
func Check(account Account, c Claims) error {
	refuse := func(why string) error {
		return &Refusal{Message: fmt.Sprintf("You are signed in as %s (tenant %s); this task is for %s. %s",
			c.Who(), c.TenantID, account.Describe(), why)}
	}
	if c.TenantID == "" || c.UPN == "" {
		return refuse("Your sign-in did not say who you are (no tid or user name): sign in with a work account.")
	}
	if account.TenantID == "" {
		return refuse("The desk does not know which tenant this task belongs to, so nobody can confirm it here: ask the operators.")
	}
	if !strings.EqualFold(c.TenantID, account.TenantID) {
		return refuse(fmt.Sprintf("That is another tenant: sign out and sign in with an account of %s (tenant %s).", account.TenantName, account.TenantID))
	}
	switch account.Audience {
	case workflows.GlobalAdmin, workflows.ServiceAccount:
		if account.UPN == "" {
			return refuse("The upgrade names no account for this task: ask the operators.")
		}
		if !strings.EqualFold(c.UPN, account.UPN) {
			return refuse(fmt.Sprintf("Sign out and sign in as %s.", account.UPN))
		}
		return nil
	case workflows.PartnerAdmin:
		if account.UPN != "" {
			if !strings.EqualFold(c.UPN, account.UPN) {
				return refuse(fmt.Sprintf("Sign out and sign in as %s.", account.UPN))
			}
			return nil
		}
		if !slices.ContainsFunc(c.Roles, func(r string) bool { return strings.EqualFold(r, GlobalAdminRoleTemplateID) }) {
			return refuse("Your sign-in does not show the Global Administrator role in that tenant (wids claim): sign in as one of its Global Administrators.")
		}
		return nil
	case workflows.Operator:
		if account.GroupID == "" {
			return refuse("The desk has no operators' group configured (desk.operatorGroupId), so operator tasks are confirmed with the starter.")
		}
		if slices.ContainsFunc(c.Groups, func(g string) bool { return strings.EqualFold(g, account.GroupID) }) {
			return nil
		}
		if c.GroupsOverage {
			return refuse("You are in too many groups for your sign-in to list them: ask the administrator of the desk app to emit only groups assigned to the application.")
		}
		return refuse(fmt.Sprintf("You are not in the operators' group (%s).", account.GroupID))
	}
	return refuse("Tasks for this audience are not confirmed through the desk.")
}
