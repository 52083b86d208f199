package activities

import "time"

// Notification events.
const (
	EventTaskOpened    = "task-opened"
	EventTaskReminder  = "task-reminder"
	EventTaskEscalated = "task-escalated"
	EventTaskClosed    = "task-closed"
	EventUpgradeEnded  = "upgrade-ended"
	// EventFleet is a fleet event for operators: a wave finished or awaits approval, a halt,
	// a pause, a resume, a cancellation, a failed tenant.
	EventFleet = "fleet-event"
	// EventOrchestratorFault: the orchestrator's own credential or configuration fails (an
	// expired secret, a disabled app): operators fix it once for every tenant.
	EventOrchestratorFault = "orchestrator-fault"
	// EventFrozenTooLong: Work 365 has been frozen longer than the frozen-time cap.
	EventFrozenTooLong = "frozen-too-long"
	// EventCleanupFailed: the cleanup could not leave the tenant safe (e.g. still frozen).
	EventCleanupFailed = "cleanup-failed"
)

// Notification is one message to people about an upgrade. As the workflow sends it, it
// carries no secret: keys are referenced, never included, and the desk link is added inside
// the activity.
type Notification struct {
	// Key is an idempotency key, stable across activity retries.
	Key string `json:"key"`
	// Event is one of the Event* constants.
	Event      string    `json:"event"`
	At         time.Time `json:"at"`
	WorkflowID string    `json:"workflowId"`
	Fleet      string    `json:"fleet,omitempty"`
	TenantID   string    `json:"tenantId"`
	TenantName string    `json:"tenantName"`
	Stage      string    `json:"stage"`
	// Task fields are set for task events.
	TaskID       string `json:"taskId,omitempty"`
	TaskKind     string `json:"taskKind,omitempty"`
	Audience     string `json:"audience,omitempty"`
	Title        string `json:"title,omitempty"`
	Instructions string `json:"instructions,omitempty"`
	// Options are the decisions a task accepts, if any.
	Options []string `json:"options,omitempty"`
	// Reminder counts reminders sent for the task so far.
	Reminder int `json:"reminder,omitempty"`
	// Command is the starter command that completes the task.
	Command string `json:"command,omitempty"`
	// Outcome is set for upgrade-ended.
	Outcome string `json:"outcome,omitempty"`
	// Link is the workflow's page in the Temporal Web UI, added by the Notify activity when
	// the worker knows the Web UI (notify.webUIURL).
	Link string `json:"link,omitempty"`
	// DeskLink opens the task in the task desk, where the person signs in with Microsoft and
	// confirms. The Notify activity signs it (desk.publicURL, desk.linkKeyFile) after the
	// workflow scheduled it, so the link's token is never in history.
	DeskLink string `json:"deskLink,omitempty"`
	Message  string `json:"message,omitempty"`
}
