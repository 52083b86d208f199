package sim_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

// A cloud saved while an import runs and reopened from the file goes on as if it had never
// stopped: the import finishes once, counters and consents carry over, and nothing is
// imported twice when the activity retries against the restored cloud.
func TestSavedCloudReopensWhereItLeftOff(t *testing.T) {
	scn, err := sim.LoadScenario("../../examples/sim-scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	clock := scn.NewClock()
	// The same address before and after, as a restarted rehearsal stack has.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cloud := sim.New(scn, sim.Options{Clock: clock, NoFaults: true, Addr: addr})
	a := wire(t, cloud)
	names := cloud.Names()
	tn := scn.Tenants[0]
	ctx := context.Background()
	acts := &activities.Activities{Dataverse: a.dv, Packages: packages{names.SolutionUniqueName, "2.5.0.1"}, Names: names}
	in := activities.ImportInput{Tenant: activities.TenantRef{TenantID: tn.TenantID, OrgURL: tn.OrgURL},
		PackageRef: "work365.zip", ImportJobID: "cccccccc-0000-4000-8000-000000000021", Holding: true, TargetVersion: "2.5.0.1"}
	started, err := acts.StartImport(ctx, in)
	if err != nil || started.AsyncOperationID == "" {
		t.Fatalf("start: %+v %v", started, err)
	}
	if err := cloud.RegisterMFA(tn.TenantID, tn.Admin.UPN); err != nil {
		t.Fatal(err)
	}
	before, _ := cloud.State(tn.TenantID)
	if before.RunningOperation == "" {
		t.Fatal("the import must still run when the cloud is saved")
	}
	path := filepath.Join(t.TempDir(), sim.StateFileName)
	if err := cloud.Save(path); err != nil {
		t.Fatal(err)
	}
	countersBefore := cloud.Counters()
	cloud.Close()

	again, err := sim.Open(scn, sim.Options{Clock: clock, NoFaults: true, Addr: addr}, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	after, _ := again.State(tn.TenantID)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("restored state differs:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := again.Counters(); !reflect.DeepEqual(countersBefore.Tenants, got.Tenants) {
		t.Fatalf("counters differ after the restore:\nbefore %+v\nafter  %+v", countersBefore.Tenants, got.Tenants)
	}
	// The worker keeps its cached tokens across the restart: they must still be accepted.
	again.Start()
	if st, err := acts.StartImport(ctx, in); err != nil || st.Already == "" {
		t.Fatalf("a retried start against the restored cloud must find the running import: %+v %v", st, err)
	}
	clock.Advance(2 * time.Hour)
	done, _ := again.State(tn.TenantID)
	if done.StagedVersion != "2.5.0.1" || done.RunningOperation != "" {
		t.Fatalf("the import saved while running must finish after the restore: %+v", done)
	}
	k := again.TenantCounters(tn.TenantID)
	if k.Imports != 1 || k.ImportsSucceeded != 1 {
		t.Fatalf("imports %d, succeeded %d: want one", k.Imports, k.ImportsSucceeded)
	}
	if u := findUser(done, tn.Admin.UPN); u == nil || !u.MFARegistered {
		t.Fatalf("the admin's MFA registration must survive: %+v", u)
	}
}

func TestOpenRefusesAnotherScenariosState(t *testing.T) {
	path := filepath.Join(t.TempDir(), sim.StateFileName)
	if c, err := sim.Open(sim.Generate(3, 1), sim.Options{}, path); err != nil {
		t.Fatal(err)
	} else if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Open(sim.Generate(3, 2), sim.Options{}, path); err == nil || !strings.Contains(err.Error(), "another scenario") {
		t.Fatalf("want a refusal naming another scenario, got %v", err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Open(sim.Generate(3, 1), sim.Options{}, path); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("want a refusal saying what to do, got %v", err)
	}
}

func findUser(s sim.TenantState, upn string) *sim.UserState {
	for i := range s.Users {
		if strings.EqualFold(s.Users[i].UPN, upn) {
			return &s.Users[i]
		}
	}
	return nil
}
