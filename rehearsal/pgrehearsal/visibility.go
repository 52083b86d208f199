package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// onCallQueries runs the README's copy-paste queries for on-call (the Workflows page's) on
// PostgreSQL's advanced visibility: each must parse and answer; their counts and latencies are
// figures.
func (r *rehearsal) onCallQueries(ctx context.Context, fig *figures, label string) {
	tenant := r.cloud.Scenario().Tenants[0].TenantID
	stuck := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	queries := []struct{ name, q string }{
		{"stuck (WorkStageSince)", fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND WorkStageSince < '%s'", workflows.TenantUpgradeWorkflow, stuck)},
		{"waiting on global-admin", "ExecutionStatus = 'Running' AND WorkWaitingOn = 'global-admin'"},
		{"waiting on operator", "ExecutionStatus = 'Running' AND WorkWaitingOn = 'operator'"},
		{"stuck at the link", "ExecutionStatus = 'Running' AND WorkUpgradeStage = 'consent-and-initialisation' AND WorkLinkRound >= 3"},
		{"fleet's failures", fmt.Sprintf("WorkFleet = '%s' AND ExecutionStatus = 'Failed'", fleetName)},
		{"fleet (WorkFleet)", fmt.Sprintf("WorkFleet = '%s'", fleetName)},
		{"one tenant", fmt.Sprintf("WorkTenantId = '%s'", tenant)},
	}
	for _, q := range queries {
		t0 := time.Now()
		n, err := r.count(ctx, q.q)
		if err != nil {
			r.fail("on-call query %q (%s) on PostgreSQL: %v", q.name, label, err)
			continue
		}
		t1 := time.Now()
		list, err := r.ops.List(ctx, q.q)
		if err != nil {
			r.fail("on-call query %q (%s) on PostgreSQL: list: %v", q.name, label, err)
			continue
		}
		fig.note("%-40s %5d  count %4dms  list %4dms", label+": "+q.name, n, t1.Sub(t0).Milliseconds(), time.Since(t1).Milliseconds())
		if int64(len(list)) != n && label == "final" {
			r.fail("on-call query %q: CountWorkflow says %d, ListWorkflow lists %d", q.name, n, len(list))
		}
	}
}

// checkFinalVisibility compares what visibility (PostgreSQL) answers with each upgrade's own
// search attributes, read from its mutable state (DescribeWorkflowExecution): per upgrade,
// and as the counts of the on-call attributes' values.
func (r *rehearsal) checkFinalVisibility(ctx context.Context) {
	fleetQ := fmt.Sprintf("WorkFleet = '%s' AND WorkflowType = '%s'", fleetName, workflows.TenantUpgradeWorkflow)
	listed, err := r.ops.List(ctx, fleetQ)
	if err != nil {
		r.fail("list the fleet's upgrades: %v", err)
		return
	}
	if len(listed) != r.o.tenants {
		r.fail("visibility lists %d upgrades of the fleet, want %d", len(listed), r.o.tenants)
	}
	stages, waiting := map[string]int{}, map[string]int{}
	var since []time.Time
	dc := converter.GetDefaultDataConverter()
	for _, u := range listed {
		d, err := r.client.DescribeWorkflowExecution(ctx, u.WorkflowID, u.RunID)
		if err != nil {
			r.fail("describe %s: %v", u.WorkflowID, err)
			continue
		}
		sa := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
		str := func(name string) string {
			var s string
			if p := sa[name]; p != nil {
				_ = dc.FromPayload(p, &s)
			}
			return s
		}
		var ts time.Time
		if p := sa[searchattr.StageSince.GetName()]; p != nil {
			_ = dc.FromPayload(p, &ts)
		}
		stage, wait := str(searchattr.Stage.GetName()), str(searchattr.WaitingOn.GetName())
		if u.Stage != stage || u.WaitingOn != wait || u.Fleet != str(searchattr.Fleet.GetName()) || absDur(u.StageSince.Sub(ts)) > time.Millisecond {
			r.fail("%s: visibility says stage %q waiting on %q since %s (fleet %q); the workflow says %q, %q, %s, %q",
				u.WorkflowID, u.Stage, u.WaitingOn, u.StageSince, u.Fleet, stage, wait, ts, str(searchattr.Fleet.GetName()))
		}
		stages[stage]++
		waiting[wait]++
		since = append(since, ts)
	}
	for v, want := range stages {
		r.expectCount(ctx, fmt.Sprintf("%s AND WorkUpgradeStage = '%s'", fleetQ, v), want)
	}
	for v, want := range waiting {
		r.expectCount(ctx, fmt.Sprintf("%s AND WorkWaitingOn = '%s'", fleetQ, v), want)
	}
	if len(since) > 0 {
		sort.Slice(since, func(i, j int) bool { return since[i].Before(since[j]) })
		// A boundary in whole seconds, as on-call writes it (README's "stuck" query).
		mid := since[len(since)/2].Truncate(time.Second)
		want := sort.Search(len(since), func(i int) bool { return !since[i].Before(mid) })
		r.expectCount(ctx, fmt.Sprintf("%s AND WorkStageSince < '%s'", fleetQ, mid.UTC().Format(time.RFC3339)), want)
	}
	r.logf("visibility agrees with each upgrade's own search attributes: %d upgrades, stages %v, waiting on %v", len(listed), stages, waiting)
}

func (r *rehearsal) expectCount(ctx context.Context, q string, want int) {
	n, err := r.count(ctx, q)
	if err != nil {
		r.fail("%s: %v", q, err)
		return
	}
	if n != int64(want) {
		r.fail("%s: visibility counts %d, the workflows say %d", q, n, want)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
