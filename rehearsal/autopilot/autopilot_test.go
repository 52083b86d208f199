package autopilot

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/workflows"
)

const (
	tenantA  = "6d2b1f0e-8a43-4c5e-9b7a-0f1e2d3c4b5a"
	partnerX = "7e3c2a1f-9b54-4d6f-8c8b-1a2b3c4d5e6f"
	orgA     = "https://contoso.crm.dynamics.com"
	adminUPN = "admin@contoso.onmicrosoft.com"
	svcUPN   = "svc@contoso.onmicrosoft.com"
	wfID     = "upgrade/contoso"
)

type confirmation struct {
	workflowID string
	req        workflows.ConfirmRequest
}

type fakeConfirmer struct {
	mu   sync.Mutex
	got  []confirmation
	fail int // fail this many calls first
}

func (f *fakeConfirmer) ConfirmTask(_ context.Context, workflowID string, req workflows.ConfirmRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("workflow busy")
	}
	f.got = append(f.got, confirmation{workflowID, req})
	return nil
}

func (f *fakeConfirmer) all() []confirmation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]confirmation(nil), f.got...)
}

func scenario() *sim.Scenario {
	return &sim.Scenario{
		Seed: 1,
		Autopilot: sim.AutopilotConfig{
			Delays:    map[string][]time.Duration{"begin-upgrade": {20 * time.Minute, 4 * time.Minute}, "get-consent": {time.Minute}},
			Decisions: map[string][]string{"drain-deadline": {"proceed"}},
		},
		Tenants: []sim.Tenant{{
			TenantID: tenantA, Name: "Contoso", OrgURL: orgA, TimeZone: "Europe/London", Work365Version: "2.1.0.3", PartnerType: "direct",
			Admin:          sim.User{UPN: adminUPN, ObjectID: "11111111-1111-4111-8111-111111111111", GlobalAdmin: true, SystemAdministrator: true},
			ServiceAccount: sim.User{UPN: svcUPN, ObjectID: "22222222-2222-4222-8222-222222222222"},
			PartnerCenters: []sim.PartnerConnection{
				{Name: "contoso-pc", TenantID: tenantA, Primary: true},
				{Name: "contoso-eu", TenantID: partnerX},
			},
		}},
	}
}

type rig struct {
	t     *testing.T
	cloud *sim.Cloud
	clock *sim.FakeClock
	conf  *fakeConfirmer
	ap    *Autopilot
	seq   int
}

func newRig(t *testing.T, sleep func(context.Context, time.Duration) error) *rig {
	s := scenario()
	clock := s.NewClock()
	cloud := sim.New(s, sim.Options{Clock: clock})
	t.Cleanup(cloud.Close)
	conf := &fakeConfirmer{}
	if sleep == nil {
		sleep = func(_ context.Context, d time.Duration) error { clock.Advance(d); return nil }
	}
	ap := New(cloud, conf, Options{Sleep: sleep, ConfirmBackoff: time.Millisecond, Logf: t.Logf})
	t.Cleanup(ap.Close)
	return &rig{t: t, cloud: cloud, clock: clock, conf: conf, ap: ap}
}

// open notifies a task-opened and waits for the autopilot to finish with it.
func (r *rig) open(kind workflows.TaskKind, aud workflows.Audience, title string, options ...string) activities.Notification {
	r.t.Helper()
	r.seq++
	n := activities.Notification{
		Key: fmt.Sprintf("%s/%s-%d/opened", wfID, kind, r.seq), Event: activities.EventTaskOpened, WorkflowID: wfID,
		TenantID: tenantA, TenantName: "Contoso", TaskID: fmt.Sprintf("%s-%d", kind, r.seq), TaskKind: string(kind),
		Audience: string(aud), Title: title, Options: options,
	}
	r.notify(n)
	return n
}

func (r *rig) notify(n activities.Notification) {
	r.t.Helper()
	if err := r.ap.Notify(context.Background(), n); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.ap.Wait(ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) lastEntry() Entry {
	log := r.ap.Log()
	return log[len(log)-1]
}

// stage imports Work 365 2.5 as a holding solution through the Dataverse API.
func (r *rig) stage() {
	r.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"CustomizationFile": base64.StdEncoding.EncodeToString(sim.SolutionPackage("Work365", "2.5.0.1")),
		"ImportJobId":       "aaaaaaaa-0000-4000-8000-000000000001", "HoldingSolution": true,
	})
	req, _ := http.NewRequest("POST", orgA+"/api/data/v9.2/ImportSolutionAsync", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.cloud.IssueToken(tenantA, orgA, time.Hour))
	resp, err := r.cloud.HTTPClient().Do(req)
	if err != nil || resp.StatusCode != 200 {
		r.t.Fatalf("import: %v %v", resp, err)
	}
	resp.Body.Close()
	r.clock.Advance(time.Hour)
}

func TestLinkRoundsExpiryAndUpgrade(t *testing.T) {
	r := newRig(t, nil)
	// Prerequisite fixes the workflow would ask for.
	r.open(workflows.TaskFixPrerequisite, workflows.GlobalAdmin, "Fix prerequisite: "+adminUPN+" has a Dynamics 365 licence")
	r.open(workflows.TaskFixPrerequisite, workflows.GlobalAdmin, "Fix prerequisite: "+svcUPN+" has a Dynamics 365 licence")
	r.stage()
	r.open(workflows.TaskAssignServiceRole, workflows.GlobalAdmin, "Assign the 'Work 365 Service' role to "+svcUPN)

	// Round 1: the service account takes 20 minutes; the 15-minute link expires.
	r.open(workflows.TaskGetConsent, workflows.GlobalAdmin, "Get Consent and copy the upgrade link (round 1)")
	bu := r.open(workflows.TaskBeginUpgrade, workflows.ServiceAccount, "Open the upgrade link and click Begin Upgrade")
	if e := r.lastEntry(); e.Confirmed || !strings.Contains(e.Error, "expired") || e.Delay != 20*time.Minute {
		t.Fatalf("round 1 begin-upgrade: %+v", e)
	}
	r.notify(bu) // the same notification again (same key) does nothing
	// Round 2: 4 minutes, in time.
	r.open(workflows.TaskGetConsent, workflows.GlobalAdmin, "Get Consent and copy the upgrade link (round 2)")
	r.open(workflows.TaskBeginUpgrade, workflows.ServiceAccount, "Open the upgrade link and click Begin Upgrade")
	if e := r.lastEntry(); !e.Confirmed || e.Round != 1 || e.Delay != 4*time.Minute {
		t.Fatalf("round 2 begin-upgrade: %+v", e)
	}
	r.clock.Advance(10 * time.Minute)
	st, _ := r.cloud.State(tenantA)
	if st.Work365Version != "2.5.0.1" || st.StagedVersion != "" {
		t.Fatalf("state: %+v", st)
	}
	k := r.cloud.TenantCounters(tenantA)
	if k.LinksIssued != 2 || k.BeginUpgradeAttempts != 2 || k.BeginUpgradeRefusals != 1 || k.Promotions != 1 {
		t.Fatalf("counters: %+v", k)
	}
	got := r.conf.all()
	if len(got) != 6 { // 2 fixes, role, 2 consents, 1 begin-upgrade
		t.Fatalf("confirmations: %+v", got)
	}
	for _, c := range got {
		if c.workflowID != wfID || c.req.By == "" || !strings.HasPrefix(c.req.By, "autopilot:") {
			t.Fatalf("confirmation: %+v", c)
		}
		if strings.HasPrefix(c.req.TaskID, "begin-upgrade") && (c.req.As != workflows.ServiceAccount || c.req.By != "autopilot:"+svcUPN) {
			t.Fatalf("begin-upgrade confirmation: %+v", c)
		}
		if strings.HasPrefix(c.req.TaskID, "get-consent") && c.req.As != workflows.GlobalAdmin {
			t.Fatalf("get-consent confirmation: %+v", c)
		}
		for _, l := range r.ap.links {
			if strings.Contains(c.req.Note, l) || strings.Contains(c.req.Decision, l) {
				t.Fatal("a link token reached the workflow")
			}
		}
	}
	if s, _ := r.cloud.State(tenantA); !s.Users[0].DynamicsLicence || !s.Users[1].DynamicsLicence {
		t.Fatalf("licences: %+v", s.Users)
	}
}

func TestDecisions(t *testing.T) {
	r := newRig(t, nil)
	r.open(workflows.TaskDrainDeadline, workflows.Operator, "Work 365 jobs still pending", workflows.DecisionKeepWaiting, workflows.DecisionProceed, workflows.DecisionAbort)
	r.open(workflows.TaskDrainDeadline, workflows.Operator, "Work 365 jobs still pending", workflows.DecisionKeepWaiting, workflows.DecisionProceed, workflows.DecisionAbort)
	r.open(workflows.TaskLinkEscalation, workflows.Operator, "The upgrade link expired 3 times", workflows.DecisionRetry, workflows.DecisionAbort)
	r.open(workflows.TaskCompletionDeadline, workflows.Operator, "Upgrade not complete", workflows.DecisionKeepWaiting, workflows.DecisionAbort)
	got := r.conf.all()
	want := []string{"proceed", "proceed", "retry", "keep-waiting"}
	for i, c := range got {
		if c.req.Decision != want[i] || c.req.As != workflows.Operator || c.req.By != "autopilot:operator" {
			t.Fatalf("decision %d: %+v", i, c.req)
		}
	}
}

func TestPartnerTasks(t *testing.T) {
	r := newRig(t, nil)
	n := activities.Notification{
		Key: "pc/1", Event: activities.EventTaskOpened, WorkflowID: wfID + "/partner-center/contoso-eu", TenantID: tenantA,
		TaskID: "pc-partner-mfa-policies-1", TaskKind: string(workflows.TaskPartnerMFAPolicies), Audience: string(workflows.PartnerAdmin),
		Title: "Enable MFA policies in tenant " + partnerX,
	}
	r.notify(n)
	n.Key, n.TaskID, n.TaskKind, n.Title = "pc/2", "pc-partner-reconsent-2", string(workflows.TaskPartnerReconsent), "Re-consent Partner Center connection contoso-eu"
	r.notify(n)
	s, _ := r.cloud.State(partnerX)
	if !s.SecurityDefaults || s.PartnerCenterConsented == nil || !*s.PartnerCenterConsented {
		t.Fatalf("partner tenant: %+v", s)
	}
	got := r.conf.all()
	if len(got) != 2 || got[1].workflowID != wfID+"/partner-center/contoso-eu" || got[1].req.As != workflows.PartnerAdmin {
		t.Fatalf("confirmations: %+v", got)
	}
}

func TestClosedTaskCancelsTheWaitingPerson(t *testing.T) {
	r := newRig(t, func(ctx context.Context, d time.Duration) error { <-ctx.Done(); return ctx.Err() })
	n := activities.Notification{Key: "k1", Event: activities.EventTaskOpened, WorkflowID: wfID, TenantID: tenantA,
		TaskID: "register-mfa-global-admin-1", TaskKind: string(workflows.TaskRegisterMFAAdmin), Audience: string(workflows.GlobalAdmin)}
	if err := r.ap.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	r.notify(activities.Notification{Key: "k2", Event: activities.EventTaskClosed, WorkflowID: wfID, TenantID: tenantA, TaskID: n.TaskID})
	if e := r.lastEntry(); !e.Cancelled || e.Confirmed {
		t.Fatalf("entry: %+v", e)
	}
	if len(r.conf.all()) != 0 {
		t.Fatal("a closed task was confirmed")
	}
	if s, _ := r.cloud.State(tenantA); s.Users[0].MFARegistered {
		t.Fatal("acted on a closed task")
	}
	r.ap.Close()
	if err := r.ap.Notify(context.Background(), activities.Notification{Key: "k3", Event: activities.EventTaskOpened}); err == nil {
		t.Fatal("Notify after Close accepted")
	}
}

func TestConfirmationRetriedAndIgnoredKinds(t *testing.T) {
	r := newRig(t, nil)
	r.conf.fail = 2
	r.open(workflows.TaskRegisterMFAAdmin, workflows.GlobalAdmin, "Register MFA for the Global Administrator")
	if e := r.lastEntry(); !e.Confirmed {
		t.Fatalf("entry: %+v", e)
	}
	r.cloud.Scenario() // scenario is a copy: ignoring is configured per scenario
	s := scenario()
	s.Autopilot.Ignore = []string{string(workflows.TaskGetConsent)}
	clock := s.NewClock()
	cloud := sim.New(s, sim.Options{Clock: clock})
	defer cloud.Close()
	conf := &fakeConfirmer{}
	ap := New(cloud, conf, Options{Sleep: func(context.Context, time.Duration) error { return nil }})
	defer ap.Close()
	_ = ap.Notify(context.Background(), activities.Notification{Key: "x", Event: activities.EventTaskOpened, WorkflowID: wfID, TenantID: tenantA, TaskID: "get-consent-1", TaskKind: string(workflows.TaskGetConsent), Audience: string(workflows.GlobalAdmin)})
	_ = ap.Wait(context.Background())
	if len(conf.all()) != 0 || cloud.TenantCounters(tenantA).LinksIssued != 0 {
		t.Fatal("an ignored task was acted on")
	}
}

func TestRefusedActionRetriedOnReminder(t *testing.T) {
	r := newRig(t, nil)
	// The role does not exist before Work 365 2.5 is imported: refused, not confirmed.
	n := r.open(workflows.TaskAssignServiceRole, workflows.GlobalAdmin, "Assign the 'Work 365 Service' role")
	if e := r.lastEntry(); e.Confirmed || e.Error == "" {
		t.Fatalf("first try: %+v", e)
	}
	r.stage()
	n.Key, n.Event, n.Reminder = n.Key+"/reminder-1", activities.EventTaskReminder, 1
	r.notify(n)
	if e := r.lastEntry(); !e.Confirmed || e.Delay != 0 {
		t.Fatalf("after the reminder: %+v", e)
	}
	n.Key = n.Key + "/reminder-2"
	r.notify(n) // confirmed already: nothing more
	if got := r.conf.all(); len(got) != 1 {
		t.Fatalf("confirmations: %+v", got)
	}
}

// After SwapCloud (a restarted rehearsal stack) people act in the new cloud, and a person
// about to act waits for the swap instead of acting in the cloud being saved.
func TestSwapCloudActsInTheNewCloud(t *testing.T) {
	release := make(chan struct{})
	r := newRig(t, func(ctx context.Context, _ time.Duration) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	s := scenario()
	fresh := sim.New(s, sim.Options{Clock: r.clock})
	t.Cleanup(fresh.Close)
	n := activities.Notification{Key: wfID + "/mfa/opened", Event: activities.EventTaskOpened, WorkflowID: wfID, TenantID: tenantA,
		TenantName: "Contoso", TaskID: "register-mfa-global-admin-1", TaskKind: string(workflows.TaskRegisterMFAAdmin), Audience: string(workflows.GlobalAdmin)}
	if err := r.ap.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	swapped := make(chan struct{})
	go func() {
		_ = r.ap.SwapCloud(func(old *sim.Cloud) (*sim.Cloud, error) {
			if old != r.cloud {
				t.Errorf("SwapCloud must hand over the cloud in use")
			}
			close(release) // the person wakes while the swap holds the cloud
			time.Sleep(50 * time.Millisecond)
			return fresh, nil
		})
		close(swapped)
	}()
	<-swapped
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.ap.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mfa := func(c *sim.Cloud) bool {
		st, _ := c.State(tenantA)
		for _, u := range st.Users {
			if u.UPN == adminUPN {
				return u.MFARegistered
			}
		}
		return false
	}
	if !mfa(fresh) || mfa(r.cloud) {
		t.Fatalf("the person must act in the new cloud only: new %v, old %v", mfa(fresh), mfa(r.cloud))
	}
	if e := r.lastEntry(); !e.Confirmed {
		t.Fatalf("the task must be confirmed: %+v", e)
	}
}
