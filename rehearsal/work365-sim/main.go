// Command work365-sim serves the simulated Microsoft cloud (package sim) on a local port, for
// rehearsals whose worker runs in another process: that process sends Microsoft's hosts to
// the printed URL with sim.Transport(url) (scheme and host rewritten, req.Host kept).
//
// Usage:
//
//	work365-sim -scenario examples/sim-scenario.yaml -addr 127.0.0.1:8765 [-speed 60] [-no-faults] [-v]
//	work365-sim -generate 50 -seed 7 -addr 127.0.0.1:8765
//
// The admin API answers on the same port for Host "sim.local": POST /actions/{action},
// GET /counters, GET /state/{tenant}, GET /tenants, GET /clock.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
)

func main() {
	var (
		scenario = flag.String("scenario", "", "scenario YAML file (see examples/sim-scenario.yaml)")
		generate = flag.Int("generate", 0, "generate this many tenants instead of reading a scenario")
		seed     = flag.Int64("seed", 1, "seed for -generate")
		addr     = flag.String("addr", "127.0.0.1:8765", "address to listen on")
		speed    = flag.Float64("speed", 1, "simulated time runs this many times faster than real time")
		noFaults = flag.Bool("no-faults", false, "disable the scenario's fault injection")
		verbose  = flag.Bool("v", false, "log every request and action")
	)
	flag.Parse()
	if err := run(*scenario, *generate, *seed, *addr, *speed, *noFaults, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "work365-sim:", err)
		os.Exit(1)
	}
}

func run(scenarioFile string, generate int, seed int64, addr string, speed float64, noFaults, verbose bool) error {
	var scn *sim.Scenario
	switch {
	case scenarioFile != "" && generate > 0:
		return fmt.Errorf("give -scenario or -generate, not both")
	case scenarioFile != "":
		s, err := sim.LoadScenario(scenarioFile)
		if err != nil {
			return err
		}
		scn = s
	case generate > 0:
		scn = sim.Generate(generate, seed)
	default:
		return fmt.Errorf("give -scenario FILE or -generate N")
	}
	opts := sim.Options{Addr: addr, NoFaults: noFaults, Clock: sim.NewScaledClock(speed)}
	if verbose {
		opts.Logf = log.Printf
	}
	cloud := sim.New(scn, opts)
	url := cloud.Start()
	defer cloud.Close()
	log.Printf("simulated Microsoft cloud for %d tenants at %s (time x%g); admin API: Host sim.local", len(scn.Tenants), url, speed)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Print("stopping")
	return nil
}
