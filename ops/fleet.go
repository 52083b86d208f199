package ops

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// LaunchFleet starts the fleet workflow of an inventory. Launching the same fleet again while
// it runs (or after it finished) starts nothing and says so.
func (o Ops) LaunchFleet(ctx context.Context, inv *inventory.Inventory) (id string, state string, err error) {
	in, err := inv.FleetInput()
	if err != nil {
		return "", "", err
	}
	id = inventory.FleetWorkflowID(inv.Fleet)
	_, err = o.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                o.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(searchattr.Fleet.ValueSet(inv.Fleet)),
		StaticSummary:                            fmt.Sprintf("Fleet %s: %d tenants in %d waves to Work 365 v2.5", inv.Fleet, len(inv.Tenants), len(inv.Waves)),
		// Its decisions pass its tenants' workflow tasks in a backed-up queue.
		Priority: temporal.Priority{PriorityKey: workflows.FleetPriorityKey},
	}, workflows.FleetWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		return id, "already launched", nil
	case err != nil:
		return id, "", fmt.Errorf("start fleet %s: %w", inv.Fleet, err)
	}
	return id, "started", nil
}

// FleetProgress queries a fleet's progress.
func (o Ops) FleetProgress(ctx context.Context, fleetID string) (workflows.FleetProgress, error) {
	var p workflows.FleetProgress
	v, err := o.Client.QueryWorkflow(ctx, fleetID, "", workflows.QueryProgress)
	if err != nil {
		return p, fmt.Errorf("progress of %s (is a worker running?): %w", fleetID, err)
	}
	return p, v.Get(&p)
}

// FleetTenants lists a fleet's tenants as the fleet tracks them, by query (a worker answers it
// for finished fleets too); without a worker, a fleet that finished before the fleet-summary
// change lists them from its result (later ones keep only counts and failed tenants there).
func (o Ops) FleetTenants(ctx context.Context, fleetID string) ([]workflows.FleetTenant, error) {
	var ts []workflows.FleetTenant
	v, err := o.Client.QueryWorkflow(ctx, fleetID, "", workflows.QueryFleetTenants)
	if err == nil {
		return ts, v.Get(&ts)
	}
	var r workflows.FleetResult
	if rerr := o.Client.GetWorkflow(ctx, fleetID, "").Get(ctx, &r); rerr != nil || (len(r.Tenants) == 0 && r.Total > 0) {
		return nil, fmt.Errorf("tenants of %s (start a worker: it answers the tenants query, also for a finished fleet): %w", fleetID, err)
	}
	return r.Tenants, nil
}

// FleetAction sends an operator Update (pause, resume, cancel-fleet, approve-wave) to a fleet.
func (o Ops) FleetAction(ctx context.Context, fleetID, update string, arg any) error {
	return o.update(ctx, fleetID, update, arg)
}

// FleetReport is one row per tenant of the fleet: each upgrade's own result, and the fleet's
// view for tenants it never started (skipped or cancelled before launch).
func (o Ops) FleetReport(ctx context.Context, fleetID string) ([]ReportRow, error) {
	ts, err := o.FleetTenants(ctx, fleetID)
	if err != nil {
		return nil, err
	}
	rows := make([]ReportRow, 0, len(ts))
	for _, t := range ts {
		row := ReportRow{WorkflowID: t.WorkflowID, TenantID: t.TenantID, TenantName: t.Name, Outcome: string(t.Outcome), Stage: string(t.Stage), Error: t.Error, FromVersion: t.FromVersion}
		if t.State == workflows.TenantPending {
			row.Outcome = "pending"
		}
		if t.Starts > 0 {
			if t.State == workflows.TenantRunning {
				if s, err := o.Status(ctx, t.WorkflowID); err == nil {
					row.Outcome, row.Stage, row.FromVersion, row.ToVersion = "running", string(s.Stage), s.FromVersion, s.ToVersion
					row.Stages, row.Confirmations, row.Warnings = s.Stages, s.Confirmations, s.Warnings
				}
			} else if r, err := o.Result(ctx, t.WorkflowID); err == nil {
				row.fromResult(r)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}
