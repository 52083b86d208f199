package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
)

// WorkflowReader is the part of the worker's Temporal client a fleet needs to learn how its
// tenants' upgrades really ended (client.Client implements it).
type WorkflowReader interface {
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	GetWorkflow(ctx context.Context, workflowID, runID string) client.WorkflowRun
}

// TenantRun names one tenant upgrade the fleet started.
type TenantRun struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId,omitempty"`
	// Hinted is true when an end signal claimed it ended: a genuine one is sent a moment
	// before the workflow closes, so the check waits up to HintGrace for the close.
	Hinted bool `json:"hinted,omitempty"`
}

// TenantEnd is what Temporal says of a tenant upgrade: still running, or closed with its
// outcome as its own result says.
type TenantEnd struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId,omitempty"`
	Closed     bool   `json:"closed"`
	// Status is Temporal's execution status (Running, Completed, Failed, Canceled, …).
	Status string `json:"status"`
	// Outcome is the result's outcome (completed runs), "cancelled" or "failed".
	Outcome     string `json:"outcome,omitempty"`
	Error       string `json:"error,omitempty"`
	FromVersion string `json:"fromVersion,omitempty"`
}

// HintGrace is how long a check waits for a hinted upgrade to close.
const HintGrace = 10 * time.Second

// ReadTenantEnds describes each upgrade by workflow and run ID and reads the result of those
// that closed: the fleet's source of truth for a tenant's end, where the tenant-finished
// signal (which anyone with namespace access can send) is only a hint.
func (a *Activities) ReadTenantEnds(ctx context.Context, runs []TenantRun) ([]TenantEnd, error) {
	if a.Workflows == nil {
		return nil, temporal.NewNonRetryableApplicationError("the worker has no Temporal client to read its tenants' upgrades (activities.Workflows): wire the worker's client", "NoWorkflowReader", nil)
	}
	wait := a.PollInterval
	if wait <= 0 || wait > time.Second {
		wait = time.Second
	}
	out := make([]TenantEnd, 0, len(runs))
	for _, r := range runs {
		deadline := time.Now().Add(HintGrace)
		for {
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, len(out))
			}
			end, err := a.readTenantEnd(ctx, r)
			if err != nil {
				return nil, err
			}
			if end.Closed || !r.Hinted || time.Now().After(deadline) {
				out = append(out, end)
				break
			}
			if err := ctxtime.Sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// tenantResult is the part of a TenantUpgrade result the fleet reads.
type tenantResult struct {
	Outcome     string `json:"outcome"`
	Error       string `json:"error,omitempty"`
	FromVersion string `json:"fromVersion,omitempty"`
}

func (a *Activities) readTenantEnd(ctx context.Context, r TenantRun) (TenantEnd, error) {
	end := TenantEnd{WorkflowID: r.WorkflowID, RunID: r.RunID}
	runID := r.RunID
	for range 10 { // follow continue-as-new to the current run
		d, err := a.Workflows.DescribeWorkflowExecution(ctx, r.WorkflowID, runID)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			end.Closed, end.Status, end.Outcome = true, "NotFound", "failed"
			end.Error = "its workflow is not found (deleted after the namespace's retention?): look for it in the archive"
			return end, nil
		}
		if err != nil {
			return end, fmt.Errorf("describe upgrade %s (run %s): %w — check the worker's access to the namespace", r.WorkflowID, runID, err)
		}
		info := d.GetWorkflowExecutionInfo()
		status := info.GetStatus()
		end.RunID, end.Status = info.GetExecution().GetRunId(), status.String()
		switch status {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			return end, nil
		case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			runID = ""
			continue
		}
		end.Closed = true
		var res tenantResult
		err = a.Workflows.GetWorkflow(ctx, r.WorkflowID, end.RunID).Get(ctx, &res)
		switch {
		case status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && err == nil:
			end.Outcome, end.Error, end.FromVersion = res.Outcome, res.Error, res.FromVersion
			if end.Outcome == "" {
				end.Outcome, end.Error = "failed", "its result names no outcome"
			}
		case status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			return end, fmt.Errorf("read the result of upgrade %s (run %s): %w — check the worker's payload codec", r.WorkflowID, end.RunID, err)
		case status == enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
			end.Outcome, end.Error = "cancelled", "cancelled"
		default:
			end.Outcome, end.Error = "failed", fmt.Sprintf("its workflow ended %s", status)
			if err != nil {
				end.Error += ": " + err.Error()
			}
		}
		return end, nil
	}
	return end, fmt.Errorf("upgrade %s continued as new more than 10 times in a row", r.WorkflowID)
}
