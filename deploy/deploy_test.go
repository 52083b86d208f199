package deploy

import (
	"os"
	"regexp"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// The example worker.yaml mounted by docker-compose is a valid configuration.
func TestWorkerYAMLLoads(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "")
	t.Setenv("TEMPORAL_NAMESPACE", "")
	cfg, err := app.LoadConfig("worker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Address != "temporal:7233" || cfg.Temporal.Namespace != "default" || cfg.Temporal.TaskQueue != app.TaskQueue {
		t.Errorf("temporal = %+v", cfg.Temporal)
	}
	if cfg.Microsoft.SecretFile != "/run/secrets/ms_client_secret" {
		t.Errorf("microsoft.secretFile = %q, want the compose secret", cfg.Microsoft.SecretFile)
	}
	if cfg.Reports.Dir != "/var/lib/work365/reports" {
		t.Errorf("reports.dir = %q, want the compose reports volume", cfg.Reports.Dir)
	}
	if cfg.Metrics.Address != ":9090" {
		t.Errorf("metrics.address = %q; the compose healthcheck uses :9090", cfg.Metrics.Address)
	}
}

// temporal/setup-namespace.sh (docker-compose) registers exactly the search
// attributes the worker declares.
func TestSetupNamespaceSearchAttributes(t *testing.T) {
	script, err := os.ReadFile("temporal/setup-namespace.sh")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]enumspb.IndexedValueType{}
	for _, m := range regexp.MustCompile(`--name\s+(\w+)\s+--type\s+(\w+)`).FindAllStringSubmatch(string(script), -1) {
		typ, err := enumspb.IndexedValueTypeFromString(m[2])
		if err != nil {
			t.Fatalf("%s: %v", m[0], err)
		}
		got[m[1]] = typ
	}
	want := searchattr.All()
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("setup-namespace.sh: %s is %v, the worker wants %v", name, got[name], typ)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("setup-namespace.sh registers %s, which the worker does not declare", name)
		}
	}
}
