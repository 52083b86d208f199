// Package work365 keeps Work 365's private names in one place and reads and writes the Work 365
// parts that live in Dataverse (background jobs, the activity freeze setting).
//
// Work 365 is not public: every name here is an unconfirmed assumption with a documented
// default that configuration can override.
package work365

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
		AppID:                    "5b3e7d1c-0a65-4c1e-9d39-365000000365",
	}
}

// Values of UpgradeStatusColumn.
const (
	UpgradeInProgress = "InProgress"
	UpgradeCompleted  = "Completed"
	UpgradeFailed     = "Failed"
)

// HoldingSolutionName is the name of the staged upgrade of the Work 365 solution.
func (n Names) HoldingSolutionName() string { return n.SolutionUniqueName + "_Upgrade" }
