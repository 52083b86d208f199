// Package ops is what the operations team does to upgrades through Temporal: launch an
// inventory, read status and open tasks, confirm tasks, steer and report. The starter CLI and
// the rehearsal stack are thin layers over it.
package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Ops acts on upgrades in one namespace.
type Ops struct {
	Client    client.Client
	TaskQueue string
}

// Launched is what happened to one tenant of a launch.
type Launched struct {
	TenantID   string `json:"tenantId"`
	TenantName string `json:"tenantName"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId,omitempty"`
	// State is "started", "already running" or "already finished".
	State string `json:"state"`
}

// StartOptions builds the start options of one tenant's upgrade: its deterministic ID, the
// summary shown in the Web UI and the search attributes on-call filters by.
func StartOptions(t spec.Tenant, fleet, wave, taskQueue string) client.StartWorkflowOptions {
	sas := []temporal.SearchAttributeUpdate{
		searchattr.TenantID.ValueSet(t.TenantID),
		searchattr.TenantName.ValueSet(t.DisplayName),
		searchattr.Stage.ValueSet(string(workflows.StageValidate)),
		searchattr.WaitingOn.ValueSet(string(workflows.Nobody)),
	}
	if fleet != "" {
		sas = append(sas, searchattr.Fleet.ValueSet(fleet))
	}
	if wave != "" {
		sas = append(sas, searchattr.Wave.ValueSet(wave))
	}
	summary := fmt.Sprintf("Upgrade %s (%s) to Work 365 %s", t.DisplayName, t.TenantID, t.TargetVersion)
	if fleet != "" {
		summary += " — fleet " + fleet
	}
	return client.StartWorkflowOptions{
		ID:        inventory.WorkflowID(t),
		TaskQueue: taskQueue,
		// A failed or cancelled upgrade may be launched again; a running or finished one not.
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Report an existing upgrade instead of silently returning its handle.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(sas...),
		StaticSummary:                            summary,
		StaticDetails:                            workflows.StaticDetails(t),
	}
}

// Launch starts an upgrade per tenant of a validated inventory. A tenant whose upgrade runs or
// finished already is reported, not started again.
func (o Ops) Launch(ctx context.Context, inv *inventory.Inventory) ([]Launched, error) {
	out := make([]Launched, 0, len(inv.Tenants))
	for _, e := range inv.Tenants {
		t := e.Tenant
		l := Launched{TenantID: t.TenantID, TenantName: t.DisplayName, WorkflowID: inventory.WorkflowID(t)}
		run, err := o.Client.ExecuteWorkflow(ctx, StartOptions(t, inv.Fleet, "", o.TaskQueue), workflows.TenantUpgradeWorkflow,
			workflows.Input{Tenant: t, Config: inv.Config, Fleet: inv.Fleet})
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		switch {
		case errors.As(err, &started):
			l.State = "already running"
			l.RunID = started.RunId
			if d, derr := o.Client.DescribeWorkflowExecution(ctx, l.WorkflowID, ""); derr == nil &&
				d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				l.State = "already finished"
			}
		case err != nil:
			return out, fmt.Errorf("start the upgrade of %s (%s): %w", t.DisplayName, t.TenantID, err)
		default:
			l.State, l.RunID = "started", run.GetRunID()
		}
		out = append(out, l)
	}
	return out, nil
}

// Upgrade is one upgrade workflow as visibility lists it.
type Upgrade struct {
	WorkflowID string
	RunID      string
	Type       string
	Status     string // Running, Completed, Failed, Canceled, Terminated, TimedOut, ContinuedAsNew
	TenantID   string
	TenantName string
	Fleet      string
	Stage      string
	WaitingOn  string
	StageSince time.Time
	Start      time.Time
	Close      time.Time
}

// List lists upgrade workflows matching a visibility query (empty: every tenant upgrade).
func (o Ops) List(ctx context.Context, query string) ([]Upgrade, error) {
	if query == "" {
		query = fmt.Sprintf("WorkflowType = '%s'", workflows.TenantUpgradeWorkflow)
	}
	var out []Upgrade
	var token []byte
	for {
		resp, err := o.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 1000})
		if err != nil {
			return nil, fmt.Errorf("list upgrades (%s): %w", query, err)
		}
		for _, e := range resp.GetExecutions() {
			u := Upgrade{
				WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
				Type: e.GetType().GetName(), Status: statusName(e.GetStatus()),
				Start: e.GetStartTime().AsTime(),
			}
			if e.GetCloseTime() != nil {
				u.Close = e.GetCloseTime().AsTime()
			}
			sa := e.GetSearchAttributes().GetIndexedFields()
			decode := func(name string) string {
				p, ok := sa[name]
				if !ok {
					return ""
				}
				var s string
				_ = converterDecode(p, &s)
				return s
			}
			u.TenantID, u.TenantName, u.Fleet = decode(searchattr.TenantID.GetName()), decode(searchattr.TenantName.GetName()), decode(searchattr.Fleet.GetName())
			u.Stage, u.WaitingOn = decode(searchattr.Stage.GetName()), decode(searchattr.WaitingOn.GetName())
			if p, ok := sa[searchattr.StageSince.GetName()]; ok {
				var ts time.Time
				if converterDecode(p, &ts) == nil {
					u.StageSince = ts
				}
			}
			out = append(out, u)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	slices.SortFunc(out, func(a, b Upgrade) int { return strings.Compare(a.WorkflowID, b.WorkflowID) })
	return out, nil
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Resolve turns a tenant ID into the ID of its newest upgrade; workflow IDs pass through.
func (o Ops) Resolve(ctx context.Context, idOrTenant string) (string, error) {
	if !guidRE.MatchString(idOrTenant) {
		return idOrTenant, nil
	}
	us, err := o.List(ctx, fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.TenantUpgradeWorkflow, searchattr.TenantID.GetName(), strings.ToLower(idOrTenant)))
	if err != nil {
		return "", err
	}
	if len(us) == 0 {
		us, err = o.List(ctx, fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.TenantUpgradeWorkflow, searchattr.TenantID.GetName(), idOrTenant))
		if err != nil {
			return "", err
		}
	}
	if len(us) == 0 {
		return "", fmt.Errorf("no upgrade found for tenant %s: check the ID or launch its inventory", idOrTenant)
	}
	slices.SortFunc(us, func(a, b Upgrade) int { return b.Start.Compare(a.Start) })
	return us[0].WorkflowID, nil
}

// Status returns an upgrade's status: from the status query while it runs, from its result
// once it has ended.
func (o Ops) Status(ctx context.Context, workflowID string) (workflows.Status, error) {
	var s workflows.Status
	v, err := o.Client.QueryWorkflow(ctx, workflowID, "", workflows.QueryStatus)
	if err == nil {
		err = v.Get(&s)
		return s, err
	}
	r, rerr := o.Result(ctx, workflowID)
	if rerr != nil {
		return s, fmt.Errorf("status of %s: %w (is a worker running?)", workflowID, err)
	}
	return workflows.Status{WorkflowID: r.WorkflowID, TenantID: r.TenantID, TenantName: r.TenantName, Stage: workflows.StageDone,
		WaitingOn: workflows.Nobody, Stages: r.Stages, Warnings: r.Warnings, FromVersion: r.FromVersion, ToVersion: r.ToVersion,
		LinkRound: r.LinkRounds, Confirmations: r.Confirmations}, nil
}

// Result returns a finished upgrade's result, including failed and cancelled ones (whose result
// travels as error details).
func (o Ops) Result(ctx context.Context, workflowID string) (workflows.Result, error) {
	var r workflows.Result
	err := o.Client.GetWorkflow(ctx, workflowID, "").Get(ctx, &r)
	if err == nil {
		return r, nil
	}
	var app *temporal.ApplicationError
	var cancelled *temporal.CanceledError
	switch {
	case errors.As(err, &app) && app.HasDetails():
		if derr := app.Details(&r); derr == nil {
			return r, nil
		}
	case errors.As(err, &cancelled) && cancelled.HasDetails():
		if derr := cancelled.Details(&r); derr == nil {
			return r, nil
		}
	}
	return r, err
}

// TaskRow is an open human task with its upgrade.
type TaskRow struct {
	WorkflowID string         `json:"workflowId"`
	TenantID   string         `json:"tenantId"`
	TenantName string         `json:"tenantName"`
	Stage      string         `json:"stage"`
	Task       workflows.Task `json:"task"`
}

// OpenTasks lists open human tasks across running upgrades (and their Partner Center
// children), oldest first, optionally for one audience.
func (o Ops) OpenTasks(ctx context.Context, audience workflows.Audience, extraQuery string) ([]TaskRow, error) {
	// Only upgrades that wait on someone have open tasks: visibility narrows the list before
	// each one is queried.
	q := fmt.Sprintf("(WorkflowType = '%s' OR WorkflowType = '%s') AND ExecutionStatus = 'Running' AND %s != '%s'",
		workflows.TenantUpgradeWorkflow, workflows.PartnerCenterWorkflow, searchattr.WaitingOn.GetName(), workflows.Nobody)
	if audience != "" {
		q += fmt.Sprintf(" AND %s = '%s'", searchattr.WaitingOn.GetName(), audience)
	}
	if extraQuery != "" {
		q += " AND " + extraQuery
	}
	us, err := o.List(ctx, q)
	if err != nil {
		return nil, err
	}
	var rows []TaskRow
	for _, u := range us {
		s, err := o.Status(ctx, u.WorkflowID)
		if err != nil {
			return nil, err
		}
		for _, t := range s.OpenTasks {
			if audience != "" && t.Audience != audience {
				continue
			}
			rows = append(rows, TaskRow{WorkflowID: u.WorkflowID, TenantID: s.TenantID, TenantName: s.TenantName, Stage: string(s.Stage), Task: t})
		}
	}
	slices.SortStableFunc(rows, func(a, b TaskRow) int { return a.Task.OpenedAt.Compare(b.Task.OpenedAt) })
	return rows, nil
}

// Confirm completes a human task: by Update (validated, answers at once) or, when no worker
// runs, by Signal (accepted by the server, validated when the workflow next runs).
func (o Ops) Confirm(ctx context.Context, workflowID string, req workflows.ConfirmRequest, bySignal bool) (workflows.Confirmation, error) {
	var c workflows.Confirmation
	if bySignal {
		if err := o.Client.SignalWorkflow(ctx, workflowID, "", workflows.SignalConfirmTask, req); err != nil {
			return c, fmt.Errorf("signal confirmation of %s to %s: %w", req.TaskID, workflowID, err)
		}
		return c, nil
	}
	h, err := o.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		UpdateID:   ConfirmUpdateID(req),
		WorkflowID: workflowID, UpdateName: workflows.UpdateConfirmTask, Args: []any{req},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &c)
	}
	if err != nil {
		// The answer to an Update that was applied can be lost (a worker or server restart);
		// its retry then meets a workflow that has already ended, when this was its last
		// task. Look at the ended workflow: if it recorded this confirmation, it happened.
		if done, ok := o.confirmedInResult(ctx, workflowID, req); ok {
			return done, nil
		}
		return c, fmt.Errorf("confirm %s on %s: %w", req.TaskID, workflowID, err)
	}
	return c, nil
}

// confirmedInResult finds req's confirmation in the result of workflowID, if that workflow has
// ended. Any error reading it counts as not found: the caller reports its own error.
func (o Ops) confirmedInResult(ctx context.Context, workflowID string, req workflows.ConfirmRequest) (workflows.Confirmation, bool) {
	d, err := o.Client.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil || d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return workflows.Confirmation{}, false
	}
	var res struct {
		Confirmations []workflows.Confirmation `json:"confirmations"`
	}
	if err := o.Client.GetWorkflow(ctx, workflowID, "").Get(ctx, &res); err != nil {
		return workflows.Confirmation{}, false
	}
	for _, c := range res.Confirmations {
		if c.TaskID == req.TaskID && c.By == req.By && c.Decision == req.Decision && !c.Late {
			return c, true
		}
	}
	return workflows.Confirmation{}, false
}

// ConfirmUpdateID is the Update ID of a confirmation: the same confirmation sent again (its
// answer lost to a timeout, a worker crash or a server restart) is the same Update, which
// Temporal answers with the first one's result instead of refusing it as a task already
// closed. A different person, decision or note is a different confirmation.
func ConfirmUpdateID(req workflows.ConfirmRequest) string {
	parts := []string{string(req.As), req.By, req.Decision, req.Note}
	if req.OnBehalfOf != "" {
		parts = append(parts, req.OnBehalfOf) // only then: the IDs of earlier confirmations stay as they were
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "confirm/" + req.TaskID + "/" + hex.EncodeToString(h[:8])
}

// StartNow opens an upgrade's downtime window now.
func (o Ops) StartNow(ctx context.Context, workflowID string, req workflows.OperatorRequest) error {
	return o.update(ctx, workflowID, workflows.UpdateStartNow, req)
}

// MoveWindow moves an upgrade's downtime window.
func (o Ops) MoveWindow(ctx context.Context, workflowID string, req workflows.MoveWindowRequest) error {
	return o.update(ctx, workflowID, workflows.UpdateMoveWindow, req)
}

func (o Ops) update(ctx context.Context, workflowID, name string, arg any) error {
	h, err := o.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return fmt.Errorf("%s on %s: %w", name, workflowID, err)
	}
	if err := h.Get(ctx, nil); err != nil {
		return fmt.Errorf("%s on %s: %w", name, workflowID, err)
	}
	return nil
}

// Cancel cancels an upgrade; its cleanup unfreezes the tenant.
func (o Ops) Cancel(ctx context.Context, workflowID string) error {
	if err := o.Client.CancelWorkflow(ctx, workflowID, ""); err != nil {
		return fmt.Errorf("cancel %s: %w", workflowID, err)
	}
	return nil
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	name := s.String()
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "Running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "Completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "Failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "Canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "Terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "TimedOut"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "ContinuedAsNew"
	}
	return name
}

// StuckQuery is the visibility query of running upgrades whose stage has not changed since
// before the cutoff; the README gives the same query for the Web UI.
func StuckQuery(cutoff time.Time) string {
	return fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND %s < '%s'",
		workflows.TenantUpgradeWorkflow, searchattr.StageSince.GetName(), cutoff.UTC().Format(time.RFC3339))
}

// Stuck lists running upgrades whose stage is older than the cutoff, grouped by who they wait
// on (global-admin, service-account, operator, partner-admin, none), oldest first.
func (o Ops) Stuck(ctx context.Context, cutoff time.Time) (map[string][]Upgrade, error) {
	us, err := o.List(ctx, StuckQuery(cutoff))
	if err != nil {
		return nil, err
	}
	out := map[string][]Upgrade{}
	for _, u := range us {
		w := u.WaitingOn
		if w == "" {
			w = string(workflows.Nobody)
		}
		out[w] = append(out[w], u)
	}
	for _, g := range out {
		slices.SortFunc(g, func(a, b Upgrade) int { return a.StageSince.Compare(b.StageSince) })
	}
	return out, nil
}
