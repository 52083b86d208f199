package app

import (
	"regexp"
	"strings"
	"testing"

	"github.com/csp-ops/work365-upgrade/internal/yamlfile"
)

var configProblem = regexp.MustCompile(`^fuzz\.yaml(:[0-9]+)?: ` + yamlfile.FieldPattern + `: \S`)

// FuzzWorkerConfig: no input panics, and every rejection names file:line (where the key is in
// the file) and the key. Seed corpus: testdata/fuzz/FuzzWorkerConfig; longer:
// go test -fuzz FuzzWorkerConfig -fuzztime 60s ./worker/app
func FuzzWorkerConfig(f *testing.F) {
	f.Add([]byte("microsoft: {clientId: x, secretFile: /s}\npackagesDir: /p\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		t.Setenv("TEMPORAL_ADDRESS", "")
		t.Setenv("TEMPORAL_NAMESPACE", "")
		_, err := ParseConfig("fuzz.yaml", data)
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !configProblem.MatchString(line) {
				t.Fatalf("rejection without file:line and key: %q", line)
			}
		}
	})
}
