package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/csp-ops/work365-upgrade/ops"
	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

func fleetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Run an inventory as a fleet: waves, concurrency, approvals, failure budget",
		Long: `A fleet runs every tenant of an inventory as one workflow, wave by wave.

  fleet launch INVENTORY         start the fleet (again: starts nothing twice)
  fleet status FLEET [--watch]   progress by wave, stage and outcome; failed and stuck tenants
  fleet approve FLEET WAVE       open the approval gate after a wave (--by, --why)
  fleet pause|resume|cancel FLEET (--by, --note); resume also lifts a failure-budget halt
  fleet report FLEET             one row per tenant (csv, json, markdown, table)

FLEET is the fleet's name (from the inventory) or its workflow ID.`,
	}
	cmd.AddCommand(fleetLaunchCmd(g), fleetStatusCmd(g), fleetApproveCmd(g),
		fleetOperatorCmd(g, "pause", workflows.UpdatePauseFleet, "Stop launching new tenants (running ones go on)"),
		fleetOperatorCmd(g, "resume", workflows.UpdateResumeFleet, "Resume launching, also after a failure-budget halt"),
		fleetOperatorCmd(g, "cancel", workflows.UpdateCancelFleet, "Stop launching and cancel every running tenant (each unfreezes)"),
		fleetReportCmd(g))
	return cmd
}

func fleetID(arg string) string {
	if strings.HasPrefix(arg, "work365-fleet/") {
		return arg
	}
	return inventory.FleetWorkflowID(arg)
}

func fleetLaunchCmd(g *globals) *cobra.Command {
	var preflight bool
	cmd := &cobra.Command{
		Use:   "launch INVENTORY",
		Short: "Start the fleet of an inventory (nothing starts unless the whole file is valid)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := g.loadInventory(args[0])
			if err != nil {
				return err
			}
			if _, err := inv.FleetInput(); err != nil {
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
				id, state, err := o.LaunchFleet(ctx, inv)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "fleet %s (%d tenants, %d waves): %s\nfollow it: starter fleet status %s --watch\n", id, len(inv.Tenants), len(inv.Waves), state, inv.Fleet)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&preflight, "preflight", false, "run the preflight first and start nothing unless every tenant is ready")
	return cmd
}

func fleetStatusCmd(g *globals) *cobra.Command {
	var watch, asJSON bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "status FLEET",
		Short: "Show a fleet's progress; --watch follows it with a progress bar",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := fleetID(args[0])
			if !watch {
				return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
					p, err := o.FleetProgress(ctx, id)
					if err != nil {
						return err
					}
					if asJSON {
						enc := json.NewEncoder(cmd.OutOrStdout())
						enc.SetIndent("", "  ")
						return enc.Encode(p)
					}
					writeProgress(cmd.OutOrStdout(), p)
					return nil
				})
			}
			// --watch runs until the fleet ends or Ctrl-C, not bounded by --timeout.
			ctx := cmd.Context()
			o, closeFn, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			return watchFleet(ctx, cmd.OutOrStdout(), o, id, every)
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the fleet with a live progress bar until it ends")
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "refresh interval for --watch")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func watchFleet(ctx context.Context, w io.Writer, o ops.Ops, id string, every time.Duration) error {
	var bar *progressbar.ProgressBar
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		p, err := o.FleetProgress(ctx, id)
		if err != nil {
			if _, rerr := o.FleetTenants(ctx, id); rerr == nil {
				fmt.Fprintln(w, "\nthe fleet has ended: see `starter fleet report`")
				return nil
			}
			return err
		}
		total, done := 0, 0
		for _, wv := range p.Waves {
			total += wv.Size
			done += wv.Finished
		}
		if bar == nil {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(), progressbar.OptionSetWidth(30))
		}
		state := p.Phase + " " + p.Wave
		switch {
		case p.Halted != "":
			state = "HALTED: " + p.Halted
		case p.Paused:
			state = "paused"
		}
		bar.Describe(fmt.Sprintf("%s | failed %d, stuck %d |", state, len(p.Failed), len(p.Stuck)))
		_ = bar.Set(done)
		if p.Phase == "done" || (total > 0 && done == total && p.Phase != "running-wave") {
			_ = bar.Finish()
			fmt.Fprintln(w)
			writeProgress(w, p)
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(w)
			return nil
		case <-tick.C:
		}
	}
}

func writeProgress(w io.Writer, p workflows.FleetProgress) {
	fmt.Fprintf(w, "Fleet %s — %s", p.Name, p.Phase)
	if p.Wave != "" {
		fmt.Fprintf(w, " (wave %s)", p.Wave)
	}
	fmt.Fprintf(w, ", run %d\n", p.Runs)
	if p.Paused {
		fmt.Fprintln(w, "PAUSED: resume with `starter fleet resume "+p.Name+" --by <you>`")
	}
	if p.Halted != "" {
		fmt.Fprintln(w, "HALTED: "+p.Halted+" — `starter fleet resume "+p.Name+" --by <you> --note <why>` or `starter fleet cancel`")
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tSIZE\tPENDING\tRUNNING\tSLOTS\tFINISHED\tBY STAGE\tBY OUTCOME")
	for _, wv := range p.Waves {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", wv.Name, wv.Size, wv.Pending, wv.Running, wv.HoldingSlots, wv.Finished, counts(wv.ByStage), counts(wv.ByOutcome))
	}
	_ = tw.Flush()
	// Children of fleets since gate fleet-lean-reports report slot changes, not every stage.
	fmt.Fprintf(w, "(stages as each tenant last reported: at slot changes, or only its start in a wave whose concurrency covers it; live: starter status --query \"WorkFleet = '%s' AND ExecutionStatus = 'Running'\"; stuck upgrades: starter stuck)\n", p.Name)
	for _, t := range p.Failed {
		fmt.Fprintf(w, "FAILED  %s (%s): %s\n", t.Name, t.WorkflowID, t.Error)
	}
	for _, t := range p.Stuck {
		fmt.Fprintf(w, "STUCK   %s at %s since %s, waiting on %s (%s)\n", t.Name, t.Stage, since(t.Since), t.WaitingOn, t.WorkflowID)
	}
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func fleetApproveCmd(g *globals) *cobra.Command {
	var by, why string
	cmd := &cobra.Command{
		Use:   "approve FLEET WAVE --by NAME --why TEXT",
		Short: "Approve the gate after a wave so the next wave starts",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := (workflows.WaveApproval{Wave: args[1], By: by, Why: why}).CheckText(); err != nil {
				return err
			}
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				if err := o.FleetAction(ctx, fleetID(args[0]), workflows.UpdateApproveWave, workflows.WaveApproval{Wave: args[1], By: by, Why: why}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wave %s of %s approved by %s\n", args[1], args[0], by)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who approves (required)")
	cmd.Flags().StringVar(&why, "why", "", "why the next wave may start (required)")
	return cmd
}

func fleetOperatorCmd(g *globals, use, update, short string) *cobra.Command {
	var by, note string
	cmd := &cobra.Command{
		Use:   use + " FLEET --by NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := (workflows.OperatorRequest{By: by, Note: note}).CheckText(); err != nil {
				return err
			}
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				if err := o.FleetAction(ctx, fleetID(args[0]), update, workflows.OperatorRequest{By: by, Note: note}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s by %s\n", args[0], use, by)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who acts (required)")
	cmd.Flags().StringVar(&note, "note", "", "why")
	return cmd
}

func fleetReportCmd(g *globals) *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "report FLEET",
		Short: "One row per tenant: outcome, versions, stage durations, confirmations, warnings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, o ops.Ops) error {
				rows, err := o.FleetReport(ctx, fleetID(args[0]))
				if err != nil {
					return err
				}
				return writeReport(cmd, out, format, rows)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "markdown", "csv, json, markdown or table")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	return cmd
}
