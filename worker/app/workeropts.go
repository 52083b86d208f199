package app

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/worker"
)

// Options are the Temporal worker options this configuration asks for; what it leaves at 0
// keeps the SDK's default.
func (c WorkerConfig) Options() worker.Options {
	return worker.Options{
		WorkerStopTimeout:                      c.StopTimeout,
		MaxConcurrentWorkflowTaskPollers:       c.WorkflowPollers,
		MaxConcurrentActivityTaskPollers:       c.ActivityPollers,
		MaxConcurrentWorkflowTaskExecutionSize: c.WorkflowTaskSlots,
		MaxConcurrentActivityExecutionSize:     c.ActivitySlots,
	}
}

// ApplyStickyCache sizes the SDK's workflow cache, which every worker of the process shares;
// it must run before the first worker starts (0: leave the SDK's default).
func (c WorkerConfig) ApplyStickyCache() {
	if c.StickyCacheSize > 0 {
		worker.SetStickyWorkflowCacheSize(c.StickyCacheSize)
	}
}

// String shows the tuning, for logs and benchmark output (0: the SDK's default).
func (c WorkerConfig) String() string {
	return fmt.Sprintf("workflowPollers=%d activityPollers=%d workflowTaskSlots=%d activitySlots=%d stickyCacheSize=%d",
		c.WorkflowPollers, c.ActivityPollers, c.WorkflowTaskSlots, c.ActivitySlots, c.StickyCacheSize)
}

func (c WorkerConfig) validate() []error {
	var errs []error
	for _, f := range []struct {
		key string
		v   int
	}{{"workflowPollers", c.WorkflowPollers}, {"activityPollers", c.ActivityPollers}, {"workflowTaskSlots", c.WorkflowTaskSlots},
		{"activitySlots", c.ActivitySlots}, {"stickyCacheSize", c.StickyCacheSize}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("worker.%s: %d must not be negative (0 keeps the SDK's default)", f.key, f.v))
		}
	}
	// The SDK refuses one workflow poller or slot: it would serve only its sticky queue.
	if c.WorkflowPollers == 1 {
		errs = append(errs, errors.New("worker.workflowPollers: 1 is too few: the worker needs at least 2 (one serves its sticky queue)"))
	}
	if c.WorkflowTaskSlots == 1 {
		errs = append(errs, errors.New("worker.workflowTaskSlots: 1 is too few: the worker needs at least 2 (one serves its sticky queue)"))
	}
	return errs
}
