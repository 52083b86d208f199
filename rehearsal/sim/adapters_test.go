package sim_test

import (
	"context"
	"encoding/base64"
	"errors"
	"github.com/csp-ops/work365-upgrade/microsoft/permissions"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
	"github.com/csp-ops/work365-upgrade/microsoft/msgraph"
	"github.com/csp-ops/work365-upgrade/microsoft/partnercenter"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// adapters are the production adapters wired to a simulated cloud.
type adapters struct {
	graph activities.Graph
	dv    activities.Dataverse
	w365  activities.Work365
	pc    *partnercenter.Client
	// rec records every request the adapters send.
	rec *recorder
}

// recorder is a RoundTripper that remembers each request (method and URL as the adapter built
// it, before the simulator's transport rewrites the host).
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.String())
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// byManifest sorts the recorded requests by permissions-manifest entry: the operations called
// and the requests that have no entry.
func (r *recorder) byManifest(names work365.Names) (called map[string]int, unlisted []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	vars := map[string]string{permissions.VarJobsTable: names.JobsEntitySet, permissions.VarSettingsTable: names.SettingsEntitySet}
	called = map[string]int{}
	for _, line := range r.reqs {
		method, raw, _ := strings.Cut(line, " ")
		u, err := url.Parse(raw)
		if err != nil {
			unlisted = append(unlisted, line)
			continue
		}
		e, ok := permissions.LookupURL(method, u, vars)
		if !ok {
			unlisted = append(unlisted, method+" "+u.Redacted())
			continue
		}
		called[e.Operation]++
	}
	return called, unlisted
}

func wire(t *testing.T, cloud *sim.Cloud) adapters {
	t.Helper()
	app := cloud.Scenario().Orchestrator
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(app.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := cloud.HTTPClient()
	rec := &recorder{base: hc.Transport}
	hc.Transport = rec
	tp, err := msauth.New(msauth.Config{ClientID: app.ClientID, SecretFile: secret}, msauth.WithHTTPClient(hc), msauth.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	// As production wires it: the organisation's tenant comes from Dataverse's bearer challenge.
	dv := dataverse.New(tp.Token, dataverse.DiscoverTenants(hc), msapi.WithHTTPClient(hc))
	return adapters{
		graph: msgraph.New(tp.Token, msapi.WithHTTPClient(hc)),
		dv:    dv,
		w365:  work365.NewStore(dv, cloud.Names()),
		pc:    partnercenter.New(tp.Token, msapi.WithHTTPClient(hc)),
		rec:   rec,
	}
}

// TestProductionAdaptersAgainstSim runs every adapter call of the activity ports against the
// example scenario: the simulator and the adapters agree on the wire.
func TestProductionAdaptersAgainstSim(t *testing.T) {
	scn, err := sim.LoadScenario("../../examples/sim-scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	clock := scn.NewClock()
	cloud := sim.New(scn, sim.Options{Clock: clock, NoFaults: true})
	defer cloud.Close()
	a := wire(t, cloud)
	ctx := context.Background()
	tn := scn.Tenants[0]
	id, org := tn.TenantID, tn.OrgURL
	names := cloud.Names()

	// Graph.
	u, err := a.graph.GetUser(ctx, id, tn.Admin.UPN)
	if err != nil || u.ID != tn.Admin.ObjectID || len(u.AssignedLicenses) == 0 {
		t.Fatalf("GetUser: %+v %v", u, err)
	}
	ra, err := a.graph.DirectoryRoleStatus(ctx, id, u.ID, msgraph.GlobalAdministratorRoleTemplateID)
	if err != nil || !ra.Direct {
		t.Fatalf("DirectoryRoleStatus: %+v %v", ra, err)
	}
	if el, err := a.graph.(*msgraph.Client).ListRoleEligibilities(ctx, id, u.ID, msgraph.GlobalAdministratorRoleTemplateID); err != nil || len(el) != 0 {
		t.Fatalf("ListRoleEligibilities: %v %v", el, err)
	}
	if gs, err := a.graph.ListGroupMemberships(ctx, id, u.ID); err != nil || len(gs) != 0 {
		t.Fatalf("ListGroupMemberships: %v %v", gs, err)
	}
	skus, err := a.graph.ListSubscribedSkus(ctx, id)
	if err != nil || len(skus) != 3 {
		t.Fatalf("ListSubscribedSkus: %v %v", skus, err)
	}
	mfa, err := a.graph.GetMFARegistration(ctx, id, u.ID)
	if err != nil || mfa.Registered {
		t.Fatalf("GetMFARegistration: %+v %v", mfa, err)
	}
	other := scn.Tenants[1] // no P1: the adapter falls back to authentication methods
	mfa, err = a.graph.GetMFARegistration(ctx, other.TenantID, other.Admin.ObjectID)
	if err != nil || !mfa.Registered || mfa.Source != "authenticationMethods" {
		t.Fatalf("GetMFARegistration fallback: %+v %v", mfa, err)
	}
	sd, err := a.graph.GetSecurityDefaults(ctx, id)
	if err != nil || sd.IsEnabled {
		t.Fatalf("GetSecurityDefaults: %+v %v", sd, err)
	}
	if _, err := a.graph.ListConditionalAccessPolicies(ctx, id); err != nil {
		t.Fatal(err)
	}
	sp, err := a.graph.FindServicePrincipal(ctx, id, names.AppID)
	if err != nil || sp != nil {
		t.Fatalf("FindServicePrincipal before consent: %v %v", sp, err)
	}
	if err := cloud.GrantAdminConsent(id); err != nil {
		t.Fatal(err)
	}
	sp, err = a.graph.FindServicePrincipal(ctx, id, names.AppID)
	if err != nil || sp == nil {
		t.Fatalf("FindServicePrincipal after consent: %v %v", sp, err)
	}
	grants, err := a.graph.ListOAuth2PermissionGrants(ctx, id, sp.ID)
	if err != nil || len(grants) == 0 || grants[0].ConsentType != "AllPrincipals" {
		t.Fatalf("grants: %v %v", grants, err)
	}
	if _, err := a.graph.ListAppRoleAssignments(ctx, id, sp.ID); err != nil {
		t.Fatal(err)
	}

	// Work 365 tables.
	n, err := a.w365.CountPendingJobs(ctx, org)
	if err != nil || n != 12 {
		t.Fatalf("CountPendingJobs: %d %v", n, err)
	}
	if err := a.w365.SetFrozen(ctx, org, true); err != nil {
		t.Fatal(err)
	}
	if f, err := a.w365.Frozen(ctx, org); err != nil || !f {
		t.Fatalf("Frozen: %v %v", f, err)
	}

	// Dataverse.
	who, err := a.dv.WhoAmI(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	// The preflight's read of the orchestrator's own application user and its role.
	if me, err := a.dv.(activities.ApplicationUsers).GetSystemUser(ctx, org, who.UserID); err != nil || me == nil || me.AccessMode != 4 || !me.HasRoleTemplate(dataverse.SystemAdministratorRoleTemplateID) {
		t.Fatalf("GetSystemUser(application user): %+v %v", me, err)
	}
	sol, err := a.dv.GetSolution(ctx, org, names.SolutionUniqueName)
	if err != nil || sol == nil || sol.Version != "2.1.0.3" {
		t.Fatalf("GetSolution: %+v %v", sol, err)
	}
	if s, err := a.dv.GetSolution(ctx, org, names.HoldingSolutionName()); err != nil || s != nil {
		t.Fatalf("holding before import: %+v %v", s, err)
	}
	un, err := a.dv.UninstallSolutionAsync(ctx, org, names.PortalSolutionUniqueName)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Minute)
	if op, err := a.dv.GetAsyncOperation(ctx, org, un.AsyncOperationID); err != nil || !op.Succeeded() {
		t.Fatalf("uninstall: %+v %v", op, err)
	}
	jobID := "bbbbbbbb-0000-4000-8000-000000000001"
	res, err := a.dv.ImportSolutionAsync(ctx, org, dataverse.ImportSolutionAsyncRequest{
		CustomizationFile: base64.StdEncoding.EncodeToString(sim.SolutionPackage(names.SolutionUniqueName, "2.5.0.1")),
		PublishWorkflows:  true, ImportJobID: jobID, HoldingSolution: true,
	})
	if err != nil || res.AsyncOperationID == "" {
		t.Fatalf("ImportSolutionAsync: %+v %v", res, err)
	}
	if ops, err := a.dv.ListUnfinishedAsyncOperations(ctx, org, who.UserID); err != nil || len(ops) == 0 {
		t.Fatalf("ListUnfinishedAsyncOperations: %v %v", ops, err)
	}
	_, err = a.dv.ImportSolutionAsync(ctx, org, dataverse.ImportSolutionAsyncRequest{CustomizationFile: "eA==", ImportJobID: jobID, HoldingSolution: true})
	var me *msapi.Error
	if !errors.As(err, &me) || me.Status != 400 {
		t.Fatalf("second import with the same ImportJobId: %v", err)
	}
	clock.Advance(10 * time.Minute)
	job, err := a.dv.GetImportJob(ctx, org, jobID)
	if err != nil || job == nil || job.Progress < 40 || job.CompletedOn != nil {
		t.Fatalf("GetImportJob: %+v %v", job, err)
	}
	if j, err := a.dv.GetImportJob(ctx, org, "bbbbbbbb-0000-4000-8000-000000000009"); err != nil || j != nil {
		t.Fatalf("unknown import job: %+v %v", j, err)
	}
	clock.Advance(11 * time.Minute) // the operation queued a few seconds before it started
	op, err := a.dv.GetAsyncOperation(ctx, org, res.AsyncOperationID)
	if err != nil || !op.Succeeded() {
		t.Fatalf("import: %+v %v", op, err)
	}
	if s, err := a.dv.GetSolution(ctx, org, names.HoldingSolutionName()); err != nil || s == nil || s.Version != "2.5.0.1" {
		t.Fatalf("staged: %+v %v", s, err)
	}
	if log, err := a.dv.RetrieveFormattedImportJobResults(ctx, org, jobID); err != nil || log == "" {
		t.Fatalf("formatted results: %q %v", log, err)
	}
	su, err := a.dv.FindSystemUser(ctx, org, tn.Admin.UPN)
	if err != nil || su == nil || !su.HasRoleTemplate(dataverse.SystemAdministratorRoleTemplateID) || !su.IsLicensed {
		t.Fatalf("FindSystemUser: %+v %v", su, err)
	}
	if err := cloud.AssignRole(id, tn.ServiceAccount.UPN, sim.RoleWork365Service); err != nil {
		t.Fatal(err)
	}
	svc, err := a.dv.FindSystemUser(ctx, org, tn.ServiceAccount.UPN)
	if err != nil || svc == nil || !svc.HasRoleNamed(names.ServiceRoleName) {
		t.Fatalf("service account: %+v %v", svc, err)
	}
	if s, err := a.dv.FindSystemUser(ctx, org, "nobody@contoso.onmicrosoft.com"); err != nil || s != nil {
		t.Fatalf("unknown user: %+v %v", s, err)
	}

	// Partner Center refuses app-only tokens; the re-consent shows as Work 365's delegated
	// Partner Center grant in the partner tenant.
	if _, err := a.pc.GetOrganizationProfile(ctx, id); !errors.As(err, &me) || !me.Unauthorized() {
		t.Fatalf("app-only token: %v", err)
	}
	acts := &activities.Activities{Graph: a.graph, Names: names}
	if p, err := acts.ProbePartnerCenter(ctx, id); err != nil || p.Verified {
		t.Fatalf("before reconsent: %+v %v", p, err)
	}
	if err := cloud.EnableSecurityDefaults(id); err != nil {
		t.Fatal(err)
	}
	if err := cloud.ReconsentPartnerCenter(id); err != nil {
		t.Fatal(err)
	}
	if p, err := acts.ProbePartnerCenter(ctx, id); err != nil || !p.Verified {
		t.Fatalf("after reconsent: %+v %v", p, err)
	}
	if _, err := a.pc.GetOrganizationProfile(ctx, id); !errors.As(err, &me) || !me.Unauthorized() {
		t.Fatalf("app-only token after reconsent: %v", err)
	}

	k := cloud.TenantCounters(id)
	if k.Imports != 1 || k.ImportsRefused != 1 || k.Uninstalls != 1 || k.Freezes != 1 {
		t.Fatalf("counters: %+v", k)
	}

	// Every request the adapters sent has a permissions-manifest entry, and every entry is
	// exercised here (MSAL's instance discovery is off in rehearsals).
	called, unlisted := a.rec.byManifest(names)
	for _, u := range unlisted {
		t.Errorf("the adapters sent %s, which has no entry in the permissions manifest (microsoft/permissions)", u)
	}
	for _, e := range permissions.Manifest() {
		if called[e.Operation] == 0 && e.Operation != permissions.OpLoginInstanceDiscovery {
			t.Errorf("manifest entry %s (%s %s) was not exercised by the adapters", e.Operation, e.Method, e.Path)
		}
	}
}

// TestRecorderFlagsCallsWithoutManifestEntry shows the manifest check can fail: a request the
// manifest does not list is reported.
func TestRecorderFlagsCallsWithoutManifestEntry(t *testing.T) {
	rec := &recorder{reqs: []string{"GET https://graph.microsoft.com/v1.0/users/x", "GET https://graph.microsoft.com/v1.0/groups"}}
	called, unlisted := rec.byManifest(work365.DefaultNames())
	if len(unlisted) != 1 || !strings.HasSuffix(unlisted[0], "/v1.0/groups") || called[permissions.OpGraphGetUser] != 1 || len(called) != 1 {
		t.Fatalf("unlisted=%v called=%v", unlisted, called)
	}
}
