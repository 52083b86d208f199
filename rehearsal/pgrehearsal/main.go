// Command pgrehearsal proves the production topology without Docker: a private PostgreSQL
// cluster (installed from Debian packages when missing), Temporal's schemas applied with the
// server's own SQL tooling and schema files, the Temporal server on it with the compose
// file's settings (deploy/temporal/temporal.env, dynamic config, namespaces, search
// attributes), and a fleet upgraded by several processes of the production worker binary
// against the simulated Microsoft cloud, one stopped with SIGTERM and one killed with SIGKILL
// mid-way. It checks that every tenant completes with exactly one Work 365 import, and that the
// on-call visibility queries answer on PostgreSQL's advanced visibility; it prints its figures
// and exits non-zero when a check fails.
//
//	go run ./rehearsal/pgrehearsal                 # 100 tenants, 3 workers
//	go run ./rehearsal/pgrehearsal --tenants 20 --workers 3 --speed 120 --keep
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/csp-ops/work365-upgrade/deploy"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == sqlToolArg {
		runSQLTool(os.Args[2:])
		return
	}
	var o options
	flag.IntVar(&o.tenants, "tenants", 100, "tenants in the generated fleet")
	flag.Int64Var(&o.seed, "seed", 15, "seed of the generated fleet")
	flag.IntVar(&o.workers, "workers", 3, "worker processes (at least 3: one is stopped with SIGTERM, one killed with SIGKILL)")
	flag.Float64Var(&o.speed, "speed", 120, "simulated time runs this many times faster than real time")
	flag.IntVar(&o.concurrency, "concurrency", 50, "the fleet wave's concurrency")
	flag.DurationVar(&o.timeout, "timeout", 40*time.Minute, "give up after this long")
	flag.StringVar(&o.workerBin, "worker-bin", "", "a built worker binary (default: go build ./worker)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder (PostgreSQL data, logs, worker configs, archive)")
	flag.Parse()
	if o.workers < 3 {
		fmt.Fprintln(os.Stderr, "pgrehearsal: --workers must be at least 3")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pgrehearsal: FAILED:", err)
		os.Exit(1)
	}
}

type options struct {
	tenants, workers, concurrency int
	seed                          int64
	speed                         float64
	timeout                       time.Duration
	workerBin                     string
	keep                          bool
}

func run(ctx context.Context, o options, out io.Writer) (err error) {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(out, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	settings, err := deploy.Temporal()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "work365-pgrehearsal-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep || err != nil {
			logf("work folder kept: %s", work)
			return
		}
		_ = os.RemoveAll(work)
	}()
	fig := &figures{}

	bin, err := pgBinDir(ctx, logf)
	if err != nil {
		return err
	}
	t0 := time.Now()
	pg, err := startCluster(ctx, bin, os.TempDir(), logf)
	if err != nil {
		return err
	}
	defer func() { pg.stop(o.keep || err != nil) }()
	fig.add("PostgreSQL cluster up (initdb + start)", time.Since(t0))

	t0 = time.Now()
	if err := setupSchema(ctx, pg, settings, work, logf); err != nil {
		return err
	}
	fig.add("schemas applied (temporal-sql-tool)", time.Since(t0))

	t0 = time.Now()
	// The compose provider (filestore, temporal.env HISTORY_ARCHIVAL_URI) in a folder of ours.
	if !strings.HasPrefix(settings.HistoryArchivalURI, "file://") {
		return fmt.Errorf("%s: HISTORY_ARCHIVAL_URI=%s: the rehearsal runs the filestore provider (file://)", deploy.TemporalEnvFile, settings.HistoryArchivalURI)
	}
	archive := filepath.Join(work, "archive")
	if err := os.MkdirAll(archive, 0o750); err != nil {
		return err
	}
	serverLog, err := os.Create(filepath.Join(work, "temporal.log"))
	if err != nil {
		return err
	}
	// Not closed: the server's goroutines may still log while it stops; the process exit
	// closes it.
	srv, err := startServer(ctx, pg, settings, work, archive, serverLog)
	if err != nil {
		return err
	}
	defer srv.stop()
	logf("Temporal %s on PostgreSQL at %s (%d history shards; logs in %s)", serverVersion(), srv.frontend, settings.NumHistoryShards, serverLog.Name())
	fig.add("Temporal server up", time.Since(t0))

	r, err := newRehearsal(ctx, o, settings, srv.frontend, work, "file://"+archive, logf)
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.run(ctx, fig); err != nil {
		return err
	}
	fig.add("whole rehearsal", time.Since(start))
	fig.print(out, o)
	if len(r.failures) > 0 {
		return errors.Join(r.failures...)
	}
	logf("PASS: %d tenants upgraded on PostgreSQL by %d worker processes (one stopped with SIGTERM, one killed with SIGKILL)", o.tenants, o.workers)
	return nil
}

// figures are the measured durations and counts, printed at the end (BENCHMARKS.md keeps
// the last run's).
type figures struct {
	lines []string
}

func (f *figures) add(what string, d time.Duration) {
	f.lines = append(f.lines, fmt.Sprintf("%-52s %8.1fs", what, d.Seconds()))
}

func (f *figures) note(format string, args ...any) {
	f.lines = append(f.lines, fmt.Sprintf(format, args...))
}

func (f *figures) print(out io.Writer, o options) {
	fmt.Fprintf(out, "\nfigures (%d tenants, %d worker processes, speed x%g, concurrency %d):\n", o.tenants, o.workers, o.speed, o.concurrency)
	for _, l := range f.lines {
		fmt.Fprintln(out, "  "+l)
	}
}
