package devserver_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

const taskQueue = "devserver-test"

var stageKey = temporal.NewSearchAttributeKeyKeyword("WorkUpgradeStage")

// stageWorkflow sets WorkUpgradeStage and returns it.
func stageWorkflow(ctx workflow.Context, stage string) (string, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, stageKey.ValueSet(stage)); err != nil {
		return "", err
	}
	return "at " + stage, nil
}

func start(t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	begin := time.Now()
	s, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("server up at %s in %v", s.FrontendAddress(), time.Since(begin).Round(time.Millisecond))
	return s
}

func dial(t *testing.T, s *devserver.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

func startWorker(t *testing.T, c client.Client) worker.Worker {
	t.Helper()
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(stageWorkflow)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	return w
}

// runStage runs stageWorkflow to completion (a worker must be running).
func runStage(t *testing.T, c client.Client, id, stage string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, stageWorkflow, stage)
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if got != "at "+stage {
		t.Fatalf("workflow result %q", got)
	}
}

// listIDs polls ListWorkflow (visibility is written asynchronously) until
// it returns want, or fails.
func waitListed(t *testing.T, c client.Client, query, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("ListWorkflow(%q): %v", query, err)
		}
		var ids []string
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if len(ids) == 1 && ids[0] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListWorkflow(%q) = %v, want [%s]", query, ids, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestInMemoryWorkflowSearchAttributeAndUI(t *testing.T) {
	// All of the worker's attributes, which must fit SQLite's preallocated
	// columns.
	s := start(t, devserver.Options{
		UIPort:           freePort(t),
		SearchAttributes: searchattr.All(),
	})
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	if s.Namespace() != "default" {
		t.Errorf("namespace %q", s.Namespace())
	}
	c := dial(t, s)
	defer c.Close()
	defer startWorker(t, c).Stop()
	// A memory database has four history shards (their timer queues keep up under a burst;
	// one fell minutes behind), and the workflows below run across them.
	if n := historyShards(t, c); n != 4 {
		t.Errorf("memory database: %d history shards, want 4", n)
	}

	begin := time.Now()
	runStage(t, c, "tenant-a", "import")
	runStage(t, c, "tenant-b", "verify")
	waitListed(t, c, "WorkUpgradeStage = 'import'", "tenant-a")
	waitListed(t, c, "WorkUpgradeStage = 'verify' AND ExecutionStatus = 'Completed'", "tenant-b")
	t.Logf("two workflows run and listed in %v", time.Since(begin).Round(time.Millisecond))

	// The UI serves its single-page app on /.
	resp, err := http.Get(s.UIURL() + "/")
	if err != nil {
		t.Fatalf("UI: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("UI GET / = %s", resp.Status)
	}
	if !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("UI GET / did not return HTML: %.200s", body)
	}
}

// restartOpts is the configuration of the first run; later runs add
// WorkLinkRound.
func restartOpts(dir string) devserver.Options {
	return devserver.Options{
		DataDir:   dir,
		Namespace: "work365",
		SearchAttributes: map[string]enumspb.IndexedValueType{
			"WorkUpgradeStage": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
	}
}

// TestHelperFirstRun is the first run of TestRestartWithDataDir, in a child
// process so that the restart really reopens the database file.
func TestHelperFirstRun(t *testing.T) {
	dir := os.Getenv("DEVSERVER_TEST_FIRST_RUN_DIR")
	if dir == "" {
		t.Skip("helper for TestRestartWithDataDir")
	}
	s := start(t, restartOpts(dir))
	c := dial(t, s)
	w := startWorker(t, c)
	runStage(t, c, "tenant-old", "import")
	waitListed(t, c, "WorkUpgradeStage = 'import'", "tenant-old")
	// A file database keeps the one shard it was created with.
	if n := historyShards(t, c); n != 1 {
		t.Errorf("file database: %d history shards after restart, want 1", n)
	}
	w.Stop()
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestRestartWithDataDir(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFirstRun$", "-test.v")
	cmd.Env = append(os.Environ(), "DEVSERVER_TEST_FIRST_RUN_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestHelperFirstRun") {
		t.Fatalf("first run: %v\n%s", err, out)
	}

	// Same directory in this process, with a new search attribute: the old
	// workflow is still there and the attribute is added to the existing
	// namespace. Then once more in this process.
	opts := restartOpts(dir)
	opts.SearchAttributes["WorkLinkRound"] = enumspb.INDEXED_VALUE_TYPE_INT
	for run := 2; run <= 3; run++ {
		s := start(t, opts)
		c := dial(t, s)
		checkRestarted(t, c, opts.SearchAttributes)
		c.Close()
		if err := s.Stop(); err != nil {
			t.Fatalf("run %d: Stop: %v", run, err)
		}
	}
}

func checkRestarted(t *testing.T, c client.Client, attrs map[string]enumspb.IndexedValueType) {
	t.Helper()
	ctx := context.Background()
	desc, err := c.DescribeWorkflowExecution(ctx, "tenant-old", "")
	if err != nil {
		t.Fatalf("old workflow after restart: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("old workflow status %v", st)
	}
	waitListed(t, c, "WorkUpgradeStage = 'import'", "tenant-old")
	// A file database keeps the one shard it was created with.
	if n := historyShards(t, c); n != 1 {
		t.Errorf("file database: %d history shards after restart, want 1", n)
	}

	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "work365"})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range attrs {
		if got := sa.GetCustomAttributes()[name]; got != typ {
			t.Errorf("search attribute %s: %v, want %v", name, got, typ)
		}
	}
}

// historyShards is the server's history shard count, as it reports it.
func historyShards(t *testing.T, c client.Client) int32 {
	t.Helper()
	info, err := c.WorkflowService().GetClusterInfo(context.Background(), &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		t.Fatalf("GetClusterInfo: %v", err)
	}
	return info.GetHistoryShardCount()
}

// Busy ports are reported as errors (the UI server alone would exit the
// process).
func TestBusyPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	ctx := context.Background()

	if s, err := devserver.Start(ctx, devserver.Options{FrontendPort: busy}); err == nil {
		s.Stop()
		t.Error("Start with a busy frontend port succeeded")
	}
	if s, err := devserver.Start(ctx, devserver.Options{UIPort: busy}); err == nil {
		s.Stop()
		t.Error("Start with a busy UI port succeeded")
	} else {
		t.Log(err)
	}
}
