package msgraph

import "strings"

// Which licences grant Dynamics 365 (Customer Engagement) and which authentication methods can
// satisfy MFA are decided here, in one table each, from Microsoft's published references.

// dynamicsServicePlans are the service plan names (servicePlanName, "string ID" in Microsoft's
// table) that give a user access to Dynamics 365 Customer Engagement apps, where Work 365
// runs. Entries ending in "_" are prefixes. SKU names vary (D365_SALES_PRO, DYN365_…,
// bundles such as Dynamics 365 Customer Engagement Plan), service plans are stable:
// https://learn.microsoft.com/en-us/entra/identity/users/licensing-service-plan-reference
var dynamicsServicePlans = [...]string{
	"DYN365_ENTERPRISE_",         // Dynamics 365 Customer Engagement Plan, Sales/Customer Service Enterprise, Team Members
	"DYN365_SALES_",              // Dynamics 365 Sales Professional/Premium (SKU D365_SALES_PRO…)
	"DYN365_CUSTOMER_SERVICE_",   // Dynamics 365 Customer Service Professional
	"DYN365_CS_",                 // Dynamics 365 Customer Service Enterprise add-ons
	"DYN365_FS_",                 // Dynamics 365 Field Service
	"DYN365_TEAM_MEMBERS",        // Dynamics 365 Team Members
	"DYN365_MARKETING_USER",      // Dynamics 365 Marketing user
	"D365_SALES_",                // plan names of newer Sales SKUs
	"D365_CUSTOMER_SERVICE_",     // plan names of newer Customer Service SKUs
	"CRMSTANDARD",                // Microsoft Dynamics CRM Online (Professional)
	"CRMPLAN2",                   // Microsoft Dynamics CRM Online Basic
	"CRMIUR",                     // Dynamics 365 internal use rights
	"DYN365_ENTERPRISE_P1",       // Dynamics 365 P1 (listed for clarity; the prefix covers it)
	"DYN365_ENTERPRISE_P1_IW",    // Dynamics 365 P1 trial for information workers
	"DYN365_BUSINESS_MARKETING",  // Dynamics 365 Marketing Business Edition
	"DYN365_REGULATORY_SERVICE_", // regulatory service add-on of CE plans
}

// notDynamicsServicePlans match a prefix above but give no Customer Engagement app: the
// Dataverse plans inside Office 365 and Microsoft 365 bundles (DYN365_CDS_O365_P2 in E3…) and
// Business Central / Finance and Operations plans.
var notDynamicsServicePlans = [...]string{"DYN365_CDS_", "DYN365_BUSCENTRAL_", "DYN365BC_", "DYN365_FINANCIALS_", "DYN365_ENTERPRISE_TALENT_"}

// IsDynamicsServicePlan reports whether a service plan name gives access to Dynamics 365
// Customer Engagement apps (dynamicsServicePlans).
func IsDynamicsServicePlan(servicePlanName string) bool {
	n := strings.ToUpper(strings.TrimSpace(servicePlanName))
	for _, p := range notDynamicsServicePlans {
		if strings.HasPrefix(n, p) {
			return false
		}
	}
	for _, p := range dynamicsServicePlans {
		if n == p || strings.HasSuffix(p, "_") && strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// HasServicePlan reports whether one of the user's assigned licences includes an enabled
// service plan that match accepts: the user's SKUs are joined with the tenant's
// subscribedSkus (their servicePlans), minus the licence's disabledPlans.
// https://learn.microsoft.com/en-us/graph/api/resources/assignedlicense
func HasServicePlan(u User, skus []SubscribedSku, match func(ServicePlanInfo) bool) bool {
	for _, l := range u.AssignedLicenses {
		for _, s := range skus {
			if !strings.EqualFold(s.SkuID, l.SkuID) {
				continue
			}
			for _, p := range s.ServicePlans {
				if match(p) && !containsFold(l.DisabledPlans, p.ServicePlanID) {
					return true
				}
			}
		}
	}
	return false
}

// HasDynamicsLicence reports whether the user has a licence with an enabled Dynamics 365
// Customer Engagement service plan.
func HasDynamicsLicence(u User, skus []SubscribedSku) bool {
	return HasServicePlan(u, skus, func(p ServicePlanInfo) bool { return IsDynamicsServicePlan(p.ServicePlanName) })
}

// mfaMethodTypes are the authentication methods (@odata.type of /users/{id}/authentication/
// methods) that can satisfy multifactor authentication. Not here: password (the first factor);
// email, which serves self-service password reset only for members; temporaryAccessPass, a
// time-limited pass to register a lasting method — not a registration of MFA.
// https://learn.microsoft.com/en-us/entra/identity/authentication/concept-authentication-methods
// https://learn.microsoft.com/en-us/graph/api/resources/authenticationmethods-overview
var mfaMethodTypes = [...]string{
	"#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
	"#microsoft.graph.phoneAuthenticationMethod",
	"#microsoft.graph.fido2AuthenticationMethod",
	"#microsoft.graph.softwareOathAuthenticationMethod",
	"#microsoft.graph.hardwareOathAuthenticationMethod",
	"#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
	"#microsoft.graph.platformCredentialAuthenticationMethod",
	"#microsoft.graph.externalAuthenticationMethod",
}

// CanSatisfyMFA reports whether an authentication method type (@odata.type) can satisfy MFA.
func CanSatisfyMFA(odataType string) bool {
	for _, t := range mfaMethodTypes {
		if strings.EqualFold(t, odataType) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
