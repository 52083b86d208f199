package workerproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ResidentMB is the resident set (VmRSS) of process pid in MB (Linux /proc; pid 0: this
// process).
func ResidentMB(pid int) (float64, error) {
	file := "/proc/self/status"
	if pid != 0 {
		file = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	mb, err := VmRSSMB(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	return mb, nil
}

// VmRSSMB reads the VmRSS line of a /proc/<pid>/status text, in MB.
func VmRSSMB(status string) (float64, error) {
	for l := range strings.SplitSeq(status, "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", strings.TrimSpace(rest), err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmRSS line (a process that exited, or not Linux)")
}

// GoMemory is the Go runtime's own account of a worker's memory, from its /metrics.
type GoMemory struct {
	// HeapInUseMB is memory in heap spans with at least one object (go_memstats_heap_inuse_bytes).
	HeapInUseMB float64
	// HeapSysMB is the heap memory obtained from the OS (go_memstats_heap_sys_bytes), part of
	// which may be released (HeapReleased) but still counted until the OS takes it.
	HeapSysMB float64
	// SysMB is all memory the runtime obtained from the OS (go_memstats_sys_bytes).
	SysMB float64
	// Goroutines is go_goroutines.
	Goroutines int
}

func (g GoMemory) String() string {
	return fmt.Sprintf("go heap in use %.0f MB, heap from the OS %.0f MB, runtime total %.0f MB, %d goroutines", g.HeapInUseMB, g.HeapSysMB, g.SysMB, g.Goroutines)
}

// ReadGoMemory reads a worker's Go runtime figures from its /metrics (Prometheus text).
func ReadGoMemory(ctx context.Context, metricsURL string) (GoMemory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return GoMemory{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return GoMemory{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return GoMemory{}, fmt.Errorf("%s: HTTP %d", metricsURL, resp.StatusCode)
	}
	return ParseGoMemory(resp.Body)
}

// ParseGoMemory reads the Go runtime's gauges from a Prometheus text exposition.
func ParseGoMemory(r io.Reader) (GoMemory, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return GoMemory{}, fmt.Errorf("the worker's metrics: %w", err)
	}
	gauge := func(name string) (float64, error) {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) == 0 {
			return 0, fmt.Errorf("the worker's metrics have no %s (a worker from before the Go collector?)", name)
		}
		return f.GetMetric()[0].GetGauge().GetValue(), nil
	}
	var g GoMemory
	var errs []error
	for _, m := range []struct {
		name string
		to   *float64
	}{{"go_memstats_heap_inuse_bytes", &g.HeapInUseMB}, {"go_memstats_heap_sys_bytes", &g.HeapSysMB}, {"go_memstats_sys_bytes", &g.SysMB}} {
		v, err := gauge(m.name)
		errs = append(errs, err)
		*m.to = v / (1 << 20)
	}
	n, err := gauge("go_goroutines")
	g.Goroutines = int(n)
	return g, errors.Join(append(errs, err)...)
}
