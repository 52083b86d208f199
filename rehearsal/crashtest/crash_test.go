package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the rehearsal's worker and server processes too: Run
// starts this very executable in those roles, as the command does.
func TestMain(m *testing.M) {
	if isWorker() {
		os.Exit(workerMain())
	}
	if isServer() {
		os.Exit(serverMain())
	}
	os.Exit(m.Run())
}

// TestCrashAndRestart is issue 12's crash-and-restart rehearsal at full size: 200 tenants, the
// worker process killed five times with SIGKILL and the stack restarted once from its files.
// Run's checks are the assertions (every tenant upgraded, one Work 365 import each, portal
// uninstall/reinstall where due, every confirmation once in the results).
func TestCrashAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("crash-and-restart rehearsal of 200 tenants: skipped with -short")
	}
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{Tenants: 200, Seed: 11, Speed: 600, Kills: 5, Timeout: 25 * time.Minute, Out: &out})
	if rep != nil {
		var b bytes.Buffer
		printReport(&b, rep)
		t.Log(b.String())
	}
	if err != nil {
		t.Log(out.String())
		t.Fatal(err)
	}
	if len(rep.Kills) != 5 || len(rep.Restarts) != 1 {
		t.Fatalf("%d kills and %d restarts done: want 5 and 1", len(rep.Kills), len(rep.Restarts))
	}
	for _, k := range rep.Kills {
		if k.Running == 0 {
			t.Fatalf("a kill at %s found nothing running", k.At)
		}
	}
	if rep.Outcomes["upgraded"] != 200 {
		t.Fatalf("outcomes %v: want 200 upgraded", rep.Outcomes)
	}
}
