// Command starter is the operations team's CLI: plan and launch upgrades from an inventory,
// follow them, complete human tasks, steer and report.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}
