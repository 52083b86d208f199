package activities

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
)

// Error types the workflow and on-call see in failures. Non-retryable ones need a person.
const (
	ErrMicrosoftTransient    = "MicrosoftTransient"
	ErrMicrosoftUnauthorized = "MicrosoftUnauthorized"
	ErrMicrosoftNotFound     = "MicrosoftNotFound"
	ErrMicrosoftRejected     = "MicrosoftRejected"
	ErrMisconfigured         = "Misconfigured"
	ErrInvalidSpec           = "InvalidSpec"
	ErrJobsPending           = "JobsPending"
	ErrOperationRunning      = "OperationRunning"
	ErrOperationFailed       = "OperationFailed"
	ErrSolutionMissing       = "SolutionMissing"
	ErrUpgradeNotStarted     = "UpgradeNotStarted"
	ErrUpgradeNotComplete    = "UpgradeNotComplete"
	// ErrOrchestratorFault is the orchestrator's own credential or app registration failing
	// (expired or wrong secret, unknown certificate, disabled app). It is nobody's tenant's
	// fault: the workflow waits and retries instead of failing the upgrade.
	ErrOrchestratorFault = "OrchestratorFault"
)

// classify turns an adapter error into a Temporal error: throttling and outages retry (after the
// delay Microsoft asked for), missing permissions, consents and objects do not.
func classify(err error, doing string) error {
	if err == nil {
		return nil
	}
	var me *msapi.Error
	if !errors.As(err, &me) {
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("%s: %v", doing, err), ErrMicrosoftTransient,
			temporal.ApplicationErrorOptions{Cause: err})
	}
	msg := fmt.Sprintf("%s: %v", doing, me)
	switch {
	case msauth.OrchestratorFault(me):
		return temporal.NewNonRetryableApplicationError(msg+" (the orchestrator's own credential: fix it once for every tenant; upgrades wait and retry)", ErrOrchestratorFault, nil)
	case me.Retryable():
		return temporal.NewApplicationErrorWithOptions(msg, ErrMicrosoftTransient,
			temporal.ApplicationErrorOptions{NextRetryDelay: me.RetryAfter})
	case me.Unauthorized():
		return temporal.NewNonRetryableApplicationError(msg+" (fix the permission or consent, then retry the upgrade)", ErrMicrosoftUnauthorized, nil)
	case me.NotFound():
		return temporal.NewNonRetryableApplicationError(msg, ErrMicrosoftNotFound, nil)
	default:
		return temporal.NewNonRetryableApplicationError(msg, ErrMicrosoftRejected, nil)
	}
}

// pending is an expected "not yet" that the retry policy turns into a poll; benign so it
// raises no alert, and its message is what on-call reads as the activity's last failure.
func pending(errType, format string, args ...any) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(format, args...), errType,
		temporal.ApplicationErrorOptions{Category: temporal.ApplicationErrorCategoryBenign})
}

// permanent is a failure no retry cures; the message tells the operator what to fix.
func permanent(errType, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), errType, nil)
}
