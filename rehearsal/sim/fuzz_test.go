package sim

import (
	"regexp"
	"strings"
	"testing"

	"github.com/csp-ops/work365-upgrade/internal/yamlfile"
)

var scenarioProblem = regexp.MustCompile(`^fuzz\.yaml(:[0-9]+)?: ` + yamlfile.FieldPattern + `: \S`)

// FuzzScenario: no input panics or runs away (aliases are bounded by the shared decoder), and
// every rejection names file:line and the field. Seed corpus: testdata/fuzz/FuzzScenario;
// longer: go test -fuzz FuzzScenario -fuzztime 60s ./rehearsal/sim
func FuzzScenario(f *testing.F) {
	f.Add([]byte("tenants:\n  - name: a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseScenario("fuzz.yaml", data)
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !scenarioProblem.MatchString(line) {
				t.Fatalf("rejection without file:line and field: %q", line)
			}
		}
	})
}
