package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
)

// profiler takes CPU and heap profiles of this process and, through the child's stdin, of
// the server process, while the fleet runs. This process's files are named by self:
// "worker" when the fleet's worker runs in it, "rehearsal" when it holds only the simulated
// cloud, its HTTPS proxy, the webhook and the autopilot.
type profiler struct {
	dir     string
	self    string
	server  childServer
	cpu     *os.File
	mu      sync.Mutex
	peak    int
	heapErr error
}

// startProfiles starts the CPU profiles of both processes into dir.
func startProfiles(dir, self string, server childServer) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("profile folder: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	p := &profiler{dir: abs, self: self, server: server}
	if p.cpu, err = os.Create(filepath.Join(abs, self+"-cpu.pprof")); err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(p.cpu); err != nil {
		return nil, fmt.Errorf("%s CPU profile: %w", self, err)
	}
	if err := server.command("cpu " + filepath.Join(abs, "server-cpu.pprof")); err != nil {
		return nil, err
	}
	return p, nil
}

// observe writes the worker's heap profile (and the server's) whenever more upgrades run than
// at any earlier observation, so the heap profiles show the most tenants in flight.
func (p *profiler) observe(running int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if running <= p.peak {
		return
	}
	p.peak = running
	if err := writeHeap(filepath.Join(p.dir, p.self+"-heap.pprof")); err != nil {
		p.heapErr = err
	}
	if err := p.server.command("heap " + filepath.Join(p.dir, "server-heap.pprof")); err != nil {
		p.heapErr = err
	}
}

// stop ends both CPU profiles.
func (p *profiler) stop() error {
	pprof.StopCPUProfile()
	err := p.cpu.Close()
	if e := p.server.command("cpu-stop"); err == nil {
		err = e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peak == 0 {
		if e := writeHeap(filepath.Join(p.dir, p.self+"-heap.pprof")); err == nil {
			err = e
		}
		if e := p.server.command("heap " + filepath.Join(p.dir, "server-heap.pprof")); err == nil {
			err = e
		}
	}
	if err == nil {
		err = p.heapErr
	}
	return err
}

func writeHeap(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

// serveCommands runs the child's profiling commands read from r (one a line: "cpu <file>",
// "cpu-stop", "heap <file>") until r ends.
func serveCommands(r io.Reader) {
	var cpu *os.File
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		var err error
		switch cmd {
		case "cpu":
			if cpu, err = os.Create(arg); err == nil {
				err = pprof.StartCPUProfile(cpu)
			}
		case "cpu-stop":
			if cpu != nil {
				pprof.StopCPUProfile()
				err = cpu.Close()
				cpu = nil
			}
		case "heap":
			err = writeHeap(arg)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench server: profile:", err)
		}
	}
	if cpu != nil {
		pprof.StopCPUProfile()
		_ = cpu.Close()
	}
}
