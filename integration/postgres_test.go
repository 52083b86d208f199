package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPostgresRehearsal runs the production topology without Docker (go run
// ./rehearsal/pgrehearsal): PostgreSQL with Temporal's schemas applied by the server's SQL
// tooling, the Temporal server on it with the compose file's settings, 100 tenants upgraded by
// three production worker processes, one stopped with SIGTERM and one killed with SIGKILL
// mid-way; the command checks every tenant, the imports and the on-call visibility queries
// itself and exits non-zero when one fails. -short skips it.
func TestPostgresRehearsal(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL rehearsal: skipped with -short")
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 && os.Geteuid() != 0 {
		t.Skip("PostgreSQL is not installed and installing it needs root (.ci/run installs it)")
	}
	cmd := exec.Command("go", "run", "../rehearsal/pgrehearsal", "--tenants", "100", "--workers", "3", "--timeout", "25m")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("the PostgreSQL rehearsal failed: %v", err)
	}
	if !strings.Contains(string(out), "PASS: 100 tenants upgraded on PostgreSQL by 3 worker processes") {
		t.Fatal("the rehearsal did not report its pass line")
	}
}
