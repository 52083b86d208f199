package deploy

import (
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type composeFile struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		EnvFile     any            `yaml:"env_file"`
		Environment map[string]any `yaml:"environment"`
		Volumes     []string       `yaml:"volumes"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("../docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	return c
}

// moduleVersion is the version go.mod requires of a module, without the leading v.
func moduleVersion(t *testing.T, module string) string {
	t.Helper()
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+v(\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("go.mod does not require %s", module)
	}
	return string(m[1])
}

// The compose images run the Temporal version the rehearsals prove: temporalio/server and
// temporalio/admin-tools (whose schema files setup-schema.sh applies) carry the tag of
// go.temporal.io/server, the Web UI that of the ui-server module.
func TestComposeImagesMatchGoModules(t *testing.T) {
	c := readCompose(t)
	server := moduleVersion(t, "go.temporal.io/server")
	ui := moduleVersion(t, "github.com/temporalio/ui-server/v2")
	want := map[string]string{"temporalio/server": server, "temporalio/admin-tools": server, "temporalio/ui": ui}
	seen := map[string]int{}
	for name, svc := range c.Services {
		repo, tag, _ := strings.Cut(svc.Image, ":")
		v, ok := want[repo]
		if !ok {
			continue
		}
		seen[repo]++
		if tag != v {
			t.Errorf("docker-compose.yaml: service %s runs %s, but go.mod has %s; set the tag to %s (README: Upgrading Temporal)", name, svc.Image, v, v)
		}
	}
	for repo := range want {
		if seen[repo] == 0 {
			t.Errorf("docker-compose.yaml: no service runs %s", repo)
		}
	}
}

// The Temporal services take their settings from temporal.env, the file the rehearsal reads,
// and redefine none of them; the server mounts the dynamic config the rehearsal loads.
func TestComposeReadsTheSharedTemporalSettings(t *testing.T) {
	s, err := Temporal()
	if err != nil {
		t.Fatal(err)
	}
	c := readCompose(t)
	for _, name := range []string{"temporal-schema", "temporal", "temporal-namespace"} {
		svc, ok := c.Services[name]
		if !ok {
			t.Fatalf("docker-compose.yaml: service %s is missing", name)
		}
		var files []string
		switch v := svc.EnvFile.(type) {
		case string:
			files = []string{v}
		case []any:
			for _, f := range v {
				files = append(files, f.(string))
			}
		}
		if !slices.Contains(files, "./"+TemporalEnvFile) {
			t.Errorf("docker-compose.yaml: service %s must have env_file: ./%s", name, TemporalEnvFile)
		}
		for k := range svc.Environment {
			if _, dup := s.Env[k]; dup {
				t.Errorf("docker-compose.yaml: service %s sets %s, which %s sets: keep it in one place", name, k, TemporalEnvFile)
			}
		}
	}
	mounted := false
	for _, v := range c.Services["temporal"].Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst = strings.TrimSuffix(dst, ":ro")
		if "./"+path.Dir(DynamicConfigFile) == src && path.Join(dst, path.Base(DynamicConfigFile)) == s.Env["DYNAMIC_CONFIG_FILE_PATH"] {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("docker-compose.yaml: the temporal service must mount ./%s so that DYNAMIC_CONFIG_FILE_PATH (%s) is %s",
			path.Dir(DynamicConfigFile), s.Env["DYNAMIC_CONFIG_FILE_PATH"], DynamicConfigFile)
	}
	if s.Plugin != "postgres12" {
		t.Errorf("%s: DB=%s; setup-schema.sh applies schema/postgresql/v12", TemporalEnvFile, s.Plugin)
	}
	onDisk, err := os.ReadFile("temporal/dynamicconfig/production-sql.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(DynamicConfig()) {
		t.Error("the embedded dynamic config differs from the file")
	}
}

func TestParseEnvNamesTheLine(t *testing.T) {
	_, err := parseEnv("x.env", []byte("# c\nA=1\nB=\"2\"\n"))
	if err == nil || !strings.Contains(err.Error(), "x.env:3") {
		t.Fatalf("err = %v, want x.env:3", err)
	}
	_, err = parseEnv("x.env", []byte("A=1\nnot a pair\n"))
	if err == nil || !strings.Contains(err.Error(), "x.env:2") {
		t.Fatalf("err = %v, want x.env:2", err)
	}
}

// History archival: the filestore provider (which the server's config template enables) at a
// path inside the server's archival volume.
func TestComposeArchivesHistory(t *testing.T) {
	s, err := Temporal()
	if err != nil {
		t.Fatal(err)
	}
	dir, ok := strings.CutPrefix(s.HistoryArchivalURI, "file://")
	if !ok {
		t.Fatalf("%s: HISTORY_ARCHIVAL_URI=%s: compose uses the filestore provider (file://)", TemporalEnvFile, s.HistoryArchivalURI)
	}
	mounted := false
	for _, v := range readCompose(t).Services["temporal"].Volumes {
		_, dst, _ := strings.Cut(v, ":")
		if dst == dir || strings.HasPrefix(dir, dst+"/") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("docker-compose.yaml: no volume of the temporal service holds %s", dir)
	}
	script, err := os.ReadFile("temporal/setup-namespace.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), `--history-uri "$HISTORY_ARCHIVAL_URI"`) {
		t.Error("setup-namespace.sh must create namespaces with --history-uri \"$HISTORY_ARCHIVAL_URI\"")
	}
}
