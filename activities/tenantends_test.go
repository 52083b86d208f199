package activities

import (
	"context"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// fakeWorkflows answers describes and results from maps keyed by workflow ID.
type fakeWorkflows struct {
	status  map[string]enumspb.WorkflowExecutionStatus
	results map[string]tenantResult
	errs    map[string]error
}

func (f fakeWorkflows) DescribeWorkflowExecution(_ context.Context, id, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	st, ok := f.status[id]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	if runID == "" {
		runID = "latest"
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID}, Status: st}}, nil
}

func (f fakeWorkflows) GetWorkflow(_ context.Context, id, runID string) client.WorkflowRun {
	return fakeRun{id: id, runID: runID, res: f.results[id], err: f.errs[id]}
}

type fakeRun struct {
	client.WorkflowRun
	id, runID string
	res       tenantResult
	err       error
}

func (r fakeRun) Get(_ context.Context, v any) error {
	if r.err != nil {
		return r.err
	}
	*(v.(*tenantResult)) = r.res
	return nil
}

func TestReadTenantEnds(t *testing.T) {
	a := &Activities{Workflows: fakeWorkflows{
		status: map[string]enumspb.WorkflowExecutionStatus{
			"running": enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "done": enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
			"cancelled": enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, "terminated": enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
		},
		results: map[string]tenantResult{"done": {Outcome: "upgraded", FromVersion: "2.4.1"}},
		errs:    map[string]error{"terminated": errors.New("workflow terminated by ops")},
	}}
	ends, err := a.ReadTenantEnds(context.Background(), []TenantRun{{WorkflowID: "running", RunID: "r1"}, {WorkflowID: "done", RunID: "r2"},
		{WorkflowID: "cancelled", RunID: "r3"}, {WorkflowID: "terminated", RunID: "r4"}, {WorkflowID: "gone", RunID: "r5"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []TenantEnd{
		{WorkflowID: "running", RunID: "r1", Status: "Running"},
		{WorkflowID: "done", RunID: "r2", Closed: true, Status: "Completed", Outcome: "upgraded", FromVersion: "2.4.1"},
		{WorkflowID: "cancelled", RunID: "r3", Closed: true, Status: "Canceled", Outcome: "cancelled", Error: "cancelled"},
		{WorkflowID: "terminated", RunID: "r4", Closed: true, Status: "Terminated", Outcome: "failed", Error: "its workflow ended Terminated: workflow terminated by ops"},
	}
	for i, w := range want {
		if ends[i] != w {
			t.Errorf("end %d = %+v, want %+v", i, ends[i], w)
		}
	}
	if g := ends[4]; !g.Closed || g.Outcome != "failed" || g.Status != "NotFound" {
		t.Errorf("a workflow deleted after retention: %+v", g)
	}
	if _, err := (&Activities{}).ReadTenantEnds(context.Background(), nil); err == nil {
		t.Error("without a client: no error")
	}
}
