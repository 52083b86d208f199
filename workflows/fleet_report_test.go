package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// randomGUID is a GUID as Temporal and Entra ID make them (random, so it compresses as
// little as real ones).
func randomGUID(rnd *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rnd.Uint32(), rnd.Uint32()&0xffff, rnd.Uint32()&0xffff, rnd.Uint32()&0xffff, rnd.Uint64()&0xffffffffffff)
}

// maxCarriedInput bounds every continue-as-new input of the 5,000-tenant fleet below: the
// plan alone is ≈ 321 KiB encoded; what the fleet carries besides (the running tenants' full
// records, about a byte per reported tenant, the summary's errors of reported failed tenants
// and the fleet's events) must stay within the rest, far below the 512 KB warning size.
const maxCarriedInput = 400 * 1024

// TestFleet5000ReportsAsItGoes runs 5,000 realistic tenants (random GUIDs and run IDs, a
// tenth failed with long errors) through continue-as-new with a report store on disk: each
// run writes the report lines of the tenants that finished before it continues as new, so the
// carried state keeps about a byte of each and every input stays about the plan plus the
// running tenants; the final report, joined from every part, lists all 5,000.
func TestFleet5000ReportsAsItGoes(t *testing.T) {
	fx := newFleetFixture(t)
	fx.patient = true
	dir := t.TempDir()
	fx.store = activities.DirReports{Dir: dir}
	fx.newEnv()
	rnd := rand.New(rand.NewSource(14))
	waves := [][]spec.Tenant{realisticTenants(rnd, 0, 100), realisticTenants(rnd, 1, 4900)}
	errs := map[string]string{} // workflow ID → its error
	for w := range waves {
		for i, tn := range waves[w] {
			if i%10 != 3 {
				continue
			}
			// A long error, as Dataverse's import failures are: a correlation ID, the
			// tenant's organisation and the failing components.
			var b strings.Builder
			fmt.Fprintf(&b, "import of Work365 2.5.0.1 into %s failed (correlation %s, job %s): ", tn.OrgURL, randomGUID(rnd), randomGUID(rnd))
			for range 12 {
				fmt.Fprintf(&b, "component %s (entity w365_%x) failed to import: the dependent component %s does not exist; ", randomGUID(rnd), rnd.Uint32(), randomGUID(rnd))
			}
			fx.plans[tn.TenantID] = childPlan{outcome: OutcomeFailed, err: b.String()}
			errs[tn.UpgradeWorkflowID()] = b.String()
		}
	}
	in := fx.inputOf([]WaveSpec{{Name: "canary", Concurrency: 50}, {Name: "bulk", Concurrency: 400}}, waves)
	planOnly := payloadSize(t, FleetInput{Name: in.Name, Waves: in.Waves, Plan: in.Plan})
	in.ContinueAfterEvents = 4000
	realRun := map[string]string{} // workflow ID → a random run ID, as a server's, for the test environment's
	largest, earlyParts := 0, 0
	runs := fx.eachRun(in, func(runs int, in *FleetInput) (inflight []string) {
		// A server's run IDs are random GUIDs and its times have nanoseconds: give the
		// carried records those, so the sizes measured are a server's.
		st, before := carried(t, *in)
		var at []int // the positions of the records carried in full
		for pos := range before {
			if st.Reported == "" || st.Reported[pos] == '.' {
				at = append(at, pos)
			}
		}
		require.Len(t, at, len(st.Tenants))
		fx.mu.Lock()
		for i := range st.Tenants {
			tn := &st.Tenants[i]
			id := before[at[i]].WorkflowID
			if tn.RunID != "" && tn.RunID == fx.runIDs[id] {
				realRun[id] = randomGUID(rnd)
				tn.RunID = realRun[id]
			}
			if !tn.Since.IsZero() && tn.Since.Nanosecond() == 0 {
				tn.Since = tn.Since.Add(time.Duration(rnd.Int63n(int64(time.Second))))
			}
		}
		fx.mu.Unlock()
		carry, err := pack(st)
		require.NoError(t, err)
		in.Carry = carry
		size := payloadSize(t, *in)
		_, tenants := carried(t, *in)
		started, running, reported := 0, 0, 0
		for _, tn := range tenants {
			started += min(tn.Starts, 1)
			if tn.Reported {
				reported++
			}
			if tn.State == TenantRunning {
				running++
				inflight = append(inflight, tn.WorkflowID)
			}
		}
		// What each piece adds to the packed carry (gzip bytes, before base64's third).
		without := func(drop func(*fleetCarry)) int {
			c := st
			drop(&c)
			b, err := pack(c)
			require.NoError(t, err)
			return len(carry) - len(b)
		}
		t.Logf("run %d continues as new: %d started, %d running, %d reported in %d parts, %d events: input %d KiB (plan alone %d KiB, +%d B; packed carry %d B: records in full %d, events %d, summary errors %d)",
			runs, started, running, reported, st.ReportParts, len(st.Events), size/1024, planOnly/1024, size-planOnly, len(carry),
			without(func(c *fleetCarry) { c.Tenants = nil }), without(func(c *fleetCarry) { c.Events = nil }), without(func(c *fleetCarry) { c.ReportedErrors = nil }))
		require.LessOrEqual(t, size, maxCarriedInput, "run %d: a continue-as-new input past its bound", runs)
		// Beyond the plan: the running tenants' records (≈ 100 B each with a run ID and a
		// time), a byte per other tenant, and the events and summary errors (≈ 40 KiB).
		require.Less(t, size-planOnly, 100*running+5000+40*1024, "run %d: the carried state grows with the tenants that finished", runs)
		largest = max(largest, size)
		earlyParts = st.ReportParts
		return inflight
	})
	r := fx.result()
	require.Greater(t, runs, 4, "continued as new")
	require.Positive(t, earlyParts, "parts were written while the fleet ran")
	require.Equal(t, 5000, r.Total)
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: 4500, OutcomeFailed: 500}, r.Outcomes)
	require.Len(t, r.Failed, MaxResultFailed)
	require.Equal(t, 500-MaxResultFailed, r.FailedOmitted)
	for _, tn := range r.Failed {
		require.Equal(t, cut(errs[tn.WorkflowID], maxResultError), tn.Error, "the summary keeps the failed tenants' errors: %s", tn.Name)
	}
	fx.mu.Lock()
	inputs := slices.Clone(fx.reportInputs)
	fx.mu.Unlock()
	require.Less(t, slices.Max(inputs), maxPayload, "every report input stays under 512 KB")
	t.Logf("5,000 tenants, %d runs: plan input %d KiB, largest continue-as-new input %d KiB (server-like run IDs and times), result %d KiB; report: %d parts written while the fleet ran, %d activity inputs, the largest %d KiB",
		runs, planOnly/1024, largest/1024, payloadSize(t, r)/1024, earlyParts, len(inputs), slices.Max(inputs)/1024)

	// The final report on disk, joined from every part: each tenant once, with the run ID
	// the fleet knew and its outcome; no part left behind.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Len(t, names, 2, "one JSON and one CSV, the parts deleted: %v", names)
	var rep activities.FleetReport
	var jsonName string
	for _, n := range names {
		if strings.HasSuffix(n, ".json") {
			jsonName = n
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, jsonName))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Len(t, rep.Tenants, 5000)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	seen := map[string]bool{}
	for _, line := range rep.Tenants {
		require.False(t, seen[line.WorkflowID], "%s listed twice", line.WorkflowID)
		seen[line.WorkflowID] = true
		want := fx.runIDs[line.WorkflowID]
		if realRun[line.WorkflowID] != "" {
			want = realRun[line.WorkflowID]
		}
		require.NotEmpty(t, want, line.WorkflowID)
		require.Equal(t, want, line.RunID, "%s: the run the fleet started", line.WorkflowID)
		if e, failed := errs[line.WorkflowID]; failed {
			require.Equal(t, string(OutcomeFailed), line.Outcome, line.WorkflowID)
			require.Equal(t, e, line.Error, "the report keeps the whole error")
		} else {
			require.Equal(t, string(OutcomeUpgraded), line.Outcome, "%s: %s", line.WorkflowID, line.Error)
		}
	}
	for _, ts := range waves {
		for _, tn := range ts {
			require.True(t, seen[tn.UpgradeWorkflowID()], "%s is in the report", tn.DisplayName)
		}
	}
	for id, n := range fx.starts {
		require.Equal(t, 1, n, "%s started %d times", id, n)
	}
}

// eachRun runs a fleet through continue-as-new to its end, each run in a new test environment;
// between runs, next reads (and may change) the continue-as-new input and returns the tenants
// still running, which report their end to the next run. It returns the number of runs.
func (fx *fleetFixture) eachRun(in FleetInput, next func(run int, in *FleetInput) (inflight []string)) int {
	var inflight []string
	for runs := 1; ; runs++ {
		require.Less(fx.t, runs, 200)
		can := fx.runOnce(in, inflight)
		if can == nil {
			return runs
		}
		require.NoError(fx.t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
		inflight = next(runs, &in)
		fx.newEnv()
	}
}

// fleetThroughRuns runs a fleet through continue-as-new to its end, returning the carried
// states sent between runs.
func fleetThroughRuns(t *testing.T, fx *fleetFixture, in FleetInput) []fleetCarry {
	var sent []fleetCarry
	fx.eachRun(in, func(_ int, in *FleetInput) (inflight []string) {
		st, tenants := carried(t, *in)
		sent = append(sent, st)
		for _, tn := range tenants {
			if tn.State == TenantRunning {
				inflight = append(inflight, tn.WorkflowID)
			}
		}
		return inflight
	})
	return sent
}

// Without a report store nothing is dropped from the carried state: every tenant keeps its
// full record, and the fleet ends as before (its report skipped).
func TestFleetWithoutReportStoreCarriesEveryTenant(t *testing.T) {
	fx := newFleetFixture(t)
	fx.noStore = true
	fx.newEnv()
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 4}}, 12)
	in.ContinueAfterEvents = 30
	sent := fleetThroughRuns(t, fx, in)
	require.NotEmpty(t, sent, "continued as new")
	finished := 0
	for _, st := range sent {
		require.Zero(t, st.ReportParts)
		require.NotContains(t, st.Reported, "a", "no tenant counts as reported without a store")
		for _, tn := range st.Tenants {
			if tn.State == TenantFinished {
				finished++
				require.NotEmpty(t, tn.RunID, "a finished tenant keeps its run ID for the report")
			}
		}
	}
	require.Positive(t, finished)
	r := fx.result()
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: 12}, r.Outcomes)
	require.True(t, containsText(r.Events, "final report not written: no report location configured"), r.Events)
}

// A part write the fleet saw fail (though the object was written) keeps its tenants in the
// carried state; the next run writes the same part again with them, and the final report
// lists every tenant once.
func TestFleetRetriesAFailedReportPart(t *testing.T) {
	fx := newFleetFixture(t)
	failures := 0
	fx.partWrite = func(p activities.FleetReportPart) error {
		if p.FirstRunID != "" && p.Part == 1 && failures == 0 {
			failures++
			return temporal.NewNonRetryableApplicationError("the volume went away", "Test", errors.New("EIO"))
		}
		return nil
	}
	fx.newEnv()
	in := fx.input([]WaveSpec{{Name: "wave", Concurrency: 4}}, 12)
	in.ContinueAfterEvents = 30
	sent := fleetThroughRuns(t, fx, in)
	require.GreaterOrEqual(t, len(sent), 2, "continued as new at least twice")
	require.Equal(t, 1, failures)
	require.Zero(t, sent[0].ReportParts, "the failed part is not counted")
	require.NotContains(t, sent[0].Reported, "a", "its tenants keep their records")
	require.True(t, containsText(sent[0].Events, "report part 1 NOT written"), sent[0].Events)
	require.Positive(t, sent[len(sent)-1].ReportParts, "a later run wrote it")
	r := fx.result()
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: 12}, r.Outcomes)
	rep := fx.report()
	require.Len(t, rep.Tenants, 12, "every tenant once")
	seen := map[string]bool{}
	for _, line := range rep.Tenants {
		require.False(t, seen[line.WorkflowID], "%s twice", line.WorkflowID)
		seen[line.WorkflowID] = true
		require.NotEmpty(t, line.RunID)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	for name := range fx.reports {
		require.NotContains(t, name, ".part-", "parts are deleted once joined")
	}
}

// The tenants query and the progress of a fleet whose finished tenants were reported still
// count every tenant by wave and outcome, with the starts the operator's report reads.
func TestFleetReportedTenantsStillCount(t *testing.T) {
	fx := newFleetFixture(t)
	in := fx.input([]WaveSpec{{Name: "a", Concurrency: 3}, {Name: "b", Concurrency: 3}}, 6, 6)
	for i, tn := range fleetTenants(0, 6) {
		if i%3 == 0 {
			fx.plans[tn.TenantID] = childPlan{outcome: OutcomeFailed, err: fmt.Sprintf("error %d", i)}
		}
	}
	in.ContinueAfterEvents = 30
	sent := fleetThroughRuns(t, fx, in)
	require.NotEmpty(t, sent)
	last := sent[len(sent)-1]
	require.Contains(t, last.Reported, "a", "reported tenants are carried as one character")
	r := fx.result()
	require.Equal(t, map[Outcome]int{OutcomeUpgraded: 10, OutcomeFailed: 2}, r.Outcomes)
	require.Len(t, r.Failed, 2)
	for _, f := range r.Failed {
		require.Regexp(t, `^error \d$`, f.Error, "the summary keeps a reported failed tenant's error")
	}
	p := fx.progress()
	require.Equal(t, 6, p.Waves[0].Finished)
	require.Equal(t, 6, p.Waves[1].Finished)
	require.Equal(t, 2, p.Waves[0].ByOutcome[string(OutcomeFailed)])
	reported := 0
	for _, tn := range fx.tenants() {
		require.Equal(t, 1, tn.Starts, tn.Name)
		require.NotEmpty(t, tn.WorkflowID)
		require.NotEmpty(t, tn.Name, "who a reported tenant is comes from the plan")
		if tn.Reported {
			reported++
		}
	}
	require.Positive(t, reported)
}
