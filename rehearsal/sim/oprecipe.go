package sim

import (
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/microsoft/work365"
)

// Kinds of asynchronous operation, by what they do when they finish.
const (
	recipeImport    = "import"
	recipeUninstall = "uninstall"
	recipeUpgrade   = "upgrade"
)

// opRecipe says what an asynchronous operation does to the tenant when it finishes, as data,
// so that an operation still running when the cloud is saved finishes after a restore.
type opRecipe struct {
	Kind string `json:"kind"`
	// Solution and Version: the imported package or the uninstalled solution.
	Solution string `json:"solution,omitempty"`
	Version  string `json:"version,omitempty"`
	Managed  bool   `json:"managed,omitempty"`
	// Holding: the import stages an upgrade (holding solution).
	Holding bool `json:"holding,omitempty"`
	// Initialise: Begin Upgrade of a new install (nothing staged to promote).
	Initialise bool `json:"initialise,omitempty"`
}

// applier returns what op does when it finishes, from its recipe. Callers hold c.mu (or
// restore the cloud).
func (c *Cloud) applier(t *tenantState, op *asyncOp) func(at time.Time) {
	o, n, r := t.org, c.names, op.recipe
	switch r.Kind {
	case recipeImport:
		return func(at time.Time) {
			if op.fails {
				t.counters.ImportsFailed++
				return
			}
			t.counters.ImportsSucceeded++
			switch {
			case strings.EqualFold(r.Solution, n.SolutionUniqueName) && r.Holding:
				o.put(&solution{id: c.newID(), uniqueName: n.HoldingSolutionName(), friendlyName: "Work 365 (upgrade)", version: r.Version, managed: true, installedOn: at})
				o.serviceRoleExists = true
			case strings.EqualFold(r.Solution, n.SolutionUniqueName):
				if s := o.get(n.SolutionUniqueName); s != nil {
					s.version = r.Version
				} else {
					o.put(&solution{id: c.newID(), uniqueName: n.SolutionUniqueName, friendlyName: "Work 365", version: r.Version, managed: true, installedOn: at})
				}
				o.serviceRoleExists = true
			case strings.EqualFold(r.Solution, n.PortalSolutionUniqueName):
				o.put(&solution{id: c.newID(), uniqueName: n.PortalSolutionUniqueName, friendlyName: "Work 365 Portal", version: r.Version, managed: true, installedOn: at})
				t.counters.PortalInstalls++
			default:
				o.put(&solution{id: c.newID(), uniqueName: r.Solution, friendlyName: r.Solution, version: r.Version, managed: r.Managed, installedOn: at})
			}
		}
	case recipeUninstall:
		return func(time.Time) {
			if op.fails {
				return
			}
			o.remove(r.Solution)
			if strings.EqualFold(r.Solution, n.PortalSolutionUniqueName) {
				t.counters.PortalUninstalls++
			}
		}
	case recipeUpgrade:
		return func(at time.Time) {
			if op.fails {
				t.counters.PromotionsFailed++
				o.upgradeStatus = work365.UpgradeFailed
				return
			}
			o.upgradeStatus = work365.UpgradeCompleted
			if r.Initialise {
				t.initialised = true
				t.counters.Initialisations++
				return
			}
			st := o.get(n.HoldingSolutionName())
			if st == nil {
				return
			}
			if main := o.get(n.SolutionUniqueName); main != nil {
				main.version = st.version
				main.installedOn = at
			} else {
				st.uniqueName = n.SolutionUniqueName
				o.put(st)
			}
			o.remove(n.HoldingSolutionName())
			t.counters.Promotions++
		}
	}
	return nil
}
