// Package spec holds the tenant specification an upgrade starts from, and its validation.
//
// The spec is what the operations team writes into an inventory. It carries references to
// secrets and packages, never the secrets or bytes themselves, because it travels through
// Temporal history.
package spec

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// PartnerType says how the CSP partner bills: only direct partners have Partner Center
// connections to re-consent.
type PartnerType string

// Partner types.
const (
	Direct   PartnerType = "direct"
	Indirect PartnerType = "indirect"
)

// WindowLayout is how a downtime window's start is written: a wall-clock time in the tenant's
// time zone.
const WindowLayout = "2006-01-02T15:04"

// Tenant is one customer tenant to upgrade.
type Tenant struct {
	// TenantID is the Entra tenant ID (a GUID).
	TenantID string `json:"tenantId" yaml:"tenantId"`
	// DisplayName is the customer's name as operators know it.
	DisplayName string `json:"displayName" yaml:"displayName"`
	// OrgURL is the Dynamics 365 organisation URL, e.g. https://contoso.crm.dynamics.com.
	OrgURL string `json:"orgUrl" yaml:"orgUrl"`
	// PartnerType is direct or indirect.
	PartnerType PartnerType `json:"partnerType" yaml:"partnerType"`
	// GlobalAdminUPN is the Global Administrator who consents and imports.
	GlobalAdminUPN string `json:"globalAdminUpn" yaml:"globalAdminUpn"`
	// ServiceAccountUPN is the Work 365 service account that clicks "Begin Upgrade".
	ServiceAccountUPN string `json:"serviceAccountUpn" yaml:"serviceAccountUpn"`
	// TimeZone is the organisation's IANA time zone, e.g. Europe/London.
	TimeZone string `json:"timeZone" yaml:"timeZone"`
	// Window is the scheduled downtime window, in TimeZone.
	Window Window `json:"window" yaml:"window"`
	// TargetVersion is the Work 365 version to reach, 2.5.x.
	TargetVersion string `json:"targetVersion" yaml:"targetVersion"`
	// SolutionPackage references the v2.5 solution file in the package store (never its bytes).
	SolutionPackage string `json:"solutionPackage" yaml:"solutionPackage"`
	// PortalPackage references the latest portal solution file, used to reinstall the portal
	// after an upgrade from 2.1 or lower. Empty: the portal reinstall becomes a human task.
	PortalPackage string `json:"portalPackage,omitempty" yaml:"portalPackage,omitempty"`
	// LicenseKeyRef names where the licence key for a new install is kept (never the key).
	LicenseKeyRef string `json:"licenseKeyRef,omitempty" yaml:"licenseKeyRef,omitempty"`
	// PartnerCenters lists a direct partner's Partner Center connections.
	PartnerCenters []PartnerCenter `json:"partnerCenters,omitempty" yaml:"partnerCenters,omitempty"`
	// Wave names the fleet wave the tenant belongs to (inventory only; empty: the last wave).
	Wave string `json:"-" yaml:"wave,omitempty"`
}

// Window is a downtime window: a local start time and a length.
type Window struct {
	// Start is a wall-clock time in the tenant's time zone, written as WindowLayout.
	Start string `json:"start" yaml:"start"`
	// Length is a Go duration such as "4h".
	Length string `json:"length" yaml:"length"`
}

// PartnerCenter is one Partner Center connection of a direct partner.
type PartnerCenter struct {
	// Name identifies the connection (the provider's name in Work 365).
	Name string `json:"name" yaml:"name"`
	// TenantID is the Entra tenant the Partner Center account lives in.
	TenantID string `json:"tenantId" yaml:"tenantId"`
	// ConnectedToPrimary is true when that tenant is the primary (customer) tenant.
	ConnectedToPrimary bool `json:"connectedToPrimary" yaml:"connectedToPrimary"`
	// AdminUPN is the Partner Center account's admin (admin agent) who does the connection's
	// tasks: the task desk lets only this person confirm them. Empty: any Global
	// Administrator of the connection's tenant (the ID token's wids claim).
	AdminUPN string `json:"adminUpn,omitempty" yaml:"adminUpn,omitempty"`
}

// FieldError names the field of a spec that is wrong and why.
type FieldError struct {
	Field   string
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

var (
	guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	upnRE  = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	tzRE   = regexp.MustCompile(`^(UTC|[A-Za-z]+(/[A-Za-z0-9_+\-]+)+)$`)
)

// Validate checks the spec without I/O (so workflows can call it) and returns every problem,
// each a FieldError naming the field. The time zone's existence is checked by LoadWindow.
func (t Tenant) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if !guidRE.MatchString(t.TenantID) {
		bad("tenantId", "%q is not an Entra tenant ID (a GUID like 00000000-0000-0000-0000-000000000000)", t.TenantID)
	}
	if strings.TrimSpace(t.DisplayName) == "" {
		bad("displayName", "is required")
	}
	if u, err := url.Parse(t.OrgURL); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		bad("orgUrl", "%q is not a Dynamics organisation URL like https://contoso.crm.dynamics.com", t.OrgURL)
	}
	switch t.PartnerType {
	case Direct, Indirect:
	default:
		bad("partnerType", "%q must be %q or %q", t.PartnerType, Direct, Indirect)
	}
	if !upnRE.MatchString(t.GlobalAdminUPN) {
		bad("globalAdminUpn", "%q is not a user principal name like admin@contoso.onmicrosoft.com", t.GlobalAdminUPN)
	}
	if !upnRE.MatchString(t.ServiceAccountUPN) {
		bad("serviceAccountUpn", "%q is not a user principal name like work365svc@contoso.onmicrosoft.com", t.ServiceAccountUPN)
	}
	if strings.EqualFold(t.GlobalAdminUPN, t.ServiceAccountUPN) && t.GlobalAdminUPN != "" {
		bad("serviceAccountUpn", "must differ from globalAdminUpn: the runbook has the service account click Begin Upgrade in a separate session")
	}
	if !tzRE.MatchString(t.TimeZone) {
		bad("timeZone", "%q is not an IANA time zone name like Europe/London", t.TimeZone)
	}
	if _, err := time.Parse(WindowLayout, t.Window.Start); err != nil {
		bad("window.start", "%q is not a local time written as %s", t.Window.Start, WindowLayout)
	}
	if d, err := time.ParseDuration(t.Window.Length); err != nil || d <= 0 {
		bad("window.length", "%q is not a positive duration like 4h", t.Window.Length)
	}
	if v, err := ParseVersion(t.TargetVersion); err != nil {
		bad("targetVersion", "%v", err)
	} else if v.Major() != 2 || v.Minor() != 5 {
		bad("targetVersion", "%q is not a 2.5.x version: this product upgrades to Work 365 v2.5", t.TargetVersion)
	}
	if strings.TrimSpace(t.SolutionPackage) == "" {
		bad("solutionPackage", "is required: a reference to the Work 365 v2.5 solution file in the package store")
	}
	if t.PartnerType == Indirect && len(t.PartnerCenters) > 0 {
		bad("partnerCenters", "indirect resellers have no Partner Center connection to re-consent; remove the list or set partnerType: direct")
	}
	seen := map[string]bool{}
	for i, pc := range t.PartnerCenters {
		field := fmt.Sprintf("partnerCenters[%d]", i)
		if strings.TrimSpace(pc.Name) == "" {
			bad(field+".name", "is required")
		} else if seen[pc.Name] {
			bad(field+".name", "%q is listed twice", pc.Name)
		}
		seen[pc.Name] = true
		if !guidRE.MatchString(pc.TenantID) {
			bad(field+".tenantId", "%q is not an Entra tenant ID (a GUID)", pc.TenantID)
		} else if pc.ConnectedToPrimary && !strings.EqualFold(pc.TenantID, t.TenantID) {
			bad(field+".tenantId", "connectedToPrimary is true but the tenant differs from tenantId %s", t.TenantID)
		}
		if pc.AdminUPN != "" && !upnRE.MatchString(pc.AdminUPN) {
			bad(field+".adminUpn", "%q is not a user principal name like pcadmin@partner.onmicrosoft.com", pc.AdminUPN)
		}
	}
	return errors.Join(errs...)
}

// LoadWindow resolves the downtime window in the tenant's time zone. It reads the time zone
// database, so workflows call it through an activity.
func (t Tenant) LoadWindow() (opens, closes time.Time, err error) {
	loc, err := time.LoadLocation(t.TimeZone)
	if err != nil {
		return time.Time{}, time.Time{}, FieldError{Field: "timeZone", Problem: fmt.Sprintf("%q is not a known IANA time zone", t.TimeZone)}
	}
	return t.Window.In(loc)
}

// In resolves the window's start and end in loc.
func (w Window) In(loc *time.Location) (opens, closes time.Time, err error) {
	opens, err = time.ParseInLocation(WindowLayout, w.Start, loc)
	if err != nil {
		return time.Time{}, time.Time{}, FieldError{Field: "window.start", Problem: fmt.Sprintf("%q is not a local time written as %s", w.Start, WindowLayout)}
	}
	d, err := time.ParseDuration(w.Length)
	if err != nil || d <= 0 {
		return time.Time{}, time.Time{}, FieldError{Field: "window.length", Problem: fmt.Sprintf("%q is not a positive duration like 4h", w.Length)}
	}
	return opens, opens.Add(d), nil
}

// Version is a dotted Dataverse solution version such as 2.5.0.1.
type Version []int

// ParseVersion parses a dotted version of two to four numbers.
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 || len(parts) > 4 {
		return nil, fmt.Errorf("%q is not a version like 2.5 or 2.5.0.1", s)
	}
	v := make(Version, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a version like 2.5 or 2.5.0.1", s)
		}
		v[i] = n
	}
	return v, nil
}

// Major is the first number.
func (v Version) Major() int { return v.at(0) }

// Minor is the second number.
func (v Version) Minor() int { return v.at(1) }

func (v Version) at(i int) int {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// Compare returns -1, 0 or 1; missing trailing numbers count as zero (2.5 == 2.5.0.0).
func (v Version) Compare(o Version) int {
	for i := 0; i < 4; i++ {
		switch a, b := v.at(i), o.at(i); {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	}
	return 0
}

// CompareVersions compares two dotted versions; an unparsable one sorts first.
func CompareVersions(a, b string) int {
	va, errA := ParseVersion(a)
	vb, errB := ParseVersion(b)
	switch {
	case errA != nil && errB != nil:
		return 0
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.Compare(vb)
}

// AtMost21 reports whether version is 2.1 or lower, where the runbook requires the portal to be
// uninstalled before the upgrade.
func AtMost21(version string) bool {
	v, err := ParseVersion(version)
	if err != nil {
		return false
	}
	return v.Compare(Version{2, 1, 9999, 9999}) <= 0
}

// UpgradeWorkflowID is the upgrade's deterministic workflow ID: one per tenant and target
// version, so no tenant is upgraded by two runs at once, whoever launches it.
func (t Tenant) UpgradeWorkflowID() string {
	return "work365-upgrade/" + strings.ToLower(t.TenantID) + "/" + t.TargetVersion
}
