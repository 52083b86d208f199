package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadConfig(t *testing.T) {
	p := write(t, `
temporal: {address: temporal:7233}
microsoft: {clientId: "11111111-1111-1111-1111-111111111111", secretFile: /run/secrets/ms_client_secret}
work365: {jobsEntitySet: custom_jobs, appId: "2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99"}
packagesDir: /var/lib/work365/packages
`)
	c, err := LoadConfig(p)
	require.NoError(t, err)
	require.Equal(t, "temporal:7233", c.Temporal.Address)
	require.Equal(t, "default", c.Temporal.Namespace)
	require.Equal(t, TaskQueue, c.Temporal.TaskQueue)
	require.Equal(t, "custom_jobs", c.Work365.JobsEntitySet)
	require.Equal(t, "Work365", c.Work365.SolutionUniqueName, "unset names keep their defaults")
	require.Equal(t, DefaultWorkerStopTimeout, c.Worker.StopTimeout)
}

func TestLoadConfigWorkerStopTimeout(t *testing.T) {
	base := `
microsoft: {clientId: "11111111-1111-1111-1111-111111111111", secretFile: /run/secrets/ms_client_secret}
packagesDir: /var/lib/work365/packages
work365: {appId: "2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99"}
`
	c, err := LoadConfig(write(t, base+"worker: {stopTimeout: 5m30s}\n"))
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute+30*time.Second, c.Worker.StopTimeout)
	_, err = LoadConfig(write(t, base+"worker: {stopTimeout: -1m}\n"))
	require.ErrorContains(t, err, "worker.stopTimeout")
}

func TestLoadConfigErrorsNameLineAndKey(t *testing.T) {
	p := write(t, "temporal:\n  adress: x\n")
	_, err := LoadConfig(p)
	require.ErrorContains(t, err, p+":2: temporal.adress: unknown field (not a key of app.TemporalConfig; check its spelling)")
	p = write(t, "microsoft: {clientId: x, secretFile: a, secretEnv: B}\n")
	_, err = LoadConfig(p)
	require.ErrorContains(t, err, "set exactly one of")
	require.ErrorContains(t, err, "packagesDir: required")
}

func TestDirPackagesStaysInside(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "w.zip"), []byte("zip"), 0o600))
	p := DirPackages{Dir: dir}
	b, err := p.Read(context.Background(), "w.zip")
	require.NoError(t, err)
	require.Equal(t, "zip", string(b))
	_, err = p.Read(context.Background(), "../etc/passwd")
	require.ErrorContains(t, err, "inside the packages folder")
	_, err = p.Read(context.Background(), "/etc/passwd")
	require.Error(t, err)
}

func TestLoadConfigDataverseClouds(t *testing.T) {
	base := `
microsoft: {clientId: "11111111-1111-1111-1111-111111111111", secretFile: /run/secrets/ms_client_secret}
packagesDir: /var/lib/work365/packages
work365: {appId: "2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99"}
`
	c, err := LoadConfig(write(t, base))
	require.NoError(t, err)
	hosts, err := c.Dataverse.Suffixes()
	require.NoError(t, err)
	require.Equal(t, []string{".crm*.dynamics.com"}, hosts, "public cloud by default")

	c, err = LoadConfig(write(t, base+"dataverse: {clouds: [public, usgov-high], hostSuffixes: [.crm.example.org]}\n"))
	require.NoError(t, err)
	hosts, err = c.Dataverse.Suffixes()
	require.NoError(t, err)
	require.Equal(t, []string{".crm*.dynamics.com", ".crm.microsoftdynamics.us", ".crm.example.org"}, hosts)

	p := write(t, base+"dataverse:\n  clouds: [mars]\n  hostSuffixes: [example]\n")
	_, err = LoadConfig(p)
	require.ErrorContains(t, err, p+`:6: dataverse.clouds[0]: "mars" is not one of public, usgov-high, usgov-dod, china`)
	require.ErrorContains(t, err, p+`:7: dataverse.hostSuffixes[0]: host suffix "example" must start with a dot`)
}

func TestLoadConfigValidationErrorsNameTheirLine(t *testing.T) {
	p := write(t, `
microsoft: {clientId: "11111111-1111-1111-1111-111111111111", secretFile: /run/secrets/ms_client_secret}
packagesDir: /var/lib/work365/packages
work365: {appId: "2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99"}
log:
  format: xml
`)
	_, err := LoadConfig(p)
	require.ErrorContains(t, err, p+`:6: log.format: "xml" must be json or console`)
	_, err = LoadConfig(write(t, "tenants: []\n---\nmicrosoft: {}\n"))
	require.ErrorContains(t, err, "worker.yaml:2: (document): a second YAML document starts here")
}

func TestLoadConfigWorkerTuning(t *testing.T) {
	base := "microsoft: {clientId: app, secretEnv: S}\npackagesDir: /p\nwork365: {appId: \"2f6a1a52-7c11-4c8e-a0f5-7d3e2b1c0a99\"}\n"
	c, err := LoadConfig(write(t, base+"worker: {workflowPollers: 8, activityPollers: 6, workflowTaskSlots: 400, activitySlots: 300, stickyCacheSize: 2000}\n"))
	require.NoError(t, err)
	o := c.Worker.Options()
	require.Equal(t, 8, o.MaxConcurrentWorkflowTaskPollers)
	require.Equal(t, 6, o.MaxConcurrentActivityTaskPollers)
	require.Equal(t, 400, o.MaxConcurrentWorkflowTaskExecutionSize)
	require.Equal(t, 300, o.MaxConcurrentActivityExecutionSize)
	require.Equal(t, DefaultWorkerStopTimeout, o.WorkerStopTimeout)
	require.Equal(t, 2000, c.Worker.StickyCacheSize)

	_, err = LoadConfig(write(t, base+"worker:\n  workflowPollers: 1\n  activitySlots: -3\n"))
	require.ErrorContains(t, err, ":5: worker.workflowPollers: 1 is too few")
	require.ErrorContains(t, err, ":6: worker.activitySlots: -3 must not be negative")
}
