// Package devserver runs an embedded Temporal server (SQLite persistence and
// visibility) with an optional Temporal Web UI, for the local one-command
// stack (devstack) and for integration tests.
//
// It pulls in the whole Temporal server and must never be imported by the
// production worker (./worker); the worker talks to a real cluster.
//
// Notes on the embedded SQLite plugin: it keeps every database connection it
// opened in a process-wide pool for the life of the process, even after Stop.
// Starting again with the same DataDir in the same process reuses that
// connection (which is what makes an in-process restart work); do not delete
// and recreate a DataDir under a running process and expect a fresh database.
package devserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	host = "127.0.0.1"

	// DBFileName is the SQLite file created inside Options.DataDir.
	DBFileName = "temporal.db"

	clusterName = "active"

	// Retention of closed workflows in the namespace created at first start.
	// Longer than the server's 24h default so a finished rehearsal wave can
	// still be inspected the next day.
	namespaceRetention = 7 * 24 * time.Hour

	readyTimeout = 60 * time.Second
)

// Options configures Start. The zero value is an in-memory server with the
// "default" namespace on a free port and no UI.
type Options struct {
	// DataDir holds the SQLite file DataDir/temporal.db (created, with its
	// schema, when absent; reused otherwise). "" means an in-memory database
	// that is lost on Stop.
	DataDir string
	// Namespace is created at start if missing. Default "default".
	Namespace string
	// FrontendPort is the gRPC port on 127.0.0.1. 0 picks a free port.
	FrontendPort int
	// UIPort, if not 0, serves the Temporal Web UI on 127.0.0.1:UIPort.
	UIPort int
	// CodecEndpoint, if set, is the codec server the Web UI decodes payloads through
	// (the ui-server's codec.endpoint, TEMPORAL_CODEC_ENDPOINT in its image).
	CodecEndpoint string
	// SearchAttributes are custom search attributes registered in Namespace
	// (idempotent: existing ones are kept, missing ones are added on every
	// start). At most 10 Keyword, 3 KeywordList, 3 Int, 3 Double, 3 Bool,
	// 3 Datetime, 3 Text per namespace on SQLite.
	SearchAttributes map[string]enumspb.IndexedValueType
	// LogLevel of the server's own logs: debug, info, warn (default), error,
	// or "off".
	LogLevel string
	// LogOutput receives the server logs (JSON lines). nil means stderr.
	LogOutput io.Writer
	// Archival turns on Temporal's history archival (filestore) for the namespace, and may
	// shorten its retention: closed upgrades then outlive retention in the archive.
	Archival *Archival
	// Security serves the frontend with TLS and authorization (nil: plaintext, no
	// authorization), as a production cluster or Temporal Cloud does; tests of the
	// worker's and starter's mTLS and API keys use it. No Web UI with it.
	Security *Security
	// DynamicConfig sets further dynamic configuration keys (e.g.
	// "history.cacheNonUserContextLockTimeout"), over this package's own; benchmarks try
	// server settings with it.
	DynamicConfig map[string]any
}

// Archival is the embedded server's history archival.
type Archival struct {
	// Dir receives archived histories (URI file://Dir).
	Dir string
	// Retention of closed workflows in the namespace (0: the default, 7 days).
	Retention time.Duration
}

// Security is the TLS and authorization of the embedded server.
type Security struct {
	// TLS is the server's Global.TLS (frontend certificate, client CAs, system worker's
	// client certificate).
	TLS config.RootTLS
	// ClaimMapper and Authorizer decide who may call (e.g. a bearer API key).
	ClaimMapper authorization.ClaimMapper
	Authorizer  authorization.Authorizer
	// ClientTLS and ClientCredentials are what Start's readiness check connects with.
	ClientTLS         *tls.Config
	ClientCredentials client.Credentials
}

// Server is a running embedded Temporal server.
type Server struct {
	srv       temporal.Server
	ui        *uiserver.Server
	uiDone    chan struct{}
	frontend  string
	uiURL     string
	namespace string
	logLevel  *zap.AtomicLevel // nil when logging is off
	security  *Security
	// visibility is the memory visibility database's configuration (nil for a file database).
	visibility *config.SQL

	stopOnce sync.Once
	stopErr  error
}

// Start starts the server and returns once the frontend answers, the
// namespace exists and the search attributes are registered. ctx bounds that
// wait only; it does not stop a started server (use Stop).
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	logger, level, err := newLogger(opts.LogLevel, opts.LogOutput)
	if err != nil {
		return nil, err
	}

	// Ports: the frontend's gRPC, one for each internal service, and the
	// frontend's HTTP API. All chosen while holding the listeners so they
	// are distinct.
	ports, err := freePorts(len(serviceNames)+1, opts.FrontendPort)
	if err != nil {
		return nil, err
	}
	frontendPort := ports[0]
	frontend := net.JoinHostPort(host, strconv.Itoa(frontendPort))

	sqlCfg, err := prepareDB(opts)
	if err != nil {
		return nil, err
	}

	conf := serverConfig(sqlCfg, ports)
	if opts.Archival != nil {
		conf.Archival.History = config.HistoryArchival{State: "enabled", EnableRead: true,
			Provider: &config.HistoryArchiverProvider{Filestore: &config.FilestoreArchiver{FileMode: "0640", DirMode: "0750"}}}
		conf.NamespaceDefaults.Archival.History = config.HistoryArchivalNamespaceDefaults{State: "enabled", URI: "file://" + opts.Archival.Dir}
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("devserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("devserver: claim mapper: %w", err)
	}
	if sec := opts.Security; sec != nil {
		if opts.UIPort != 0 {
			return nil, errors.New("devserver: the Web UI is not served with Security (TLS)")
		}
		conf.Global.TLS = sec.TLS
		authorizer, claimMapper = sec.Authorizer, sec.ClaimMapper
	}
	dyn := dynamicconfig.StaticClient{
		// A dashboard polls ListWorkflow; the default of 10/s is tight.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Keep memory modest (default 128k entries).
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
	}
	if inMemory(sqlCfg) {
		// One node, one worker process: a task queue's four default partitions only make
		// tasks and polls meet later (forwarded between partitions). A fresh database has no
		// backlog in other partitions to strand; a file database keeps the default.
		dyn[dynamicconfig.MatchingNumTaskqueueReadPartitions.Key()] = 1
		dyn[dynamicconfig.MatchingNumTaskqueueWritePartitions.Key()] = 1
	}
	if opts.Archival != nil && opts.Archival.Retention > 0 {
		// Deletion after retention is spread over up to 30 minutes by default; a shortened
		// retention is for seeing it pass.
		dyn[dynamicconfig.RetentionTimerJitterDuration.Key()] = time.Second
	}
	for k, v := range opts.DynamicConfig {
		dyn[dynamicconfig.MakeKey(k)] = v
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for i, svc := range serviceNames {
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(host, strconv.Itoa(ports[i])))
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return nil, fmt.Errorf("devserver: new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("devserver: start: %w", err)
	}
	s := &Server{srv: srv, frontend: frontend, namespace: opts.Namespace, logLevel: level, security: opts.Security}
	defer func() {
		if err != nil {
			// The error is returned; stopping a half-started server only
			// adds noise.
			if level != nil {
				level.SetLevel(zapcore.FatalLevel)
			}
			_ = s.Stop()
		}
	}()

	if vis, ok := conf.Persistence.DataStores["sqlite-visibility"]; ok {
		s.visibility = vis.SQL
		if err := trimVisibility(ctx, vis.SQL); err != nil {
			return nil, err
		}
	}
	if err := s.waitReady(ctx, opts.SearchAttributes); err != nil {
		return nil, err
	}
	if opts.UIPort != 0 {
		if err := s.startUI(ctx, opts.UIPort, opts.CodecEndpoint); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// FrontendAddress is the host:port to pass to client.Dial.
func (s *Server) FrontendAddress() string { return s.frontend }

// Namespace is the namespace created at start.
func (s *Server) Namespace() string { return s.namespace }

// UIURL is the Web UI's base URL, or "" when started without a UI.
func (s *Server) UIURL() string { return s.uiURL }

// Stop stops the UI and the server. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		// Shutting down makes the services log warnings about each other
		// going away; they say nothing useful.
		if s.logLevel != nil && s.logLevel.Level() < zapcore.ErrorLevel {
			s.logLevel.SetLevel(zapcore.ErrorLevel)
		}
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		s.stopErr = s.srv.Stop()
	})
	return s.stopErr
}

var serviceNames = []primitives.ServiceName{
	primitives.FrontendService,
	primitives.HistoryService,
	primitives.MatchingService,
	primitives.WorkerService,
}

// prepareDB returns the SQLite config and, for a new database, creates the
// schema. The namespace is created (with its search attributes) when absent.
func prepareDB(opts Options) (*config.SQL, error) {
	cfg := &config.SQL{PluginName: sqliteplugin.PluginName}
	if opts.DataDir == "" {
		// The plugin creates the schema itself for memory databases. Shared
		// cache so that all services of this server see one database; a random
		// name so that servers in one process do not.
		cfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		cfg.DatabaseName = "devserver-" + strconv.FormatUint(rand.Uint64(), 36)
	} else {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("devserver: data dir: %w", err)
		}
		path, err := filepath.Abs(filepath.Join(opts.DataDir, DBFileName))
		if err != nil {
			return nil, fmt.Errorf("devserver: data dir: %w", err)
		}
		cfg.DatabaseName = path
		cfg.ConnectAttributes = map[string]string{
			"mode": "rwc",
			// Pragmas: WAL and synchronous=normal are ~3x faster than the
			// defaults here and still crash-safe for the database (a power
			// loss may lose the last transactions, not corrupt the file).
			"journal_mode": "wal",
			"synchronous":  "normal",
			"busy_timeout": "10000",
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := sqliteschema.SetupSchema(cfg); err != nil {
				for _, suffix := range []string{"", "-wal", "-shm"} {
					_ = os.Remove(path + suffix)
				}
				return nil, fmt.Errorf("devserver: schema setup: %w", err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("devserver: %w", err)
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("devserver: namespace %q: %w", opts.Namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(namespaceRetention)
	if ar := opts.Archival; ar != nil {
		if ar.Retention > 0 {
			ns.Detail.Config.Retention = durationpb.New(ar.Retention)
		}
		ns.Detail.Config.HistoryArchivalState = enumspb.ARCHIVAL_STATE_ENABLED
		ns.Detail.Config.HistoryArchivalUri = "file://" + ar.Dir
	}
	if err := sqliteschema.CreateNamespaces(cfg, ns); err != nil {
		return nil, fmt.Errorf("devserver: namespace %q: %w", opts.Namespace, err)
	}
	return cfg, nil
}

// inMemory says whether the database is a memory one (Options.DataDir empty).
func inMemory(c *config.SQL) bool { return c.ConnectAttributes["mode"] == "memory" }

func serverConfig(sqlCfg *config.SQL, ports []int) *config.Config {
	frontend := net.JoinHostPort(host, strconv.Itoa(ports[0]))
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = host
	conf.Persistence.DefaultStore = "sqlite"
	conf.Persistence.VisibilityStore = "sqlite"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlCfg}}
	if inMemory(sqlCfg) {
		conf.Persistence.NumHistoryShards = memoryShards
		// The plugin gives each database one connection, shared by every service: visibility
		// writes (a REPLACE over ~60 indexes and the full-text tables per upsert) then hold up
		// every history write. A memory database of its own gives visibility its own
		// connection. (A file database keeps one file: its visibility rows live there.)
		vis := *sqlCfg
		vis.ConnectAttributes = maps.Clone(sqlCfg.ConnectAttributes)
		vis.DatabaseName = sqlCfg.DatabaseName + "-visibility"
		conf.Persistence.DataStores["sqlite-visibility"] = config.DataStore{SQL: &vis}
		conf.Persistence.VisibilityStore = "sqlite-visibility"
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            net.JoinHostPort(host, strconv.Itoa(ports[len(serviceNames)])),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	for i, svc := range serviceNames {
		var sc config.Service
		sc.RPC.GRPCPort = ports[i]
		sc.RPC.BindOnIP = host
		if svc == primitives.FrontendService {
			sc.RPC.HTTPPort = ports[len(serviceNames)]
		}
		conf.Services[string(svc)] = sc
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend
	return &conf
}

// waitReady waits for the frontend and the namespace, then makes sure every
// wanted search attribute is registered (adding missing ones through the
// operator service, which on SQL visibility maps them onto the preallocated
// columns of the namespace).
func (s *Server) waitReady(ctx context.Context, attrs map[string]enumspb.IndexedValueType) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var c client.Client
	err := retry(ctx, func() (err error) {
		o := client.Options{
			HostPort:  s.frontend,
			Namespace: s.namespace,
			Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		}
		if s.security != nil {
			o.ConnectionOptions.TLS = s.security.ClientTLS
			o.Credentials = s.security.ClientCredentials
		}
		c, err = client.DialContext(ctx, o)
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: frontend %s not reachable: %w", s.frontend, err)
	}
	defer c.Close()

	err = retry(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.namespace})
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: namespace %q not ready: %w", s.namespace, err)
	}
	if len(attrs) == 0 {
		return nil
	}

	missing := func() (map[string]enumspb.IndexedValueType, error) {
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.namespace})
		if err != nil {
			return nil, err
		}
		out := map[string]enumspb.IndexedValueType{}
		for name, typ := range attrs {
			have, ok := resp.GetCustomAttributes()[name]
			if !ok {
				out[name] = typ
				continue
			}
			if have != typ {
				return nil, &typeMismatchError{name: name, have: have, want: typ}
			}
		}
		return out, nil
	}
	var todo map[string]enumspb.IndexedValueType
	err = retry(ctx, func() (err error) {
		todo, err = missing()
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: search attributes: %w", err)
	}
	if len(todo) == 0 {
		return nil
	}
	err = retry(ctx, func() error {
		_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace:        s.namespace,
			SearchAttributes: todo,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: add search attributes %s: %w", names(todo), err)
	}
	// The frontend sees the new aliases once its namespace cache refreshes
	// (every 2s by default).
	err = retry(ctx, func() error {
		todo, err := missing()
		if err == nil && len(todo) > 0 {
			err = fmt.Errorf("not yet visible: %s", names(todo))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: search attributes: %w", err)
	}
	return nil
}

type typeMismatchError struct {
	name       string
	have, want enumspb.IndexedValueType
}

func (e *typeMismatchError) Error() string {
	return fmt.Sprintf("search attribute %s is registered as %s, want %s", e.name, e.have, e.want)
}

// retry calls f until it succeeds, ctx ends, or f fails permanently.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		var tm *typeMismatchError
		var invalid *serviceerror.InvalidArgument
		if errors.As(err, &tm) || errors.As(err, &invalid) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func names(m map[string]enumspb.IndexedValueType) string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func (s *Server) startUI(ctx context.Context, port int, codecEndpoint string) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	// The UI server exits the process (echo Logger.Fatal) when it cannot
	// listen, so check the port first.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("devserver: UI port: %w", err)
	}
	_ = ln.Close()

	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                port,
		TemporalGRPCAddress: s.frontend,
		EnableUI:            true,
		DefaultNamespace:    s.namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		Codec:               uiconfig.Codec{Endpoint: codecEndpoint},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = s.ui.Start() // blocks until Stop
	}()
	s.uiURL = "http://" + addr

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	err = retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.uiURL+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("UI health: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("devserver: UI not ready: %w", err)
	}
	return nil
}

// freePorts returns n distinct free ports on host; if first is not 0 it is
// used as the first port (and must be free).
func freePorts(n, first int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for i := range n {
		p := 0
		if i == 0 {
			p = first
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return nil, fmt.Errorf("devserver: port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func newLogger(level string, w io.Writer) (log.Logger, *zap.AtomicLevel, error) {
	switch strings.ToLower(level) {
	case "off", "none", "silent":
		return log.NewNoopLogger(), nil, nil
	}
	lvl, err := zap.ParseAtomicLevel(strings.ToLower(level))
	if err != nil {
		return nil, nil, fmt.Errorf("devserver: log level %q: %w", level, err)
	}
	if w == nil {
		w = os.Stderr
	}
	enc := log.DefaultZapEncoderConfig
	enc.CallerKey = zapcore.OmitKey
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return log.NewZapLogger(zap.New(core)), &lvl, nil
}

// memoryShards is the history shards of a memory database; a file database keeps the one it
// was created with (1: a shard count cannot change under existing data).
//
// Why more than one: each shard has one timer queue, whose reads scan its timer_tasks rows
// from the oldest not yet deleted (the SQLite plugin's range query cannot use its lower
// bound), and a row is deleted only once every earlier task of the shard is done. With one
// shard, a burst of timers (every workflow task and activity has a timeout timer) made each
// read slower than the last: 1,000 workflows × 23 activities left 50,000 due timer rows
// behind, the queue fell 4 minutes behind real time and whatever ran next paid for it (26 %
// of the server's CPU in those reads). Four shards each keep up (a few hundred due rows).
const memoryShards = 4
