// Package stack assembles a whole rehearsal in one process: a Temporal server (embedded,
// or an existing one), the simulated Microsoft cloud, the production worker wiring pointed at
// it, and the human autopilot. The one-command stack (devstack) and the integration tests use
// it. Production code never imports it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/internal/codec"
	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
	"github.com/csp-ops/work365-upgrade/microsoft/msauth"
	"github.com/csp-ops/work365-upgrade/microsoft/work365"
	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/rehearsal/autopilot"
	"github.com/csp-ops/work365-upgrade/rehearsal/devserver"
	"github.com/csp-ops/work365-upgrade/rehearsal/sim"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// A rehearsal's Temporal names differ from production's ("default" and app.TaskQueue), so a
// rehearsal pointed at a production server never serves real tenants with simulated workers,
// nor hands simulated tenants to the production worker.
const (
	// DefaultNamespace is the rehearsal's namespace, created on the embedded server.
	DefaultNamespace = "work365-rehearsal"
	// DefaultTaskQueue is the rehearsal worker's task queue.
	DefaultTaskQueue = "work365-rehearsal"
)

// Options shape a rehearsal.
type Options struct {
	// TemporalAddress uses an existing Temporal server; empty embeds one.
	TemporalAddress string
	// Namespace defaults to DefaultNamespace. On an existing server "default" is refused unless
	// ForceProductionNames is set.
	Namespace string
	// ForceProductionNames allows namespace "default" and the production task queue on an
	// existing server (TemporalAddress): only for a server that serves no real tenant.
	ForceProductionNames bool
	// StateDir keeps the embedded server's SQLite file and, beside it, the simulated cloud's
	// state (sim.StateFileName), so a rerun resumes both; empty: in memory.
	StateDir string
	// UIPort serves the Temporal Web UI of the embedded server (0: none).
	UIPort int
	// ScenarioTokenLifetime keeps the scenario's token lifetime instead of stretching it to
	// two real hours (see Start).
	ScenarioTokenLifetime bool
	// Scenario is the simulated cloud.
	Scenario *sim.Scenario
	// Speed makes simulated time run this many times faster than real time (default 1). The
	// workflow's durations (link validity, polls) are divided by it to match.
	Speed float64
	// Logger receives the worker's logs (default: none).
	Logger *zap.Logger
	// TaskQueue defaults to DefaultTaskQueue; on an existing server app.TaskQueue is refused
	// unless ForceProductionNames is set.
	TaskQueue string
	// Archival turns on the embedded server's history archival (and may shorten retention).
	Archival *devserver.Archival
	// ReportsDir is the worker's reports.dir: fleets write their final reports there.
	ReportsDir string
	// PayloadKeys encrypt payloads, as in production; default: the key file in StateDir
	// (created at the first start), or a new key when there is no StateDir.
	PayloadKeys *codec.Keys
	// NoDesk leaves the task desk out; by default it runs (DeskURL) and every task
	// notification carries its link.
	NoDesk bool
	// DeskPort is the desk's port on 127.0.0.1 (0: any free port).
	DeskPort int
	// DeskConfirms makes the autopilot's people confirm through the desk (sign in with their
	// password, confirm there) instead of sending the Update themselves; devstack sets it.
	DeskConfirms bool
	// Worker tunes the worker as the worker.yaml's worker block does (zero: the SDK's defaults).
	Worker app.WorkerConfig
	// NoWorker runs no worker in this process: the caller runs one elsewhere on TaskQueue
	// (the bench's worker process, rehearsal/workerproc), whose notifications it hands to
	// the Autopilot.
	NoWorker bool
	// Hold keeps the simulated people from acting until it is closed (nil: they act after
	// their delays): the bench fills the fleet with upgrades waiting on people this way.
	Hold <-chan struct{}
}

// checkNames refuses production's namespace and task queue on a server that is not embedded.
func (o Options) checkNames() error {
	if o.TemporalAddress == "" || o.ForceProductionNames {
		return nil
	}
	if o.Namespace == "default" {
		return fmt.Errorf("namespace %q on the Temporal server at %s is where production upgrades run: a rehearsal there could serve real tenants with simulated workers; use its own namespace (default %s), or force it if that server serves no real tenant",
			o.Namespace, o.TemporalAddress, DefaultNamespace)
	}
	if o.TaskQueue == app.TaskQueue {
		return fmt.Errorf("task queue %q on the Temporal server at %s is the production worker's: use the rehearsal's own (default %s), or force it if that server serves no real tenant",
			o.TaskQueue, o.TemporalAddress, DefaultTaskQueue)
	}
	return nil
}

// Namespace is the rehearsal's Temporal namespace.
func (s *Stack) Namespace() string { return s.opts.Namespace }

// Stack is a running rehearsal.
type Stack struct {
	Server    *devserver.Server
	Client    client.Client
	Cloud     *sim.Cloud
	Autopilot *autopilot.Autopilot
	Ops       ops.Ops
	// Worker serves TaskQueue in this process (nil with NoWorker).
	Worker worker.Worker
	// Codec encrypts the payloads; CodecURL is its codec server, which the Web UI decodes
	// through: POST {CodecURL}/{namespace}/decode.
	Codec    *codec.Codec
	CodecURL string
	// Packages is the folder of solution files the worker reads.
	Packages string
	// DeskURL is the task desk's address (empty with NoDesk); DeskLinkKeyFile holds the key
	// its links are signed with (tests check that it never reaches a history).
	DeskURL         string
	DeskLinkKeyFile string
	opts            Options
	cleanup         []func()
}

// Start brings the rehearsal up.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Scenario == nil {
		return nil, errors.New("a rehearsal needs a scenario")
	}
	if o.Speed <= 0 {
		o.Speed = 1
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.TaskQueue == "" {
		o.TaskQueue = DefaultTaskQueue
	}
	if err := o.checkNames(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Stack{opts: o}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	keys, err := payloadKeys(o)
	if err != nil {
		return nil, err
	}
	if s.Codec, err = codec.New(keys); err != nil {
		return nil, err
	}
	if s.CodecURL, err = s.startCodecServer(s.Codec, o.UIPort); err != nil {
		return nil, err
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), s.Codec)
	address := o.TemporalAddress
	if address == "" {
		srv, err := devserver.Start(ctx, devserver.Options{DataDir: o.StateDir, Namespace: o.Namespace, UIPort: o.UIPort,
			SearchAttributes: searchattr.All(), Archival: o.Archival, CodecEndpoint: s.CodecURL})
		if err != nil {
			return nil, fmt.Errorf("start the embedded Temporal server: %w", err)
		}
		s.Server = srv
		s.cleanup = append(s.cleanup, func() { _ = srv.Stop() })
		address = srv.FrontendAddress()
	}
	s.Client, err = client.DialContext(ctx, client.Options{HostPort: address, Namespace: o.Namespace, Logger: app.NewTemporalLogger(o.Logger), DataConverter: dc})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", address, err)
	}
	s.cleanup = append(s.cleanup, s.Client.Close)
	if err := searchattr.Register(ctx, s.Client, o.Namespace); err != nil {
		return nil, err
	}
	s.Ops = ops.Ops{Client: s.Client, TaskQueue: o.TaskQueue}

	var clock sim.Clock = sim.SystemClock{}
	if o.Speed != 1 {
		clock = sim.NewScaledClock(o.Speed)
		// Tokens say how long they live in real seconds, and MSAL renews them 5 minutes before
		// that; by default they live 2 real hours, so a rehearsal signs in once per resource.
		// ScenarioTokenLifetime keeps the scenario's: short-lived tokens make every call sign
		// in again, so a credential that fails mid-run shows at once.
		if min := time.Duration(o.Speed * float64(2*time.Hour)); !o.ScenarioTokenLifetime && o.Scenario.TokenLifetime < min {
			o.Scenario.TokenLifetime = min
		}
	}
	if o.StateDir == "" {
		s.Cloud = sim.New(o.Scenario, sim.Options{Clock: clock})
	} else if s.Cloud, err = sim.Open(o.Scenario, sim.Options{Clock: clock}, filepath.Join(o.StateDir, sim.StateFileName)); err != nil {
		return nil, err
	}
	s.Cloud.Start()
	s.cleanup = append(s.cleanup, s.Cloud.Close)
	if o.StateDir != "" {
		// Saved every second and at the stop: the cloud a rerun finds is the one upgrades left.
		sctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Cloud.SaveEvery(sctx, filepath.Join(o.StateDir, sim.StateFileName), time.Second, func(err error) {
				o.Logger.Warn("the simulated cloud's state was not saved", zap.Error(err))
			})
		}()
		s.cleanup = append(s.cleanup, func() { stop(); <-done })
	}

	speed := o.Speed
	s.Autopilot = autopilot.New(s.Cloud, Confirmer{Ops: s.Ops}, autopilot.Options{
		Sleep:   peopleSleep(o.Hold, speed),
		ViaDesk: o.DeskConfirms && !o.NoDesk,
	})
	s.cleanup = append(s.cleanup, s.Autopilot.Close)
	if o.NoWorker {
		return s, nil
	}

	dir, err := os.MkdirTemp("", "work365-rehearsal-")
	if err != nil {
		return nil, err
	}
	s.cleanup = append(s.cleanup, func() { _ = os.RemoveAll(dir) })
	cfg, err := s.workerConfig(dir)
	if err != nil {
		return nil, err
	}
	if !o.NoDesk {
		if cfg.Desk, err = s.startDesk(ctx, address, dc, dir); err != nil {
			return nil, err
		}
	}
	appOpts := app.Options{HTTPClient: s.Cloud.HTTPClient(), NoInstanceDiscovery: true, Notifier: s.Autopilot, Logger: o.Logger}
	if speed != 1 {
		// The simulated cloud's Retry-After is in simulated seconds (it measures the waits
		// on its own clock): the clients wait it out in simulated time too.
		appOpts.RetrySleep = func(ctx context.Context, d time.Duration) error {
			return ctxtime.Sleep(ctx, time.Duration(float64(d)/speed))
		}
	}
	acts, err := app.BuildActivities(cfg, appOpts)
	if err != nil {
		return nil, err
	}
	acts.Workflows = s.Client
	acts.PollInterval = time.Duration(float64(10*time.Second) / speed)
	if acts.PollInterval < 200*time.Millisecond {
		acts.PollInterval = 200 * time.Millisecond
	}
	o.Worker.ApplyStickyCache()
	s.Worker = worker.New(s.Client, o.TaskQueue, o.Worker.Options())
	app.Register(s.Worker, acts)
	if err := s.Worker.Start(); err != nil {
		return nil, fmt.Errorf("start the worker: %w", err)
	}
	s.cleanup = append(s.cleanup, s.Worker.Stop)
	return s, nil
}

// peopleSleep is how long the simulated people take: nothing before hold is closed (a nil
// hold is no hold), then d in simulated time.
func peopleSleep(hold <-chan struct{}, speed float64) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return ctxtime.Sleep(ctx, time.Duration(float64(d)/speed))
	}
}

// workerConfig is the production configuration with the simulator's app registration.
func (s *Stack) workerConfig(dir string) (app.Config, error) {
	s.Packages = filepath.Join(dir, "packages")
	cfg, err := WorkerConfig(dir, s.Cloud, app.TemporalConfig{Namespace: s.opts.Namespace, TaskQueue: s.opts.TaskQueue})
	cfg.Reports = app.ReportsConfig{Dir: s.opts.ReportsDir}
	return cfg, err
}

// WorkerConfig writes what a worker serving the simulated cloud needs into dir — the
// orchestrator's client secret (a file, as in production) and the solution files (dir/packages)
// — and returns the production configuration that uses them.
func WorkerConfig(dir string, cloud *sim.Cloud, temporal app.TemporalConfig) (app.Config, error) {
	orch := cloud.Scenario().Orchestrator
	secret := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secret, []byte(orch.ClientSecret), 0o600); err != nil {
		return app.Config{}, err
	}
	packages := filepath.Join(dir, "packages")
	names := cloud.Names()
	if err := WritePackages(packages, names); err != nil {
		return app.Config{}, err
	}
	cfg := app.Config{
		Temporal:    temporal,
		Microsoft:   msauth.Config{ClientID: orch.ClientID, SecretFile: secret, AppName: orch.DisplayName},
		PackagesDir: packages,
	}
	cfg.Work365 = &names
	cfg.Defaults()
	return cfg, cfg.Validate()
}

// WritePackages writes the simulated solution files (Work 365 and its portal) a rehearsal
// worker imports into dir, under the references TenantSpec uses.
func WritePackages(dir string, names work365.Names) error {
	for ref, sol := range map[string][2]string{
		SolutionPackageRef: {names.SolutionUniqueName, TargetVersion},
		PortalPackageRef:   {names.PortalSolutionUniqueName, "2.5.0.0"},
	} {
		p := filepath.Join(dir, ref)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, sim.SolutionPackage(sol[0], sol[1]), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Package references and the target of rehearsals.
const (
	SolutionPackageRef = "work365/Work365_2_5_0_1_managed.zip"
	PortalPackageRef   = "work365/Work365Portal_2_5_0_0_managed.zip"
	TargetVersion      = "2.5.0.1"
)

// Config returns upgrade durations scaled to the rehearsal's speed.
func (s *Stack) Config() workflows.Config { return ScaledConfig(s.opts.Scenario, s.opts.Speed) }

// ScaledConfig returns upgrade durations for a rehearsal of scn whose simulated time runs
// speed times faster than real time.
func ScaledConfig(scn *sim.Scenario, speed float64) workflows.Config {
	if speed <= 0 {
		speed = 1
	}
	scale := func(d time.Duration) time.Duration {
		v := time.Duration(float64(d) / speed)
		if v < time.Second {
			v = time.Second
		}
		return v
	}
	validity := scn.LinkValidity
	if validity == 0 {
		validity = workflows.DefaultLinkValidity
	}
	return workflows.Config{
		LinkValidity:             scale(validity),
		DrainDeadline:            scale(workflows.DefaultDrainDeadline),
		DrainPollInterval:        scale(time.Minute),
		CompletionDeadline:       scale(workflows.DefaultCompletionDeadline),
		CompletionPollInterval:   scale(30 * time.Second),
		ReminderInterval:         scale(workflows.DefaultReminderInterval),
		ImportTimeout:            scale(workflows.DefaultImportTimeout),
		UpgradeStartPollInterval: scale(30 * time.Second),
		CongratulationsGrace:     scale(workflows.DefaultCongratulationsGrace),
		MaxFrozen:                scale(workflows.DefaultMaxFrozen),
		CredentialRetryInterval:  scale(workflows.DefaultCredentialRetryInterval),
		TimeScale:                speed, // messages read in runbook time
	}
}

// Inventory turns the scenario's tenants into an inventory whose downtime windows open now.
func (s *Stack) Inventory(fleet string) *inventory.Inventory {
	return Inventory(s.opts.Scenario, fleet, s.opts.Speed)
}

// Inventory turns a scenario's tenants into an inventory whose downtime windows open now,
// with durations scaled to speed.
func Inventory(scn *sim.Scenario, fleet string, speed float64) *inventory.Inventory {
	inv := &inventory.Inventory{Path: "(scenario)", Fleet: fleet, Config: ScaledConfig(scn, speed)}
	// The scenario's defaults name each Partner Center connection's admin.
	full := scn.WithDefaults()
	for i, t := range scn.Tenants {
		if i < len(full.Tenants) && full.Tenants[i].TenantID == t.TenantID {
			t.PartnerCenters = full.Tenants[i].PartnerCenters
		}
		inv.Tenants = append(inv.Tenants, inventory.Entry{Tenant: TenantSpec(t, time.Now()), Line: i + 1})
	}
	return inv
}

// TenantSpec is the inventory entry an operator would write for a simulated tenant.
func TenantSpec(t sim.Tenant, now time.Time) spec.Tenant {
	tz := t.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	opens, length := now, 8*time.Hour
	if t.Window != nil {
		opens, length = now.Add(t.Window.OpensIn), t.Window.Length
	}
	out := spec.Tenant{
		TenantID: t.TenantID, DisplayName: t.Name, OrgURL: t.OrgURL,
		PartnerType: spec.Indirect, GlobalAdminUPN: t.Admin.UPN, ServiceAccountUPN: t.ServiceAccount.UPN,
		TimeZone: tz, Window: spec.Window{Start: opens.In(loc).Format(spec.WindowLayout), Length: length.String()},
		TargetVersion: TargetVersion, SolutionPackage: SolutionPackageRef, PortalPackage: PortalPackageRef,
	}
	if t.Work365Version == "" {
		out.LicenseKeyRef = "vault://work365/licences/" + strings.ToLower(strings.ReplaceAll(t.Name, " ", "-"))
	}
	if strings.EqualFold(t.PartnerType, "direct") {
		out.PartnerType = spec.Direct
		for _, pc := range t.PartnerCenters {
			c := spec.PartnerCenter{Name: pc.Name, TenantID: pc.TenantID, ConnectedToPrimary: pc.Primary}
			if pc.Admin != nil {
				c.AdminUPN = pc.Admin.UPN // the desk lets only this admin confirm the connection's tasks
			}
			out.PartnerCenters = append(out.PartnerCenters, c)
		}
	}
	return out
}

// Stop shuts everything down, newest first.
func (s *Stack) Stop() {
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
	s.cleanup = nil
}

// Confirmer lets the autopilot confirm tasks as a person would, through the starter's path.
type Confirmer struct{ Ops ops.Ops }

// ConfirmTask confirms by Update.
func (c Confirmer) ConfirmTask(ctx context.Context, workflowID string, req workflows.ConfirmRequest) error {
	_, err := c.Ops.Confirm(ctx, workflowID, req, false)
	return err
}

// SignalTask confirms by Signal.
func (c Confirmer) SignalTask(ctx context.Context, workflowID string, req workflows.ConfirmRequest) error {
	_, err := c.Ops.Confirm(ctx, workflowID, req, true)
	return err
}
