package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The production worker must not link the Temporal server (it is large and only the
// rehearsal stack embeds it).
func TestWorkerDoesNotLinkTheServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, dep := range strings.Split(string(out), "\n") {
		require.False(t, strings.HasPrefix(dep, "go.temporal.io/server"), "worker links %s", dep)
		require.False(t, strings.Contains(dep, "/sim"), "worker links simulation code %s", dep)
		require.False(t, strings.Contains(dep, "/devserver"), "worker links %s", dep)
	}
}
