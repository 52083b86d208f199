package desk

import (
	"errors"
	"strings"
	"testing"

	"github.com/csp-ops/work365-upgrade/workflows"
)

const (
	contosoTID  = "1b0c2a52-5a1e-4d55-9f3e-000000000001"
	fabrikamTID = "2c1d3b63-6b2f-4e66-8f4f-000000000002"
	partnerTID  = "3d2e4c74-7c3f-4f77-9a5a-000000000003"
	opsGroup    = "4e3f5d85-8d4a-4a88-8b6b-000000000004"
)

func TestCheck(t *testing.T) {
	ga := Account{Audience: workflows.GlobalAdmin, TenantID: contosoTID, TenantName: "Contoso", UPN: "admin@contoso.onmicrosoft.com"}
	svc := Account{Audience: workflows.ServiceAccount, TenantID: contosoTID, TenantName: "Contoso", UPN: "work365svc@contoso.onmicrosoft.com"}
	pc := Account{Audience: workflows.PartnerAdmin, TenantID: partnerTID, TenantName: "Contoso / Partner Center pc2"}
	op := Account{Audience: workflows.Operator, TenantID: partnerTID, TenantName: "the partner", GroupID: opsGroup}
	opNoGroup := Account{Audience: workflows.Operator, TenantID: "", TenantName: "the partner"}
	admin := Claims{TenantID: contosoTID, ObjectID: "o1", UPN: "Admin@Contoso.onmicrosoft.com", Name: "Ada Admin"}
	for _, c := range []struct {
		name    string
		account Account
		claims  Claims
		refusal string // "" allows
	}{
		{"global admin", ga, admin, ""},
		{"global admin of another tenant", ga, Claims{TenantID: fabrikamTID, UPN: "admin@fabrikam.onmicrosoft.com", Name: "Fab Admin"},
			"You are signed in as Fab Admin (admin@fabrikam.onmicrosoft.com) (tenant " + fabrikamTID + "); this task is for the Global Administrator of Contoso (admin@contoso.onmicrosoft.com). That is another tenant"},
		{"another user of the tenant", ga, Claims{TenantID: contosoTID, UPN: "bob@contoso.onmicrosoft.com"}, "Sign out and sign in as admin@contoso.onmicrosoft.com"},
		{"service account", svc, Claims{TenantID: contosoTID, UPN: "work365svc@contoso.onmicrosoft.com"}, ""},
		{"admin for a service-account task", svc, admin, "this task is for the Work 365 service account of Contoso (work365svc@contoso.onmicrosoft.com)"},
		{"no tid", ga, Claims{UPN: "admin@contoso.onmicrosoft.com"}, "did not say who you are"},
		{"partner admin with the role", pc, Claims{TenantID: partnerTID, UPN: "pa@partner.example", Roles: []string{GlobalAdminRoleTemplateID}}, ""},
		{"partner user without the role", pc, Claims{TenantID: partnerTID, UPN: "pa@partner.example"}, "does not show the Global Administrator role"},
		{"customer admin for a partner task", pc, admin, "That is another tenant"},
		{"operator in the group", op, Claims{TenantID: partnerTID, UPN: "op@partner.example", Groups: []string{"x", strings.ToUpper(opsGroup)}}, ""},
		{"operator outside the group", op, Claims{TenantID: partnerTID, UPN: "op@partner.example", Groups: []string{"x"}}, "not in the operators' group"},
		{"operator with too many groups", op, Claims{TenantID: partnerTID, UPN: "op@partner.example", GroupsOverage: true}, "too many groups"},
		{"operator signed in elsewhere", op, Claims{TenantID: contosoTID, UPN: "op@contoso.onmicrosoft.com", Groups: []string{opsGroup}}, "That is another tenant"},
		{"operator tasks without a configured group", opNoGroup, Claims{TenantID: partnerTID, UPN: "op@partner.example"}, "does not know which tenant"},
		{"nobody's task", Account{Audience: workflows.Nobody, TenantID: contosoTID}, admin, "not confirmed through the desk"},
	} {
		err := Check(c.account, c.claims)
		if c.refusal == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		var r *Refusal
		if !errors.As(err, &r) {
			t.Errorf("%s: allowed, want a refusal containing %q", c.name, c.refusal)
			continue
		}
		if !strings.Contains(r.Message, c.refusal) {
			t.Errorf("%s: refusal %q\n does not contain %q", c.name, r.Message, c.refusal)
		}
	}
}
