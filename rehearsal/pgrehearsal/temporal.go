package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql" // postgres12
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	"go.temporal.io/server/temporal"
	sqltool "go.temporal.io/server/tools/sql"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/csp-ops/work365-upgrade/deploy"
	"github.com/csp-ops/work365-upgrade/rehearsal/workerproc"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// sqlToolArg makes this program behave as temporal-sql-tool (the server's own SQL tooling,
// go.temporal.io/server/tools/sql): the schema steps run in a child process, as in the
// admin-tools image, because the tool exits the process on failure.
const sqlToolArg = "temporal-sql-tool"

func runSQLTool(args []string) {
	if err := sqltool.RunTool(append([]string{sqlToolArg}, args...)); err != nil {
		fmt.Fprintln(os.Stderr, "temporal-sql-tool:", err)
		os.Exit(1)
	}
}

// setupSchema does what deploy/temporal/setup-schema.sh does in temporalio/admin-tools, with
// the schema files of the go.temporal.io/server module this program is built with (the
// version the compose images are pinned to): create each database, setup-schema -v 0.0,
// update-schema -d schema/postgresql/v12/<temporal|visibility>/versioned. It then checks the
// versions the server expects.
func setupSchema(ctx context.Context, pg *pgCluster, s deploy.TemporalSettings, work string, logf func(string, ...any)) error {
	dir := filepath.Join(work, "schema")
	if err := extractSchema(dir); err != nil {
		return fmt.Errorf("extract the server module's schema files: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	base := []string{"--plugin", s.Plugin, "--ep", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-u", s.User}
	for _, db := range []struct{ name, sub, want string }{
		{s.Database, "temporal", pgschema.Version},
		{s.VisibilityDatabase, "visibility", pgschema.VisibilityVersion},
	} {
		for _, step := range [][]string{
			{"--db", db.name, "create"},
			{"--db", db.name, "setup-schema", "-v", "0.0"},
			{"--db", db.name, "update-schema", "-d", filepath.Join(dir, "postgresql", "v12", db.sub, "versioned")},
		} {
			cmd := exec.CommandContext(ctx, self, append(append([]string{sqlToolArg}, base...), step...)...)
			cmd.Env = append(os.Environ(), "SQL_PASSWORD="+pg.password)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("temporal-sql-tool %s %s: %w: %s", db.name, step[2], err, workerproc.LastLines(out, 6))
			}
		}
		conn, err := sqltool.NewConnection(sqlConfig(pg, s, db.name), log.NewNoopLogger())
		if err != nil {
			return err
		}
		got, err := conn.ReadSchemaVersion()
		conn.Close()
		if err != nil {
			return fmt.Errorf("read the schema version of %s: %w", db.name, err)
		}
		if got != db.want {
			return fmt.Errorf("database %s is at schema %s; go.temporal.io/server expects %s", db.name, got, db.want)
		}
		logf("database %s: schema %s (postgresql/v12/%s)", db.name, got, db.sub)
	}
	return nil
}

// extractSchema writes the server module's embedded schema/postgresql files into dir.
func extractSchema(dir string) error {
	assets := schema.Assets()
	return fs.WalkDir(assets, "postgresql", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// sqlConfig is one SQL store as the server image's config template builds it from
// temporal.env (postgres12, user, pools).
func sqlConfig(pg *pgCluster, s deploy.TemporalSettings, db string) *config.SQL {
	return &config.SQL{
		PluginName: s.Plugin, DatabaseName: db, ConnectAddr: pg.address(), ConnectProtocol: "tcp",
		User: s.User, Password: pg.password,
		MaxConns: s.MaxConns, MaxIdleConns: s.MaxIdleConns, MaxConnLifetime: s.MaxConnLifetime,
	}
}

// server is the Temporal server (frontend, history, matching, worker) on the cluster.
type server struct {
	srv      temporal.Server
	frontend string
}

// startServer starts Temporal with the compose topology's persistence: stores "default" and
// "visibility" on postgres12 (SQL advanced visibility), the shards, pools, dynamic config and
// namespaces of deploy/, and history archival to the filestore under archiveDir.
func startServer(ctx context.Context, pg *pgCluster, s deploy.TemporalSettings, work, archiveDir string, logOut io.Writer) (*server, error) {
	ports := make([]int, 5)
	for i := range ports {
		p, err := workerproc.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	dc := filepath.Join(work, "dynamicconfig.yaml")
	if err := os.WriteFile(dc, deploy.DynamicConfig(), 0o644); err != nil {
		return nil, err
	}
	const host, clusterName = "127.0.0.1", "active"
	frontend := net.JoinHostPort(host, strconv.Itoa(ports[0]))
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = host
	conf.Persistence = config.Persistence{
		DefaultStore: "default", VisibilityStore: "visibility", NumHistoryShards: s.NumHistoryShards,
		DataStores: map[string]config.DataStore{
			"default":    {SQL: sqlConfig(pg, s, s.Database)},
			"visibility": {SQL: sqlConfig(pg, s, s.VisibilityDatabase)},
		},
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace: false, FailoverVersionIncrement: 10, MasterClusterName: clusterName, CurrentClusterName: clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend, HTTPAddress: net.JoinHostPort(host, strconv.Itoa(ports[4])),
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	services := []primitives.ServiceName{primitives.FrontendService, primitives.HistoryService, primitives.MatchingService, primitives.WorkerService}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for i, svc := range services {
		var sc config.Service
		sc.RPC.GRPCPort = ports[i]
		sc.RPC.BindOnIP = host
		if svc == primitives.FrontendService {
			sc.RPC.HTTPPort = ports[4]
		}
		conf.Services[string(svc)] = sc
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(host, strconv.Itoa(ports[i])))
	}
	archivalConfig(&conf, archiveDir)
	conf.PublicClient.HostPort = frontend
	// As DYNAMIC_CONFIG_FILE_PATH sets it in the compose server.
	conf.DynamicConfigClient = &dynamicconfig.FileBasedClientConfig{Filepath: dc, PollInterval: 60 * time.Second}

	enc := log.DefaultZapEncoderConfig
	enc.CallerKey = zapcore.OmitKey
	logger := log.NewZapLogger(zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(logOut), zapcore.WarnLevel)))
	srv, err := temporal.NewServer(
		temporal.WithConfig(&conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
	)
	if err != nil {
		return nil, fmt.Errorf("new Temporal server on PostgreSQL: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal on PostgreSQL: %w", err)
	}
	return &server{srv: srv, frontend: frontend}, nil
}

func (s *server) stop() { _ = s.srv.Stop() }

// setupNamespaces does what deploy/temporal/setup-namespace.sh does: each namespace of
// temporal.env with its retention (and history archival, see archivalConfig), then the
// worker's search attributes.
func setupNamespaces(ctx context.Context, c client.Client, s deploy.TemporalSettings, archiveURI string) error {
	for _, ns := range s.Namespaces {
		err := retry(ctx, func() error {
			_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
				Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(s.Retention),
				HistoryArchivalState: enumspb.ARCHIVAL_STATE_ENABLED, HistoryArchivalUri: archiveURI,
			})
			var exists *serviceerror.NamespaceAlreadyExists
			if errors.As(err, &exists) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
		err = retry(ctx, func() error {
			_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: searchattr.All()})
			var exists *serviceerror.AlreadyExists
			if errors.As(err, &exists) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("search attributes of %s: %w", ns, err)
		}
	}
	return nil
}

// dial connects to the server, waiting for it to answer.
func dial(ctx context.Context, address, namespace string, logger *zap.Logger) (client.Client, error) {
	var c client.Client
	err := retry(ctx, func() (err error) {
		c, err = client.DialContext(ctx, client.Options{HostPort: address, Namespace: namespace, Logger: app.NewTemporalLogger(logger)})
		return err
	})
	return c, err
}

func retry(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		var invalid *serviceerror.InvalidArgument
		if errors.As(err, &invalid) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(300 * time.Millisecond):
		}
	}
}
