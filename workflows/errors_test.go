package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/csp-ops/work365-upgrade/activities"
)

func benign(t, msg string) error {
	return temporal.NewApplicationErrorWithOptions(msg, t, temporal.ApplicationErrorOptions{Category: temporal.ApplicationErrorCategoryBenign})
}

func pendingJobsError(n int) error {
	return benign(activities.ErrJobsPending, fmt.Sprintf("%d Work 365 jobs still pending", n))
}

func notStartedError() error {
	return benign(activities.ErrUpgradeNotStarted, "Begin Upgrade not clicked yet")
}

func notCompleteError() error {
	return benign(activities.ErrUpgradeNotComplete, "upgrade still running")
}
