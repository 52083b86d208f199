package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	mrand "math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Well-known application IDs of Microsoft's first-party apps.
const (
	graphAppID    = "00000003-0000-0000-c000-000000000000"
	dynamicsAppID = "00000007-0000-0000-c000-000000000000"
)

// Licence SKUs the simulator knows.
const (
	SkuEntraP1       = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4" // AAD_PREMIUM
	SkuDynamics      = "ea126fc5-a19e-42e2-a731-da9d437bffcf" // DYN365_ENTERPRISE_PLAN1
	SkuOffice        = "6fd2c87f-b296-42f0-b197-1e91e994b900" // ENTERPRISEPACK
	planEntraP1      = "41781fb2-bc02-4b7c-bd55-b576c07bb09d"
	planDynamics     = "d56f3deb-50d8-465a-bedb-f079817ccac1"
	planExchange     = "efb87545-963c-4e0d-99df-69c6916d9eb0"
	sysAdminTemplate = "627090ff-40a3-4053-8790-584edc5be201"
	globalAdminRole  = "62e90394-69f5-4237-9190-012177145e10"
)

type tenantState struct {
	id       string
	name     string
	customer bool
	spec     Tenant
	domains  []string

	users map[string]*userState // by lower object ID
	upns  map[string]*userState // by lower UPN

	entraP1          bool
	securityDefaults bool
	caMFA            bool

	orchestratorConsented bool
	// orchestratorRoles are the Graph application permissions consented in this tenant; nil:
	// the scenario's orchestrator.permissions.
	orchestratorRoles []string
	orchestratorSPID  string
	graphSPID         string
	dynamicsSPID      string
	work365Consented  bool
	work365SPID       string
	work365GrantIDs   []string
	caPolicyID        string
	// caStrength: the MFA policy requires an authentication strength instead of the built-in
	// "mfa" control; caGroup: it is scoped to caGroupID (both accounts are members), not to
	// all users.
	caStrength, caGroup bool
	caGroupID           string
	// adminsGroupID is the role-assignable group holding Global Administrator for users whose
	// role comes through a group.
	adminsGroupID string
	// pcSPID and pcGrantID are Microsoft Partner Center's service principal and the Work 365
	// app's delegated grant on it, present while the Partner Center connection is consented.
	pcSPID, pcGrantID string

	registered   bool
	initialised  bool // a new install went through Begin Upgrade
	registration *Registration
	links        map[string]*link

	org *orgState
	pc  *pcAccount

	faults   Faults
	rng      *mrand.Rand // faults
	counters *TenantCounters
}

type userState struct {
	id, upn, display string
	globalAdmin      bool
	// gaVia is how the Global Administrator role is held: "group" (active through a
	// role-assignable group), "eligible" (PIM eligibility, active only when globalAdmin is
	// true), or "" (assigned directly).
	gaVia        string
	sysAdmin     bool
	serviceRole  bool
	dynamics     bool
	entraP1      bool
	mfa          bool
	disabled     bool
	systemUserID string
}

type pcAccount struct {
	name      string
	consented bool
}

type link struct {
	issued time.Time
	used   bool
}

// Registration is what SubmitRegistration recorded.
type Registration struct {
	Organization  string    `json:"organization"`
	TimeZone      string    `json:"timeZone"`
	LicenceKeyRef string    `json:"licenceKeyRef"`
	At            time.Time `json:"at"`
}

type solution struct {
	id, uniqueName, friendlyName, version string
	managed                               bool
	installedOn                           time.Time
}

type asyncOp struct {
	id, name string
	opType   int
	created  time.Time
	// started is when the operation leaves the queue (an import's job row appears then);
	// zero means at creation.
	started time.Time
	// owner is the systemuserid of who started it (_ownerid_value).
	owner       string
	full        time.Duration // duration of the whole operation (failures stop early)
	done        time.Time
	fails       bool
	message     string
	applied     bool
	recipe      opRecipe
	apply       func(now time.Time)
	job         *importJob
	solutionOp  bool
	description string
}

type importJob struct {
	id, key, solutionName string
	holding               bool
	op                    *asyncOp
}

type orgState struct {
	host        string // normalised: {org}.crm[N].dynamics.com
	url         string
	orgID, buID string
	appUser     bool
	appUserID   string

	solutions  map[string]*solution // by lower unique name
	importJobs map[string]*importJob
	asyncOps   map[string]*asyncOp
	ops        []*asyncOp // in creation order

	jobsPending  float64
	jobsAsOf     time.Time
	drainPerMin  float64
	arrivePerMin float64
	jobIDs       []string
	jobSeq       int

	frozen     bool
	settingsID string
	// upgradeStatus and upgradeVersion are Work 365's record of Begin Upgrade in its settings
	// row (InProgress, Completed, Failed), the observable trace of an initialisation.
	upgradeStatus, upgradeVersion string
	serviceRoleExists             bool
	sysAdminRoleID                string
	serviceRoleID                 string
	basicRoleID                   string

	importAttempts  int
	upgradeAttempts int
}

func seededRand(seed int64, salt string) *mrand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strings.ToLower(salt)))
	return mrand.New(mrand.NewPCG(uint64(seed), h.Sum64()))
}

// normaliseOrgHost maps {org}.api.crm[N].dynamics.com and {org}.crm[N].dynamics.com to the latter.
func normaliseOrgHost(host string) string {
	host = strings.ToLower(host)
	if first, rest, ok := strings.Cut(host, "."); ok && strings.HasPrefix(rest, "api.crm") {
		return first + "." + strings.TrimPrefix(rest, "api.")
	}
	return host
}

func (c *Cloud) newTenant(t Tenant, _ int, now time.Time) *tenantState {
	ts := &tenantState{
		id:                    strings.ToLower(t.TenantID),
		name:                  t.Name,
		customer:              true,
		spec:                  t,
		users:                 map[string]*userState{},
		upns:                  map[string]*userState{},
		entraP1:               t.EntraP1,
		securityDefaults:      t.SecurityDefaults,
		caMFA:                 t.ConditionalAccessMFA,
		orchestratorConsented: *t.OrchestratorConsented,
		orchestratorRoles:     append([]string(nil), t.OrchestratorPermissions...),
		registered:            *t.Registered,
		links:                 map[string]*link{},
		faults:                c.scn.EffectiveFaults(t),
		rng:                   seededRand(c.scn.Seed, t.TenantID),
		counters:              newTenantCounters(),
	}
	for _, u := range []User{t.Admin, t.ServiceAccount} {
		us := &userState{
			id: strings.ToLower(u.ObjectID), upn: u.UPN, display: u.DisplayName,
			globalAdmin: u.GlobalAdmin, gaVia: u.GlobalAdminVia, sysAdmin: u.SystemAdministrator, serviceRole: u.ServiceRole,
			dynamics: u.DynamicsLicence, entraP1: t.EntraP1, mfa: u.MFARegistered, disabled: u.Disabled,
			systemUserID: c.newID(),
		}
		ts.users[us.id] = us
		ts.upns[strings.ToLower(us.upn)] = us
		if _, d, ok := strings.Cut(strings.ToLower(u.UPN), "@"); ok && !contains(ts.domains, d) {
			ts.domains = append(ts.domains, d)
		}
	}
	ts.graphSPID, ts.dynamicsSPID = c.newID(), c.newID()
	ts.orchestratorSPID = c.newID()
	if t.ConditionalAccessMFA {
		ts.caPolicyID = c.newID()
		ts.caStrength, ts.caGroup = t.ConditionalAccessStrength, t.ConditionalAccessGroup
		if ts.caGroup {
			ts.caGroupID = c.newID()
		}
	}
	if t.Admin.GlobalAdminVia == "group" || t.ServiceAccount.GlobalAdminVia == "group" {
		ts.adminsGroupID = c.newID()
	}
	if t.Work365Consented {
		c.consentWork365(ts)
	}
	u, _ := url.Parse(t.OrgURL)
	org := &orgState{
		host:              normaliseOrgHost(u.Host),
		url:               "https://" + strings.ToLower(u.Host),
		orgID:             c.newID(),
		buID:              c.newID(),
		appUser:           *t.DataverseAppUser,
		appUserID:         c.newID(),
		solutions:         map[string]*solution{},
		importJobs:        map[string]*importJob{},
		asyncOps:          map[string]*asyncOp{},
		jobsPending:       float64(t.Jobs.Pending),
		jobsAsOf:          now,
		drainPerMin:       t.Jobs.DrainPerMinute,
		arrivePerMin:      t.Jobs.ArrivePerMinute,
		settingsID:        c.newID(),
		serviceRoleExists: *t.ServiceRoleExists,
		sysAdminRoleID:    c.newID(),
		serviceRoleID:     c.newID(),
		basicRoleID:       c.newID(),
	}
	installed := now.Add(-90 * 24 * time.Hour)
	if t.Work365Version != "" {
		org.put(&solution{id: c.newID(), uniqueName: c.names.SolutionUniqueName, friendlyName: "Work 365", version: t.Work365Version, managed: true, installedOn: installed})
	}
	if t.Portal {
		org.put(&solution{id: c.newID(), uniqueName: c.names.PortalSolutionUniqueName, friendlyName: "Work 365 Portal", version: t.PortalVersion, managed: true, installedOn: installed})
	}
	ts.org = org
	return ts
}

func (c *Cloud) newPartnerTenant(pc PartnerConnection, _ int, seed int64) *tenantState {
	return &tenantState{
		id:                    strings.ToLower(pc.TenantID),
		name:                  pc.Name,
		users:                 map[string]*userState{},
		upns:                  map[string]*userState{},
		securityDefaults:      pc.MFAPolicies,
		orchestratorConsented: true,
		orchestratorSPID:      c.newID(),
		graphSPID:             c.newID(),
		dynamicsSPID:          c.newID(),
		links:                 map[string]*link{},
		faults:                c.scn.Faults,
		rng:                   seededRand(seed, pc.TenantID),
		counters:              newTenantCounters(),
	}
}

// consentWork365 creates the Work 365 app's service principal and tenant-wide grants.
func (c *Cloud) consentWork365(ts *tenantState) {
	if ts.work365Consented {
		return
	}
	ts.work365Consented = true
	ts.work365SPID = c.newID()
	ts.work365GrantIDs = []string{c.newID(), c.newID()}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (o *orgState) put(s *solution) { o.solutions[strings.ToLower(s.uniqueName)] = s }

func (o *orgState) get(name string) *solution { return o.solutions[strings.ToLower(name)] }

func (o *orgState) remove(name string) { delete(o.solutions, strings.ToLower(name)) }

// mfaPolicies reports whether MFA policies are on: security defaults or an enabled CA policy
// requiring MFA.
func (t *tenantState) mfaPolicies() bool { return t.securityDefaults || t.caMFA }

// settle applies every operation finished by now and brings the job count up to date.
// Callers hold c.mu.
func (t *tenantState) settle(now time.Time) {
	if t.org == nil {
		return
	}
	o := t.org
	due := []*asyncOp{}
	for _, op := range o.ops {
		if !op.applied && !now.Before(op.done) {
			due = append(due, op)
		}
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].done.Before(due[j].done) })
	for _, op := range due {
		o.advanceJobs(op.done)
		op.applied = true
		if op.apply != nil {
			op.apply(op.done)
		}
	}
	o.advanceJobs(now)
}

// advanceJobs moves the pending-jobs count to time now.
func (o *orgState) advanceJobs(now time.Time) {
	if !now.After(o.jobsAsOf) {
		return
	}
	mins := now.Sub(o.jobsAsOf).Minutes()
	rate := -o.drainPerMin
	if !o.frozen {
		rate += o.arrivePerMin
	}
	o.jobsPending = math.Max(0, o.jobsPending+rate*mins)
	o.jobsAsOf = now
}

// pendingJobs is the whole number of pending jobs.
func (o *orgState) pendingJobs() int { return int(math.Ceil(o.jobsPending - 1e-9)) }

// runningSolutionOp returns the solution operation still running, if any.
func (o *orgState) runningSolutionOp() *asyncOp {
	for _, op := range o.ops {
		if op.solutionOp && !op.applied {
			return op
		}
	}
	return nil
}

// upgradeRunning reports whether a Begin Upgrade promotion is in progress.
func (o *orgState) upgradeRunning() bool {
	op := o.runningSolutionOp()
	return op != nil && op.name == opNameUpgrade
}

// Async operation names.
const (
	opNameImport    = "Import Solution"
	opNameUninstall = "Uninstall Solution"
	opNameUpgrade   = "Apply Solution Upgrade"
)

func (o *orgState) addOp(op *asyncOp) {
	o.asyncOps[strings.ToLower(op.id)] = op
	o.ops = append(o.ops, op)
}

// progress is the percentage of an operation done at now.
func (op *asyncOp) progress(now time.Time) float64 {
	total := op.full
	if total <= 0 || !now.Before(op.done) {
		if op.fails {
			return 40
		}
		return 100
	}
	from := op.created
	if !op.started.IsZero() {
		from = op.started
	}
	if now.Before(from) {
		return 0
	}
	p := 100 * float64(now.Sub(from)) / float64(total)
	if op.fails {
		p = math.Min(p, 40)
	}
	return math.Round(p*100) / 100
}

func (t *tenantState) user(idOrUPN string) *userState {
	k := strings.ToLower(idOrUPN)
	if u := t.users[k]; u != nil {
		return u
	}
	return t.upns[k]
}

func (t *tenantState) String() string { return fmt.Sprintf("%s (%s)", t.name, t.id) }
