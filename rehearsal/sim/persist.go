package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// StateFileName is the simulated cloud's saved state inside a rehearsal's state folder,
// beside the embedded Temporal server's SQLite file.
const StateFileName = "sim-state.json"

// snapshotVersion changes when the saved form changes; an older file is refused.
const snapshotVersion = 1

// The saved form of a Cloud: everything that changes while it runs. What the scenario says
// (tenant specs, faults, names) is not saved: a restore rebuilds it from the same scenario.
type snapshot struct {
	Version int       `json:"version"`
	SavedAt time.Time `json:"savedAt"`
	// Clock is the scaled clock's anchor, so simulated time goes on where it would have:
	// Microsoft's cloud does not stop while a rehearsal's stack is down.
	Clock             *ScaledClock     `json:"clock,omitempty"`
	Key               []byte           `json:"key"`
	Order             []string         `json:"order"`
	Calls             map[string]int   `json:"calls"`
	CredentialExpired bool             `json:"credentialExpired,omitempty"`
	Tenants           []tenantSnapshot `json:"tenants"`
}

type tenantSnapshot struct {
	ID                    string                  `json:"id"`
	Domains               []string                `json:"domains"`
	Users                 []userSnapshot          `json:"users"`
	EntraP1               bool                    `json:"entraP1"`
	SecurityDefaults      bool                    `json:"securityDefaults"`
	CAMFA                 bool                    `json:"caMFA"`
	OrchestratorConsented bool                    `json:"orchestratorConsented"`
	OrchestratorSPID      string                  `json:"orchestratorSPID"`
	GraphSPID             string                  `json:"graphSPID"`
	DynamicsSPID          string                  `json:"dynamicsSPID"`
	Work365Consented      bool                    `json:"work365Consented"`
	Work365SPID           string                  `json:"work365SPID"`
	Work365GrantIDs       []string                `json:"work365GrantIDs"`
	CAPolicyID            string                  `json:"caPolicyID"`
	CAStrength            bool                    `json:"caStrength"`
	CAGroup               bool                    `json:"caGroup"`
	CAGroupID             string                  `json:"caGroupID"`
	AdminsGroupID         string                  `json:"adminsGroupID"`
	PCSPID                string                  `json:"pcSPID"`
	PCGrantID             string                  `json:"pcGrantID"`
	Registered            bool                    `json:"registered"`
	Initialised           bool                    `json:"initialised"`
	Registration          *Registration           `json:"registration,omitempty"`
	Links                 map[string]linkSnapshot `json:"links"`
	Org                   *orgSnapshot            `json:"org,omitempty"`
	PC                    *partnerAccountSnapshot `json:"pc,omitempty"`
	Counters              *TenantCounters         `json:"counters"`
}

type userSnapshot struct {
	ID           string `json:"id"`
	UPN          string `json:"upn"`
	Display      string `json:"display"`
	GlobalAdmin  bool   `json:"globalAdmin"`
	GAVia        string `json:"gaVia,omitempty"`
	SysAdmin     bool   `json:"sysAdmin"`
	ServiceRole  bool   `json:"serviceRole"`
	Dynamics     bool   `json:"dynamics"`
	EntraP1      bool   `json:"entraP1"`
	MFA          bool   `json:"mfa"`
	Disabled     bool   `json:"disabled"`
	SystemUserID string `json:"systemUserId"`
}

type linkSnapshot struct {
	Issued time.Time `json:"issued"`
	Used   bool      `json:"used"`
}

type partnerAccountSnapshot struct {
	Name      string `json:"name"`
	Consented bool   `json:"consented"`
}

type solutionSnapshot struct {
	ID           string    `json:"id"`
	UniqueName   string    `json:"uniqueName"`
	FriendlyName string    `json:"friendlyName"`
	Version      string    `json:"version"`
	Managed      bool      `json:"managed"`
	InstalledOn  time.Time `json:"installedOn"`
}

type opSnapshot struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	OpType      int           `json:"opType"`
	Created     time.Time     `json:"created"`
	Started     time.Time     `json:"started"`
	Owner       string        `json:"owner"`
	Full        time.Duration `json:"full"`
	Done        time.Time     `json:"done"`
	Fails       bool          `json:"fails"`
	Message     string        `json:"message"`
	Applied     bool          `json:"applied"`
	Recipe      opRecipe      `json:"recipe"`
	SolutionOp  bool          `json:"solutionOp"`
	Description string        `json:"description,omitempty"`
	// Job is the import job the operation runs, if any.
	Job *jobSnapshot `json:"job,omitempty"`
}

type jobSnapshot struct {
	ID           string `json:"id"`
	Key          string `json:"key"`
	SolutionName string `json:"solutionName"`
	Holding      bool   `json:"holding"`
}

type orgSnapshot struct {
	OrgID             string             `json:"orgId"`
	BUID              string             `json:"buId"`
	AppUser           bool               `json:"appUser"`
	AppUserID         string             `json:"appUserId"`
	Solutions         []solutionSnapshot `json:"solutions"`
	Ops               []opSnapshot       `json:"ops"`
	JobsPending       float64            `json:"jobsPending"`
	JobsAsOf          time.Time          `json:"jobsAsOf"`
	DrainPerMin       float64            `json:"drainPerMin"`
	ArrivePerMin      float64            `json:"arrivePerMin"`
	JobIDs            []string           `json:"jobIds"`
	JobSeq            int                `json:"jobSeq"`
	Frozen            bool               `json:"frozen"`
	SettingsID        string             `json:"settingsId"`
	UpgradeStatus     string             `json:"upgradeStatus,omitempty"`
	UpgradeVersion    string             `json:"upgradeVersion,omitempty"`
	ServiceRoleExists bool               `json:"serviceRoleExists"`
	SysAdminRoleID    string             `json:"sysAdminRoleId"`
	ServiceRoleID     string             `json:"serviceRoleId"`
	BasicRoleID       string             `json:"basicRoleId"`
	ImportAttempts    int                `json:"importAttempts"`
	UpgradeAttempts   int                `json:"upgradeAttempts"`
}

// Save writes the cloud's state to path atomically (a temporary file renamed over it), so a
// crash while saving leaves the previous state. Restore reads it back.
func (c *Cloud) Save(path string) error {
	// Encoded under the lock: the snapshot shares the live maps.
	c.mu.Lock()
	data, err := json.Marshal(c.snapshot())
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sim: encode the state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("sim: create the state folder: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("sim: save the state beside %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sim: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sim: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sim: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("sim: replace %s: %w", path, err)
	}
	return nil
}

// SaveEvery saves the state to path every interval until ctx ends, then once more. Errors are
// passed to onError (nil: ignored) and the saving goes on.
func (c *Cloud) SaveEvery(ctx context.Context, path string, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := c.Save(path); err != nil && onError != nil {
				onError(err)
			}
			return
		case <-t.C:
			if err := c.Save(path); err != nil && onError != nil {
				onError(err)
			}
		}
	}
}

// Open builds a cloud from the scenario and, when path holds a saved state, restores it: a
// rehearsal restarted from its state folder finds the cloud as it left it (imports done or
// still running, consents given, counters). The file must have been saved from a cloud of
// the same scenario; a saved scaled clock replaces opts.Clock so simulated time goes on.
func Open(scenario *Scenario, opts Options, path string) (*Cloud, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return New(scenario, opts), nil
	}
	if err != nil {
		return nil, fmt.Errorf("sim: read the saved state: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("sim: %s is not a saved simulator state (delete it to start the cloud anew): %w", path, err)
	}
	if snap.Version != snapshotVersion {
		return nil, fmt.Errorf("sim: %s was saved in format %d, this simulator reads %d: delete it to start the cloud anew", path, snap.Version, snapshotVersion)
	}
	if snap.Clock != nil {
		opts.Clock = *snap.Clock
	}
	c := New(scenario, opts)
	if err := c.restore(snap); err != nil {
		return nil, fmt.Errorf("sim: restore %s: %w", path, err)
	}
	return c, nil
}

// snapshot copies the state. Callers hold c.mu.
func (c *Cloud) snapshot() snapshot {
	s := snapshot{Version: snapshotVersion, SavedAt: time.Now().UTC(), Key: c.key, Order: slices.Clone(c.order), CredentialExpired: c.credentialExpired, Calls: c.calls}
	if sc, ok := c.clock.(ScaledClock); ok {
		s.Clock = &sc
	}
	for _, id := range c.order {
		s.Tenants = append(s.Tenants, c.tenants[id].snapshot())
	}
	return s
}

func (t *tenantState) snapshot() tenantSnapshot {
	s := tenantSnapshot{
		ID: t.id, Domains: t.domains, EntraP1: t.entraP1, SecurityDefaults: t.securityDefaults, CAMFA: t.caMFA,
		OrchestratorConsented: t.orchestratorConsented, OrchestratorSPID: t.orchestratorSPID, GraphSPID: t.graphSPID,
		DynamicsSPID: t.dynamicsSPID, Work365Consented: t.work365Consented, Work365SPID: t.work365SPID,
		Work365GrantIDs: t.work365GrantIDs, CAPolicyID: t.caPolicyID, CAStrength: t.caStrength, CAGroup: t.caGroup,
		CAGroupID: t.caGroupID, AdminsGroupID: t.adminsGroupID, PCSPID: t.pcSPID, PCGrantID: t.pcGrantID,
		Registered: t.registered, Initialised: t.initialised, Registration: t.registration,
		Links: map[string]linkSnapshot{}, Counters: t.counters,
	}
	for _, id := range sortedKeys(t.users) {
		u := t.users[id]
		s.Users = append(s.Users, userSnapshot{ID: u.id, UPN: u.upn, Display: u.display, GlobalAdmin: u.globalAdmin, GAVia: u.gaVia,
			SysAdmin: u.sysAdmin, ServiceRole: u.serviceRole, Dynamics: u.dynamics, EntraP1: u.entraP1, MFA: u.mfa,
			Disabled: u.disabled, SystemUserID: u.systemUserID})
	}
	for tok, l := range t.links {
		s.Links[tok] = linkSnapshot{Issued: l.issued, Used: l.used}
	}
	if t.pc != nil {
		s.PC = &partnerAccountSnapshot{Name: t.pc.name, Consented: t.pc.consented}
	}
	if o := t.org; o != nil {
		org := &orgSnapshot{
			OrgID: o.orgID, BUID: o.buID, AppUser: o.appUser, AppUserID: o.appUserID, JobsPending: o.jobsPending,
			JobsAsOf: o.jobsAsOf, DrainPerMin: o.drainPerMin, ArrivePerMin: o.arrivePerMin, JobIDs: o.jobIDs, JobSeq: o.jobSeq,
			Frozen: o.frozen, SettingsID: o.settingsID, UpgradeStatus: o.upgradeStatus, UpgradeVersion: o.upgradeVersion,
			ServiceRoleExists: o.serviceRoleExists, SysAdminRoleID: o.sysAdminRoleID, ServiceRoleID: o.serviceRoleID,
			BasicRoleID: o.basicRoleID, ImportAttempts: o.importAttempts, UpgradeAttempts: o.upgradeAttempts,
		}
		for _, k := range sortedKeys(o.solutions) {
			x := o.solutions[k]
			org.Solutions = append(org.Solutions, solutionSnapshot{ID: x.id, UniqueName: x.uniqueName, FriendlyName: x.friendlyName,
				Version: x.version, Managed: x.managed, InstalledOn: x.installedOn})
		}
		for _, op := range o.ops {
			x := opSnapshot{ID: op.id, Name: op.name, OpType: op.opType, Created: op.created, Started: op.started, Owner: op.owner,
				Full: op.full, Done: op.done, Fails: op.fails, Message: op.message, Applied: op.applied, Recipe: op.recipe,
				SolutionOp: op.solutionOp, Description: op.description}
			if j := op.job; j != nil {
				x.Job = &jobSnapshot{ID: j.id, Key: j.key, SolutionName: j.solutionName, Holding: j.holding}
			}
			org.Ops = append(org.Ops, x)
		}
		s.Org = org
	}
	return s
}

// restore replaces the state of a cloud just built from the same scenario.
func (c *Cloud) restore(s snapshot) error {
	if !slices.Equal(s.Order, c.order) {
		return errors.New("it was saved from another scenario (its tenants differ): use the same scenario and seed, or delete the file")
	}
	c.key = s.Key
	c.credentialExpired = s.CredentialExpired
	if s.Calls != nil {
		c.calls = s.Calls
	}
	// New identifiers must not repeat those already handed out: the generator starts afresh
	// from a new stream rather than from the scenario's seed.
	c.rng = mrand.New(mrand.NewPCG(uint64(c.scn.Seed), uint64(time.Now().UnixNano())))
	for _, ts := range s.Tenants {
		t := c.tenants[ts.ID]
		if t == nil {
			return fmt.Errorf("tenant %s is not in the scenario", ts.ID)
		}
		if err := c.restoreTenant(t, ts); err != nil {
			return fmt.Errorf("tenant %s: %w", ts.ID, err)
		}
	}
	return nil
}

func (c *Cloud) restoreTenant(t *tenantState, s tenantSnapshot) error {
	t.domains = s.Domains
	t.entraP1, t.securityDefaults, t.caMFA = s.EntraP1, s.SecurityDefaults, s.CAMFA
	t.orchestratorConsented, t.orchestratorSPID, t.graphSPID, t.dynamicsSPID = s.OrchestratorConsented, s.OrchestratorSPID, s.GraphSPID, s.DynamicsSPID
	t.work365Consented, t.work365SPID, t.work365GrantIDs = s.Work365Consented, s.Work365SPID, s.Work365GrantIDs
	t.caPolicyID, t.caStrength, t.caGroup, t.caGroupID = s.CAPolicyID, s.CAStrength, s.CAGroup, s.CAGroupID
	t.adminsGroupID, t.pcSPID, t.pcGrantID = s.AdminsGroupID, s.PCSPID, s.PCGrantID
	t.registered, t.initialised, t.registration = s.Registered, s.Initialised, s.Registration
	if s.Counters != nil {
		t.counters = s.Counters
		for _, m := range []*map[string]int{&t.counters.TokenRequests, &t.counters.Calls, &t.counters.Actions, &t.counters.ActionsRefused} {
			if *m == nil {
				*m = map[string]int{}
			}
		}
	}
	t.users, t.upns = map[string]*userState{}, map[string]*userState{}
	for _, u := range s.Users {
		us := &userState{id: u.ID, upn: u.UPN, display: u.Display, globalAdmin: u.GlobalAdmin, gaVia: u.GAVia, sysAdmin: u.SysAdmin,
			serviceRole: u.ServiceRole, dynamics: u.Dynamics, entraP1: u.EntraP1, mfa: u.MFA, disabled: u.Disabled, systemUserID: u.SystemUserID}
		t.users[us.id] = us
		t.upns[strings.ToLower(us.upn)] = us
	}
	t.links = map[string]*link{}
	for tok, l := range s.Links {
		t.links[tok] = &link{issued: l.Issued, used: l.Used}
	}
	t.pc = nil
	if s.PC != nil {
		t.pc = &pcAccount{name: s.PC.Name, consented: s.PC.Consented}
	}
	if (s.Org == nil) != (t.org == nil) {
		return errors.New("its Dataverse organisation differs from the scenario's")
	}
	if s.Org == nil {
		return nil
	}
	o, so := t.org, s.Org
	o.orgID, o.buID, o.appUser, o.appUserID = so.OrgID, so.BUID, so.AppUser, so.AppUserID
	o.jobsPending, o.jobsAsOf, o.drainPerMin, o.arrivePerMin = so.JobsPending, so.JobsAsOf, so.DrainPerMin, so.ArrivePerMin
	o.jobIDs, o.jobSeq, o.frozen, o.settingsID = so.JobIDs, so.JobSeq, so.Frozen, so.SettingsID
	o.upgradeStatus, o.upgradeVersion, o.serviceRoleExists = so.UpgradeStatus, so.UpgradeVersion, so.ServiceRoleExists
	o.sysAdminRoleID, o.serviceRoleID, o.basicRoleID = so.SysAdminRoleID, so.ServiceRoleID, so.BasicRoleID
	o.importAttempts, o.upgradeAttempts = so.ImportAttempts, so.UpgradeAttempts
	o.solutions = map[string]*solution{}
	for _, x := range so.Solutions {
		o.put(&solution{id: x.ID, uniqueName: x.UniqueName, friendlyName: x.FriendlyName, version: x.Version, managed: x.Managed, installedOn: x.InstalledOn})
	}
	o.importJobs, o.asyncOps, o.ops = map[string]*importJob{}, map[string]*asyncOp{}, nil
	for _, x := range so.Ops {
		op := &asyncOp{id: x.ID, name: x.Name, opType: x.OpType, created: x.Created, started: x.Started, owner: x.Owner, full: x.Full,
			done: x.Done, fails: x.Fails, message: x.Message, applied: x.Applied, recipe: x.Recipe, solutionOp: x.SolutionOp, description: x.Description}
		if x.Recipe.Kind != "" {
			op.apply = c.applier(t, op)
			if op.apply == nil {
				return fmt.Errorf("async operation %s has an unknown kind %q", op.id, x.Recipe.Kind)
			}
		}
		if j := x.Job; j != nil {
			op.job = &importJob{id: j.ID, key: j.Key, solutionName: j.SolutionName, holding: j.Holding, op: op}
			o.importJobs[op.job.id] = op.job
			o.importJobs[strings.ToLower(op.job.key)] = op.job
		}
		o.addOp(op)
	}
	return nil
}
