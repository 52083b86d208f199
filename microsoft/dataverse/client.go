package dataverse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
)

// APIPath is the Web API root under an organisation URL.
const APIPath = "/api/data/v9.2/"

const (
	solutionSelect   = "solutionid,uniquename,version,ismanaged,installedon"
	asyncOpSelect    = "asyncoperationid,name,statecode,statuscode,message,friendlymessage,createdon"
	importJobSelect  = "importjobid,solutionname,progress,startedon,completedon"
	systemUserSelect = "systemuserid,domainname,islicensed,isdisabled,accessmode"
	systemUserExpand = "systemuserroles_association($select=name,roleid,_roletemplateid_value)"
)

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// TenantResolver tells which Entra tenant an organisation URL belongs to: the Dataverse token
// is issued by that tenant.
type TenantResolver func(ctx context.Context, orgURL string) (tenantID string, err error)

// TenantsByOrg resolves tenants from a fixed map of organisation URL to tenant ID, e.g. built
// from the inventory's specs. URLs are compared by scheme and host, case-insensitively.
func TenantsByOrg(m map[string]string) TenantResolver {
	byOrg := make(map[string]string, len(m))
	for org, tenant := range m {
		if n, err := normalizeOrgURL(org); err == nil {
			byOrg[n] = tenant
		}
	}
	return func(_ context.Context, orgURL string) (string, error) {
		n, err := normalizeOrgURL(orgURL)
		if err != nil {
			return "", err
		}
		t, ok := byOrg[n]
		if !ok {
			return "", fmt.Errorf("no tenant is known for organisation %s: add the tenant (tenantId and orgUrl) to the inventory", orgURL)
		}
		return t, nil
	}
}

// Client is the Dataverse Web API of any organisation whose tenant consented to the
// orchestrator app and which has an application user for it. It implements
// activities.Dataverse. Every failed call is an *msapi.Error with Service "dataverse".
type Client struct {
	api     *msapi.Client
	tenants TenantResolver
}

// New returns a Dataverse client. tokens issues tokens for msauth.DataverseScope(orgURL) in
// the tenant tenants names for the organisation. Options are msapi's (msapi.WithHTTPClient
// routes requests, for example *.crm.dynamics.com to a simulator).
func New(tokens msapi.TokenSource, tenants TenantResolver, opts ...msapi.ClientOption) *Client {
	apiOpts := append([]msapi.ClientOption{
		msapi.WithHeader("OData-Version", "4.0"),
		msapi.WithHeader("OData-MaxVersion", "4.0"),
	}, opts...)
	return &Client{api: msapi.NewClient("dataverse", tokens, apiOpts...), tenants: tenants}
}

// call is the start of every request: the organisation's API root, tenant and scope.
type call struct {
	org    string // normalised organisation URL
	tenant string
}

func (c *Client) begin(ctx context.Context, orgURL, op string) (call, error) {
	org, err := normalizeOrgURL(orgURL)
	if err != nil {
		return call{}, msapi.LocalError("dataverse", op, err.Error(), "set orgUrl to the environment URL, like https://contoso.crm.dynamics.com")
	}
	if c.tenants == nil {
		return call{}, msapi.LocalError("dataverse", op, "no tenant resolver configured", "wire a TenantResolver (e.g. TenantsByOrg from the inventory)")
	}
	tenant, err := c.tenants(ctx, org)
	if err != nil {
		var me *msapi.Error
		if errors.As(err, &me) {
			return call{}, err
		}
		return call{}, msapi.LocalError("dataverse", op, err.Error(), "")
	}
	return call{org: org, tenant: tenant}, nil
}

func (k call) request(op, method, path string, query url.Values) msapi.Request {
	return msapi.Request{
		Operation:  op + " in " + k.org,
		Method:     method,
		URL:        msapi.JoinURL(k.org+APIPath, path, query),
		TenantID:   k.tenant,
		Scope:      msauth.DataverseScope(k.org),
		DeniedHint: DeniedHint(k.org),
	}
}

// DeniedHint is the hint of a 401/403 from an organisation.
func DeniedHint(orgURL string) string {
	return fmt.Sprintf("the orchestrator app needs an application user with a security role in %s (Power Platform admin center > Environment > Settings > Application users)", orgURL)
}

func normalizeOrgURL(orgURL string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(orgURL))
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%q is not a Dataverse organisation URL like https://contoso.crm.dynamics.com", orgURL)
	}
	return "https://" + strings.ToLower(u.Host), nil
}

func checkGUID(op, what, v string) error {
	if !guidRE.MatchString(v) {
		return msapi.LocalError("dataverse", op, fmt.Sprintf("%s %q is not a GUID", what, v), "pass the "+what+" Dataverse returned or a GUID you generated")
	}
	return nil
}

// WhoAmI proves the application user can call the organisation.
func (c *Client) WhoAmI(ctx context.Context, orgURL string) (WhoAmIResponse, error) {
	const op = "WhoAmI"
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return WhoAmIResponse{}, err
	}
	var r WhoAmIResponse
	err = c.api.Do(ctx, k.request(op, http.MethodGet, "WhoAmI", nil), &r)
	return r, err
}

// GetSolution reads a solution by unique name; nil when not installed.
func (c *Client) GetSolution(ctx context.Context, orgURL, uniqueName string) (*Solution, error) {
	op := "read solution " + uniqueName
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return nil, err
	}
	req := k.request(op, http.MethodGet, "solutions", url.Values{
		"$filter": {"uniquename eq " + msapi.ODataString(uniqueName)},
		"$select": {solutionSelect},
	})
	sols, err := msapi.GetAll[Solution](ctx, c.api, req)
	if err != nil || len(sols) == 0 {
		return nil, err
	}
	return &sols[0], nil
}

// ImportSolutionAsync starts an asynchronous solution import. req.ImportJobID must be a GUID:
// it names the import job to poll and makes a repeated start recognisable.
func (c *Client) ImportSolutionAsync(ctx context.Context, orgURL string, req ImportSolutionAsyncRequest) (ImportSolutionAsyncResponse, error) {
	op := "start solution import " + req.ImportJobID
	if err := checkGUID(op, "import job ID", req.ImportJobID); err != nil {
		return ImportSolutionAsyncResponse{}, err
	}
	if req.CustomizationFile == "" {
		return ImportSolutionAsyncResponse{}, msapi.LocalError("dataverse", op, "the solution file is empty", "check the solution package reference")
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return ImportSolutionAsyncResponse{}, err
	}
	r := k.request(op, http.MethodPost, "ImportSolutionAsync", nil)
	r.Body = req
	r.Idempotent = false // a resent start of the same ImportJobId is refused (400 duplicate key), not found: StartImport looks the job up on Temporal's retry
	r.DeniedHint += "; importing solutions needs the System Administrator or System Customizer role"
	var resp ImportSolutionAsyncResponse
	err = c.api.Do(ctx, r, &resp)
	return resp, err
}

// UninstallSolutionAsync starts an asynchronous uninstall.
func (c *Client) UninstallSolutionAsync(ctx context.Context, orgURL, uniqueName string) (UninstallSolutionAsyncResponse, error) {
	op := "start uninstall of solution " + uniqueName
	if strings.TrimSpace(uniqueName) == "" {
		return UninstallSolutionAsyncResponse{}, msapi.LocalError("dataverse", op, "no solution name given", "")
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return UninstallSolutionAsyncResponse{}, err
	}
	r := k.request(op, http.MethodPost, "UninstallSolutionAsync", nil)
	r.Body = map[string]string{"SolutionUniqueName": uniqueName}
	r.Idempotent = false // no client-chosen ID: a resent uninstall starts a second operation, which fails once the first has removed the solution
	r.DeniedHint += "; uninstalling solutions needs the System Administrator or System Customizer role"
	var resp UninstallSolutionAsyncResponse
	err = c.api.Do(ctx, r, &resp)
	return resp, err
}

// GetAsyncOperation reads an asynchronous operation, with its friendly and technical failure
// text.
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/asynchronous-service
func (c *Client) GetAsyncOperation(ctx context.Context, orgURL, id string) (AsyncOperation, error) {
	op := "read async operation " + id
	if err := checkGUID(op, "async operation ID", id); err != nil {
		return AsyncOperation{}, err
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return AsyncOperation{}, err
	}
	r := k.request(op, http.MethodGet, "asyncoperations("+id+")", url.Values{"$select": {asyncOpSelect}})
	r.NotFoundHint = fmt.Sprintf("no async operation %s in %s (system jobs are deleted after completion by bulk-deletion jobs)", id, k.org)
	var o AsyncOperation
	if err := c.api.Do(ctx, r, &o); err != nil {
		return AsyncOperation{}, err
	}
	if o.AsyncOperationID == "" {
		o.AsyncOperationID = id
	}
	return o, nil
}

// ListUnfinishedAsyncOperations lists the asynchronous operations owned by ownerID (the
// application user, from WhoAmI) that have not completed (statecode ne 3), newest first: a
// solution import started by an earlier attempt whose answer was lost shows here before its
// import job row exists.
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/filter-rows
func (c *Client) ListUnfinishedAsyncOperations(ctx context.Context, orgURL, ownerID string) ([]AsyncOperation, error) {
	op := "list unfinished async operations of " + ownerID
	if err := checkGUID(op, "owner ID", ownerID); err != nil {
		return nil, err
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return nil, err
	}
	r := k.request(op, http.MethodGet, "asyncoperations", url.Values{
		"$filter":  {"_ownerid_value eq " + ownerID + " and statecode ne 3"},
		"$select":  {asyncOpSelect},
		"$orderby": {"createdon desc"},
	})
	return msapi.GetAll[AsyncOperation](ctx, c.api, r)
}

// GetImportJob reads an import job; nil when no job has that ID (yet).
func (c *Client) GetImportJob(ctx context.Context, orgURL, id string) (*ImportJob, error) {
	op := "read import job " + id
	if err := checkGUID(op, "import job ID", id); err != nil {
		return nil, err
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return nil, err
	}
	var j ImportJob
	err = c.api.Do(ctx, k.request(op, http.MethodGet, "importjobs("+id+")", url.Values{"$select": {importJobSelect}}), &j)
	var me *msapi.Error
	if errors.As(err, &me) && me.NotFound() {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// RetrieveFormattedImportJobResults returns the import log of an import job.
func (c *Client) RetrieveFormattedImportJobResults(ctx context.Context, orgURL, importJobID string) (string, error) {
	op := "read import log " + importJobID
	if err := checkGUID(op, "import job ID", importJobID); err != nil {
		return "", err
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return "", err
	}
	r := k.request(op, http.MethodGet, "RetrieveFormattedImportJobResults(ImportJobId=@p1)", url.Values{"@p1": {importJobID}})
	r.NotFoundHint = fmt.Sprintf("no import job %s in %s", importJobID, k.org)
	var out struct {
		FormattedResults string `json:"FormattedResults"`
	}
	err = c.api.Do(ctx, r, &out)
	return out.FormattedResults, err
}

// FindSystemUser finds a user by domain name (UPN) with its security roles; nil when absent.
func (c *Client) FindSystemUser(ctx context.Context, orgURL, domainName string) (*SystemUser, error) {
	op := "find user " + domainName
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return nil, err
	}
	req := k.request(op, http.MethodGet, "systemusers", url.Values{
		"$filter": {"domainname eq " + msapi.ODataString(domainName)},
		"$select": {systemUserSelect},
		"$expand": {systemUserExpand},
	})
	users, err := msapi.GetAll[SystemUser](ctx, c.api, req)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	return &users[0], nil
}

// GetSystemUser reads a user by its systemuserid with its security roles; nil when absent.
// The preflight reads the orchestrator's own application user (WhoAmI's UserId) this way: an
// application user without a security role can sign in but do nothing.
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/retrieve-entity-using-web-api
func (c *Client) GetSystemUser(ctx context.Context, orgURL, id string) (*SystemUser, error) {
	op := "read user " + id
	if err := checkGUID(op, "systemuserid", id); err != nil {
		return nil, err
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return nil, err
	}
	var u SystemUser
	err = c.api.Do(ctx, k.request(op, http.MethodGet, "systemusers("+id+")", url.Values{
		"$select": {systemUserSelect},
		"$expand": {systemUserExpand},
	}), &u)
	var me *msapi.Error
	if errors.As(err, &me) && me.NotFound() {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// Row is one table row as the Web API returns it, column by column.
type Row map[string]json.RawMessage

// String returns a string column; ok is false when the column is absent or not a string.
func (r Row) String(column string) (string, bool) {
	raw, present := r[column]
	if !present {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// Bool returns a boolean column; null reads as false. An absent or non-boolean column is an
// error naming the column.
func (r Row) Bool(column string) (bool, error) {
	raw, present := r[column]
	if !present {
		return false, fmt.Errorf("column %s is missing from the row", column)
	}
	var b *bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, fmt.Errorf("column %s is %s, not a boolean", column, string(raw))
	}
	return b != nil && *b, nil
}

// RowQuery selects rows of a table.
type RowQuery struct {
	// Select lists the columns to return (all when empty).
	Select []string
	// Filter is an OData $filter (values quoted with msapi.ODataString).
	Filter string
	// OrderBy is an OData $orderby.
	OrderBy string
	// Top caps how many rows are returned (0: all, following pages).
	Top int
}

func (q RowQuery) values() url.Values {
	v := url.Values{}
	if len(q.Select) > 0 {
		v.Set("$select", strings.Join(q.Select, ","))
	}
	if q.Filter != "" {
		v.Set("$filter", q.Filter)
	}
	if q.OrderBy != "" {
		v.Set("$orderby", q.OrderBy)
	}
	if q.Top > 0 {
		v.Set("$top", fmt.Sprint(q.Top))
	}
	return v
}

func tableNotFound(entitySet, org string) string {
	return fmt.Sprintf("no table with entity set name %s in %s: check the configured table names", entitySet, org)
}

func checkEntitySet(op, entitySet string) error {
	if entitySet == "" || strings.ContainsAny(entitySet, "/?#()'& ") {
		return msapi.LocalError("dataverse", op, fmt.Sprintf("%q is not an entity set name", entitySet), "configure the table's entity set (plural) name, like accounts")
	}
	return nil
}

// ListRows lists the rows of entitySet that q selects, following pages.
func (c *Client) ListRows(ctx context.Context, orgURL, entitySet string, q RowQuery) ([]Row, error) {
	op := "list " + entitySet
	if err := checkEntitySet(op, entitySet); err != nil {
		return nil, err
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return nil, err
	}
	r := k.request(op, http.MethodGet, entitySet, q.values())
	r.NotFoundHint = tableNotFound(entitySet, k.org)
	return msapi.GetAll[Row](ctx, c.api, r)
}

// Count counts the rows of entitySet matching filter (all when empty) with $count=true,
// selecting only idColumn (when given) and asking for one-row pages; the Web API counts at
// most 5,000 rows, so 5000 means "5,000 or more".
func (c *Client) Count(ctx context.Context, orgURL, entitySet, idColumn, filter string) (int, error) {
	op := "count " + entitySet
	if err := checkEntitySet(op, entitySet); err != nil {
		return 0, err
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return 0, err
	}
	q := url.Values{"$count": {"true"}}
	if idColumn != "" {
		q.Set("$select", idColumn)
	}
	if filter != "" {
		q.Set("$filter", filter)
	}
	r := k.request(op, http.MethodGet, entitySet, q)
	r.Header = http.Header{"Prefer": {"odata.maxpagesize=1"}}
	r.NotFoundHint = tableNotFound(entitySet, k.org)
	return c.api.Count(ctx, r)
}

// PatchRow updates columns of an existing row (If-Match: * so a missing row is a 404, never
// an insert). Patching the same values again is harmless.
func (c *Client) PatchRow(ctx context.Context, orgURL, entitySet, id string, columns any) error {
	op := "update " + entitySet + " row " + id
	if err := checkEntitySet(op, entitySet); err != nil {
		return err
	}
	if err := checkGUID(op, "row ID", id); err != nil {
		return err
	}
	k, err := c.begin(ctx, orgURL, op)
	if err != nil {
		return err
	}
	r := k.request(op, http.MethodPatch, entitySet+"("+id+")", nil)
	r.Body = columns
	r.Header = http.Header{"If-Match": {"*"}}
	r.Idempotent = true // If-Match: * on an existing row with fixed values: a second PATCH leaves the row as the first did
	r.NotFoundHint = fmt.Sprintf("no row %s in %s of %s", id, entitySet, k.org)
	return c.api.Do(ctx, r, nil)
}
