package ops

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/csp-ops/work365-upgrade/workflows"
)

// endedTemporal is a workflow that ended after applying an Update whose answer was lost: a
// retried Update is refused, the result holds the confirmation.
type endedTemporal struct {
	client.Client
	status enumspb.WorkflowExecutionStatus
	result []workflows.Confirmation
}

func (f *endedTemporal) UpdateWorkflow(context.Context, client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return nil, errors.New("workflow execution already completed")
}

func (f *endedTemporal) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: f.status}}, nil
}

func (f *endedTemporal) GetWorkflow(context.Context, string, string) client.WorkflowRun {
	return endedRun{f.result}
}

type endedRun struct{ cs []workflows.Confirmation }

func (r endedRun) GetID() string                  { return "wf" }
func (r endedRun) GetRunID() string               { return "run" }
func (r endedRun) GetFirstExecutionRunID() string { return "run" }
func (r endedRun) Get(_ context.Context, v any) error {
	v.(*struct {
		Confirmations []workflows.Confirmation `json:"confirmations"`
	}).Confirmations = r.cs
	return nil
}
func (r endedRun) GetWithOptions(ctx context.Context, v any, _ client.WorkflowRunGetOptions) error {
	return r.Get(ctx, v)
}

func TestConfirmFindsALostAnswerInTheEndedWorkflow(t *testing.T) {
	req := workflows.ConfirmRequest{TaskID: "confirm-completion-5", As: workflows.ServiceAccount, By: "svc"}
	applied := workflows.Confirmation{TaskID: req.TaskID, Audience: req.As, By: req.By, Via: "update"}
	f := &endedTemporal{status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: []workflows.Confirmation{applied}}
	c, err := Ops{Client: f}.Confirm(context.Background(), "wf", req, false)
	require.NoError(t, err, "the ended workflow recorded this confirmation")
	require.Equal(t, applied, c)

	// Someone else's confirmation of the task, a late one, or a running workflow: the error stands.
	for _, f := range []*endedTemporal{
		{status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: []workflows.Confirmation{{TaskID: req.TaskID, By: "another"}}},
		{status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, result: []workflows.Confirmation{{TaskID: req.TaskID, By: req.By, Late: true}}},
		{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, result: []workflows.Confirmation{applied}},
	} {
		_, err := Ops{Client: f}.Confirm(context.Background(), "wf", req, false)
		require.ErrorContains(t, err, "confirm confirm-completion-5 on wf: workflow execution already completed")
	}
}
