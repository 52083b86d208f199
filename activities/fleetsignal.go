package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
)

// FleetSignal is a tenant upgrade's report to its fleet (a progress or its end), already
// encoded by the workflow: stage, waiting on whom, since, outcome — no secret.
type FleetSignal struct {
	// WorkflowID is the fleet's workflow ID.
	WorkflowID string `json:"workflowId"`
	// Signal is the signal's name.
	Signal string `json:"signal"`
	// Payload is the signal's argument, as JSON.
	Payload json.RawMessage `json:"payload"`
}

// SignalFleet delivers a tenant upgrade's report to its fleet with the worker's own Temporal
// client. The upgrade runs it as a local activity: one marker in its history, where a
// SignalExternalWorkflow command costs two events and wakes the upgrade once more when the
// signal is delivered. A fleet that has ended cannot be told, and that is fine.
func (a *Activities) SignalFleet(ctx context.Context, in FleetSignal) error {
	c := activity.GetClient(ctx)
	if c == nil {
		return errors.New("no Temporal client in this activity: the upgrade signals its fleet itself")
	}
	err := c.SignalWorkflow(ctx, in.WorkflowID, "", in.Signal, in.Payload)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signal %s to fleet %s (the upgrade then signals it itself): %w", in.Signal, in.WorkflowID, err)
	}
	return nil
}
