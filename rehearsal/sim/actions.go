package sim

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/csp-ops/work365-upgrade/microsoft/work365"
)

// Reasons an action is refused; ActionError wraps one of them.
var (
	ErrUnknownTenant   = errors.New("unknown tenant")
	ErrUnknownUser     = errors.New("unknown user")
	ErrNotAllowed      = errors.New("not allowed in the tenant's current state")
	ErrMissingRight    = errors.New("the acting user lacks a required role or licence")
	ErrLinkUnknown     = errors.New("the upgrade link is unknown or already used")
	ErrLinkExpired     = errors.New("the upgrade link has expired")
	ErrNoStagedUpgrade = errors.New("no staged upgrade to apply")
	ErrBusy            = errors.New("another solution operation is running")
)

// ActionError is a refused simulator action.
type ActionError struct {
	Action, TenantID string
	// Reason is one of the Err* values.
	Reason error
	// Detail says why in words.
	Detail string
}

func (e *ActionError) Error() string {
	return fmt.Sprintf("sim: %s in tenant %s refused: %v: %s", e.Action, e.TenantID, e.Reason, e.Detail)
}

// Unwrap returns the reason, so errors.Is(err, ErrLinkExpired) works.
func (e *ActionError) Unwrap() error { return e.Reason }

func refuse(reason error, format string, args ...any) error {
	return &ActionError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Role is a role a person can assign.
type Role string

// Roles.
const (
	// RoleGlobalAdmin is Entra's Global Administrator.
	RoleGlobalAdmin Role = "global-admin"
	// RoleSystemAdministrator is Dynamics 365's System Administrator.
	RoleSystemAdministrator Role = "system-administrator"
	// RoleWork365Service is Work 365's 'Work 365 Service' security role.
	RoleWork365Service Role = "work365-service"
)

// Licence is a licence a person can assign.
type Licence string

// Licences.
const (
	// LicenceDynamics is a Dynamics 365 Customer Engagement licence.
	LicenceDynamics Licence = "dynamics"
	// LicenceEntraP1 is Entra ID P1 (the tenant must own it).
	LicenceEntraP1 Licence = "entra-p1"
)

// Link is an upgrade link issued by Work 365's Get Consent page. The token is a secret.
type Link struct {
	Token     string    `json:"linkToken"`
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// act runs one action on a tenant with the lock held and counts it.
func (c *Cloud) act(name, tenantID string, f func(t *tenantState, now time.Time) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tenantByID(tenantID)
	if t == nil {
		return &ActionError{Action: name, TenantID: tenantID, Reason: ErrUnknownTenant, Detail: "no such tenant in the scenario"}
	}
	now := c.clock.Now()
	t.settle(now)
	t.counters.Actions[name]++
	err := f(t, now)
	if err != nil {
		t.counters.ActionsRefused[name]++
		var ae *ActionError
		if errors.As(err, &ae) {
			ae.Action, ae.TenantID = name, t.id
		} else {
			err = &ActionError{Action: name, TenantID: t.id, Reason: ErrNotAllowed, Detail: err.Error()}
		}
		c.logf("action %s in %s refused: %v", name, t.id, err)
		return err
	}
	c.logf("action %s in %s done", name, t.id)
	return nil
}

func (t *tenantState) mustUser(upn string) (*userState, error) {
	u := t.user(upn)
	if u == nil {
		return nil, refuse(ErrUnknownUser, "no user %s", upn)
	}
	return u, nil
}

func (t *tenantState) admin() *userState { return t.user(t.spec.Admin.ObjectID) }

func (t *tenantState) serviceAccount() *userState { return t.user(t.spec.ServiceAccount.ObjectID) }

// signIn models an interactive sign-in: with MFA policies on, a user without MFA is made to
// register ("MFA registration options may be presented, which should be completed").
func (t *tenantState) signIn(u *userState) error {
	if u.disabled {
		return refuse(ErrMissingRight, "%s is disabled and cannot sign in", u.upn)
	}
	if t.mfaPolicies() && !u.mfa {
		u.mfa = true
	}
	return nil
}

// RegisterMFA registers MFA methods for a user (what the user does at aka.ms/mfasetup).
func (c *Cloud) RegisterMFA(tenantID, upn string) error {
	return c.act("register-mfa", tenantID, func(t *tenantState, _ time.Time) error {
		u, err := t.mustUser(upn)
		if err != nil {
			return err
		}
		u.mfa = true
		return nil
	})
}

// EnableSecurityDefaults turns security defaults on (refused while a conditional access
// policy requiring MFA is enabled: the two are mutually exclusive).
func (c *Cloud) EnableSecurityDefaults(tenantID string) error {
	return c.act("enable-security-defaults", tenantID, func(t *tenantState, _ time.Time) error {
		if t.caMFA {
			return refuse(ErrNotAllowed, "conditional access policies are enabled; security defaults and conditional access are mutually exclusive")
		}
		t.securityDefaults = true
		return nil
	})
}

// EnableConditionalAccessMFA creates and enables a conditional access policy requiring MFA
// (needs Entra ID P1; refused while security defaults are on).
func (c *Cloud) EnableConditionalAccessMFA(tenantID string) error {
	return c.act("enable-conditional-access-mfa", tenantID, func(t *tenantState, _ time.Time) error {
		switch {
		case !t.entraP1:
			return refuse(ErrNotAllowed, "conditional access needs Entra ID P1")
		case t.securityDefaults:
			return refuse(ErrNotAllowed, "security defaults are on; turn them off before enabling conditional access")
		}
		if !t.caMFA {
			t.caMFA = true
			t.caPolicyID = c.newID()
		}
		return nil
	})
}

// AssignRole gives a user a role (idempotent).
func (c *Cloud) AssignRole(tenantID, upn string, role Role) error {
	return c.act("assign-role:"+string(role), tenantID, func(t *tenantState, _ time.Time) error {
		u, err := t.mustUser(upn)
		if err != nil {
			return err
		}
		switch role {
		case RoleGlobalAdmin:
			u.globalAdmin = true
		case RoleSystemAdministrator:
			if t.org == nil {
				return refuse(ErrNotAllowed, "the tenant has no Dynamics 365 organisation")
			}
			u.sysAdmin = true
		case RoleWork365Service:
			if t.org == nil || !t.org.serviceRoleExists {
				return refuse(ErrNotAllowed, "the '%s' role does not exist in the organisation yet: import Work 365 v2.5 first", c.names.ServiceRoleName)
			}
			u.serviceRole = true
		default:
			return refuse(ErrNotAllowed, "unknown role %q", role)
		}
		return nil
	})
}

// AssignLicence gives a user a licence (idempotent).
func (c *Cloud) AssignLicence(tenantID, upn string, licence Licence) error {
	return c.act("assign-licence:"+string(licence), tenantID, func(t *tenantState, _ time.Time) error {
		u, err := t.mustUser(upn)
		if err != nil {
			return err
		}
		switch licence {
		case LicenceDynamics:
			if t.org == nil {
				return refuse(ErrNotAllowed, "the tenant has no Dynamics 365 subscription")
			}
			u.dynamics = true
		case LicenceEntraP1:
			if !t.entraP1 {
				return refuse(ErrNotAllowed, "the tenant owns no Entra ID P1 licences")
			}
			u.entraP1 = true
		default:
			return refuse(ErrNotAllowed, "unknown licence %q", licence)
		}
		return nil
	})
}

// GrantAdminConsent is the tenant's Global Administrator consenting to the Work 365 app for
// the whole organisation: its service principal and AllPrincipals grants appear in Graph.
func (c *Cloud) GrantAdminConsent(tenantID string) error {
	return c.act("grant-admin-consent", tenantID, func(t *tenantState, _ time.Time) error {
		return c.adminConsent(t)
	})
}

func (c *Cloud) adminConsent(t *tenantState) error {
	a := t.admin()
	if a == nil {
		return refuse(ErrUnknownUser, "the tenant has no administrator")
	}
	if !a.globalAdmin {
		return refuse(ErrMissingRight, "%s is not a Global Administrator and cannot consent for the organisation", a.upn)
	}
	if err := t.signIn(a); err != nil {
		return err
	}
	if !t.work365Consented {
		c.consentWork365(t)
		t.counters.Consents++
	}
	return nil
}

// workingAdmin checks the runbook's requirements on the person doing registration and consent.
func (t *tenantState) workingAdmin() (*userState, error) {
	a := t.admin()
	switch {
	case a == nil:
		return nil, refuse(ErrUnknownUser, "the tenant has no administrator")
	case !a.globalAdmin:
		return nil, refuse(ErrMissingRight, "%s must be a Global Administrator", a.upn)
	case !a.sysAdmin:
		return nil, refuse(ErrMissingRight, "%s must hold System Administrator in Dynamics 365", a.upn)
	case !a.dynamics:
		return nil, refuse(ErrMissingRight, "%s must have a Dynamics 365 licence", a.upn)
	}
	return a, t.signIn(a)
}

// SubmitRegistration fills in Work 365's registration form (new installs only).
func (c *Cloud) SubmitRegistration(tenantID, organization, timeZone, licenceKeyRef string) error {
	return c.act("submit-registration", tenantID, func(t *tenantState, now time.Time) error {
		if t.org == nil || t.org.get(c.names.SolutionUniqueName) == nil {
			return refuse(ErrNotAllowed, "Work 365 is not installed")
		}
		if t.registered {
			return refuse(ErrNotAllowed, "Work 365 is already registered in this organisation")
		}
		if _, err := t.workingAdmin(); err != nil {
			return err
		}
		if strings.TrimSpace(organization) == "" || strings.TrimSpace(timeZone) == "" {
			return refuse(ErrNotAllowed, "the registration form needs the organisation name and the time zone")
		}
		t.registered = true
		t.registration = &Registration{Organization: organization, TimeZone: timeZone, LicenceKeyRef: licenceKeyRef, At: now}
		t.counters.Registrations++
		return nil
	})
}

// GetConsent is the Global Administrator clicking Get Consent in Work 365: it signs in,
// consents for the organisation if needed, and returns the upgrade link (a secret token,
// valid for the scenario's link validity from now on the cloud's clock).
func (c *Cloud) GetConsent(tenantID string) (Link, error) {
	var l Link
	err := c.act("get-consent", tenantID, func(t *tenantState, now time.Time) error {
		if t.org == nil || t.org.get(c.names.SolutionUniqueName) == nil {
			return refuse(ErrNotAllowed, "Work 365 is not installed")
		}
		if !t.registered {
			return refuse(ErrNotAllowed, "Work 365 is not registered: submit the registration form first")
		}
		if _, err := t.workingAdmin(); err != nil {
			return err
		}
		if err := c.adminConsent(t); err != nil {
			return err
		}
		var b [24]byte
		_, _ = rand.Read(b[:])
		tok := base64.RawURLEncoding.EncodeToString(b[:])
		t.links[tok] = &link{issued: now}
		t.counters.LinksIssued++
		l = Link{Token: tok, IssuedAt: now, ExpiresAt: now.Add(c.scn.LinkValidity)}
		return nil
	})
	return l, err
}

// BeginUpgrade is the service account opening the link and clicking Begin Upgrade. It is
// refused when the link is unknown, used or expired, when no upgrade is staged, or when the
// service account lacks its role or licence; otherwise the staged "{name}_Upgrade" solution
// replaces the main solution after the scenario's upgrade duration.
func (c *Cloud) BeginUpgrade(tenantID, linkToken string) error {
	return c.act("begin-upgrade", tenantID, func(t *tenantState, now time.Time) error {
		t.counters.BeginUpgradeAttempts++
		err := c.beginUpgrade(t, linkToken, now)
		if err != nil {
			t.counters.BeginUpgradeRefusals++
		}
		return err
	})
}

func (c *Cloud) beginUpgrade(t *tenantState, token string, now time.Time) error {
	l := t.links[token]
	switch {
	case l == nil || l.used:
		return refuse(ErrLinkUnknown, "the link was not issued by Get Consent in this tenant, or was already used")
	case now.After(l.issued.Add(c.scn.LinkValidity)):
		return refuse(ErrLinkExpired, "issued %s, valid for %s; restart from Get Consent", isoTime(l.issued), c.scn.LinkValidity)
	}
	o := t.org
	staged := o.get(c.names.HoldingSolutionName())
	// A new install (no Work 365 at the start) has nothing staged: Begin Upgrade then only
	// initialises the freshly imported solution, once.
	initialise := staged == nil && t.spec.Work365Version == "" && o.get(c.names.SolutionUniqueName) != nil && !t.initialised
	if staged == nil && !initialise {
		return refuse(ErrNoStagedUpgrade, "%s is not staged: import Work 365 v2.5 as an upgrade (holding solution) first", c.names.HoldingSolutionName())
	}
	if op := o.runningSolutionOp(); op != nil {
		return refuse(ErrBusy, "%s (async operation %s) is running", op.name, op.id)
	}
	s := t.serviceAccount()
	switch {
	case s == nil:
		return refuse(ErrUnknownUser, "the tenant has no Work 365 service account")
	case !s.serviceRole || !o.serviceRoleExists:
		return refuse(ErrMissingRight, "%s must hold the '%s' role", s.upn, c.names.ServiceRoleName)
	case !s.dynamics:
		return refuse(ErrMissingRight, "%s must have a Dynamics 365 licence", s.upn)
	case !t.work365Consented:
		return refuse(ErrNotAllowed, "the Work 365 app has no admin consent in the tenant")
	}
	if err := t.signIn(s); err != nil {
		return err
	}
	l.used = true
	o.upgradeAttempts++
	// Work 365 records the initialisation in its settings row as it starts and as it ends.
	o.upgradeStatus = work365.UpgradeInProgress
	if staged != nil {
		o.upgradeVersion = staged.version
	} else if main := o.get(c.names.SolutionUniqueName); main != nil {
		o.upgradeVersion = main.version
	}
	spec := t.spec.Upgrade
	fails := o.upgradeAttempts <= spec.Failures
	msg := ""
	if fails {
		msg = spec.FailMessage
		if msg == "" {
			msg = "The upgrade of " + c.names.SolutionUniqueName + " failed (simulated failure)."
		}
	}
	op := &asyncOp{id: c.newID(), name: opNameUpgrade, opType: 103, created: now, full: spec.Duration, done: now.Add(spec.Duration), fails: fails, message: msg, solutionOp: true}
	op.recipe = opRecipe{Kind: recipeUpgrade, Initialise: initialise}
	op.apply = c.applier(t, op)
	o.addOp(op)
	return nil
}

// ReconsentPartnerCenter is a partner admin re-consenting a Partner Center connection in
// partnerTenantID (refused until MFA policies are on in that tenant).
func (c *Cloud) ReconsentPartnerCenter(partnerTenantID string) error {
	return c.act("reconsent-partner-center", partnerTenantID, func(t *tenantState, _ time.Time) error {
		if t.pc == nil {
			return refuse(ErrNotAllowed, "the tenant has no Partner Center connection")
		}
		if !t.mfaPolicies() {
			return refuse(ErrNotAllowed, "MFA policies must first be enabled in the partner tenant")
		}
		t.pc.consented = true
		t.counters.PartnerReconsents++
		return nil
	})
}

// DrainJobs finishes every pending Work 365 job at once.
func (c *Cloud) DrainJobs(tenantID string) error {
	return c.act("drain-jobs", tenantID, func(t *tenantState, now time.Time) error {
		if t.org == nil {
			return refuse(ErrNotAllowed, "no organisation")
		}
		t.org.jobsPending = 0
		t.org.jobsAsOf = now
		return nil
	})
}

// SetPendingJobs sets the number of pending Work 365 jobs (e.g. work arriving mid-rehearsal).
func (c *Cloud) SetPendingJobs(tenantID string, n int) error {
	return c.act("set-pending-jobs", tenantID, func(t *tenantState, now time.Time) error {
		if t.org == nil || n < 0 {
			return refuse(ErrNotAllowed, "no organisation, or a negative count")
		}
		t.org.jobsPending = float64(n)
		t.org.jobsAsOf = now
		return nil
	})
}

// InstallPortal is a person installing the latest portal solution by hand (at once).
func (c *Cloud) InstallPortal(tenantID, version string) error {
	return c.act("install-portal", tenantID, func(t *tenantState, now time.Time) error {
		o := t.org
		switch {
		case o == nil || o.get(c.names.SolutionUniqueName) == nil:
			return refuse(ErrNotAllowed, "Work 365 is not installed")
		case o.get(c.names.PortalSolutionUniqueName) != nil:
			return refuse(ErrNotAllowed, "the portal is already installed")
		case o.runningSolutionOp() != nil:
			return refuse(ErrBusy, "another solution operation is running")
		}
		if version == "" {
			version = "2.5.0.0"
		}
		o.put(&solution{id: c.newID(), uniqueName: c.names.PortalSolutionUniqueName, friendlyName: "Work 365 Portal", version: version, managed: true, installedOn: now})
		t.counters.PortalInstalls++
		return nil
	})
}

// UserState is what the simulator knows of a user.
type UserState struct {
	ObjectID            string `json:"objectId"`
	UPN                 string `json:"upn"`
	GlobalAdmin         bool   `json:"globalAdmin"`
	SystemAdministrator bool   `json:"systemAdministrator"`
	ServiceRole         bool   `json:"serviceRole"`
	DynamicsLicence     bool   `json:"dynamicsLicence"`
	EntraP1Licence      bool   `json:"entraP1Licence"`
	MFARegistered       bool   `json:"mfaRegistered"`
	Disabled            bool   `json:"disabled"`
}

// TenantState is a snapshot of a tenant for inspection.
type TenantState struct {
	TenantID string `json:"tenantId"`
	Name     string `json:"name"`
	// Customer is false for partner tenants that exist only for Partner Center.
	Customer bool   `json:"customer"`
	OrgURL   string `json:"orgUrl,omitempty"`
	// Work365Version is the main solution's version ("" when not installed).
	Work365Version string `json:"work365Version,omitempty"`
	// StagedVersion is the holding solution's version ("" when none is staged).
	StagedVersion string `json:"stagedVersion,omitempty"`
	// PortalVersion is the portal's version ("" when not installed).
	PortalVersion string `json:"portalVersion,omitempty"`
	// Solutions lists unique name → version.
	Solutions map[string]string `json:"solutions,omitempty"`
	// RunningOperation names the running solution operation ("" when idle).
	RunningOperation      string        `json:"runningOperation,omitempty"`
	Frozen                bool          `json:"frozen"`
	PendingJobs           int           `json:"pendingJobs"`
	ServiceRoleExists     bool          `json:"serviceRoleExists"`
	Registered            bool          `json:"registered"`
	Registration          *Registration `json:"registration,omitempty"`
	OrchestratorConsented bool          `json:"orchestratorConsented"`
	Work365Consented      bool          `json:"work365Consented"`
	EntraP1               bool          `json:"entraP1"`
	SecurityDefaults      bool          `json:"securityDefaults"`
	ConditionalAccessMFA  bool          `json:"conditionalAccessMfa"`
	Users                 []UserState   `json:"users,omitempty"`
	// PartnerCenterConsented is set for tenants holding a Partner Center account.
	PartnerCenterConsented *bool `json:"partnerCenterConsented,omitempty"`
	// LinksValid counts issued, unused, unexpired upgrade links.
	LinksValid int `json:"linksValid"`
}

// State returns a snapshot of a tenant.
func (c *Cloud) State(tenantID string) (TenantState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tenantByID(tenantID)
	if t == nil {
		return TenantState{}, false
	}
	now := c.clock.Now()
	t.settle(now)
	s := TenantState{
		TenantID: t.id, Name: t.name, Customer: t.customer,
		Registered: t.registered, Registration: t.registration,
		OrchestratorConsented: t.orchestratorConsented, Work365Consented: t.work365Consented,
		EntraP1: t.entraP1, SecurityDefaults: t.securityDefaults, ConditionalAccessMFA: t.caMFA,
	}
	if t.pc != nil {
		v := t.pc.consented
		s.PartnerCenterConsented = &v
	}
	for _, id := range sortedKeys(t.users) {
		u := t.users[id]
		s.Users = append(s.Users, UserState{ObjectID: u.id, UPN: u.upn, GlobalAdmin: u.globalAdmin, SystemAdministrator: u.sysAdmin,
			ServiceRole: u.serviceRole, DynamicsLicence: u.dynamics, EntraP1Licence: u.entraP1, MFARegistered: u.mfa, Disabled: u.disabled})
	}
	for _, l := range t.links {
		if !l.used && !now.After(l.issued.Add(c.scn.LinkValidity)) {
			s.LinksValid++
		}
	}
	if o := t.org; o != nil {
		s.OrgURL = o.url
		s.Solutions = map[string]string{}
		for _, sol := range o.solutions {
			s.Solutions[sol.uniqueName] = sol.version
		}
		if m := o.get(c.names.SolutionUniqueName); m != nil {
			s.Work365Version = m.version
		}
		if h := o.get(c.names.HoldingSolutionName()); h != nil {
			s.StagedVersion = h.version
		}
		if p := o.get(c.names.PortalSolutionUniqueName); p != nil {
			s.PortalVersion = p.version
		}
		if op := o.runningSolutionOp(); op != nil {
			s.RunningOperation = op.name
		}
		s.Frozen, s.PendingJobs, s.ServiceRoleExists = o.frozen, o.pendingJobs(), o.serviceRoleExists
	}
	return s, true
}

// TenantIDs lists the tenants: customers in scenario order, then partner-only tenants.
func (c *Cloud) TenantIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.order...)
}
