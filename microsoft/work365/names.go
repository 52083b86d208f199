// Package work365 keeps Work 365's private names in one place and reads and writes the Work 365
// parts that live in Dataverse (background jobs, the activity freeze setting).
//
// Work 365 is not public: every name here is an unconfirmed assumption with a documented
// default that configuration can override.
package work365

import (
	"fmt"
	"regexp"
	"strings"
)

// Names are Work 365's private identifiers.
type Names struct {
	// SolutionUniqueName is Work 365's managed solution; the staged upgrade appears as
	// SolutionUniqueName + "_Upgrade".
	SolutionUniqueName string `json:"solutionUniqueName" yaml:"solutionUniqueName"`
	// PortalSolutionUniqueName is the portal solution that must be uninstalled when upgrading
	// from 2.1 or lower.
	PortalSolutionUniqueName string `json:"portalSolutionUniqueName" yaml:"portalSolutionUniqueName"`
	// JobsEntitySet is the Web API entity set of Work 365 background jobs.
	JobsEntitySet string `json:"jobsEntitySet" yaml:"jobsEntitySet"`
	// JobsIDColumn is the primary key column of the jobs table.
	JobsIDColumn string `json:"jobsIdColumn" yaml:"jobsIdColumn"`
	// PendingJobsFilter is the OData $filter that selects jobs not yet finished (neither failed
	// nor succeeded).
	PendingJobsFilter string `json:"pendingJobsFilter" yaml:"pendingJobsFilter"`
	// SettingsEntitySet is the entity set of Work 365's settings rows.
	SettingsEntitySet string `json:"settingsEntitySet" yaml:"settingsEntitySet"`
	// SettingsIDColumn is the primary key column of the settings table.
	SettingsIDColumn string `json:"settingsIdColumn" yaml:"settingsIdColumn"`
	// FreezeColumn is the boolean column of the settings row that freezes Work 365 activity.
	FreezeColumn string `json:"freezeColumn" yaml:"freezeColumn"`
	// UpgradeStatusColumn is the text column of the settings row where Work 365 records its
	// upgrade initialisation (Begin Upgrade): "InProgress", "Completed" or "Failed". It is the
	// trace that makes a new install's initialisation observable (assumption: Work 365 keeps
	// the state of its upgrade page in its settings record).
	UpgradeStatusColumn string `json:"upgradeStatusColumn" yaml:"upgradeStatusColumn"`
	// UpgradeVersionColumn is the text column of the settings row with the version that
	// initialisation is for.
	UpgradeVersionColumn string `json:"upgradeVersionColumn" yaml:"upgradeVersionColumn"`
	// ServiceRoleName is the Dataverse security role the service account needs.
	ServiceRoleName string `json:"serviceRoleName" yaml:"serviceRoleName"`
	// AppID is the Work 365 multi-tenant application (client) ID whose consent the Global
	// Administrator gives.
	AppID string `json:"appId" yaml:"appId"`
}

// DefaultNames are the documented defaults.
func DefaultNames() Names {
	return Names{
		SolutionUniqueName:       "Work365",
		PortalSolutionUniqueName: "Work365Portal",
		JobsEntitySet:            "w365_jobs",
		JobsIDColumn:             "w365_jobid",
		PendingJobsFilter:        "statecode eq 0 and w365_jobstatus ne 3 and w365_jobstatus ne 4",
		SettingsEntitySet:        "w365_settings",
		SettingsIDColumn:         "w365_settingid",
		FreezeColumn:             "w365_activityfreeze",
		UpgradeStatusColumn:      "w365_upgradestatus",
		UpgradeVersionColumn:     "w365_upgradeversion",
		ServiceRoleName:          "Work 365 Service",
		// AppID has no default: Work 365's app ID must be configured (CheckAppID).
	}
}

// Values of UpgradeStatusColumn.
const (
	UpgradeInProgress = "InProgress"
	UpgradeCompleted  = "Completed"
	UpgradeFailed     = "Failed"
)

// PlaceholderAppID is the made-up app ID earlier versions used as a default; it names no real
// application, so it is refused like an empty one.
const PlaceholderAppID = "5b3e7d1c-0a65-4c1e-9d39-365000000365"

var appIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// CheckAppID refuses an AppID that cannot be Work 365's: empty, not a GUID, the zero GUID or
// the placeholder. Consent verification looks the app up by this ID, so a wrong one makes
// every consent look missing.
func (n Names) CheckAppID() error {
	const fix = "set work365.appId in the worker config to Work 365's application (client) ID: in a tenant that consented to Work 365, " +
		"Microsoft Entra admin center > Enterprise applications > Work 365 > Application ID, or ask Work 365 support"
	switch id := strings.TrimSpace(n.AppID); {
	case id == "":
		return fmt.Errorf("work365.appId: not set — %s", fix)
	case !appIDRE.MatchString(id):
		return fmt.Errorf("work365.appId: %q is not a GUID — %s", id, fix)
	case id == "00000000-0000-0000-0000-000000000000", strings.EqualFold(id, PlaceholderAppID):
		return fmt.Errorf("work365.appId: %s is a placeholder — %s", id, fix)
	}
	return nil
}

// Or returns n with each empty name taken from def: configuration overrides some names and
// keeps the documented defaults for the rest. Every name is listed here, once.
func (n Names) Or(def Names) Names {
	for _, f := range []struct {
		v *string
		d string
	}{
		{&n.SolutionUniqueName, def.SolutionUniqueName},
		{&n.PortalSolutionUniqueName, def.PortalSolutionUniqueName},
		{&n.JobsEntitySet, def.JobsEntitySet},
		{&n.JobsIDColumn, def.JobsIDColumn},
		{&n.PendingJobsFilter, def.PendingJobsFilter},
		{&n.SettingsEntitySet, def.SettingsEntitySet},
		{&n.SettingsIDColumn, def.SettingsIDColumn},
		{&n.FreezeColumn, def.FreezeColumn},
		{&n.UpgradeStatusColumn, def.UpgradeStatusColumn},
		{&n.UpgradeVersionColumn, def.UpgradeVersionColumn},
		{&n.ServiceRoleName, def.ServiceRoleName},
		{&n.AppID, def.AppID},
	} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
	return n
}

// HoldingSolutionName is the name of the staged upgrade of the Work 365 solution.
func (n Names) HoldingSolutionName() string { return n.SolutionUniqueName + "_Upgrade" }
