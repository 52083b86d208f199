package workflows

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Fleet names shared with the starter.
const (
	// FleetWorkflow runs many tenant upgrades in waves.
	FleetWorkflow = "FleetUpgrade"
	// QueryProgress returns FleetProgress.
	QueryProgress = "progress"
	// QueryFleetTenants returns every tenant of the fleet ([]FleetTenant).
	QueryFleetTenants = "tenants"
	// UpdateApproveWave opens the gate after a wave (WaveApproval).
	UpdateApproveWave = "approve-wave"
	// UpdatePauseFleet stops launching new tenants (OperatorRequest).
	UpdatePauseFleet = "pause"
	// UpdateResumeFleet resumes launching, also after a failure-budget halt (OperatorRequest).
	UpdateResumeFleet = "resume"
	// UpdateCancelFleet stops launching and cancels every running tenant (OperatorRequest).
	UpdateCancelFleet = "cancel-fleet"
	// SignalTenantProgress is sent by a tenant upgrade to its fleet when its stage or the
	// people it waits on change.
	SignalTenantProgress = "tenant-progress"
	// SignalTenantFinished is sent by a tenant upgrade to its fleet when it ends.
	SignalTenantFinished = "tenant-finished"
)

// MaxFleetInputPayload is the largest fleet input a fleet accepts, measured as it is sent
// (JSON, with the compressed plan in base64, a third larger than its bytes). Temporal warns
// about payloads over 512 KB and refuses them over 2 MB; the input carried over
// continue-as-new also holds the fleet's state, which needs the rest of the 512 KB.
const MaxFleetInputPayload = 384 * 1024

// FleetPriorityKey is the fleet workflow's task priority key (1 is the highest of the
// server's five), TenantPriorityKey its tenant upgrades' (the default, 3). A fleet's workflow
// tasks then pass its children's in a backed-up task queue: a run continuing as new waited
// 80 s behind 600 of its own children's first workflow tasks, starting none of the rest
// meanwhile (bench, 1,000 tenants). Servers without priority dispatch ignore it.
const (
	FleetPriorityKey  = 1
	TenantPriorityKey = 3
)

// WaveSpec is one wave of a fleet.
type WaveSpec struct {
	Name string `json:"name" yaml:"name"`
	// Concurrency bounds the tenants doing machine work at once in this wave (default 10).
	Concurrency int `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// Approval makes the fleet wait, after this wave, for an operator's approval.
	Approval bool `json:"approval,omitempty" yaml:"approval,omitempty"`
	// BakeTime is a wait after this wave before the next one (before any approval).
	BakeTime time.Duration `json:"bakeTime,omitempty" yaml:"bakeTime,omitempty"`
	// MaxFailures halts launching when more tenants of the wave failed than this.
	MaxFailures *int `json:"maxFailures,omitempty" yaml:"maxFailures,omitempty"`
	// MaxFailurePercent halts launching when more than this share of the wave failed.
	MaxFailurePercent *float64 `json:"maxFailurePercent,omitempty" yaml:"maxFailurePercent,omitempty"`
	// Size is the number of tenants in the wave (filled by PackPlan).
	Size int `json:"size"`
}

// FleetInput starts (or continues) a FleetUpgrade.
type FleetInput struct {
	Name   string     `json:"name"`
	Waves  []WaveSpec `json:"waves"`
	Config Config     `json:"config,omitempty"`
	// HumanWaitsHoldSlots makes tenants that wait on people count against their wave's
	// concurrency. By default they release their slot: a tenant waiting days for a consent
	// must not block machine work for the rest.
	HumanWaitsHoldSlots bool `json:"humanWaitsHoldSlots,omitempty"`
	// HaltAfterOrchestratorFaults halts launching once this many tenants wait on the same
	// orchestrator fault (the worker's own credential): starting more only adds waiting
	// upgrades (default 3).
	HaltAfterOrchestratorFaults int `json:"haltAfterOrchestratorFaults,omitempty"`
	// StuckAfter marks running tenants whose stage has not changed for this long as stuck in
	// the progress query (default 2h).
	StuckAfter time.Duration `json:"stuckAfter,omitempty"`
	// Plan is the gzip-compressed JSON of the tenants, wave by wave (PackPlan): thousands of
	// specs fit in one payload this way.
	Plan []byte `json:"plan"`
	// Carry is the gzip-compressed state carried over continue-as-new (empty at the start).
	Carry []byte `json:"carry,omitempty"`
	// ContinueAfterEvents continues as new after this many history events (0: when the
	// server suggests it).
	ContinueAfterEvents int `json:"continueAfterEvents,omitempty"`
	// MaxRunChildren bounds the running children of one fleet run before it continues as new
	// (0: 1,000; the server refuses more than 2,000 pending children per workflow).
	MaxRunChildren int `json:"maxRunChildren,omitempty"`
}

// PackPlan compresses the tenants of each wave into FleetInput.Plan and sets each wave's
// size. It refuses a plan too large for one payload, saying how to split it.
func PackPlan(in *FleetInput, tenants [][]spec.Tenant) error {
	if len(tenants) != len(in.Waves) {
		return fmt.Errorf("%d waves but tenants for %d", len(in.Waves), len(tenants))
	}
	total := 0
	for i := range in.Waves {
		in.Waves[i].Size = len(tenants[i])
		total += len(tenants[i])
		sortByWindow(tenants[i])
	}
	b, err := pack(tenants)
	if err != nil {
		return err
	}
	in.Plan = b
	size, err := encodedSize(*in)
	if err != nil {
		return err
	}
	if size > MaxFleetInputPayload {
		in.Plan = nil
		return fmt.Errorf("the fleet's %d tenants take %d KiB as sent to Temporal, more than the %d KiB a fleet input may take: split the inventory into fleets of about %d tenants",
			total, size/1024, MaxFleetInputPayload/1024, total*MaxFleetInputPayload/size*9/10)
	}
	return nil
}

// encodedSize is the size of v as Temporal's default data converter sends it (JSON: byte
// slices become base64).
func encodedSize(v any) (int, error) {
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		return 0, fmt.Errorf("encode the fleet input: %w", err)
	}
	return proto.Size(p), nil
}

// sortByWindow orders a wave's tenants by the opening of their downtime windows, so the fleet
// starts them in window order (the sort is stable; a window that does not resolve keeps its
// place at the end, and validation reports it).
func sortByWindow(ts []spec.Tenant) {
	opens := make(map[string]time.Time, len(ts))
	for _, t := range ts {
		if o, _, err := t.LoadWindow(); err == nil {
			opens[t.TenantID] = o
		}
	}
	slices.SortStableFunc(ts, func(a, b spec.Tenant) int {
		oa, okA := opens[a.TenantID]
		ob, okB := opens[b.TenantID]
		switch {
		case okA && okB:
			return oa.Compare(ob)
		case okA:
			return -1
		case okB:
			return 1
		}
		return 0
	})
}

func pack(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func unpack(b []byte, v any) error {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// StaticDetails is what the Web UI shows of a tenant's upgrade whatever its stage: the
// tenant, its Dynamics organisation, partner type, window and target (launched alone or by a
// fleet alike).
func StaticDetails(t spec.Tenant) string {
	return fmt.Sprintf("Tenant **%s** (`%s`), Dynamics %s, %s partner.\n\nWindow %s for %s (%s). Target Work 365 %s.",
		t.DisplayName, t.TenantID, t.OrgURL, t.PartnerType, t.Window.Start, t.Window.Length, t.TimeZone, t.TargetVersion)
}

// WaveApproval approves the gate after a wave.
type WaveApproval struct {
	Wave string `json:"wave"`
	By   string `json:"by"`
	Why  string `json:"why"`
}

// CheckText refuses a wave, by or why that is too long or holds control characters.
func (a WaveApproval) CheckText() error {
	return checkTexts(textField{"wave", a.Wave, spec.MaxNameLen}, textField{"by", a.By, spec.MaxNameLen}, textField{"why", a.Why, spec.MaxNoteLen})
}

// TenantProgress is what a tenant upgrade tells its fleet.
type TenantProgress struct {
	WorkflowID string    `json:"workflowId"`
	Stage      Stage     `json:"stage"`
	WaitingOn  Audience  `json:"waitingOn"`
	Since      time.Time `json:"since"`
	// Outcome and Error are set by SignalTenantFinished.
	Outcome     Outcome `json:"outcome,omitempty"`
	Error       string  `json:"error,omitempty"`
	FromVersion string  `json:"fromVersion,omitempty"`
	// Fault is the orchestrator fault (an AADSTS code) the tenant waits on, if any.
	Fault string `json:"fault,omitempty"`
}

// Fleet-level tenant states.
const (
	TenantPending  = "pending"
	TenantRunning  = "running"
	TenantFinished = "finished"
)

// OutcomeSkipped marks a tenant whose upgrade was already running or done elsewhere (another
// fleet or a direct launch): the fleet never starts a second one.
const OutcomeSkipped Outcome = "skipped"

// FleetTenant is one tenant as the fleet tracks it.
type FleetTenant struct {
	WorkflowID  string    `json:"id"`
	TenantID    string    `json:"tenantId"`
	Name        string    `json:"name"`
	Wave        int       `json:"wave"`
	State       string    `json:"state"`
	Stage       Stage     `json:"stage,omitempty"`
	WaitingOn   Audience  `json:"waitingOn,omitempty"`
	Since       time.Time `json:"since,omitempty"`
	Outcome     Outcome   `json:"outcome,omitempty"`
	Error       string    `json:"error,omitempty"`
	FromVersion string    `json:"fromVersion,omitempty"`
	// Starts counts how many times this fleet started the tenant's upgrade (always 0 or 1).
	Starts int `json:"starts,omitempty"`
	// RunID is the run this fleet started: with the workflow ID, it reads the upgrade's
	// archived history once the namespace's retention has passed.
	RunID string `json:"runId,omitempty"`
	// Fault is the orchestrator fault the tenant waits on, if any.
	Fault string `json:"fault,omitempty"`
	// Reported says the tenant's line went out in a report part while the fleet ran: from
	// the next run on, the fleet keeps only its state, outcome, wave and starts (its run ID,
	// stage, times and version are in the report; its error too, beyond the summary's).
	Reported bool `json:"reported,omitempty"`
}

// WaveProgress counts one wave's tenants.
type WaveProgress struct {
	Name      string         `json:"name"`
	Size      int            `json:"size"`
	Pending   int            `json:"pending"`
	Running   int            `json:"running"`
	Finished  int            `json:"finished"`
	ByStage   map[string]int `json:"byStage"`
	ByOutcome map[string]int `json:"byOutcome"`
	// HoldingSlots counts running tenants doing machine work (against the concurrency).
	HoldingSlots int `json:"holdingSlots"`
}

// FleetProgress is what the progress query returns.
type FleetProgress struct {
	Name   string `json:"name"`
	Phase  string `json:"phase"`
	Wave   string `json:"wave"`
	Paused bool   `json:"paused"`
	Halted string `json:"halted,omitempty"`
	// BakeUntil is when the current wave's bake time ends (phase baking).
	BakeUntil time.Time      `json:"bakeUntil,omitempty"`
	Waves     []WaveProgress `json:"waves"`
	Failed    []FleetTenant  `json:"failed,omitempty"`
	Stuck     []FleetTenant  `json:"stuck,omitempty"`
	// Events lists operator actions and fleet events (approvals, pauses, halts), oldest first.
	Events []string `json:"events,omitempty"`
	// EventsOmitted counts earlier events a long fleet no longer carries (each was notified).
	EventsOmitted int `json:"eventsOmitted,omitempty"`
	Runs          int `json:"runs"`
}

// FleetResult is a finished fleet. Since the fleet-summary change it is a summary (counts and
// the failed tenants): one row per tenant does not fit one payload for thousands of tenants.
// Every tenant stays readable through the tenants query (a worker answers it for finished
// fleets too) and each upgrade's own result.
type FleetResult struct {
	Name      string `json:"name"`
	Cancelled bool   `json:"cancelled"`
	// Total is the number of tenants in the fleet.
	Total int `json:"total,omitempty"`
	// Outcomes counts the tenants by outcome.
	Outcomes map[Outcome]int `json:"outcomes,omitempty"`
	// Failed lists the failed tenants, at most MaxResultFailed (FailedOmitted says how many
	// more), their errors cut to maxResultError characters.
	Failed        []FleetTenant `json:"failed,omitempty"`
	FailedOmitted int           `json:"failedOmitted,omitempty"`
	// Tenants lists every tenant: fleets that started before the fleet-summary change only.
	Tenants []FleetTenant `json:"tenants,omitempty"`
	// Events are the fleet's last MaxResultEvents events, oldest first (EventsOmitted: how
	// many earlier ones the progress query and the notifications had).
	Events        []string `json:"events,omitempty"`
	EventsOmitted int      `json:"eventsOmitted,omitempty"`
}

// Bounds of a fleet's summary result, so that it stays far below 512 KB whatever happens.
const (
	MaxResultFailed = 200
	MaxResultEvents = 200
	maxResultError  = 400
)
