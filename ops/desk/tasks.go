package desk

import (
	"context"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// TaskView is a task as the desk shows it.
type TaskView struct {
	WorkflowID string
	TenantName string
	Stage      string
	Task       workflows.Task
	// Open is false once the task closed; Closed is its confirmation, when known.
	Open   bool
	Closed *workflows.Confirmation
	// For is who the task is for.
	For Account
}

// Backend reads tasks and confirms them; TemporalBackend in production, a fake in tests.
type Backend interface {
	// Task returns the task of a workflow, open or closed; an unknown task is an error.
	Task(ctx context.Context, workflowID, taskID string) (TaskView, error)
	// Confirm sends the confirmation (the confirm-task Update).
	Confirm(ctx context.Context, workflowID string, req workflows.ConfirmRequest) (workflows.Confirmation, error)
}

// ErrNoTask: the workflow has no such task (never had, or the link is for another upgrade).
var ErrNoTask = errors.New("this upgrade has no such task")

// TemporalBackend reads tasks through the status query (ops.Ops.Status, the same as
// starter tasks) and who they are for from the upgrade's input (its first history event),
// and confirms through ops.Ops.Confirm.
type TemporalBackend struct {
	Ops ops.Ops
	// DataConverter decodes the workflow's input (the payload codec of the namespace).
	DataConverter converter.DataConverter
	// OperatorTenantID and OperatorGroupID say who may confirm operator tasks.
	OperatorTenantID string
	OperatorGroupID  string
}

// Task implements Backend.
func (b TemporalBackend) Task(ctx context.Context, workflowID, taskID string) (TaskView, error) {
	st, err := b.Ops.Status(ctx, workflowID)
	if err != nil {
		return TaskView{}, fmt.Errorf("read upgrade %s: %w", workflowID, err)
	}
	v := TaskView{WorkflowID: workflowID, TenantName: st.TenantName, Stage: string(st.Stage)}
	found := false
	for _, t := range st.OpenTasks {
		if t.ID == taskID {
			v.Task, v.Open, found = t, true, true
		}
	}
	if !found {
		for i := range st.Confirmations {
			if c := st.Confirmations[i]; c.TaskID == taskID && !c.Late {
				v.Closed = &c
				v.Task = workflows.Task{ID: taskID, Kind: c.Kind, Audience: c.Audience}
				found = true
			}
		}
	}
	if !found {
		return v, fmt.Errorf("%w (%s in %s): it may have been replaced by a newer task; open the latest notification", ErrNoTask, taskID, workflowID)
	}
	acc, err := b.account(ctx, workflowID, v.Task.Audience)
	if err != nil {
		return v, err
	}
	v.For = acc
	return v, nil
}

// account reads who a task of audience is for from the upgrade's input.
func (b TemporalBackend) account(ctx context.Context, workflowID string, audience workflows.Audience) (Account, error) {
	acc := Account{Audience: audience}
	if audience == workflows.Operator {
		acc.TenantID, acc.TenantName, acc.GroupID = b.OperatorTenantID, "the partner", b.OperatorGroupID
		return acc, nil
	}
	it := b.Ops.Client.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return acc, fmt.Errorf("read the start of upgrade %s: no history", workflowID)
	}
	ev, err := it.Next()
	if err != nil {
		return acc, fmt.Errorf("read the start of upgrade %s: %w", workflowID, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil || len(attrs.GetInput().GetPayloads()) == 0 {
		return acc, fmt.Errorf("read the start of upgrade %s: its first event carries no input", workflowID)
	}
	dc := b.DataConverter
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	p := attrs.GetInput().GetPayloads()[0]
	switch attrs.GetWorkflowType().GetName() {
	case workflows.TenantUpgradeWorkflow:
		var in workflows.Input
		if err := dc.FromPayload(p, &in); err != nil {
			return acc, fmt.Errorf("decode the input of upgrade %s (is the desk's codec.keysFile the worker's?): %w", workflowID, err)
		}
		acc.TenantID, acc.TenantName = in.Tenant.TenantID, in.Tenant.DisplayName
		switch audience {
		case workflows.GlobalAdmin:
			acc.UPN = in.Tenant.GlobalAdminUPN
		case workflows.ServiceAccount:
			acc.UPN = in.Tenant.ServiceAccountUPN
		}
	case workflows.PartnerCenterWorkflow:
		var in workflows.PartnerCenterInput
		if err := dc.FromPayload(p, &in); err != nil {
			return acc, fmt.Errorf("decode the input of %s (is the desk's codec.keysFile the worker's?): %w", workflowID, err)
		}
		acc.TenantID = in.Connection.TenantID
		acc.TenantName = in.TenantName + " / Partner Center " + in.Connection.Name
		switch {
		case audience != workflows.PartnerAdmin:
		case in.Connection.AdminUPN != "":
			acc.UPN = in.Connection.AdminUPN
		case strings.EqualFold(in.Connection.TenantID, in.TenantID):
			// The connection in the customer's own tenant: its Global Administrator re-consents.
			parent, err := b.account(ctx, in.ParentWorkflowID, workflows.GlobalAdmin)
			if err == nil {
				acc.UPN = parent.UPN
			}
		}
	default:
		return acc, fmt.Errorf("%s is a %s workflow: the desk only opens upgrade tasks", workflowID, attrs.GetWorkflowType().GetName())
	}
	return acc, nil
}

// Confirm implements Backend.
func (b TemporalBackend) Confirm(ctx context.Context, workflowID string, req workflows.ConfirmRequest) (workflows.Confirmation, error) {
	return b.Ops.Confirm(ctx, workflowID, req, false)
}
