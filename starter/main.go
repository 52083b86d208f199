// Command starter is the operations team's CLI: plan and launch upgrades from an inventory,
// follow them, complete human tasks, steer and report.
package main

import (
	"errors"
	"fmt"
	"os"
)

// Exit codes: 0 done, 1 failed, 2 the preflight found a tenant not ready (nothing started).
func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	var nr errNotReady
	if errors.As(err, &nr) {
		return 2
	}
	return 1
}
