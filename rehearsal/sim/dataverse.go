package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

var dvPrefixRE = regexp.MustCompile(`^/api/data/v9\.[0-2]/`)

const roleTemplateBasicUser = "d58407f2-48d5-e711-a82c-000d3a37c848"

func (c *Cloud) serveDataverse(w http.ResponseWriter, r *http.Request, host string) {
	org := normaliseOrgHost(host)
	c.mu.Lock()
	t := c.orgs[org]
	c.mu.Unlock()
	if t == nil {
		writeAPIError(w, http.StatusNotFound, "OrganizationNotFound", fmt.Sprintf("no simulated Dataverse organisation answers at %s", host))
		return
	}
	prefix := dvPrefixRE.FindString(r.URL.Path)
	if prefix == "" {
		prefix = "/api/data/v9.2/"
	}
	first, _, _ := strings.Cut(org, ".")
	rest := strings.TrimPrefix(org, first)
	audiences := []string{"https://" + org, "https://" + first + ".api" + rest}
	challenge := fmt.Sprintf("Bearer authorization_uri=https://login.microsoftonline.com/%s/oauth2/authorize, resource_id=https://%s/", t.id, org)
	svc := service{
		name: "dataverse", api: permissions.Dataverse, prefix: prefix, unauthorizedCode: "0x80072560", audiences: audiences, challenge: challenge,
		tenant: func(w http.ResponseWriter, cl Claims) *tenantState {
			if !strings.EqualFold(cl.Tid, t.id) {
				writeChallenge(w, challenge, "0x80072560", fmt.Sprintf("The token was issued for tenant %s but organisation %s belongs to tenant %s.", cl.Tid, org, t.id))
				return nil
			}
			if !t.org.appUser {
				writeAPIError(w, http.StatusForbidden, "0x80072560", fmt.Sprintf("The user is not a member of the organization: application %s has no application user in %s.", cl.AppID, org))
				return nil
			}
			return t
		},
		throttleCode:    "0x80072322",
		throttleMessage: "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
	}
	c.serveAPI(w, r, svc, handlers{
		permissions.OpDataverseDiscoverTenant:      (*call).dvServiceDocument,
		permissions.OpDataverseWhoAmI:              (*call).dvWhoAmI,
		permissions.OpDataverseReadSolutions:       (*call).dvSolutions,
		permissions.OpDataverseImportSolution:      (*call).dvImport,
		permissions.OpDataverseUninstallSolution:   (*call).dvUninstall,
		permissions.OpDataverseReadAsyncOperation:  (*call).dvAsyncOperation,
		permissions.OpDataverseListAsyncOperations: (*call).dvAsyncOperations,
		permissions.OpDataverseReadImportJob:       (*call).dvImportJob,
		permissions.OpDataverseReadImportLog:       (*call).dvFormattedResults,
		permissions.OpDataverseFindSystemUser:      (*call).dvSystemUsers,
		permissions.OpDataverseReadSystemUser:      (*call).dvSystemUser,
		permissions.OpWork365ListJobs:              (*call).dvJobs,
		permissions.OpWork365ReadSettings:          (*call).dvSettings,
		permissions.OpWork365WriteSettings:         (*call).dvPatchSettings,
	})
}

func (k *call) dvBase() string {
	p := dvPrefixRE.FindString(k.r.URL.Path)
	if p == "" {
		p = "/api/data/v9.2/"
	}
	return k.t.org.url + p
}

func (k *call) dvError(status int, code, msg string) { writeAPIError(k.w, status, code, msg) }

func (k *call) dvNotFound(entity, id string) {
	k.dvError(http.StatusNotFound, "0x80040217", fmt.Sprintf("%s With Id = %s Does Not Exist", entity, id))
}

func (k *call) dvServiceDocument() {
	sets := []string{"solutions", "asyncoperations", "importjobs", "systemusers", k.c.names.JobsEntitySet, k.c.names.SettingsEntitySet}
	v := []map[string]any{}
	for _, s := range sets {
		v = append(v, map[string]any{"name": s, "kind": "EntitySet", "url": s})
	}
	writeJSON(k.w, http.StatusOK, map[string]any{"@odata.context": k.dvBase() + "$metadata", "value": v})
}

func (k *call) dvWhoAmI() {
	o := k.t.org
	writeJSON(k.w, http.StatusOK, map[string]any{
		"@odata.context": k.dvBase() + "$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
		"BusinessUnitId": o.buID, "UserId": o.appUserID, "OrganizationId": o.orgID,
	})
}

func (k *call) solutionRow(s *solution) map[string]any {
	return map[string]any{
		"@odata.etag": `W/"` + strconv.Itoa(len(s.version)*7919) + `"`,
		"solutionid":  s.id, "uniquename": s.uniqueName, "friendlyname": s.friendlyName,
		"version": s.version, "ismanaged": s.managed, "installedon": isoTime(s.installedOn),
		"isvisible": true,
	}
}

func (k *call) dvSolutions() {
	f, err := parseEqFilter(k.q.Get("$filter"))
	if err != nil {
		k.dvError(http.StatusBadRequest, "0x80060888", err.Error())
		return
	}
	rows := []map[string]any{}
	for _, key := range sortedKeys(k.t.org.solutions) {
		s := k.t.org.solutions[key]
		if u, ok := f["uniquename"]; ok && !strings.EqualFold(u, s.uniqueName) {
			continue
		}
		rows = append(rows, selectFields(k.solutionRow(s), k.q.Get("$select"), "solutionid"))
	}
	k.writeDvRows("solutions", rows)
}

func (k *call) dvImport() {
	c, t, o := k.c, k.t, k.t.org
	var body struct {
		CustomizationFile                string
		OverwriteUnmanagedCustomizations bool
		PublishWorkflows                 bool
		ImportJobID                      string `json:"ImportJobId"`
		HoldingSolution                  bool
	}
	if err := json.NewDecoder(k.r.Body).Decode(&body); err != nil {
		t.counters.ImportsRefused++
		k.dvError(http.StatusBadRequest, "0x80040203", "The request body is not valid JSON: "+err.Error())
		return
	}
	if body.ImportJobID == "" {
		body.ImportJobID = c.newID()
	}
	if !guidRE.MatchString(body.ImportJobID) {
		t.counters.ImportsRefused++
		k.dvError(http.StatusBadRequest, "0x80040203", fmt.Sprintf("ImportJobId %q is not a GUID.", body.ImportJobID))
		return
	}
	if j := o.importJobs[strings.ToLower(body.ImportJobID)]; j != nil {
		t.counters.ImportsRefused++
		k.dvError(http.StatusBadRequest, "0x80040237", fmt.Sprintf("Cannot insert duplicate key: an import job with ImportJobId %s already exists (created %s).", body.ImportJobID, isoTime(j.op.created)))
		return
	}
	if op := o.runningSolutionOp(); op != nil {
		t.counters.ImportsRefused++
		k.dvError(http.StatusBadRequest, "0x80071151", fmt.Sprintf("Cannot start the requested operation [Import] because there is another [%s] running at this moment (async operation %s).", op.name, op.id))
		return
	}
	raw, err := base64.StdEncoding.DecodeString(body.CustomizationFile)
	if err != nil || len(raw) == 0 {
		t.counters.ImportsRefused++
		k.dvError(http.StatusBadRequest, "0x80040203", "CustomizationFile must be the solution file, base64-encoded.")
		return
	}
	pkg, perr := ParsePackage(raw)
	spec := t.spec.Import
	fails, msg := false, ""
	n := c.names
	switch {
	case perr != nil:
		fails, msg = true, "The import file is invalid: "+perr.Error()
	case strings.EqualFold(pkg.UniqueName, n.SolutionUniqueName):
		o.importAttempts++
		base := o.get(n.SolutionUniqueName)
		switch {
		case body.HoldingSolution && base == nil:
			fails, msg = true, fmt.Sprintf("Solution %s is not installed: an upgrade (holding solution) needs its base solution.", pkg.UniqueName)
		case body.HoldingSolution && o.get(n.HoldingSolutionName()) != nil:
			fails, msg = true, fmt.Sprintf("An upgrade of %s is already staged as %s: apply or delete it before importing another.", pkg.UniqueName, n.HoldingSolutionName())
		case base != nil && spec2Compare(pkg.Version, base.version) <= 0:
			fails, msg = true, fmt.Sprintf("The solution version %s is not higher than the installed version %s.", pkg.Version, base.version)
		case o.importAttempts <= spec.Failures:
			fails, msg = true, spec.FailMessage
			if msg == "" {
				msg = "Solution manifest import: FAILURE: The import of solution " + pkg.UniqueName + " failed (simulated failure)."
			}
		}
	case body.HoldingSolution:
		fails, msg = true, fmt.Sprintf("Solution %s is not installed: an upgrade (holding solution) needs its base solution.", pkg.UniqueName)
	}
	dur := spec.Duration
	cap := 100.0
	if fails {
		cap = 40
	}
	now := k.now
	// The asynchronous operation waits in the queue for a while; its import job row exists only
	// once it starts.
	start := now.Add(spec.StartDelay)
	op := &asyncOp{
		id: c.newID(), name: opNameImport, opType: 103, created: now, started: start, owner: o.appUserID, full: dur,
		done: start.Add(time.Duration(float64(dur) * cap / 100)), fails: fails, message: msg, solutionOp: true,
	}
	job := &importJob{id: strings.ToLower(body.ImportJobID), key: c.newID(), solutionName: pkg.UniqueName, op: op, holding: body.HoldingSolution}
	op.job = job
	op.recipe = opRecipe{Kind: recipeImport, Solution: pkg.UniqueName, Version: pkg.Version, Managed: pkg.Managed, Holding: body.HoldingSolution}
	op.apply = c.applier(t, op)
	o.addOp(op)
	o.importJobs[job.id] = job
	o.importJobs[strings.ToLower(job.key)] = job
	t.counters.Imports++
	if body.HoldingSolution {
		t.counters.HoldingImports++
	}
	writeJSON(k.w, http.StatusOK, map[string]any{
		"@odata.context":   k.dvBase() + "$metadata#Microsoft.Dynamics.CRM.ImportSolutionAsyncResponse",
		"AsyncOperationId": op.id, "ImportJobKey": job.key,
	})
}

func spec2Compare(a, b string) int { return spec.CompareVersions(a, b) }

func (k *call) dvUninstall() {
	c, t, o := k.c, k.t, k.t.org
	var body struct{ SolutionUniqueName string }
	if err := json.NewDecoder(k.r.Body).Decode(&body); err != nil || body.SolutionUniqueName == "" {
		t.counters.UninstallsRefused++
		k.dvError(http.StatusBadRequest, "0x80040203", "The body must be {\"SolutionUniqueName\": \"...\"}.")
		return
	}
	s := o.get(body.SolutionUniqueName)
	if s == nil {
		t.counters.UninstallsRefused++
		k.dvError(http.StatusNotFound, "0x8004f004", fmt.Sprintf("The solution with unique name %s was not found.", body.SolutionUniqueName))
		return
	}
	if op := o.runningSolutionOp(); op != nil {
		t.counters.UninstallsRefused++
		k.dvError(http.StatusBadRequest, "0x80071151", fmt.Sprintf("Cannot start the requested operation [Uninstall] because there is another [%s] running at this moment (async operation %s).", op.name, op.id))
		return
	}
	attempt := t.counters.Uninstalls + 1
	spec := t.spec.Uninstall
	fails := attempt <= spec.Failures
	msg := ""
	if fails {
		msg = spec.FailMessage
		if msg == "" {
			msg = "Uninstall of solution " + s.uniqueName + " failed (simulated failure)."
		}
	}
	op := &asyncOp{id: c.newID(), name: opNameUninstall, opType: 104, created: k.now, owner: o.appUserID, full: spec.Duration, done: k.now.Add(spec.Duration), fails: fails, message: msg, solutionOp: true}
	op.recipe = opRecipe{Kind: recipeUninstall, Solution: s.uniqueName}
	op.apply = c.applier(t, op)
	o.addOp(op)
	t.counters.Uninstalls++
	writeJSON(k.w, http.StatusOK, map[string]any{
		"@odata.context":   k.dvBase() + "$metadata#Microsoft.Dynamics.CRM.UninstallSolutionAsyncResponse",
		"AsyncOperationId": op.id,
	})
}

func (k *call) asyncOpRow(op *asyncOp) map[string]any {
	started := op.created
	if !op.started.IsZero() {
		started = op.started
	}
	row := map[string]any{
		"asyncoperationid": op.id, "name": op.name, "operationtype": op.opType,
		"statecode": 0, "statuscode": 20, "message": nil, "friendlymessage": nil, "_ownerid_value": nullable(op.owner),
		"createdon": isoTime(op.created), "startedon": isoTime(started), "completedon": nil,
	}
	if k.now.Before(started) {
		row["statuscode"], row["startedon"] = 0, nil // WaitingForResources: queued
	}
	if op.applied {
		row["statecode"] = 3
		row["statuscode"] = 30
		row["completedon"] = isoTime(op.done)
		if op.fails {
			// Dataverse keeps a technical message and a friendly one for people.
			row["statuscode"] = 31
			row["message"] = "0x80048060: " + op.message
			row["friendlymessage"] = op.message
		}
	}
	return row
}

func (k *call) dvAsyncOperation() {
	op := k.t.org.asyncOps[strings.ToLower(strings.Trim(k.p[0], "'"))]
	if op == nil {
		k.dvNotFound("asyncoperation", k.p[0])
		return
	}
	row := k.asyncOpRow(op)
	row["@odata.context"] = k.dvBase() + "$metadata#asyncoperations/$entity"
	writeJSON(k.w, http.StatusOK, selectFields(row, k.q.Get("$select"), "asyncoperationid"))
}

// asyncOpsFilterRE is the one $filter the simulator answers on asyncoperations: the
// unfinished operations of an owner.
var asyncOpsFilterRE = regexp.MustCompile(`^_ownerid_value eq '?([0-9a-fA-F-]{36})'? and statecode ne 3$`)

func (k *call) dvAsyncOperations() {
	m := asyncOpsFilterRE.FindStringSubmatch(normaliseSpaces(k.q.Get("$filter")))
	if m == nil {
		k.dvError(http.StatusBadRequest, "0x80060888", "The simulator answers asyncoperations with $filter \"_ownerid_value eq {id} and statecode ne 3\" only.")
		return
	}
	rows := []map[string]any{}
	for i := len(k.t.org.ops) - 1; i >= 0; i-- { // newest first
		op := k.t.org.ops[i]
		if op.applied || !strings.EqualFold(op.owner, m[1]) {
			continue
		}
		rows = append(rows, selectFields(k.asyncOpRow(op), k.q.Get("$select"), "asyncoperationid"))
	}
	k.writeDvRows("asyncoperations", rows)
}

// visibleImportJob returns the import job with this ID or key once its operation started.
func (k *call) visibleImportJob(id string) *importJob {
	j := k.t.org.importJobs[strings.ToLower(strings.Trim(id, "'"))]
	if j == nil || (!j.op.started.IsZero() && k.now.Before(j.op.started)) {
		return nil
	}
	return j
}

func (k *call) importJobRow(j *importJob) map[string]any {
	op := j.op
	row := map[string]any{
		"@odata.context": k.dvBase() + "$metadata#importjobs/$entity",
		"importjobid":    j.id, "solutionname": j.solutionName, "name": "Customizations",
		"progress": op.progress(k.now), "createdon": isoTime(op.created), "startedon": isoTime(op.created),
		"completedon": nil, "data": j.log(k.now),
	}
	if op.applied {
		row["completedon"] = isoTime(op.done)
	}
	return row
}

func (j *importJob) log(now time.Time) string {
	op := j.op
	result := "success"
	desc := ""
	switch {
	case !op.applied:
		result = "inprogress"
	case op.fails:
		result, desc = "failure", op.message
	}
	return fmt.Sprintf(`<importexportxml start="%d" stop="%d" progress="%.2f" processed="true"><solutionManifests><solutionManifest languagecode="1033" id="%s" LocalizedName="%s" processed="true"><UniqueName>%s</UniqueName><Holding>%t</Holding><result result="%s" errorcode="%s" errortext="%s" datetime="%s" /></solutionManifest></solutionManifests></importexportxml>`,
		op.created.Unix(), op.done.Unix(), op.progress(now), j.solutionName, xmlEscape(j.solutionName), xmlEscape(j.solutionName), j.holding, result,
		map[bool]string{true: "0x80048060", false: "0"}[op.fails && op.applied], xmlEscape(desc), isoTime(op.done))
}

func (k *call) dvImportJob() {
	j := k.visibleImportJob(k.p[0])
	if j == nil {
		k.dvNotFound("importjob", k.p[0])
		return
	}
	writeJSON(k.w, http.StatusOK, selectFields(k.importJobRow(j), k.q.Get("$select"), "importjobid"))
}

func (k *call) dvFormattedResults() {
	arg := k.p[0] // ImportJobId=@p1 or ImportJobId=guid
	name, val, ok := strings.Cut(arg, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(name), "ImportJobId") {
		k.dvError(http.StatusBadRequest, "0x80060888", "RetrieveFormattedImportJobResults takes ImportJobId.")
		return
	}
	val = strings.TrimSpace(val)
	if strings.HasPrefix(val, "@") {
		val = k.q.Get(val)
	}
	val = strings.Trim(val, "'")
	j := k.visibleImportJob(val)
	if j == nil {
		k.dvNotFound("importjob", val)
		return
	}
	writeJSON(k.w, http.StatusOK, map[string]any{
		"@odata.context":   k.dvBase() + "$metadata#Microsoft.Dynamics.CRM.RetrieveFormattedImportJobResultsResponse",
		"FormattedResults": `<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="Solution" xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Table>` + j.log(k.now) + `</Table></Worksheet></Workbook>`,
	})
}

func (k *call) systemUserRow(u *userState) map[string]any {
	o := k.t.org
	roles := []map[string]any{{"name": "Basic User", "roleid": o.basicRoleID, "_roletemplateid_value": roleTemplateBasicUser}}
	if u.sysAdmin {
		roles = append(roles, map[string]any{"name": "System Administrator", "roleid": o.sysAdminRoleID, "_roletemplateid_value": sysAdminTemplate})
	}
	if u.serviceRole && o.serviceRoleExists {
		roles = append(roles, map[string]any{"name": k.c.names.ServiceRoleName, "roleid": o.serviceRoleID, "_roletemplateid_value": nil})
	}
	row := map[string]any{
		"@odata.etag":  `W/"1"`,
		"systemuserid": u.systemUserID, "domainname": u.upn, "fullname": u.display,
		"internalemailaddress": u.upn, "islicensed": u.dynamics, "isdisabled": u.disabled,
		"accessmode": 0, "azureactivedirectoryobjectid": u.id,
	}
	exp := k.q.Get("$expand")
	if exp != "" {
		name, inner, _ := strings.Cut(exp, "(")
		if strings.TrimSpace(name) == "systemuserroles_association" {
			sel := ""
			inner = strings.TrimSuffix(inner, ")")
			if v, ok := strings.CutPrefix(inner, "$select="); ok {
				sel = v
			}
			out := []map[string]any{}
			for _, r := range roles {
				out = append(out, selectFields(r, sel, "roleid"))
			}
			row["systemuserroles_association"] = out
		}
	}
	return selectFields(row, k.q.Get("$select"), "systemuserid", "systemuserroles_association")
}

func (k *call) dvSystemUsers() {
	if exp := k.q.Get("$expand"); exp != "" && !strings.HasPrefix(exp, "systemuserroles_association") {
		k.dvError(http.StatusBadRequest, "0x80060888", "Could not find a property named '"+exp+"': the simulator expands systemuserroles_association only.")
		return
	}
	f, err := parseEqFilter(k.q.Get("$filter"))
	if err != nil {
		k.dvError(http.StatusBadRequest, "0x80060888", err.Error())
		return
	}
	rows := []map[string]any{}
	for _, id := range sortedKeys(k.t.users) {
		u := k.t.users[id]
		if d, ok := f["domainname"]; ok && !strings.EqualFold(d, u.upn) {
			continue
		}
		rows = append(rows, k.systemUserRow(u))
	}
	k.writeDvRows("systemusers", rows)
}

func (k *call) dvSystemUser() {
	id := strings.ToLower(strings.Trim(k.p[0], "'"))
	if k.dvApplicationUser(id) {
		return
	}
	for _, u := range k.t.users {
		if strings.EqualFold(u.systemUserID, id) {
			row := k.systemUserRow(u)
			row["@odata.context"] = k.dvBase() + "$metadata#systemusers/$entity"
			writeJSON(k.w, http.StatusOK, row)
			return
		}
	}
	k.dvNotFound("systemuser", k.p[0])
}

// work365Installed answers 404 for Work 365 tables when the solution is not installed.
func (k *call) work365Installed(entitySet string) bool {
	if k.t.org.get(k.c.names.SolutionUniqueName) == nil {
		k.dvError(http.StatusNotFound, "0x8006088a", fmt.Sprintf("Resource not found for the segment '%s'.", entitySet))
		return false
	}
	return true
}

func normaliseSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

func (k *call) dvJobs() {
	n := k.c.names
	if !k.work365Installed(n.JobsEntitySet) {
		return
	}
	if f := k.q.Get("$filter"); f != "" && normaliseSpaces(f) != normaliseSpaces(n.PendingJobsFilter) {
		k.dvError(http.StatusBadRequest, "0x80060888", fmt.Sprintf("The simulator answers the pending-jobs $filter %q only, not %q.", n.PendingJobsFilter, f))
		return
	}
	o := k.t.org
	k.writeDvPage(n.JobsEntitySet, o.pendingJobs(), func(i int) map[string]any {
		for len(o.jobIDs) <= i+o.jobSeq {
			o.jobIDs = append(o.jobIDs, k.c.newID())
		}
		return selectFields(map[string]any{
			n.JobsIDColumn: o.jobIDs[i+o.jobSeq], "w365_name": fmt.Sprintf("Job %d", i+o.jobSeq+1), "statecode": 0, "w365_jobstatus": 1,
		}, k.q.Get("$select"), n.JobsIDColumn)
	})
}

func (k *call) dvSettings() {
	n := k.c.names
	if !k.work365Installed(n.SettingsEntitySet) {
		return
	}
	row := map[string]any{"@odata.etag": `W/"1"`, n.SettingsIDColumn: k.t.org.settingsID, n.FreezeColumn: k.t.org.frozen, "w365_name": "Work 365 Settings",
		n.UpgradeStatusColumn: nullable(k.t.org.upgradeStatus), n.UpgradeVersionColumn: nullable(k.t.org.upgradeVersion)}
	k.writeDvRows(n.SettingsEntitySet, []map[string]any{selectFields(row, k.q.Get("$select"), n.SettingsIDColumn)})
}

func (k *call) dvPatchSettings() {
	n, t, o := k.c.names, k.t, k.t.org
	if !k.work365Installed(n.SettingsEntitySet) {
		return
	}
	if !strings.EqualFold(strings.Trim(k.p[0], "'"), o.settingsID) {
		k.dvNotFound(n.SettingsEntitySet, k.p[0])
		return
	}
	var body map[string]any
	if err := json.NewDecoder(k.r.Body).Decode(&body); err != nil {
		k.dvError(http.StatusBadRequest, "0x80040203", "The request body is not a JSON object.")
		return
	}
	for key, v := range body {
		switch key {
		case n.FreezeColumn:
			if _, ok := v.(bool); !ok {
				k.dvError(http.StatusBadRequest, "0x80040203", fmt.Sprintf("%s must be true or false.", key))
				return
			}
		case "w365_name":
		default:
			k.dvError(http.StatusBadRequest, "0x80060888", fmt.Sprintf("An undeclared property '%s' which only has property annotations in the payload but no property value was found in the payload.", key))
			return
		}
	}
	if v, ok := body[n.FreezeColumn]; ok {
		t.counters.FreezeWrites++
		if b := v.(bool); b != o.frozen {
			o.advanceJobs(k.now)
			o.frozen = b
			if b {
				t.counters.Freezes++
			} else {
				t.counters.Unfreezes++
			}
		}
	}
	k.w.WriteHeader(http.StatusNoContent)
}

// nullable is how Dataverse returns an empty text column: null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
