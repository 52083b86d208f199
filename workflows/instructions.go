package workflows

import (
	"fmt"
	"time"

	"github.com/csp-ops/work365-upgrade/activities"
	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// The human tasks, in the runbook's words: what to click, as whom, in which browser mode.

const asAdmin = "Sign in as the tenant Global Administrator (%s), who must also hold the Dynamics 365 'System Administrator' role and a Dynamics 365 Customer Engagement licence."

func fixPrerequisiteTask(t spec.Tenant, c activities.Check) taskRequest {
	what := map[string]string{
		activities.CheckAdminGlobalAdmin: "In the Microsoft Entra admin center, assign the Global Administrator role to " + t.GlobalAdminUPN + ". The global administrative privileges are required to enable the MFA policies and to give organisation-wide consent for the Work 365 app.",
		activities.CheckAdminSystemAdmin: "In Dynamics 365 (Settings > Security > Users), give " + t.GlobalAdminUPN + " the 'System Administrator' security role.",
		activities.CheckAdminLicence:     "In the Microsoft 365 admin center, assign a Dynamics 365 (Customer Engagement) licence to " + t.GlobalAdminUPN + ". The licence is only required for the upgrade and can be unassigned after the installation has completed.",
		activities.CheckServiceLicence:   "In the Microsoft 365 admin center, assign a Dynamics 365 (Customer Engagement) licence to the Work 365 service account " + t.ServiceAccountUPN + ". This licence assignment cannot be revoked afterwards.",
	}[c.ID]
	return taskRequest{
		kind: TaskFixPrerequisite, audience: GlobalAdmin,
		title:        "Fix prerequisite: " + c.Title,
		instructions: what + " Found: " + c.Detail + ". Confirm when done; the check runs again.",
	}
}

func mfaPoliciesTask(tenantID string, audience Audience, kind TaskKind) taskRequest {
	return taskRequest{
		kind: kind, audience: audience,
		title: "Enable MFA policies in tenant " + tenantID,
		instructions: "Sign in to the Microsoft Entra admin center of tenant " + tenantID + " as a Global Administrator and enable MFA policies: " +
			"turn on security defaults (Identity > Overview > Properties > Manage security defaults), or, with Entra ID P1, enable a conditional access policy that requires MFA. " +
			"If the tenant has Entra ID P1 or EMS, assign those licences to users first. Confirm when done; the policies are checked again.",
	}
}

func registerMFATask(t spec.Tenant, service bool) taskRequest {
	if service {
		return taskRequest{
			kind: TaskRegisterMFAService, audience: ServiceAccount,
			title: "Register MFA for the Work 365 service account " + t.ServiceAccountUPN,
			instructions: "In a private (Incognito / InPrivate) browser window, sign in as " + t.ServiceAccountUPN +
				" at https://aka.ms/mfasetup and follow the instructions to register an MFA method. Confirm when done; the registration is checked again.",
		}
	}
	return taskRequest{
		kind: TaskRegisterMFAAdmin, audience: GlobalAdmin,
		title: "Register MFA for the Global Administrator " + t.GlobalAdminUPN,
		instructions: "Sign in as " + t.GlobalAdminUPN + " (the account that carries out the next steps) at https://aka.ms/mfasetup and register an MFA method. " +
			"Confirm when done; the registration is checked again.",
	}
}

func serviceRoleTask(t spec.Tenant, roleName string) taskRequest {
	return taskRequest{
		kind: TaskAssignServiceRole, audience: GlobalAdmin,
		title: "Assign the '" + roleName + "' role to " + t.ServiceAccountUPN,
		instructions: "Work 365 v2.5 is now imported, so the '" + roleName + "' role exists. In Dynamics 365 (Settings > Security > Users), " +
			"open " + t.ServiceAccountUPN + ", click Manage Roles and assign '" + roleName + "'. Confirm when done; the role is checked again.",
	}
}

func registrationTask(t spec.Tenant) taskRequest {
	lic := "Connect with your account manager to obtain the correct licence key."
	if t.LicenseKeyRef != "" {
		lic = "The licence key is kept at " + t.LicenseKeyRef + " (never paste it into a ticket or chat)."
	}
	return taskRequest{
		kind: TaskSubmitRegistration, audience: GlobalAdmin,
		title: "Submit the Work 365 registration form (new install)",
		instructions: fmt.Sprintf(asAdmin, t.GlobalAdminUPN) + " Open Work 365 in Dynamics 365 (" + t.OrgURL + "). This is a first-time install, so the registration screen appears: " +
			"fill in the organisation name (" + t.DisplayName + "), select the organisation's time zone (" + t.TimeZone + "), enter the licence key and click Submit to have the Work 365 licence generated. " + lic,
	}
}

func getConsentTask(t spec.Tenant, round int, newInstall bool, why string) taskRequest {
	form := ""
	if newInstall {
		form = " Complete the registration form if it is shown again (Organisation Name as on the screen behind, time zone " + t.TimeZone + ") and click Submit."
	}
	prefix := ""
	if why != "" {
		prefix = why + " "
	}
	return taskRequest{
		kind: TaskGetConsent, audience: GlobalAdmin,
		title: fmt.Sprintf("Get Consent and copy the upgrade link (round %d)", round),
		instructions: prefix + fmt.Sprintf(asAdmin, t.GlobalAdminUPN) + " In Work 365 (" + t.OrgURL + "), click the Get Consent button. " +
			"Sign in with the Global Administrator credentials; complete the MFA registration if it is offered. Review and accept the permissions requested by Work 365 (the same permission set as before)." + form +
			" Copy the link presented (the link icon copies it). Hand the link to the service account holder privately and confirm here at once: " +
			"the link is valid for only 15 minutes from now.",
	}
}

func beginUpgradeTask(t spec.Tenant, validity string, expires time.Time) taskRequest {
	return taskRequest{
		kind: TaskBeginUpgrade, audience: ServiceAccount,
		title: "Open the upgrade link and click Begin Upgrade (link expires " + expires.UTC().Format("15:04 MST") + ")",
		instructions: "As the Work 365 service account " + t.ServiceAccountUPN + " (it must hold the Work 365 Service role and a Dynamics 365 licence): " +
			"open a new browser window, preferably Incognito / InPrivate, and navigate to the link the Global Administrator copied. Sign in with the service account's credentials and answer the MFA challenge if prompted. " +
			"Click the Begin Upgrade button. Wait for the upgrade to complete: do not close the browser window or navigate to another page until the 'Congratulations' screen shows. " +
			fmt.Sprintf("The link is valid for %s only; if it expires, the Global Administrator must get consent again.", validity),
	}
}

func linkEscalationTask(expired int) taskRequest {
	return taskRequest{
		kind: TaskLinkEscalation, audience: Operator,
		title:   fmt.Sprintf("The upgrade link expired %d times: retry or abort", expired),
		options: []string{DecisionRetry, DecisionAbort},
		instructions: fmt.Sprintf("The 15-minute upgrade link expired %d times before the service account clicked Begin Upgrade. "+
			"Arrange for the Global Administrator and the service account holder to be available together, then decide: "+
			"retry (the Global Administrator gets consent again) or abort (the upgrade stops, Work 365 is unfrozen, the staged upgrade stays unapplied).", expired),
	}
}

func drainDeadlineTask(left, waited string) taskRequest {
	return taskRequest{
		kind: TaskDrainDeadline, audience: Operator,
		title:   "Work 365 jobs still pending after " + waited,
		options: []string{DecisionKeepWaiting, DecisionProceed, DecisionAbort},
		instructions: "Pending Work 365 jobs did not drain within the deadline (" + left + "). Work Jobs that are not completed may fail after the upgrade. " +
			"Check them in Dynamics 365, then decide: keep-waiting (another deadline), proceed (upgrade anyway; the pending jobs may fail) or abort (unfreeze and stop).",
	}
}

func completionDeadlineTask(state, waited string) taskRequest {
	return taskRequest{
		kind: TaskCompletionDeadline, audience: Operator,
		title:   "Upgrade not complete after " + waited,
		options: []string{DecisionKeepWaiting, DecisionAbort},
		instructions: "After Begin Upgrade, Work 365 did not reach the target version in time (" + state + "). " +
			"Ask the service account holder whether the 'Congratulations' screen appeared and check Settings > Solutions in Dynamics 365. Decide: keep-waiting or abort.",
	}
}

func operationDeadlineTask(what, state string, waited time.Duration) taskRequest {
	return taskRequest{
		kind: TaskOperationDeadline, audience: Operator,
		title:   "The " + what + " has not finished after " + waited.String(),
		options: []string{DecisionKeepWaiting, DecisionAbort},
		instructions: "The " + what + " was started in Dynamics 365 and is still being followed; it has not finished in time (last seen: " + state + "). " +
			"It keeps running in Dynamics whatever you decide. Check Settings > Solutions > History in Dynamics 365. Decide: keep-waiting (follow it for another " + waited.String() + ") " +
			"or abort (Work 365 is unfrozen; look at the operation in Dynamics before retrying the upgrade).",
	}
}

func reinstallPortalTask(t spec.Tenant) taskRequest {
	return taskRequest{
		kind: TaskReinstallPortal, audience: GlobalAdmin,
		title: "Reinstall the latest Work 365 portal solution",
		instructions: fmt.Sprintf(asAdmin, t.GlobalAdminUPN) + " The portal solution was uninstalled before the upgrade (required when upgrading from v2.1 or lower). " +
			"In Dynamics 365 (" + t.OrgURL + "), Settings > Solutions > Import, import the latest version of the Work 365 portal solution. Confirm when done.",
	}
}

func partnerReconsentTask(pc spec.PartnerCenter, why string) taskRequest {
	where := "This Partner Center is connected to the primary tenant."
	if !pc.ConnectedToPrimary {
		where = "This Partner Center is not connected to the primary tenant; MFA policies are now in place in its tenant " + pc.TenantID + "."
	}
	prefix := ""
	if why != "" {
		prefix = why + " "
	}
	return taskRequest{
		kind: TaskPartnerReconsent, audience: PartnerAdmin,
		title: "Re-consent Partner Center connection " + pc.Name,
		instructions: prefix + where + " In Work 365, open the Partner Center provider '" + pc.Name + "' and follow 'Configuring the Partner Center using the Consent Framework' from the step after 'Generate Consent Link' appears: " +
			"sign in as the Partner Center admin agent with MFA and accept. Do NOT create new providers or change settings on the existing providers. Confirm when done.",
	}
}

func importFailedTask(message string, attempt int) taskRequest {
	return taskRequest{
		kind: TaskImportFailed, audience: Operator,
		title:   fmt.Sprintf("Work 365 import failed (attempt %d): retry or abort", attempt),
		options: []string{DecisionRetry, DecisionAbort},
		instructions: "The Work 365 v2.5 solution import failed in Dynamics 365: " + message +
			" Read the import log (Settings > Solutions > History), fix the cause (e.g. a missing dependency), then decide: retry (a new import) or abort (unfreeze and stop). Do not click Upgrade in Dynamics.",
	}
}

func windowClosedTask(t spec.Tenant, opens, closes time.Time) taskRequest {
	return taskRequest{
		kind: TaskWindowClosed, audience: Operator,
		title:   "The downtime window closed before the upgrade could freeze Work 365",
		options: []string{DecisionStartNow, DecisionAbort},
		instructions: fmt.Sprintf("The downtime window of %s (%s to %s UTC, %s) has closed: nothing was frozen, and nothing will be outside a window. ",
			t.DisplayName, opens.UTC().Format("2006-01-02 15:04"), closes.UTC().Format("2006-01-02 15:04"), t.TimeZone) +
			"Agree a new window with the customer and move it (`starter move-window <id> --start YYYY-MM-DDTHH:MM --length 6h --by <you>`; this task then closes by itself), " +
			"or decide: start-now (freeze now, with the customer's agreement: billing stops while frozen) or abort (stop; nothing was changed).",
	}
}

func roundsExhaustedTask(what string, rounds int, left string) taskRequest {
	return taskRequest{
		kind: TaskRoundsExhausted, audience: Operator,
		title:   fmt.Sprintf("%s: not done after %d rounds", what, rounds),
		options: []string{DecisionRetry, DecisionAbort},
		instructions: fmt.Sprintf("The customer's people confirmed %d rounds of %s, yet the tenant still shows: %s. ", rounds, what, left) +
			"Contact them (the tasks' instructions say what is needed), then decide: retry (another round of tasks, checked again) or abort (stop the upgrade; Work 365 is unfrozen if it was frozen).",
	}
}

func orchestratorFaultTask(msg, wait string, retrying bool) taskRequest {
	next := "The upgrade retries on its own in " + wait + "; confirm retry once the credential is fixed to retry at once."
	if !retrying {
		next = "It retried several times without success and now waits for you: retry once the credential is fixed."
	}
	return taskRequest{
		kind: TaskOrchestratorCredential, audience: Operator, quiet: true,
		title:   "The orchestrator's own Microsoft sign-in fails (not this tenant's fault)",
		options: []string{DecisionRetry, DecisionAbort},
		instructions: "Entra ID refuses the orchestrator's app registration: " + msg + ". This is the worker's credential or app registration (an expired or wrong client secret, an unknown certificate, a disabled app), " +
			"the same for every tenant: fix it in the worker's configuration (secretFile/certificateFile) and the app registration. " + next + " Abort only to stop this tenant's upgrade.",
	}
}

func confirmCompletionTask(t spec.Tenant) taskRequest {
	return taskRequest{
		kind: TaskConfirmCompletion, audience: ServiceAccount,
		title:   "Tell us what the upgrade page showed at the end",
		options: []string{DecisionCongratulations, DecisionShowedError},
		instructions: "As the Work 365 service account " + t.ServiceAccountUPN + ", keep the upgrade page open until it finishes. " +
			"The upgrade process is completed when the page shows 'Congratulations! The Work 365 upgrade process was completed successfully!': confirm with congratulations. " +
			"If the page showed an error instead, confirm with showed-an-error and put the error text in the note.",
	}
}

func completionErrorTask(note string) taskRequest {
	return taskRequest{
		kind: TaskCompletionError, audience: Operator,
		title:   "The service account's upgrade page showed an error",
		options: []string{DecisionRetry, DecisionProceed},
		instructions: "The service account reported an error on the upgrade page" + noteSuffix(note) + ", although Dynamics 365 shows the target version installed and nothing staged. " +
			"Check Work 365 in Dynamics 365 (its settings and a job), then decide: retry (check the tenant again and ask the service account again) or proceed (the upgrade is in; go on, with a warning).",
	}
}

func postUpgradeFailedTask(stage Stage, message string, attempt int) taskRequest {
	return taskRequest{
		kind: TaskPostUpgradeFailed, audience: Operator,
		title:   fmt.Sprintf("Stage %s failed after the upgrade went in (attempt %d): retry or skip", stage, attempt),
		options: []string{DecisionRetry, DecisionSkip},
		instructions: "Work 365 is upgraded; the stage " + string(stage) + " failed afterwards: " + message +
			" The tenant stays upgraded whatever you decide. Fix the cause if you can, then decide: retry (run the stage again) or skip (leave it to be done by hand; it is listed in the upgrade's warnings).",
	}
}
