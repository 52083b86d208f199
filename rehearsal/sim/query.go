package sim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
)

// queryRule is what one call accepts in its query string, like the real service: the system
// query options it supports and the properties of its type that $select may name. Graph
// answers anything else with 400 BadRequest, Dataverse with 400 and "Could not find a property
// named 'x' on type 'Microsoft.Dynamics.CRM.t'." (property names are case-sensitive there).
// https://learn.microsoft.com/en-us/graph/query-parameters
// https://learn.microsoft.com/en-us/troubleshoot/power-platform/dataverse/dataverse-web-api-and-sdk/web-api-client-errors
type queryRule struct {
	typeName string   // the OData type named in the error
	options  []string // supported system query options ($select, $filter …)
	props    []string // properties $select may name (nil: no $select check)
}

// Properties of Microsoft's types that a $select may name; a subset of each type's documented
// properties, holding every property the worker selects.
var (
	graphUserProps = []string{"id", "userPrincipalName", "displayName", "mail", "accountEnabled", "assignedLicenses",
		"givenName", "surname", "jobTitle", "userType", "createdDateTime", "otherMails", "proxyAddresses", "usageLocation",
		"licenseAssignmentStates", "onPremisesSyncEnabled", "department", "companyName", "mobilePhone", "businessPhones"}
	graphGroupProps = []string{"id", "displayName", "description", "isAssignableToRole", "securityEnabled", "mailEnabled",
		"mail", "groupTypes", "createdDateTime", "deletedDateTime", "membershipRule", "visibility"}
	graphSPProps = []string{"id", "appId", "displayName", "accountEnabled", "servicePrincipalType", "appOwnerOrganizationId",
		"appDisplayName", "appRoles", "oauth2PermissionScopes", "servicePrincipalNames", "tags", "createdDateTime"}
	graphRegistrationProps = []string{"id", "userPrincipalName", "userDisplayName", "userType", "isAdmin", "isMfaRegistered",
		"isMfaCapable", "isSsprRegistered", "isSsprEnabled", "isSsprCapable", "isPasswordlessCapable", "methodsRegistered",
		"lastUpdatedDateTime", "isSystemPreferredAuthenticationMethodEnabled",
		"systemPreferredAuthenticationMethods", "userPreferredMethodForSecondaryAuthentication"}
	graphSecurityDefaultsProps = []string{"id", "displayName", "description", "isEnabled", "deletedDateTime"}
	dvSolutionProps            = []string{"solutionid", "uniquename", "friendlyname", "version", "ismanaged", "installedon",
		"isvisible", "description", "solutiontype", "modifiedon", "createdon", "_publisherid_value", "_parentsolutionid_value"}
	dvAsyncOpProps = []string{"asyncoperationid", "name", "statecode", "statuscode", "message", "friendlymessage", "createdon",
		"startedon", "completedon", "modifiedon", "operationtype", "errorcode", "_ownerid_value", "correlationid", "data"}
	dvImportJobProps = []string{"importjobid", "solutionname", "progress", "startedon", "completedon", "createdon", "name",
		"data", "solutionid", "operationcontext", "_createdby_value"}
	dvSystemUserProps = []string{"systemuserid", "domainname", "islicensed", "isdisabled", "accessmode", "fullname",
		"internalemailaddress", "azureactivedirectoryobjectid", "applicationid", "_businessunitid_value", "caltype"}
)

// queryRule returns the rule of a manifest operation; ok is false for calls whose query the
// simulator does not check (login, Partner Center, functions and actions).
func (c *Cloud) queryRule(op string) (queryRule, bool) {
	graphList := []string{"$select", "$filter", "$top", "$skiptoken", "$count", "$orderby", "$expand", "$search"}
	dvList := []string{"$select", "$filter", "$top", "$orderby", "$count", "$expand", "$apply", "$skiptoken"}
	n := c.names
	switch op {
	case permissions.OpGraphGetUser:
		return queryRule{"microsoft.graph.user", []string{"$select", "$expand"}, graphUserProps}, true
	case permissions.OpGraphListGroupMemberships:
		return queryRule{"microsoft.graph.directoryObject", graphList, append(append([]string{}, graphGroupProps...), "@odata.type")}, true
	case permissions.OpGraphListRoleAssignments, permissions.OpGraphListRoleEligibilities:
		return queryRule{"microsoft.graph.unifiedRoleAssignment", []string{"$select", "$filter", "$expand", "$skiptoken", "$top"}, nil}, true
	case permissions.OpGraphListSubscribedSkus:
		return queryRule{"microsoft.graph.subscribedSku", []string{"$select", "$skiptoken"}, nil}, true
	case permissions.OpGraphGetRegistrationDetails:
		return queryRule{"microsoft.graph.userRegistrationDetails", []string{"$select"}, graphRegistrationProps}, true
	case permissions.OpGraphGetSecurityDefaults:
		return queryRule{"microsoft.graph.identitySecurityDefaultsEnforcementPolicy", []string{"$select"}, graphSecurityDefaultsProps}, true
	case permissions.OpGraphListCAPolicies:
		return queryRule{"microsoft.graph.conditionalAccessPolicy", []string{"$skip", "$top", "$count", "$filter", "$orderby", "$select", "$skiptoken"}, nil}, true
	case permissions.OpGraphFindServicePrincipal:
		return queryRule{"microsoft.graph.servicePrincipal", graphList, graphSPProps}, true
	case permissions.OpGraphListDelegatedGrants, permissions.OpGraphListAppRoleAssignments, permissions.OpGraphListAuthMethods:
		return queryRule{"microsoft.graph.entity", []string{"$select", "$filter", "$top", "$skiptoken", "$count"}, nil}, true
	case permissions.OpDataverseReadSolutions:
		return queryRule{"Microsoft.Dynamics.CRM.solution", dvList, dvSolutionProps}, true
	case permissions.OpDataverseReadAsyncOperation, permissions.OpDataverseListAsyncOperations:
		return queryRule{"Microsoft.Dynamics.CRM.asyncoperation", dvList, dvAsyncOpProps}, true
	case permissions.OpDataverseReadImportJob:
		return queryRule{"Microsoft.Dynamics.CRM.importjob", dvList, dvImportJobProps}, true
	case permissions.OpDataverseFindSystemUser:
		return queryRule{"Microsoft.Dynamics.CRM.systemuser", dvList, dvSystemUserProps}, true
	case permissions.OpWork365ListJobs:
		return queryRule{"Microsoft.Dynamics.CRM." + strings.TrimSuffix(n.JobsEntitySet, "s"), dvList,
			[]string{n.JobsIDColumn, "statecode", "statuscode", "createdon", "modifiedon"}}, true
	case permissions.OpWork365ReadSettings:
		return queryRule{"Microsoft.Dynamics.CRM." + strings.TrimSuffix(n.SettingsEntitySet, "s"), dvList,
			[]string{n.SettingsIDColumn, n.FreezeColumn, n.UpgradeStatusColumn, n.UpgradeVersionColumn, "statecode", "createdon", "modifiedon"}}, true
	}
	return queryRule{}, false
}

// checkQuery answers 400 as the real service does when the query names an unsupported system
// query option or $select names a property the type does not have; it reports whether the
// call may go on.
func (k *call) checkQuery() bool {
	rule, ok := k.c.queryRule(k.entry.Operation)
	if !ok {
		return true
	}
	graph := k.entry.API == permissions.Graph
	for key := range k.q {
		if !strings.HasPrefix(key, "$") {
			continue // parameter aliases (@p1) and custom parameters
		}
		if !slices.ContainsFunc(rule.options, func(o string) bool { return strings.EqualFold(o, key) }) {
			if graph {
				k.graphBadRequest(fmt.Sprintf("Query option '%s' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.", strings.TrimPrefix(key, "$")))
			} else {
				k.dvError(http.StatusBadRequest, "0x0", fmt.Sprintf("The query parameter %s is not supported", key))
			}
			return false
		}
	}
	sel := k.q.Get("$select")
	if sel == "" || rule.props == nil {
		return true
	}
	for _, f := range strings.Split(sel, ",") {
		f = strings.TrimSpace(f)
		known := false
		for _, p := range rule.props {
			// Graph matches property names case-insensitively, Dataverse exactly.
			if graph && strings.EqualFold(p, f) || !graph && p == f {
				known = true
				break
			}
		}
		if known {
			continue
		}
		msg := fmt.Sprintf("Could not find a property named '%s' on type '%s'.", f, rule.typeName)
		if graph {
			k.graphBadRequest(msg)
		} else {
			k.dvError(http.StatusBadRequest, "0x0", msg)
		}
		return false
	}
	return true
}
