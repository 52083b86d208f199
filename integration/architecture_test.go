package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/csp-ops/work365-upgrade"

// moduleRoot is the folder of go.mod (the tests run in integration/).
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "integration/ must sit directly under the module root")
	return root
}

// rehearsalOnly says whether a package is rehearsal or test code, which production never links.
func rehearsalOnly(pkg string) bool {
	rel := strings.TrimPrefix(pkg, module+"/")
	return rel == "rehearsal" || strings.HasPrefix(rel, "rehearsal/") ||
		rel == "integration" || strings.HasPrefix(rel, "integration/")
}

// Production code (the worker, the starter and every package they are built from) never links
// rehearsal code, the embedded Temporal server or the Web UI server: a simulated cloud must
// never be one import away from real tenants, and the server is large.
func TestProductionNeverImportsRehearsal(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...")
	cmd.Dir = moduleRoot(t)
	out, err := cmd.Output()
	require.NoError(t, err)

	production := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := fields[0]
		if rehearsalOnly(pkg) {
			continue
		}
		production[strings.TrimPrefix(pkg, module+"/")] = true
		for _, dep := range fields[1:] {
			forbidden := strings.HasPrefix(dep, module+"/") && rehearsalOnly(dep) ||
				strings.HasPrefix(dep, "go.temporal.io/server/") ||
				strings.HasPrefix(dep, "github.com/temporalio/ui-server/")
			require.False(t, forbidden, "production package %s depends on %s", pkg, dep)
		}
	}
	// The check is about these binaries above all: they must have been listed.
	for _, bin := range []string{"worker", "starter", "workflows", "activities"} {
		require.True(t, production[bin], "go list did not list production package %s", bin)
	}
}

// The root shows the architecture: at most 15 entries, each described in the README's
// architecture tree, and every package folder described there too.
func TestRootIsDescribedInTheReadme(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	tree := architectureTree(t, string(readme))

	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	var visible []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			visible = append(visible, e.Name())
		}
	}
	require.LessOrEqual(t, len(visible), 15, "the root has %d entries: %v", len(visible), visible)
	for _, name := range visible {
		if name == "go.sum" {
			continue
		}
		require.Contains(t, tree, name, "README's architecture tree does not describe %s", name)
	}

	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err)
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		require.NoError(t, err)
		require.Contains(t, tree, filepath.Base(rel)+"/", "README's architecture tree does not describe package folder %s", rel)
	}
}

// architectureTree returns the README's ``` block that follows the "## Architecture" heading
// and starts with the module's tree.
func architectureTree(t *testing.T, readme string) map[string]bool {
	t.Helper()
	i := strings.Index(readme, "## Architecture")
	require.GreaterOrEqual(t, i, 0, "README has no Architecture section")
	section := readme[i:]
	start := strings.Index(section, "```text\n")
	require.GreaterOrEqual(t, start, 0, "README's Architecture section has no ```text tree")
	section = section[start+len("```text\n"):]
	end := strings.Index(section, "```")
	require.GreaterOrEqual(t, end, 0)
	names := map[string]bool{}
	word := regexp.MustCompile(`[A-Za-z0-9_.-]+/?`)
	for _, line := range strings.Split(section[:end], "\n") {
		// The first word after the tree drawing is the entry's name.
		line = strings.TrimLeft(line, " │├└─")
		if m := word.FindString(line); m != "" {
			names[m] = true
			names[strings.TrimSuffix(m, "/")] = true
		}
	}
	return names
}
