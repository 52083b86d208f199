package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/csp-ops/work365-upgrade/activities"
)

// a is the nil receiver the workflow names activities by; Temporal resolves the method name.
var a *activities.Activities

// Defaults for Config.
const (
	DefaultLinkValidity             = 15 * time.Minute
	DefaultMaxLinkRounds            = 3
	DefaultDrainDeadline            = 2 * time.Hour
	DefaultDrainPollInterval        = time.Minute
	DefaultCompletionDeadline       = 2 * time.Hour
	DefaultCompletionPollInterval   = time.Minute
	DefaultReminderInterval         = 4 * time.Hour
	DefaultImportTimeout            = 2 * time.Hour
	DefaultUpgradeStartPollInterval = 30 * time.Second
	DefaultEscalateAfterReminders   = 3
	DefaultMaxFixRounds             = 3
	DefaultCongratulationsGrace     = 30 * time.Minute
	DefaultMaxFrozen                = 6 * time.Hour
	DefaultCredentialRetryInterval  = 15 * time.Minute
	// maxCredentialRetryInterval caps the doubling wait after an orchestrator credential fault.
	maxCredentialRetryInterval = 2 * time.Hour
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.LinkValidity, DefaultLinkValidity)
	def(&c.DrainDeadline, DefaultDrainDeadline)
	def(&c.DrainPollInterval, DefaultDrainPollInterval)
	def(&c.CompletionDeadline, DefaultCompletionDeadline)
	def(&c.CompletionPollInterval, DefaultCompletionPollInterval)
	def(&c.ReminderInterval, DefaultReminderInterval)
	def(&c.ImportTimeout, DefaultImportTimeout)
	def(&c.UpgradeStartPollInterval, DefaultUpgradeStartPollInterval)
	def(&c.CongratulationsGrace, DefaultCongratulationsGrace)
	def(&c.MaxFrozen, DefaultMaxFrozen)
	def(&c.CredentialRetryInterval, DefaultCredentialRetryInterval)
	if c.MaxFixRounds <= 0 {
		c.MaxFixRounds = DefaultMaxFixRounds
	}
	if c.MaxLinkRounds <= 0 {
		c.MaxLinkRounds = DefaultMaxLinkRounds
	}
	if c.EscalateAfterReminders <= 0 {
		c.EscalateAfterReminders = DefaultEscalateAfterReminders
	}
	return c
}

// Show formats a duration of this configuration (or one measured under it) as people read
// it: in the runbook's time when a rehearsal runs faster than real time, without trailing
// zero units ("15m", "2h", "1h30m").
func (c Config) Show(d time.Duration) string {
	if c.TimeScale > 0 && c.TimeScale != 1 {
		d = time.Duration(float64(d) * c.TimeScale)
	}
	return ShortDuration(d)
}

// ShortDuration rounds to the second and drops zero minutes and seconds ("2h", "15m", "1h30m",
// "45s"), as the runbook writes durations.
func ShortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Permanent failures: retrying cannot help, a person must fix something first.
var nonRetryable = []string{
	activities.ErrMicrosoftUnauthorized, activities.ErrMicrosoftNotFound, activities.ErrMicrosoftRejected,
	activities.ErrMisconfigured, activities.ErrInvalidSpec, activities.ErrOperationFailed, activities.ErrSolutionMissing,
}

// Activity kinds and why their options are what they are.

// readOpts: quick reads and idempotent writes (discover, checks, freeze). One call takes
// seconds; throttling and outages are retried with backoff (or Retry-After) for up to an hour
// before the upgrade fails and on-call is involved.
func readOpts(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                summary,
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// pollOpts: the retry policy is the poller. The activity fails with what is left ("7 Work 365
// jobs still pending") and is retried at a fixed interval until the deadline; retries are not
// written to history and on-call reads the last failure on the pending activity.
func pollOpts(ctx workflow.Context, summary string, every, deadline time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                summary,
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: deadline,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: every, BackoffCoefficient: 1, MaximumInterval: every,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// longOpts: asynchronous Dataverse operations (import, uninstall) followed inside one
// activity that heartbeats; a lost worker is noticed within the heartbeat timeout and the
// next attempt picks up the same operation.
func longOpts(ctx workflow.Context, summary string, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
			MaximumAttempts: 10, NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// followOpts: following an import, uninstall or portal install that has been started. The
// operation runs in Dynamics whatever happens to the activity, so nothing but its own outcome
// may fail the upgrade: throttling, outages and lost workers are retried without a limit on
// attempts (the heartbeat timeout notices a lost worker, the next attempt picks up the same
// operation), up to the deadline, where the workflow asks the operator (operation-deadline).
func followOpts(ctx workflow.Context, summary string, deadline time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                summary,
		StartToCloseTimeout:    deadline,
		ScheduleToCloseTimeout: deadline,
		HeartbeatTimeout:       2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: followAttempts, NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// followAttempts is no limit in effect (a retry a minute for two years): the deadline ends a
// follow, never a count. Zero would mean the same to the server, but the SDK's test
// environment turns zero into ten attempts, and the tests show more than ten.
const followAttempts = 1 << 20

// cleanupOpts: leaving a tenant safe (the unfreeze after a failure or cancellation) is retried
// for hours, long after an upgrade would give up.
func cleanupOpts(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                summary,
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 12 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// notifyOpts: notifications matter but must not hold an upgrade hostage; a notification that
// still fails after ten minutes becomes a warning.
func notifyOpts(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                "Notify people",
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		},
	})
}
