package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/csp-ops/work365-upgrade/rehearsal/workerproc"
)

// pgCluster is a private PostgreSQL cluster in a temporary folder: no system service, its own
// port on 127.0.0.1, password authentication, stopped and removed by stop.
type pgCluster struct {
	bin      string // folder of initdb, pg_ctl
	dir      string // data, socket and log
	port     int
	user     string
	password string
	runAs    *user.User // nil: the current user
	logf     func(string, ...any)
}

// pgBinDir finds PostgreSQL's server programs (Debian keeps them in /usr/lib/postgresql/N/bin),
// installing Debian's postgresql package when they are missing.
func pgBinDir(ctx context.Context, logf func(string, ...any)) (string, error) {
	find := func() string {
		if p, err := exec.LookPath("pg_ctl"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				if _, err := os.Stat(filepath.Join(filepath.Dir(real), "initdb")); err == nil {
					return filepath.Dir(real)
				}
			}
		}
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d
			}
		}
		return ""
	}
	if d := find(); d != "" {
		return d, nil
	}
	logf("PostgreSQL is not installed: installing Debian's postgresql package")
	sudo := []string{}
	if os.Geteuid() != 0 {
		sudo = []string{"sudo"}
	}
	for _, args := range [][]string{{"apt-get", "update", "-qq"}, {"apt-get", "install", "-y", "-qq", "postgresql"}} {
		cmd := exec.CommandContext(ctx, append(sudo, args...)[0], append(sudo, args...)[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("install PostgreSQL (%s): %w: %s — install the postgresql package and run again", strings.Join(args, " "), err, workerproc.LastLines(out, 5))
		}
	}
	if d := find(); d != "" {
		return d, nil
	}
	return "", errors.New("postgresql is installed but initdb was not found under /usr/lib/postgresql/*/bin")
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// startCluster runs initdb and pg_ctl start. PostgreSQL refuses to run as root: as root it
// runs them as the postgres user (created by Debian's package) through runuser.
func startCluster(ctx context.Context, bin, parent string, logf func(string, ...any)) (*pgCluster, error) {
	dir, err := os.MkdirTemp(parent, "work365-pg-")
	if err != nil {
		return nil, err
	}
	c := &pgCluster{bin: bin, dir: dir, user: "temporal", password: rand.Text(), logf: logf}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, PostgreSQL needs another user: %w — create the postgres user (Debian's postgresql package does) or run as a normal user", err)
		}
		c.runAs = u
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if c.runAs != nil {
		uid, _ := strconv.Atoi(c.runAs.Uid)
		gid, _ := strconv.Atoi(c.runAs.Gid)
		_ = os.Chown(pwfile, uid, gid)
	}
	// The compose file's postgres image: user temporal, password authentication.
	if err := c.run(ctx, "initdb", "-D", filepath.Join(dir, "data"), "-U", c.user, "--pwfile", pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		c.remove()
		return nil, err
	}
	_ = os.Remove(pwfile)
	c.port, err = workerproc.FreePort()
	if err != nil {
		c.remove()
		return nil, err
	}
	// Four services with two stores each and up to 20 connections per pool: more than the
	// default 100 connections.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off", c.port, dir)
	if err := c.run(ctx, "pg_ctl", "-D", filepath.Join(dir, "data"), "-l", filepath.Join(dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		c.remove()
		return nil, err
	}
	logf("PostgreSQL (%s) on 127.0.0.1:%d, data in %s", filepath.Base(filepath.Dir(bin)), c.port, dir)
	return c, nil
}

func (c *pgCluster) run(ctx context.Context, prog string, args ...string) error {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.runAs != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs.Username, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", prog, err, workerproc.LastLines(out, 8))
	}
	return nil
}

// address is host:port for Temporal's SQL plugin.
func (c *pgCluster) address() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)) }

// stop stops the cluster and removes its folder unless keep.
func (c *pgCluster) stop(keep bool) {
	if err := c.run(context.Background(), "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "stop"); err != nil {
		c.logf("stop PostgreSQL: %v", err)
	}
	if keep {
		c.logf("PostgreSQL data kept in %s", c.dir)
		return
	}
	c.remove()
}

func (c *pgCluster) remove() { _ = os.RemoveAll(c.dir) }
