package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/worker/app"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// globals are the connection flags every command shares.
type globals struct {
	temporal app.TemporalConfig
	codec    app.CodecConfig
	timeout  time.Duration
	// dialFn replaces the connection to Temporal (tests).
	dialFn func(ctx context.Context) (ops.Ops, func(), error)
	// clouds and orgHostSuffixes are the Dataverse hosts an inventory may name (the worker
	// checks its own list again before any token is minted).
	clouds, orgHostSuffixes []string
	// uiURL is the Web UI's base URL, for the links the commands print.
	uiURL string
	// clientID is the starter's Temporal client identity (clientIdentity).
	clientID string
	// connID replaces the connection's identity (tests).
	connID *app.ConnIdentity
}

func (g *globals) webUI() ops.WebUI {
	return ops.WebUI{BaseURL: g.uiURL, Namespace: g.temporal.Namespace}
}

func newRoot() *cobra.Command { return newRootWith(&globals{}) }

func newRootWith(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "starter",
		Short:         "Launch and steer Work 365 v2.5 upgrades across tenants",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long: `starter is the operations team's tool for Work 365 v2.5 upgrades on Temporal.

  plan      validate an inventory and show what each tenant will go through (starts nothing)
  preflight check on the worker, read-only, that every tenant is ready (exit 2 if not)
  launch    start upgrades for an inventory (launching twice starts nothing twice)
  status    one upgrade's stage, tasks and history, or all upgrades
  tasks     open human tasks, by audience (the inbox across fleets)
  stuck     upgrades whose stage has not moved for a while, grouped by who they wait on
  confirm   complete a human task
  start-now open an upgrade's downtime window now; move-window moves it
  cancel    cancel an upgrade (Work 365 is unfrozen by its cleanup)
  report    CSV, JSON or markdown report of upgrades
  fleet     run an inventory as a fleet: waves, approvals, failure budget, pause/resume/cancel`,
	}
	f := root.PersistentFlags()
	// Empty defaults: the Temporal CLI profile (temporal.toml, TEMPORAL_* variables) fills them,
	// else localhost:7233 and "default".
	f.StringVar(&g.temporal.Address, "address", "", "Temporal address (env TEMPORAL_ADDRESS; default: the profile's, else localhost:7233)")
	f.StringVar(&g.temporal.Namespace, "namespace", "", "Temporal namespace (env TEMPORAL_NAMESPACE; default: the profile's, else default)")
	f.StringVar(&g.temporal.Profile, "profile", "", "Temporal CLI profile to connect with (env TEMPORAL_PROFILE; default: default)")
	f.StringVar(&g.temporal.ConfigFile, "config-file", "", "Temporal CLI configuration file (env TEMPORAL_CONFIG_FILE; default ~/.config/temporalio/temporal.toml)")
	f.StringVar(&g.temporal.TaskQueue, "task-queue", app.TaskQueue, "task queue the workers poll")
	f.StringVar(&g.temporal.APIKeyFile, "api-key-file", "", "file holding a Temporal Cloud API key (or env TEMPORAL_API_KEY)")
	f.StringVar(&g.temporal.TLS.CertFile, "tls-cert", "", "mTLS client certificate")
	f.StringVar(&g.temporal.TLS.KeyFile, "tls-key", "", "mTLS client key")
	f.StringVar(&g.temporal.TLS.CAFile, "tls-ca", "", "CA certificate of the Temporal server")
	f.StringVar(&g.temporal.TLS.ServerName, "tls-server-name", "", "server name the Temporal server's certificate must carry")
	f.StringVar(&g.codec.KeysFile, "payload-keys-file", "", "payload encryption keys, the worker's codec.keysFile (or env W365_PAYLOAD_KEYS)")
	f.DurationVar(&g.timeout, "timeout", time.Minute, "timeout of one command")
	f.StringSliceVar(&g.clouds, "dataverse-cloud", []string{spec.CloudPublic}, "Dataverse clouds orgUrl may name: "+strings.Join(spec.Clouds(), ", "))
	f.StringSliceVar(&g.orgHostSuffixes, "org-host-suffix", nil, "further Dataverse host suffixes orgUrl may end with, e.g. .crm.dynamics.com")
	f.StringVar(&g.uiURL, "ui-url", cmp.Or(os.Getenv("TEMPORAL_UI_URL"), "http://localhost:8080"), "Temporal Web UI base URL for the links printed (env TEMPORAL_UI_URL; devstack: http://localhost:8233)")
	root.AddCommand(planCmd(g), preflightCmd(g), launchCmd(g), statusCmd(g), tasksCmd(g), confirmCmd(g), startNowCmd(g), moveWindowCmd(g), cancelCmd(g), reportCmd(g), fleetCmd(g), stuckCmd(g))
	return root
}

// clientIdentity is the starter's Temporal client identity (the server records it with every
// request), kept with an operator's confirmation.
func (g *globals) clientIdentity() string {
	if g.clientID == "" {
		host, _ := os.Hostname()
		g.clientID = fmt.Sprintf("work365-starter %d@%s", os.Getpid(), cmp.Or(host, "unknown-host"))
	}
	return g.clientID
}

// connIdentity is who the connection authenticates as (tests set connID).
func (g *globals) connIdentity() (app.ConnIdentity, error) {
	if g.connID != nil {
		return *g.connID, nil
	}
	id, err := app.ConnectionIdentity(g.temporal)
	if err != nil {
		return id, fmt.Errorf("read who the connection to Temporal names: %w", err)
	}
	return id, nil
}

// operatorConfirmation completes req with the operator's identity: the connection's when it
// names someone (a --by that differs is refused), else --by, declared. A task that is not the
// operator's needs --on-behalf-of; the audience never stands in for the operator's name.
func operatorConfirmation(conn app.ConnIdentity, client string, req workflows.ConfirmRequest) (workflows.ConfirmRequest, error) {
	id := &workflows.Identity{Via: conn.Via, Name: conn.Principal, Client: client}
	switch {
	case conn.Principal != "":
		if req.By != "" && !strings.EqualFold(req.By, conn.Principal) {
			return req, fmt.Errorf("--by %q is not who this connection authenticates as (%s %q): omit --by, or connect with your own certificate or API key", req.By, conn.Via, conn.Principal)
		}
		req.By = conn.Principal
	case conn.Via == app.ViaAPIKey && req.By == "":
		return req, errors.New("the API key is opaque (it names nobody the starter can read): say who you are with --by")
	case req.By == "":
		return req, errors.New("--by is required: the connection names nobody (no client certificate or API key), so say who you are")
	default:
		id.Via, id.Name = "declared", req.By
	}
	req.Identity = id
	switch {
	case req.As != workflows.Operator && req.OnBehalfOf == "":
		return req, fmt.Errorf("this task is for the %s, not the operator: add --on-behalf-of <the person who did it> (recorded as \"operator %s on behalf of …\"), or let them confirm with their own sign-in at the task desk", req.As, req.By)
	case req.As == workflows.Operator && req.OnBehalfOf != "":
		return req, errors.New("--on-behalf-of is for tasks of someone else: an operator task is confirmed by the operator")
	}
	return req, nil
}

func (g *globals) dial(ctx context.Context) (ops.Ops, func(), error) {
	if g.dialFn != nil {
		return g.dialFn(ctx)
	}
	opts, err := app.ClientOptions(g.temporal, zap.NewNop())
	if err != nil {
		return ops.Ops{}, nil, err
	}
	// As resolved (flags, environment, Temporal CLI profile): commands register search
	// attributes in this namespace.
	g.temporal.Address, g.temporal.Namespace = opts.HostPort, opts.Namespace
	if _, err := app.ApplyCodec(g.codec, &opts, zap.NewNop()); err != nil {
		return ops.Ops{}, nil, err
	}
	opts.Identity = g.clientIdentity()
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return ops.Ops{}, nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", opts.HostPort, opts.Namespace, err)
	}
	return ops.Ops{Client: c, TaskQueue: g.temporal.TaskQueue}, c.Close, nil
}

func (g *globals) run(cmd *cobra.Command, fn func(ctx context.Context, o ops.Ops) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	o, closeFn, err := g.dial(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(ctx, o)
}

// onUpgrade runs fn on the upgrade named by a workflow ID or a tenant ID.
func (g *globals) onUpgrade(cmd *cobra.Command, idOrTenant string, fn func(ctx context.Context, o ops.Ops, id string) error) error {
	return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
		id, err := o.Resolve(ctx, idOrTenant)
		if err != nil {
			return err
		}
		return fn(ctx, o, id)
	})
}

// loadInventory is the one validation plan, launch and fleet launch share: the whole file,
// every problem in one pass, against the clock (a closed window is refused) and the allowed
// Dataverse hosts.
func (g *globals) loadInventory(path string) (*inventory.Inventory, error) {
	hosts, err := spec.HostSuffixesFor(g.clouds, g.orgHostSuffixes)
	if err != nil {
		return nil, fmt.Errorf("--dataverse-cloud/--org-host-suffix: %w", err)
	}
	return inventory.LoadWith(path, inventory.Rules{Now: time.Now(), OrgHostSuffixes: hosts})
}

func planCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "plan INVENTORY",
		Short: "Validate an inventory and show what each tenant will go through; starts nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := g.loadInventory(args[0])
			if err != nil {
				return err
			}
			return writePlan(cmd.OutOrStdout(), inv)
		},
	}
}

// writePlan shows each tenant's path through the runbook as far as the inventory decides it;
// what the tenant has installed is only known when its upgrade discovers it.
func writePlan(w io.Writer, inv *inventory.Inventory) error {
	fmt.Fprintf(w, "Fleet %s: %d tenants from %s\n", inv.Fleet, len(inv.Tenants), inv.Path)
	byWave := inv.ByWave()
	for i, wv := range inv.Waves {
		gate := ""
		if wv.Approval {
			gate = ", approval gate after it"
		}
		if wv.BakeTime > 0 {
			gate += ", bake " + wv.BakeTime.String()
		}
		concurrency := wv.Concurrency
		if concurrency <= 0 {
			concurrency = 10 // the fleet's default
		}
		fmt.Fprintf(w, "  wave %d %-10s %d tenants, concurrency %d%s\n", i+1, wv.Name, len(byWave[i]), concurrency, gate)
	}
	fmt.Fprintln(w)
	for _, e := range inv.Tenants {
		t := e.Tenant
		opens, closes, err := t.LoadWindow()
		if err != nil {
			return fmt.Errorf("%s:%d: %w", inv.Path, e.Line, err)
		}
		fmt.Fprintf(w, "%s (%s) → Work 365 %s   [%s]\n", t.DisplayName, t.TenantID, t.TargetVersion, inventory.WorkflowID(t))
		fmt.Fprintf(w, "  window     %s %s for %s (%s – %s UTC)\n", t.Window.Start, t.TimeZone, t.Window.Length,
			opens.UTC().Format("2006-01-02 15:04"), closes.UTC().Format("2006-01-02 15:04"))
		fmt.Fprintf(w, "  1 discover        installed version; at or above %s → no-op\n", t.TargetVersion)
		fmt.Fprintf(w, "  2 prerequisites   %s: Global Administrator, System Administrator, Dynamics licence; %s: Dynamics licence, 'Work 365 Service' role\n", t.GlobalAdminUPN, t.ServiceAccountUPN)
		fmt.Fprintf(w, "  3 downtime window wait until it opens\n")
		fmt.Fprintf(w, "  4 freeze & drain  freeze Work 365, wait for pending jobs\n")
		fmt.Fprintf(w, "  5 MFA             policies, registration of both accounts\n")
		portal := "if installed ≤ 2.1 with the portal: uninstall it first; reinstall from " + t.PortalPackage
		if t.PortalPackage == "" {
			portal = "if installed ≤ 2.1 with the portal: uninstall it first; reinstall is a human task (no portalPackage)"
		}
		fmt.Fprintf(w, "  6 portal          %s\n", portal)
		fmt.Fprintf(w, "  7 import          %s as staged upgrade\n", t.SolutionPackage)
		reg := "Get Consent (global admin); new installs first fill the registration form"
		if t.LicenseKeyRef != "" {
			reg += " (licence key at " + t.LicenseKeyRef + ")"
		}
		fmt.Fprintf(w, "  9 registration    %s\n", reg)
		fmt.Fprintf(w, " 10 begin upgrade   service account within the link's validity\n")
		switch {
		case t.PartnerType == spec.Indirect:
			fmt.Fprintf(w, " 12 partner center  skipped: indirect reseller\n")
		default:
			for _, pc := range t.PartnerCenters {
				extra := "primary tenant"
				if !pc.ConnectedToPrimary {
					extra = "tenant " + pc.TenantID + ": MFA policies first"
				}
				fmt.Fprintf(w, " 12 partner center  re-consent %s (%s)\n", pc.Name, extra)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Nothing was started. Run `starter launch` with the same inventory to start.")
	return nil
}

func launchCmd(g *globals) *cobra.Command {
	var preflight bool
	cmd := &cobra.Command{
		Use:   "launch INVENTORY",
		Short: "Start an upgrade per tenant of an inventory (nothing starts unless the whole file is valid)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := g.loadInventory(args[0])
			if err != nil {
				return err
			}
			g.preflightTimeout(cmd, preflight)
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				if preflight {
					if err := requireReady(ctx, cmd, o, inv); err != nil {
						return err
					}
				}
				if err := searchattr.Register(ctx, o.Client, g.temporal.Namespace); err != nil {
					return err
				}
				res, err := o.Launch(ctx, inv)
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "TENANT\tNAME\tWORKFLOW\tSTATE")
				for _, l := range res {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.TenantID, l.TenantName, l.WorkflowID, l.State)
				}
				_ = tw.Flush()
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&preflight, "preflight", false, "run the preflight first and start nothing unless every tenant is ready")
	return cmd
}

// preflightTimeout gives a preflight 10 minutes unless --timeout was set: the checks of a
// large inventory take longer than the one-minute default of other commands.
func (g *globals) preflightTimeout(cmd *cobra.Command, preflight bool) {
	if preflight && !cmd.Flags().Changed("timeout") && g.timeout < defaultPreflightTimeout {
		g.timeout = defaultPreflightTimeout
	}
}

const defaultPreflightTimeout = 10 * time.Minute

// errNotReady makes the starter exit with code 2: the preflight ran and a tenant is not ready.
type errNotReady struct{ err error }

func (e errNotReady) Error() string { return e.err.Error() + "; nothing was started" }
func (e errNotReady) Unwrap() error { return e.err }

// requireReady runs the preflight before a launch; when a tenant is not ready it prints the
// report and refuses, so that nothing starts.
func requireReady(ctx context.Context, cmd *cobra.Command, o ops.Ops, inv *inventory.Inventory) error {
	rep, err := o.RequireReady(ctx, inv)
	if errors.Is(err, ops.ErrNotReady) {
		if werr := ops.WritePreflight(cmd.OutOrStdout(), "table", rep); werr != nil {
			return werr
		}
		return errNotReady{err}
	}
	if err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "preflight: all %d tenants ready (%s)\n", len(rep.Tenants), strings.Join(rep.Workflows, ", "))
	return nil
}

func preflightCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "preflight INVENTORY",
		Short: "Check on the worker, read-only, that every tenant is ready; exit 2 when one is not",
		Long: `preflight checks every tenant of an inventory before any window, with no side effects.
The worker runs the checks (it holds the credentials) in read-only Preflight workflows:
the orchestrator app is consented in the tenant and its token allows every Microsoft Graph
call of the permissions manifest; the Dataverse application user exists with a security
role; Work 365's installed version and the path (upgrade, new install, already current);
Work 365's app ID resolves; the Global Administrator and the service account exist and
are enabled; the Global Administrator role is active and assigned to the person.

Exit codes: 0 every tenant ready, 2 some tenant not ready (each fix is printed with its
admin-center path), 1 the preflight could not run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: use table or json", format)
			}
			inv, err := inventory.Load(args[0])
			if err != nil {
				return err
			}
			g.preflightTimeout(cmd, true)
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				rep, err := o.Preflight(ctx, inv)
				if err != nil {
					return err
				}
				if err := ops.WritePreflight(cmd.OutOrStdout(), format, rep); err != nil {
					return err
				}
				if !rep.Ready {
					return errNotReady{fmt.Errorf("%d of %d tenants are not ready: %w", len(rep.NotReady()), len(rep.Tenants), ops.ErrNotReady)}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	var query string
	cmd := &cobra.Command{
		Use:   "status [WORKFLOW-ID|TENANT-ID]",
		Short: "Show one upgrade in detail, or every upgrade (optionally filtered by a visibility query)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				w := cmd.OutOrStdout()
				if len(args) == 0 {
					us, err := o.List(ctx, query)
					if err != nil {
						return err
					}
					if asJSON {
						return json.NewEncoder(w).Encode(us)
					}
					tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
					fmt.Fprintln(tw, "TENANT\tNAME\tSTATUS\tSTAGE\tWAITING ON\tSINCE\tWORKFLOW")
					for _, u := range us {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.TenantID, u.TenantName, u.Status, u.Stage, u.WaitingOn, since(u.StageSince), u.WorkflowID)
					}
					return tw.Flush()
				}
				id, err := o.Resolve(ctx, args[0])
				if err != nil {
					return err
				}
				s, err := o.Status(ctx, id)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(w)
					enc.SetIndent("", "  ")
					return enc.Encode(s)
				}
				fmt.Fprintf(w, "%s (%s)  %s → %s\nstage %s since %s, waiting on %s\nWeb UI: %s\n", s.TenantName, s.TenantID, orNone(s.FromVersion), s.ToVersion, s.Stage, since(s.StageSince), s.WaitingOn, g.webUI().Workflow(id))
				for _, t := range s.OpenTasks {
					fmt.Fprintf(w, "\nOPEN TASK %s for %s since %s: %s\n  %s\n", t.ID, t.Audience, since(t.OpenedAt), t.Title, t.Instructions)
				}
				fmt.Fprintln(w, "\nstages:")
				for _, st := range s.Stages {
					end := "…"
					if st.Ended != nil {
						end = st.Ended.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(w, "  %-28s %s – %s  %s\n", st.Stage, st.Started.UTC().Format(time.RFC3339), end, st.Note)
				}
				for _, x := range s.Warnings {
					fmt.Fprintf(w, "warning: %s\n", x)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&query, "query", "", "visibility query, e.g. \"WorkFleet = 'wave-1'\"")
	return cmd
}

func tasksCmd(g *globals) *cobra.Command {
	var audience, query string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "List open human tasks across upgrades, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			aud, err := parseAudience(audience, true)
			if err != nil {
				return err
			}
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				rows, err := o.OpenTasks(ctx, aud, query)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if asJSON {
					return json.NewEncoder(w).Encode(rows)
				}
				tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "TASK\tAUDIENCE\tOPEN FOR\tTENANT\tTITLE\tWORKFLOW")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Task.ID, r.Task.Audience, since(r.Task.OpenedAt), r.TenantName, r.Task.Title, r.WorkflowID)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&audience, "audience", "", "global-admin, service-account, operator or partner-admin")
	cmd.Flags().StringVar(&query, "query", "", "extra visibility query, e.g. \"WorkFleet = 'wave-1'\"")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func confirmCmd(g *globals) *cobra.Command {
	var as, by, onBehalfOf, note, decision string
	var bySignal bool
	cmd := &cobra.Command{
		Use:   "confirm WORKFLOW-ID|TENANT-ID TASK-ID --as AUDIENCE [--on-behalf-of PERSON] [--by NAME]",
		Short: "Complete a human task as an operator (refused with a reason if it does not fit the task)",
		Long: `confirm completes a human task as an operator. Your name is the connection's identity
(the client certificate's subject, or the API key's subject), or --by when the connection names
nobody (no certificate, or an opaque API key). A task for someone else (global-admin,
service-account, partner-admin) needs --on-behalf-of: the record reads "operator X on behalf of Y";
the person can instead confirm with their own Microsoft sign-in at the task desk.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			aud, err := parseAudience(as, false)
			if err != nil {
				return err
			}
			conn, err := g.connIdentity()
			if err != nil {
				return err
			}
			req, err := operatorConfirmation(conn, g.clientIdentity(), workflows.ConfirmRequest{TaskID: args[1], As: aud, By: strings.TrimSpace(by),
				OnBehalfOf: strings.TrimSpace(onBehalfOf), Note: note, Decision: decision})
			if err != nil {
				return err
			}
			if err := req.CheckText(); err != nil {
				return err
			}
			return g.onUpgrade(cmd, args[0], func(ctx context.Context, o ops.Ops, id string) error {
				c, err := o.Confirm(ctx, id, req, bySignal)
				if err != nil {
					return err
				}
				if bySignal {
					fmt.Fprintf(cmd.OutOrStdout(), "sent %s to %s as a signal; it is checked when a worker runs the upgrade (see warnings in `starter status`)\n", args[1], id)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "confirmed %s (%s) by %s at %s\n", c.TaskID, c.Kind, ops.ConfirmedBy(c), c.At.UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "audience you confirm for: global-admin, service-account, operator, partner-admin (required)")
	cmd.Flags().StringVar(&by, "by", "", "your name, when the connection names nobody (no client certificate, or an opaque API key)")
	cmd.Flags().StringVar(&onBehalfOf, "on-behalf-of", "", "the person who did a task that is not the operator's (required for global-admin, service-account, partner-admin)")
	cmd.Flags().StringVar(&note, "note", "", "what was done")
	cmd.Flags().StringVar(&decision, "decision", "", "for operator tasks: keep-waiting, proceed, abort, retry")
	cmd.Flags().BoolVar(&bySignal, "signal", false, "send as a Signal (works while no worker runs; validated later)")
	return cmd
}

func startNowCmd(g *globals) *cobra.Command {
	var by, note string
	cmd := &cobra.Command{
		Use:   "start-now WORKFLOW-ID|TENANT-ID --by NAME",
		Short: "Open an upgrade's downtime window now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := (workflows.OperatorRequest{By: by, Note: note}).CheckText(); err != nil {
				return err
			}
			return g.onUpgrade(cmd, args[0], func(ctx context.Context, o ops.Ops, id string) error {
				if err := o.StartNow(ctx, id, workflows.OperatorRequest{By: by, Note: note}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "downtime window of %s opened now by %s\n", id, by)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who decides (required)")
	cmd.Flags().StringVar(&note, "note", "", "why")
	return cmd
}

func moveWindowCmd(g *globals) *cobra.Command {
	var by, note, start, length string
	cmd := &cobra.Command{
		Use:   "move-window WORKFLOW-ID|TENANT-ID --start 2026-12-06T22:00 --length 6h --by NAME",
		Short: "Move an upgrade's downtime window (local time of the tenant)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := (workflows.MoveWindowRequest{By: by, Note: note, Window: spec.Window{Start: start, Length: length}}).CheckText(); err != nil {
				return err
			}
			return g.onUpgrade(cmd, args[0], func(ctx context.Context, o ops.Ops, id string) error {
				if err := o.MoveWindow(ctx, id, workflows.MoveWindowRequest{By: by, Note: note, Window: spec.Window{Start: start, Length: length}}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "downtime window of %s moved to %s for %s\n", id, start, length)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who decides (required)")
	cmd.Flags().StringVar(&note, "note", "", "why")
	cmd.Flags().StringVar(&start, "start", "", "new start, local time "+spec.WindowLayout)
	cmd.Flags().StringVar(&length, "length", "", "new length, e.g. 6h")
	return cmd
}

func cancelCmd(g *globals) *cobra.Command {
	var by, reason string
	cmd := &cobra.Command{
		Use:   "cancel WORKFLOW-ID|TENANT-ID --by NAME --reason TEXT",
		Short: "Cancel an upgrade; its cleanup unfreezes Work 365",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by == "" || reason == "" {
				return fmt.Errorf("--by and --reason are required")
			}
			if err := (workflows.OperatorRequest{By: by, Note: reason}).CheckText(); err != nil {
				return err
			}
			return g.onUpgrade(cmd, args[0], func(ctx context.Context, o ops.Ops, id string) error {
				if err := o.Cancel(ctx, id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cancellation of %s requested by %s (%s); follow the cleanup with `starter status %s`\n", id, by, reason, id)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who cancels (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	return cmd
}

func reportCmd(g *globals) *cobra.Command {
	var format, query, out string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Report every upgrade (or those matching --query) as csv, json or markdown",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				rows, err := o.Report(ctx, query)
				if err != nil {
					return err
				}
				return writeReport(cmd, out, format, rows)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "markdown", "csv, json, markdown or table (an aligned summary that fits 120 columns)")
	cmd.Flags().StringVar(&query, "query", "", "visibility query, e.g. \"WorkFleet = 'example'\"")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	return cmd
}

func parseAudience(s string, optional bool) (workflows.Audience, error) {
	switch a := workflows.Audience(s); a {
	case workflows.GlobalAdmin, workflows.ServiceAccount, workflows.Operator, workflows.PartnerAdmin:
		return a, nil
	case "":
		if optional {
			return "", nil
		}
	}
	return "", fmt.Errorf("audience %q: use global-admin, service-account, operator or partner-admin", s)
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func stuckCmd(g *globals) *cobra.Command {
	var older time.Duration
	cmd := &cobra.Command{
		Use:   "stuck --older 2h",
		Short: "Running upgrades whose stage is older than --older, grouped by who they wait on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				cutoff := time.Now().Add(-older)
				groups, err := o.Stuck(ctx, cutoff)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "Upgrades in the same stage for more than %s (Web UI query: %s)\nWeb UI: %s\n", older, ops.StuckQuery(cutoff), g.webUI().List(ops.StuckQuery(cutoff)))
				if len(groups) == 0 {
					fmt.Fprintln(w, "none")
					return nil
				}
				for _, who := range []string{string(workflows.GlobalAdmin), string(workflows.ServiceAccount), string(workflows.PartnerAdmin), string(workflows.Operator), string(workflows.Nobody)} {
					us := groups[who]
					if len(us) == 0 {
						continue
					}
					fmt.Fprintf(w, "\nwaiting on %s (%d):\n", who, len(us))
					tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
					for _, u := range us {
						fmt.Fprintf(tw, "  %s\t%s\tsince %s\t%s\n", u.TenantName, u.Stage, since(u.StageSince), u.WorkflowID)
					}
					_ = tw.Flush()
				}
				fmt.Fprintln(w, "\nSee each one's open task and next action: starter status <workflow-id>; the inbox: starter tasks")
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&older, "older", 2*time.Hour, "stage unchanged for longer than this")
	return cmd
}

// writeReport writes a report to --out, or to the command's output.
func writeReport(cmd *cobra.Command, out, format string, rows []ops.ReportRow) error {
	if out == "" {
		return ops.WriteReport(cmd.OutOrStdout(), format, rows)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("report file: %w", err)
	}
	if err := ops.WriteReport(f, format, rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
