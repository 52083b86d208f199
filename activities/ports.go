package activities

import (
	"context"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
	"github.com/csp-ops/work365-upgrade/microsoft/partnercenter"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
)

// The interfaces below are what the activities need of the outside world, one per external
// API. Production wires the HTTP adapters (msgraph, dataverse, work365, partnercenter);
// unit tests wire mocks. Every method returns *msapi.Error for a failed call.

// Graph is Microsoft Graph, app-only, in a given tenant.
type Graph interface {
	// GetUser reads a user by object ID or UPN, with assignedLicenses.
	GetUser(ctx context.Context, tenantID, idOrUPN string) (msgraph.User, error)
	// DirectoryRoleStatus tells how a user holds a directory role: assigned directly, through
	// a group, or only eligible in PIM.
	DirectoryRoleStatus(ctx context.Context, tenantID, userID, roleDefinitionID string) (msgraph.RoleStatus, error)
	// ListGroupMemberships lists the groups a user is a direct member of (who a conditional
	// access policy scoped to groups covers).
	ListGroupMemberships(ctx context.Context, tenantID, userID string) ([]msgraph.Group, error)
	// ListSubscribedSkus lists the tenant's licence SKUs.
	ListSubscribedSkus(ctx context.Context, tenantID string) ([]msgraph.SubscribedSku, error)
	// GetMFARegistration tells whether a user registered MFA (report, or methods fallback
	// when the tenant lacks Entra ID P1).
	GetMFARegistration(ctx context.Context, tenantID, userID string) (msgraph.MFARegistration, error)
	// GetSecurityDefaults reads the security defaults policy.
	GetSecurityDefaults(ctx context.Context, tenantID string) (msgraph.SecurityDefaultsPolicy, error)
	// ListConditionalAccessPolicies lists conditional access policies.
	ListConditionalAccessPolicies(ctx context.Context, tenantID string) ([]msgraph.ConditionalAccessPolicy, error)
	// FindServicePrincipal finds an application's service principal; nil when absent.
	FindServicePrincipal(ctx context.Context, tenantID, appID string) (*msgraph.ServicePrincipal, error)
	// ListOAuth2PermissionGrants lists delegated grants of a service principal.
	ListOAuth2PermissionGrants(ctx context.Context, tenantID, servicePrincipalID string) ([]msgraph.OAuth2PermissionGrant, error)
	// ListAppRoleAssignments lists application permissions granted to a service principal.
	ListAppRoleAssignments(ctx context.Context, tenantID, servicePrincipalID string) ([]msgraph.AppRoleAssignment, error)
}

// Dataverse is the Dataverse Web API of one organisation, app-only.
type Dataverse interface {
	// WhoAmI proves the application user can call the organisation.
	WhoAmI(ctx context.Context, orgURL string) (dataverse.WhoAmIResponse, error)
	// GetSolution reads a solution by unique name; nil when not installed.
	GetSolution(ctx context.Context, orgURL, uniqueName string) (*dataverse.Solution, error)
	// ImportSolutionAsync starts an asynchronous solution import.
	ImportSolutionAsync(ctx context.Context, orgURL string, req dataverse.ImportSolutionAsyncRequest) (dataverse.ImportSolutionAsyncResponse, error)
	// UninstallSolutionAsync starts an asynchronous uninstall.
	UninstallSolutionAsync(ctx context.Context, orgURL, uniqueName string) (dataverse.UninstallSolutionAsyncResponse, error)
	// GetAsyncOperation reads an asynchronous operation.
	GetAsyncOperation(ctx context.Context, orgURL, id string) (dataverse.AsyncOperation, error)
	// ListUnfinishedAsyncOperations lists the not yet completed asynchronous operations owned
	// by a user (the application user from WhoAmI), newest first.
	ListUnfinishedAsyncOperations(ctx context.Context, orgURL, ownerID string) ([]dataverse.AsyncOperation, error)
	// GetImportJob reads an import job; nil when no job has that ID.
	GetImportJob(ctx context.Context, orgURL, id string) (*dataverse.ImportJob, error)
	// RetrieveFormattedImportJobResults returns the import log of a failed import.
	RetrieveFormattedImportJobResults(ctx context.Context, orgURL, importJobID string) (string, error)
	// FindSystemUser finds a user by domain name (UPN) with its security roles; nil when absent.
	FindSystemUser(ctx context.Context, orgURL, domainName string) (*dataverse.SystemUser, error)
}

// Work365 is the part of Work 365 that lives in Dataverse: its jobs and its freeze setting.
type Work365 interface {
	// CountPendingJobs counts Work 365 jobs neither failed nor succeeded.
	CountPendingJobs(ctx context.Context, orgURL string) (int, error)
	// Frozen reads the activity freeze setting.
	Frozen(ctx context.Context, orgURL string) (bool, error)
	// SetFrozen writes the activity freeze setting (idempotent).
	SetFrozen(ctx context.Context, orgURL string, frozen bool) error
	// Initialisation reads what Work 365 records of its upgrade initialisation (Begin
	// Upgrade), the observable trace of a new install's initialisation.
	Initialisation(ctx context.Context, orgURL string) (work365.Initialisation, error)
}

// PartnerCenter is the Partner Center API of a direct partner's connection. Its endpoints take
// App+User tokens only, so with the orchestrator's app-only tokens it is not used to verify a
// re-consent (ProbePartnerCenter reads Work 365's Partner Center grant through Graph); it stays
// for a delegated token source.
type PartnerCenter interface {
	// GetOrganizationProfile is a cheap authenticated probe of a connection.
	GetOrganizationProfile(ctx context.Context, partnerTenantID string) (partnercenter.OrganizationProfile, error)
}

// Notifier announces human tasks, reminders, escalations and outcomes to people.
type Notifier interface {
	// Notify delivers n; n.Key is an idempotency key: the same key must not reach people twice.
	Notify(ctx context.Context, n Notification) error
}

// Packages is where solution files are kept; specs carry only references to them.
type Packages interface {
	// Read returns the bytes of the referenced package.
	Read(ctx context.Context, ref string) ([]byte, error)
}
