package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/ops/inventory"
	"github.com/csp-ops/work365-upgrade/workflows"
)

// PreflightBatch is how many tenants one Preflight workflow checks: its input and result stay
// small (a few hundred KB at most) however large the inventory.
const PreflightBatch = 100

// PreflightReport is the readiness of every tenant of an inventory.
type PreflightReport struct {
	Fleet string `json:"fleet"`
	// Ready is true when every tenant is ready.
	Ready   bool                   `json:"ready"`
	Tenants []activities.Readiness `json:"tenants"`
	// Workflows are the Preflight runs that checked them (read-only; for the Web UI).
	Workflows []string `json:"workflows"`
}

// NotReady returns the tenants that are not ready.
func (r PreflightReport) NotReady() []activities.Readiness {
	var out []activities.Readiness
	for _, t := range r.Tenants {
		if !t.Ready {
			out = append(out, t)
		}
	}
	return out
}

// ErrNotReady is returned (wrapped) by RequireReady when a tenant is not ready.
var ErrNotReady = errors.New("not every tenant is ready")

// Preflight checks every tenant of a validated inventory on the worker (which holds the
// credentials), read-only, through Preflight workflows of PreflightBatch tenants each. It
// waits for them within ctx.
func (o Ops) Preflight(ctx context.Context, inv *inventory.Inventory) (PreflightReport, error) {
	rep := PreflightReport{Fleet: inv.Fleet}
	stamp := time.Now().UTC().Format("20060102T150405.000")
	var runs []client.WorkflowRun
	for i := 0; i < len(inv.Tenants); i += PreflightBatch {
		in := workflows.PreflightInput{}
		for _, e := range inv.Tenants[i:min(i+PreflightBatch, len(inv.Tenants))] {
			in.Tenants = append(in.Tenants, activities.ReadinessInputOf(e.Tenant))
		}
		id := fmt.Sprintf("work365-preflight/%s/%s-%d", orWord(inv.Fleet, "inventory"), stamp, i/PreflightBatch+1)
		run, err := o.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: o.TaskQueue, WorkflowExecutionTimeout: 30 * time.Minute,
			StaticSummary: fmt.Sprintf("Preflight (read-only) of %d tenants of %s", len(in.Tenants), orWord(inv.Fleet, inv.Path)),
		}, workflows.PreflightWorkflow, in)
		if err != nil {
			return rep, fmt.Errorf("start the preflight %s: %w", id, err)
		}
		runs = append(runs, run)
		rep.Workflows = append(rep.Workflows, id)
	}
	for _, run := range runs {
		var res workflows.PreflightResult
		if err := run.Get(ctx, &res); err != nil {
			if ctx.Err() != nil {
				return rep, fmt.Errorf("the preflight %s did not finish in time (is a worker polling task queue %s? raise --timeout for large inventories): %w", run.GetID(), o.TaskQueue, err)
			}
			return rep, fmt.Errorf("the preflight %s failed: %w", run.GetID(), err)
		}
		rep.Tenants = append(rep.Tenants, res.Tenants...)
	}
	rep.Ready = len(rep.NotReady()) == 0
	return rep, nil
}

// RequireReady runs the preflight and returns an error wrapping ErrNotReady when any tenant
// is not ready; the report is returned either way, to be shown.
func (o Ops) RequireReady(ctx context.Context, inv *inventory.Inventory) (PreflightReport, error) {
	rep, err := o.Preflight(ctx, inv)
	if err != nil {
		return rep, err
	}
	if n := len(rep.NotReady()); n > 0 {
		return rep, fmt.Errorf("%d of %d tenants are not ready (see the fixes above): %w", n, len(rep.Tenants), ErrNotReady)
	}
	return rep, nil
}

// WritePreflight writes a preflight report as a table (per tenant: ready, or each check to
// fix with its admin-center path) or as JSON.
func WritePreflight(w io.Writer, format string, rep PreflightReport) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "", "table":
	default:
		return fmt.Errorf("format %q: use table or json", format)
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tNAME\tPATH\tREADY")
	for _, t := range rep.Tenants {
		state := "ready"
		if !t.Ready {
			state = "NOT READY"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.TenantID, t.DisplayName, t.Path, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range rep.Tenants {
		var lines []string
		for _, c := range t.Checks {
			switch c.Status {
			case activities.ReadyFail:
				lines = append(lines, fmt.Sprintf("  ✗ %s: %s", c.ID, c.Detail))
				if c.Fix != "" {
					lines = append(lines, "    fix: "+c.Fix)
				}
			case activities.ReadyWarn:
				lines = append(lines, fmt.Sprintf("  ! %s: %s", c.ID, c.Detail))
				if c.Fix != "" {
					lines = append(lines, "    check: "+c.Fix)
				}
			case activities.ReadySkip:
				lines = append(lines, fmt.Sprintf("  - %s: %s", c.ID, c.Detail))
			}
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s):\n%s\n", t.DisplayName, t.TenantID, strings.Join(lines, "\n"))
	}
	n := len(rep.NotReady())
	fmt.Fprintln(w)
	if n == 0 {
		fmt.Fprintf(w, "All %d tenants are ready. The preflight changed nothing.\n", len(rep.Tenants))
	} else {
		fmt.Fprintf(w, "%d of %d tenants are not ready: fix the above, then run the preflight again. The preflight changed nothing.\n", n, len(rep.Tenants))
	}
	return nil
}

func orWord(s, word string) string {
	if s == "" {
		return word
	}
	return s
}
