// Command crashtest is the crash-and-restart rehearsal: a generated fleet upgrades on the
// embedded Temporal server against the simulated cloud while the worker — the production
// worker (worker/app.Run) in a process of its own — is killed with SIGKILL several times at
// random moments, and the stack (the embedded Temporal server, also a process of its own, from
// its SQLite file; the simulated cloud from its saved state) is stopped and restarted once. It passes when every tenant upgrades,
// the cloud counts one Work 365 import per tenant (one more only where the scenario made an
// import fail on purpose) and one portal uninstall and reinstall where due, and every task the
// simulated people confirmed is in the results exactly once. It prints what it measured.
//
//	go run ./rehearsal/crashtest --tenants 200 --kills 5 --speed 600
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

func main() {
	if isWorker() {
		os.Exit(workerMain())
	}
	if isServer() {
		os.Exit(serverMain())
	}
	var o Options
	flag.IntVar(&o.Tenants, "tenants", 200, "tenants in the generated fleet")
	flag.Int64Var(&o.Seed, "seed", 11, "seed of the fleet and of the kill schedule")
	flag.Float64Var(&o.Speed, "speed", 600, "simulated time runs this many times faster than real time")
	flag.IntVar(&o.Kills, "kills", 5, "how many times the worker process is killed (SIGKILL)")
	flag.DurationVar(&o.MinGap, "min-gap", 4*time.Second, "least real time between two kills (or a kill and the restart)")
	flag.DurationVar(&o.MaxGap, "max-gap", 12*time.Second, "most real time between two kills (or a kill and the restart)")
	flag.DurationVar(&o.Down, "down", 3*time.Second, "how long the stack stays down at its restart")
	flag.StringVar(&o.StateDir, "state", "", "empty or new folder for the SQLite file, the cloud's state and the logs (default: a temporary folder, removed when the rehearsal passes)")
	flag.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "give up after this long")
	jsonOut := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()
	o.Out = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, o)
	if rep != nil {
		if *jsonOut {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			printReport(os.Stdout, rep)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest: FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("crashtest: PASSED")
}

// printReport writes the figures for people.
func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\nCrash-and-restart rehearsal: %d tenants, simulated time x%g, wall time %s\n", r.Tenants, r.Speed, r.Wall.Round(time.Second))
	for i, k := range r.Kills {
		fmt.Fprintf(w, "  kill %d     at %6.1fs  SIGKILL of a worker up %s, %d upgrades running\n", i+1, k.At.Seconds(), k.WorkerUp.Round(time.Millisecond), k.Running)
	}
	for _, s := range r.Restarts {
		fmt.Fprintf(w, "  restart    at %6.1fs  stack stopped in %s, Temporal answered %s after its start from SQLite, down %s; %d upgrades running\n",
			s.At.Seconds(), s.Stop.Round(time.Millisecond), s.Start.Round(time.Millisecond), s.Down.Round(time.Millisecond), s.Running)
	}
	fmt.Fprintf(w, "  outcomes   %v\n", r.Outcomes)
	keys := make([]int, 0, len(r.ImportStarts))
	for k := range r.ImportStarts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	fmt.Fprint(w, "  Work 365 imports started per tenant:")
	for _, k := range keys {
		fmt.Fprintf(w, " %d×%d tenants", k, r.ImportStarts[k])
	}
	fmt.Fprintf(w, " (%d failed on purpose by the scenario, each retried once by the operator)\n", r.InjectedImportFailures)
	fmt.Fprintf(w, "  portal     %d uninstalled, %d reinstalled (one each where due)\n", r.PortalUninstalls, r.PortalReinstalls)
	fmt.Fprintf(w, "  people     %d confirmations, each once in a result (%d needed more than one attempt)\n", r.Confirmations, r.ConfirmationRetries)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  PROBLEM    %s\n", p)
	}
	fmt.Fprintf(w, "  state      %s\n", r.StateDir)
}
