package workflows

import (
	"cmp"
	"fmt"
)

// Who says who stands behind a confirmation: "verified: <upn> (Entra ID, tenant …)" for one
// the task desk checked against an ID token, "operator X on behalf of Y" for one an operator
// sent for someone else, else the name given (with how it was established).
func (c Confirmation) Who() string {
	id := c.Identity
	switch {
	case id != nil && id.Verified:
		return fmt.Sprintf("verified: %s (Entra ID, tenant %s)", cmp.Or(id.UPN, id.Name, id.ObjectID, c.By), cmp.Or(id.TenantID, "unknown"))
	case c.OnBehalfOf != "" && id != nil && id.Via != "":
		return fmt.Sprintf("operator %s on behalf of %s (%s)", c.By, c.OnBehalfOf, id.Via)
	case c.OnBehalfOf != "":
		return fmt.Sprintf("operator %s on behalf of %s", c.By, c.OnBehalfOf)
	case id != nil && id.Via != "":
		return fmt.Sprintf("%s (%s)", c.By, id.Via)
	}
	return c.By
}
