package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/csp-ops/work365-upgrade/activities"
)

// PreflightWorkflow checks, read-only, that tenants are ready before any window. The worker
// runs it because only the worker holds the credentials; it starts nothing and changes nothing.
const PreflightWorkflow = "Preflight"

// DefaultPreflightConcurrency is how many tenants one Preflight checks at a time.
const DefaultPreflightConcurrency = 10

// PreflightInput lists the tenants to check (no secret: IDs, URLs and account names).
type PreflightInput struct {
	Tenants []activities.ReadinessInput `json:"tenants"`
	// Concurrency bounds the checks running at once (default DefaultPreflightConcurrency).
	Concurrency int `json:"concurrency,omitempty"`
}

// PreflightResult is one Readiness per tenant, in the input's order.
type PreflightResult struct {
	Tenants []activities.Readiness `json:"tenants"`
}

// Check ID of a tenant whose checks could not complete (Microsoft kept failing).
const PreflightCheckError = "preflight-error"

var pre *activities.Preflight

// Preflight runs the readiness checks of every tenant, a bounded number at a time. A tenant
// whose checks keep failing (throttling, an outage) is reported not ready with the error: the
// workflow itself does not fail for one tenant.
func Preflight(ctx workflow.Context, in PreflightInput) (PreflightResult, error) {
	n := in.Concurrency
	if n <= 0 {
		n = DefaultPreflightConcurrency
	}
	out := PreflightResult{Tenants: make([]activities.Readiness, len(in.Tenants))}
	for start := 0; start < len(in.Tenants); start += n {
		end := min(start+n, len(in.Tenants))
		futures := make([]workflow.Future, 0, end-start)
		for _, t := range in.Tenants[start:end] {
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				Summary:                "Preflight of " + t.DisplayName + " (read-only)",
				StartToCloseTimeout:    2 * time.Minute,
				ScheduleToCloseTimeout: 10 * time.Minute,
				RetryPolicy: &temporal.RetryPolicy{
					InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
					MaximumAttempts: 4, NonRetryableErrorTypes: nonRetryable,
				},
			})
			futures = append(futures, workflow.ExecuteActivity(actx, pre.CheckReadiness, t))
		}
		for i, f := range futures {
			t := in.Tenants[start+i]
			var r activities.Readiness
			if err := f.Get(ctx, &r); err != nil {
				r = activities.Readiness{TenantID: t.TenantID, DisplayName: t.DisplayName, Path: "unknown",
					Checks: []activities.ReadinessCheck{{ID: PreflightCheckError, Status: activities.ReadyFail,
						Detail: "the checks could not complete: " + err.Error(), Fix: "run the preflight again; if it keeps failing, read the worker's log"}}}
			}
			out.Tenants[start+i] = r
		}
	}
	return out, nil
}
