package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/csp-ops/work365-upgrade/activities"
)

// PartnerCenterReconsent re-consents one Partner Center connection of a direct partner, as
// the runbook's last section says: for a Partner Center outside the primary tenant, MFA
// policies first; then the re-consent, without creating providers or changing settings;
// verified by a Partner Center probe where possible.
func PartnerCenterReconsent(ctx workflow.Context, in PartnerCenterInput) (PartnerCenterResult, error) {
	r := newRun(ctx, in.TenantID, in.TenantName, in.Fleet, in.Config, "pc-")
	r.safe = gateSafeRunbook(ctx) // bounded MFA rounds; orchestrator faults wait
	if err := r.board.register(ctx, func(msg string) { r.warn(ctx, msg) }); err != nil {
		return PartnerCenterResult{}, err
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) {
		return Status{
			WorkflowID: r.workflowID, TenantID: in.Connection.TenantID, TenantName: in.TenantName + " / Partner Center " + in.Connection.Name,
			Stage: r.stage, StageSince: r.stageSince, WaitingOn: r.board.waitingOn(), OpenTasks: r.board.tasks(),
			Stages: r.stages, Warnings: r.warnings, Confirmations: r.board.confirmations,
		}, nil
	}); err != nil {
		return PartnerCenterResult{}, err
	}
	pc := in.Connection
	res := PartnerCenterResult{Name: pc.Name, TenantID: pc.TenantID}

	// 1. MFA policies in a Partner Center tenant that is not the primary one.
	r.enter(ctx, StagePartnerMFA)
	if pc.ConnectedToPrimary {
		r.note("skipped: connected to the primary tenant, whose MFA policies were checked earlier")
	} else {
		for round := 1; ; round++ {
			var pol activities.MFAPolicies
			if err := r.exec(ctx, readOpts(ctx, "Check MFA policies in Partner Center tenant "+pc.TenantID), a.CheckMFAPolicies, pc.TenantID, &pol); err != nil {
				return res, err
			}
			if pol.Enabled {
				r.note("MFA enforced by " + pol.Source)
				break
			}
			if r.safe && round > r.cfg.MaxFixRounds {
				if err := r.roundsExhausted(ctx, "MFA policies in Partner Center tenant "+pc.TenantID, round-1, "no MFA policy enabled"); err != nil {
					return res, err
				}
				round = 1
			}
			if _, err := r.ask(ctx, mfaPoliciesTask(pc.TenantID, PartnerAdmin, TaskPartnerMFAPolicies)); err != nil {
				return res, err
			}
		}
	}

	// 2. Re-consent, then verify with a Partner Center probe; a refused probe opens the task
	// again once, then becomes a warning (the probe cannot see every kind of consent).
	r.enter(ctx, StagePartnerReconsent)
	why := ""
	for attempt := 1; attempt <= 2; attempt++ {
		if _, err := r.ask(ctx, partnerReconsentTask(pc, why)); err != nil {
			return res, err
		}
		var probe activities.PartnerCenterProbe
		if err := r.exec(ctx, readOpts(ctx, "Probe Partner Center "+pc.Name), a.ProbePartnerCenter, pc.TenantID, &probe); err != nil {
			return res, err
		}
		res.Verified, res.Detail = probe.Verified, probe.Detail
		if probe.Verified {
			break
		}
		why = "The Partner Center probe still fails (" + probe.Detail + "): please re-consent again."
	}
	r.enter(ctx, StageDone)
	r.endStage(ctx, "")
	res.Confirmations, res.Warnings, res.HumanWait = r.board.confirmations, r.warnings, r.humanWaited(ctx)
	return res, nil
}
