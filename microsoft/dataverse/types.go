// Package dataverse speaks the Dataverse Web API (v9.2) calls the upgrade needs, app-only, per
// organisation URL.
package dataverse

import "time"

// SystemAdministratorRoleTemplateID is the role template of 'System Administrator'; roles are
// copied per business unit, so match by template, not by role ID.
const SystemAdministratorRoleTemplateID = "627090ff-40a3-4053-8790-584edc5be201"

// WhoAmIResponse is the answer of GET WhoAmI.
type WhoAmIResponse struct {
	UserID         string `json:"UserId"`
	BusinessUnitID string `json:"BusinessUnitId"`
	OrganizationID string `json:"OrganizationId"`
}

// Solution is a row of the solutions table.
type Solution struct {
	SolutionID  string     `json:"solutionid"`
	UniqueName  string     `json:"uniquename"`
	Version     string     `json:"version"`
	IsManaged   bool       `json:"ismanaged"`
	InstalledOn *time.Time `json:"installedon,omitempty"`
}

// ImportSolutionAsyncRequest is the body of POST ImportSolutionAsync.
type ImportSolutionAsyncRequest struct {
	// CustomizationFile is the solution zip, base64-encoded.
	CustomizationFile                string `json:"CustomizationFile"`
	OverwriteUnmanagedCustomizations bool   `json:"OverwriteUnmanagedCustomizations"`
	PublishWorkflows                 bool   `json:"PublishWorkflows"`
	// ImportJobID is a GUID the caller chooses: the idempotency handle of the import.
	ImportJobID string `json:"ImportJobId"`
	// HoldingSolution true stages the import as an upgrade without applying it.
	HoldingSolution bool `json:"HoldingSolution"`
}

// ImportSolutionAsyncResponse is the answer of ImportSolutionAsync.
type ImportSolutionAsyncResponse struct {
	AsyncOperationID string `json:"AsyncOperationId"`
	ImportJobKey     string `json:"ImportJobKey"`
}

// UninstallSolutionAsyncResponse is the answer of UninstallSolutionAsync.
type UninstallSolutionAsyncResponse struct {
	AsyncOperationID string `json:"AsyncOperationId"`
}

// Async operation state codes.
const (
	StateReady     = 0
	StateSuspended = 1
	StateLocked    = 2
	StateCompleted = 3
)

// Async operation status codes.
const (
	StatusWaitingForResources = 0
	StatusWaiting             = 10
	StatusInProgress          = 20
	StatusPausing             = 21
	StatusCanceling           = 22
	StatusSucceeded           = 30
	StatusFailed              = 31
	StatusCanceled            = 32
)

// AsyncOperation is a row of asyncoperations.
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/asyncoperation
type AsyncOperation struct {
	AsyncOperationID string `json:"asyncoperationid"`
	Name             string `json:"name,omitempty"`
	StateCode        int    `json:"statecode"`
	StatusCode       int    `json:"statuscode"`
	// Message is the technical failure text; FriendlyMessage the readable one.
	Message         string     `json:"message,omitempty"`
	FriendlyMessage string     `json:"friendlymessage,omitempty"`
	CreatedOn       *time.Time `json:"createdon,omitempty"`
}

// FailureText is what to tell an operator of a failed operation: the friendly message first,
// the technical one after it (both when they differ).
func (o AsyncOperation) FailureText() string {
	switch {
	case o.FriendlyMessage == "" && o.Message == "":
		return "no message"
	case o.FriendlyMessage == "":
		return o.Message
	case o.Message == "" || o.Message == o.FriendlyMessage:
		return o.FriendlyMessage
	}
	return o.FriendlyMessage + " (technical: " + o.Message + ")"
}

// Done reports whether the operation has finished, successfully or not.
func (o AsyncOperation) Done() bool { return o.StateCode == StateCompleted }

// Succeeded reports whether the operation finished successfully.
func (o AsyncOperation) Succeeded() bool { return o.Done() && o.StatusCode == StatusSucceeded }

// ImportJob is a row of importjobs.
type ImportJob struct {
	ImportJobID  string     `json:"importjobid"`
	SolutionName string     `json:"solutionname,omitempty"`
	Progress     float64    `json:"progress"`
	StartedOn    *time.Time `json:"startedon,omitempty"`
	CompletedOn  *time.Time `json:"completedon,omitempty"`
}

// Role is a Dataverse security role.
type Role struct {
	RoleID         string `json:"roleid"`
	Name           string `json:"name"`
	RoleTemplateID string `json:"_roletemplateid_value,omitempty"`
}

// SystemUser is a Dataverse user with its roles.
type SystemUser struct {
	SystemUserID string `json:"systemuserid"`
	DomainName   string `json:"domainname"`
	IsLicensed   bool   `json:"islicensed"`
	IsDisabled   bool   `json:"isdisabled"`
	AccessMode   int    `json:"accessmode"`
	Roles        []Role `json:"systemuserroles_association,omitempty"`
}

// HasRoleTemplate reports whether the user holds a role made from the template.
func (u SystemUser) HasRoleTemplate(templateID string) bool {
	for _, r := range u.Roles {
		if r.RoleTemplateID == templateID {
			return true
		}
	}
	return false
}

// HasRoleNamed reports whether the user holds a role with this name (custom roles have no
// shared template).
func (u SystemUser) HasRoleNamed(name string) bool {
	for _, r := range u.Roles {
		if r.Name == name {
			return true
		}
	}
	return false
}
