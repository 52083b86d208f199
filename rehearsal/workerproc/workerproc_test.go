package workerproc

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVmRSSMB(t *testing.T) {
	status := "Name:\tworker\nVmPeak:\t  812345 kB\nVmRSS:\t  153600 kB\nRssAnon:\t  120000 kB\n"
	mb, err := VmRSSMB(status)
	require.NoError(t, err)
	require.InDelta(t, 150.0, mb, 1e-9)

	_, err = VmRSSMB("Name:\tzombie\nState:\tZ (zombie)\n")
	require.ErrorContains(t, err, "no VmRSS")
	_, err = VmRSSMB("VmRSS:\t  lots kB\n")
	require.ErrorContains(t, err, `VmRSS "lots kB"`)
}

func TestResidentMBOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	mb, err := ResidentMB(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, mb, 1.0)
	_, err = ResidentMB(1 << 30)
	require.Error(t, err)
}

func TestParseGoMemory(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 412
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 3.145728e+07
# TYPE go_memstats_heap_sys_bytes gauge
go_memstats_heap_sys_bytes 6.291456e+07
# TYPE go_memstats_sys_bytes gauge
go_memstats_sys_bytes 8.388608e+07
# TYPE temporal_workflow_completed counter
temporal_workflow_completed{task_queue="work365_upgrade"} 3
`
	g, err := ParseGoMemory(strings.NewReader(text))
	require.NoError(t, err)
	require.Equal(t, GoMemory{HeapInUseMB: 30, HeapSysMB: 60, SysMB: 80, Goroutines: 412}, g)
	require.Equal(t, "go heap in use 30 MB, heap from the OS 60 MB, runtime total 80 MB, 412 goroutines", g.String())

	_, err = ParseGoMemory(strings.NewReader("# TYPE temporal_workflow_completed counter\ntemporal_workflow_completed 3\n"))
	require.ErrorContains(t, err, "no go_memstats_heap_inuse_bytes")
}

func TestEnvRoutesMicrosoftThroughTheProxy(t *testing.T) {
	env := Env([]string{"PATH=/bin", "TEMPORAL_ADDRESS=prod:7233", "https_proxy=http://corp:3128", "SSL_CERT_FILE=/etc/ca.pem", "W365_CONFIG=/etc/w.yaml", "HOME=/root"},
		"http://127.0.0.1:4000", "/w/ca.pem", "http://127.0.0.1:5000/notify")
	require.Equal(t, []string{"PATH=/bin", "HOME=/root", "HTTPS_PROXY=http://127.0.0.1:4000", "NO_PROXY=127.0.0.1,localhost",
		"SSL_CERT_FILE=/w/ca.pem", "W365_AUTOPILOT_URL=http://127.0.0.1:5000/notify"}, env)
}
