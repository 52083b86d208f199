package inventory

import (
	"regexp"
	"strings"
	"testing"

	"github.com/csp-ops/work365-upgrade/internal/yamlfile"
)

// problemLine is what every line of a rejection looks like: the file, the line where one
// exists, then the field (for a tenant, after its name), then the problem.
var problemLine = regexp.MustCompile(`^fuzz\.yaml(:[0-9]+)?: (tenant ("([^"\\]|\\.)*"|\(unnamed\)): )?` + yamlfile.FieldPattern + `: \S`)

// FuzzInventory: no input panics, and every rejection names file:line and the field. The seed
// corpus is testdata/fuzz/FuzzInventory; longer: go test -fuzz FuzzInventory -fuzztime 60s ./ops/inventory
func FuzzInventory(f *testing.F) {
	f.Add([]byte(good))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseWith("fuzz.yaml", data, Rules{Now: now})
		if err == nil {
			if len(inv.Tenants) == 0 {
				t.Fatal("an accepted inventory has tenants")
			}
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !problemLine.MatchString(line) {
				t.Fatalf("rejection without file:line and field: %q", line)
			}
		}
	})
}
