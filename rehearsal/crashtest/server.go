package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// Environment of the server process.
const (
	roleServer   = "server"
	envStateDir  = "W365_CRASHTEST_STATE"
	envPort      = "W365_CRASHTEST_PORT"
	envNamespace = "W365_CRASHTEST_NAMESPACE"
	// readyLine is what the server process prints once it answers.
	readyLine = "ready"
)

func isServer() bool { return os.Getenv(envRole) == roleServer }

// serverMain is the server process: the embedded Temporal server on the state folder's SQLite
// file, until SIGTERM. Running it in a process of its own makes its restart a real one:
// nothing of it survives in memory, it starts again from the file.
func serverMain() int {
	if err := runServer(); err != nil {
		fmt.Fprintln(os.Stderr, "crashtest server:", err)
		return 1
	}
	return 0
}

func runServer() error {
	port, err := strconv.Atoi(os.Getenv(envPort))
	if err != nil {
		return fmt.Errorf("%s: %w", envPort, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := devserver.Start(ctx, devserver.Options{DataDir: os.Getenv(envStateDir), Namespace: os.Getenv(envNamespace),
		FrontendPort: port, SearchAttributes: searchattr.All(), LogOutput: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Println(readyLine)
	<-ctx.Done()
	return srv.Stop()
}

// serverProc is the running server process.
type serverProc struct {
	cmd  *exec.Cmd
	done chan error
}

// startServer starts the server process on the state folder and waits until it answers.
func (r *rig) startServer(ctx context.Context) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envRole+"="+roleServer, envStateDir+"="+r.dir, envPort+"="+strconv.Itoa(r.frontendPort), envNamespace+"="+namespace)
	cmd.Stderr = r.serverLog
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the Temporal server process: %w", err)
	}
	p := &serverProc{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == readyLine && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		p.done <- cmd.Wait()
	}()
	select {
	case ok := <-ready:
		if !ok {
			return nil, fmt.Errorf("the Temporal server process ended before it answered: read %s", r.serverLog.Name())
		}
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("the Temporal server process did not answer: %w", ctx.Err())
	}
	r.logf("Temporal server process %d answers on 127.0.0.1:%d (SQLite %s)", cmd.Process.Pid, r.frontendPort, devserver.DBFileName)
	return p, nil
}

// stop stops the server process (SIGTERM: the server stops cleanly), killing it after 30 s.
func (p *serverProc) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("the Temporal server process did not stop within 30s and was killed")
	}
}
