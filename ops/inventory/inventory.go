// Package inventory reads the operations team's inventory: a YAML file of tenants to upgrade
// with shared defaults. Every problem is reported as file:line with the field; an inventory
// with any problem is refused whole, so nothing starts from a half-valid file.
package inventory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/csp-ops/work365-upgrade/internal/yamlfile"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Inventory is a validated inventory.
type Inventory struct {
	Path string
	// Fleet names this batch of upgrades (search attribute WorkFleet); default: the file name.
	Fleet   string
	Config  workflows.Config
	Tenants []Entry
	// Waves are the fleet's waves in order (default: one wave "all").
	Waves []workflows.WaveSpec
	// Options are fleet-wide settings.
	Options FleetOptions
}

// FleetOptions are fleet-wide settings of an inventory.
type FleetOptions struct {
	// HumanWaitsHoldSlots makes tenants waiting on people count against wave concurrency.
	HumanWaitsHoldSlots bool `yaml:"humanWaitsHoldSlots"`
	// StuckAfter is when a running tenant counts as stuck in fleet progress (default 2h).
	StuckAfter time.Duration `yaml:"stuckAfter"`
}

// Entry is one tenant with the line it starts on.
type Entry struct {
	Tenant spec.Tenant
	Line   int
}

type file struct {
	Fleet    string               `yaml:"fleet"`
	Waves    []workflows.WaveSpec `yaml:"waves"`
	Options  FleetOptions         `yaml:"options"`
	Defaults spec.Tenant          `yaml:"defaults"`
	Config   workflows.Config     `yaml:"config"`
	Tenants  []spec.Tenant        `yaml:"tenants"`
}

// Rules are what validation needs beyond the file: the clock (a window that has closed is
// refused) and the Dataverse hosts allowed. plan, launch and fleet launch pass the same.
type Rules = spec.InputRules

// Load reads and validates an inventory file with the default rules and no clock.
func Load(path string) (*Inventory, error) { return LoadWith(path, Rules{}) }

// LoadWith reads and validates an inventory file.
func LoadWith(path string, r Rules) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, yamlfile.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return ParseWith(path, data, r)
}

// Parse validates an inventory read from path with the default rules and no clock.
func Parse(path string, data []byte) (*Inventory, error) { return ParseWith(path, data, Rules{}) }

// ParseWith validates an inventory read from path and reports every problem of the file in
// one pass, each as file:line: field: problem.
func ParseWith(path string, data []byte, r Rules) (*Inventory, error) {
	// Pass 1: strict decoding finds unknown keys and wrong types, with their lines; the shared
	// decoder also refuses a second document, an oversized file and alias bombs.
	var strict file
	if err := yamlfile.Decode(path, data, &strict); err != nil {
		return nil, err
	}
	// Pass 2: the node tree gives each tenant its line and lets tenants override defaults.
	root, err := yamlfile.Parse(path, data)
	if err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: tenants: the inventory is empty: it needs a tenants: list", path)
	}
	doc := root.Content[0]
	defaults, tenants := child(doc, "defaults"), child(doc, "tenants")
	if tenants == nil || len(tenants.Content) == 0 {
		return nil, yamlfile.At(path, doc.Line, "tenants: the inventory lists no tenant")
	}
	inv := &Inventory{Path: path, Fleet: strict.Fleet, Config: strict.Config, Waves: strict.Waves, Options: strict.Options}
	if inv.Fleet == "" {
		inv.Fleet = fleetName(path)
	}
	var errs []error
	if len(inv.Waves) == 0 {
		inv.Waves = []workflows.WaveSpec{{Name: "all"}}
	}
	waveNames := map[string]bool{}
	wavesNode := child(doc, "waves")
	for i, w := range inv.Waves {
		line := doc.Line
		if wavesNode != nil && i < len(wavesNode.Content) {
			line = wavesNode.Content[i].Line
		}
		switch {
		case strings.TrimSpace(w.Name) == "":
			errs = append(errs, yamlfile.At(path, line, "waves[%d].name: required", i))
		case waveNames[w.Name]:
			errs = append(errs, yamlfile.At(path, line, "waves[%d].name: %q is used twice", i, w.Name))
		}
		waveNames[w.Name] = true
		if w.Concurrency < 0 || w.BakeTime < 0 || (w.MaxFailures != nil && *w.MaxFailures < 0) || (w.MaxFailurePercent != nil && (*w.MaxFailurePercent < 0 || *w.MaxFailurePercent > 100)) {
			errs = append(errs, yamlfile.At(path, line, "waves[%d]: concurrency, bakeTime and maxFailures must not be negative; maxFailurePercent is 0–100", i))
		}
	}
	seen, orgs := map[string]int{}, map[string]int{}
	for _, n := range tenants.Content {
		t := strict.Defaults
		t.PartnerCenters = append([]spec.PartnerCenter(nil), strict.Defaults.PartnerCenters...)
		if err := n.Decode(&t); err != nil {
			errs = append(errs, yamlfile.Wrap(path, err))
			continue
		}
		// One pass, every problem: the spec's own rules, then what only the starter can check
		// (clock, time zone database, allowed hosts, references). Where both speak of a field
		// the latter is kept: it never repeats a credential.
		input := unwrap(t.CheckInput(r))
		inputFields := map[string]bool{}
		for _, e := range input {
			var fe spec.FieldError
			if errors.As(e, &fe) {
				inputFields[fe.Field] = true
			}
		}
		for _, e := range append(unwrap(t.Validate()), input...) {
			var fe spec.FieldError
			switch {
			case e == nil:
			case errors.As(e, &fe):
				if inputFields[fe.Field] && !slices.Contains(input, e) {
					continue
				}
				errs = append(errs, yamlfile.At(path, lineOf(n, defaults, fe.Field), "tenant %s: %s", label(t), fe.Error()))
			default:
				errs = append(errs, yamlfile.At(path, n.Line, "tenant %s: %v", label(t), e))
			}
		}
		if host, err := spec.CheckOrgURL(t.OrgURL, r.OrgHostSuffixes); err == nil {
			if first, dup := orgs[host]; dup {
				errs = append(errs, yamlfile.At(path, lineOf(n, nil, "orgUrl"), "tenant %s: orgUrl: the organisation %s is already listed at line %d (one tenant per organisation)", label(t), host, first))
			} else {
				orgs[host] = lineOf(n, nil, "orgUrl")
			}
		}
		if t.Wave != "" && !waveNames[t.Wave] {
			errs = append(errs, yamlfile.At(path, lineOf(n, defaults, "wave"), "tenant %s: wave: %q is not one of the waves listed under waves:", label(t), t.Wave))
		}
		key := strings.ToLower(t.TenantID) + "/" + t.TargetVersion
		if first, dup := seen[key]; dup && t.TenantID != "" {
			errs = append(errs, yamlfile.At(path, lineOf(n, nil, "tenantId"), "tenantId: %q is already listed at line %d (one upgrade per tenant and version)", t.TenantID, first))
		} else {
			seen[key] = n.Line
		}
		inv.Tenants = append(inv.Tenants, Entry{Tenant: t, Line: n.Line})
	}
	if err := checkConfig(inv.Config); err != nil {
		errs = append(errs, yamlfile.At(path, lineOf(child(doc, "config"), nil, ""), "config: %v", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return inv, nil
}

func checkConfig(c workflows.Config) error {
	if c.LinkValidity < 0 || c.DrainDeadline < 0 || c.CompletionDeadline < 0 || c.ReminderInterval < 0 || c.MaxLinkRounds < 0 {
		return errors.New("durations and counts must not be negative")
	}
	return nil
}

// lineOf finds the line of a field path such as "window.start" or "partnerCenters[1].tenantId"
// in a tenant's node, else in the defaults, else the tenant's first line.
func lineOf(n, defaults *yaml.Node, field string) int {
	if n == nil {
		return 0
	}
	if l := find(n, field); l > 0 {
		return l
	}
	if l := find(defaults, field); l > 0 {
		return l
	}
	return n.Line
}

func find(n *yaml.Node, field string) int {
	if n == nil || field == "" {
		return 0
	}
	cur := n
	line := 0
	for _, part := range strings.Split(field, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i > 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		key, val := entry(cur, name)
		if val == nil {
			return line
		}
		line, cur = key.Line, val
		if idx >= 0 {
			if cur.Kind != yaml.SequenceNode || idx >= len(cur.Content) {
				return line
			}
			cur = cur.Content[idx]
			line = cur.Line
		}
	}
	return line
}

func child(n *yaml.Node, key string) *yaml.Node {
	_, v := entry(n, key)
	return v
}

func entry(n *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

func label(t spec.Tenant) string {
	if t.DisplayName != "" {
		return fmt.Sprintf("%q", t.DisplayName)
	}
	if t.TenantID != "" {
		return fmt.Sprintf("%q", t.TenantID)
	}
	return "(unnamed)"
}

func fleetName(path string) string {
	base := path
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	return strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
}

func unwrap(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// ByWave groups the tenants by wave, in wave order; tenants without a wave go to the last.
func (inv *Inventory) ByWave() [][]spec.Tenant {
	out := make([][]spec.Tenant, len(inv.Waves))
	index := map[string]int{}
	for i, w := range inv.Waves {
		index[w.Name] = i
	}
	for _, e := range inv.Tenants {
		i, ok := index[e.Tenant.Wave]
		if !ok {
			i = len(inv.Waves) - 1
		}
		out[i] = append(out[i], e.Tenant)
	}
	return out
}

// FleetInput builds the fleet workflow's input, refusing a plan too large for one payload.
func (inv *Inventory) FleetInput() (workflows.FleetInput, error) {
	in := workflows.FleetInput{Name: inv.Fleet, Waves: append([]workflows.WaveSpec(nil), inv.Waves...), Config: inv.Config,
		HumanWaitsHoldSlots: inv.Options.HumanWaitsHoldSlots, StuckAfter: inv.Options.StuckAfter}
	if err := workflows.PackPlan(&in, inv.ByWave()); err != nil {
		return in, fmt.Errorf("%s: %w", inv.Path, err)
	}
	return in, nil
}

// FleetWorkflowID is the fleet workflow's ID for a fleet name.
func FleetWorkflowID(fleet string) string { return "work365-fleet/" + fleet }

// WorkflowID is the upgrade's deterministic ID: one per tenant and target version, so
// launching the same inventory twice starts nothing twice.
func WorkflowID(t spec.Tenant) string { return t.UpgradeWorkflowID() }
