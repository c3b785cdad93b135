//! A change as an event shows it: who applied the lane label, whether it is in the lane, the
//! grant a responder's label gives, and what a push, a new base or a removed label takes away.

use super::{publish, Ctx, Need, Observed, Out, Step};
use crate::lane::audit::AuditAction;
use crate::lane::effect::{Effect, Opening};
use crate::lane::event::{ItemState, PullRequest, PullRequestAction};
use crate::lane::grant::{self, Grant};
use crate::lane::incident::{self, format_utc, Incident};
use crate::lane::job::{Job, Subject};
use crate::lane::membership::{self, Labeler, Membership};
use crate::lane::postmortem;
use crate::lane::track::{self, PullFacts};

/// `count`: the input is a delivery of its own (each counts once in the facts' event count).
#[allow(clippy::too_many_arguments)]
pub(super) fn on_change(
    prior: Option<&PullFacts>,
    action: PullRequestAction,
    change: &PullRequest,
    added: &[String],
    actor: &str,
    count: bool,
    seen: &Observed,
    ctx: &Ctx,
) -> Result<Step, Need> {
    // A forge never reopens a merged change: an event that shows it open is older than the
    // merge (a redelivery, or one that arrived late), and deciding on it would grant again.
    if prior.is_some_and(|p| p.state == ItemState::Merged) && change.state != ItemState::Merged {
        return Ok(Step::default());
    }
    let policy = ctx.policy;
    let mut out = Out::new(fold(prior, change, count, ctx));
    let sha = change.head_sha.as_str();
    if let Some((lapse, why)) = grant::drop_lapsed(&mut out.facts) {
        out.audit(lapse, actor, sha, why);
    }
    let lane_label = &policy.lane.label;
    let is_lane_label = |l: &String| l.eq_ignore_ascii_case(lane_label);
    let has_label = change.labels.iter().any(is_lane_label);
    let applied_now = match action {
        // A forge sends `labeled` only for a label that was not on: one for a label the change
        // already carries is older than what the lane knows (a redelivery, or late), and must
        // not grant again after a revoke or an expiry.
        PullRequestAction::Labeled => {
            let already = prior.is_some_and(|p| p.labels.iter().any(is_lane_label));
            !already && added.iter().any(is_lane_label)
        }
        // Labels set while opening the change were set by whoever opened it.
        PullRequestAction::Opened => has_label,
        _ => false,
    };
    // The revert the lane opened on a responder's `/hotfix revert`: bound to its head, and
    // used up by the label event itself, or once the label is seen gone. It is kept while the
    // label shows and through the change's opening event, which can arrive late and never
    // shows the label the lane applied after opening it.
    let revert = out.facts.lane.revert_for.take().filter(|g| g.sha == change.head_sha && g.base == change.base_ref);
    if !applied_now && (has_label || action == PullRequestAction::Opened) {
        out.facts.lane.revert_for = revert.clone();
    }
    let mut by_revert = None;
    let labeler = if !has_label {
        None
    } else if applied_now {
        let responder = seen.responder(actor)?;
        match revert {
            // The lane's own label call: it counts as the responder's who asked for the revert.
            Some(seeded) if !responder => {
                let labeler = Labeler { login: seeded.by.clone(), responder: true, at: ctx.now };
                by_revert = Some(seeded);
                Some(labeler)
            }
            _ => Some(Labeler { login: actor.to_string(), responder, at: ctx.now }),
        }
    } else if let Some(known) = out.facts.lane.labeler.clone() {
        Some(known)
    } else {
        // Labelled while hotfix-lane was not listening: the forge says who did it.
        seen.labeler()?
    };
    out.facts.lane.labeler = labeler;
    let was = prior.map(|p| p.lane.membership.clone()).unwrap_or_default();
    out.facts.lane.membership = membership::evaluate(change, policy, out.facts.lane.labeler.as_ref());
    if out.facts.lane.membership != was {
        let details = membership::report(&out.facts.lane.membership, policy, ctx.conventions).details;
        out.audit(membership_action(&out.facts.lane.membership), actor, sha, details);
    }
    let in_lane = out.facts.lane.membership.in_lane();
    // A responder applying the label authorizes the head commit (unless they wrote it);
    // leaving the lane ends the grant.
    if let Some(seeded) = by_revert.filter(|_| in_lane) {
        // The responder's grant stands, or comes back if the opening event, which showed no
        // label yet, dropped it: the lane gives none of its own.
        if out.facts.lane.grant.is_none() {
            let detail = format!("on @{}'s `/hotfix revert`, until {}", seeded.by, format_utc(seeded.expires_at));
            out.audit(AuditAction::GrantCreated, &seeded.by, sha, detail);
            out.facts.lane.grant = Some(seeded);
            out.facts.lane.lapsed = None;
        }
    } else if applied_now && in_lane {
        let head_author = head_author(change, actor, seen, ctx)?;
        let request = grant::Request { by: actor, duration: None, reason: None, head_author: head_author.as_deref() };
        match grant::authorize(change, request, policy, ctx.now) {
            Err(why) => out.audit(AuditAction::GrantRefused, actor, sha, why),
            Ok(g) => {
                let detail = format!("by applying the lane label, until {}", format_utc(g.expires_at));
                out.audit(AuditAction::GrantCreated, actor, sha, self_marked(detail, &g));
                out.facts.lane.grant = Some(g);
                out.facts.lane.lapsed = None;
            }
        }
    } else if !in_lane && out.facts.lane.grant.take().is_some() {
        out.audit(AuditAction::GrantCleared, actor, sha, "the change left the lane".into());
    }
    if applied_now && in_lane && policy.postmortem.open_on_label {
        let why = "opened as the lane label was applied, and linked";
        if let Some(opening) = opening(&out.facts, change, action, actor, why, seen, ctx)? {
            out.effects.push(Effect::OpenPostmortem { opening: Box::new(opening) });
            return Ok(out.done());
        }
    }
    evaluate(out, change, action, actor, seen, ctx)
}

/// The rest of a change's evaluation once membership and grant are settled: its reports, the
/// merge they may lead to, the policy file it edits, and what its merge starts.
fn evaluate(
    mut out: Out,
    change: &PullRequest,
    action: PullRequestAction,
    actor: &str,
    seen: &Observed,
    ctx: &Ctx,
) -> Result<Step, Need> {
    if matches!(action, PullRequestAction::Opened | PullRequestAction::Synchronize | PullRequestAction::Reopened) {
        out.facts.lane.pushed = Some((change.head_sha.clone(), actor.to_string()));
    }
    let reference = postmortem::find_reference(&change.body, &ctx.repo.full_name);
    out.facts.lane.postmortem = reference.clone().ok().flatten();
    if change.state == ItemState::Open {
        let lookup = publish::look_up(&out.facts, &reference, seen, ctx)?;
        let reports = publish::evaluate(&out.facts, &reference, lookup.as_ref(), ctx);
        if let Some(changed) = publish::postmortem_moved(&out.facts, &reports[1]) {
            out.audit(AuditAction::Postmortem(changed.state), actor, &change.head_sha, changed.description);
        }
        publish::publish(&mut out, reports, seen, ctx)?;
        if matches!(action, PullRequestAction::Opened | PullRequestAction::Synchronize | PullRequestAction::Reopened) {
            publish::policy_edit(&mut out, change, seen, ctx)?;
        }
    }
    let backport_of = crate::lane::backport::parse_branch(&change.head_ref).filter(|_| !change.from_fork);
    if let Some((original, target)) = backport_of {
        out.effects.push(Effect::Enqueue(Job::BackportFollowup {
            change: Subject {
                forge: ctx.conventions.forge,
                repo: ctx.repo.clone(),
                number: original,
                installation_id: ctx.installation_id,
            },
            target: target.to_string(),
            pull: change.number,
            head_sha: change.head_sha.clone(),
            state: change.state,
        }));
    }
    if change.state == ItemState::Merged && out.facts.lane.membership.in_lane() {
        let merger = (action == PullRequestAction::Closed).then_some(actor);
        publish::merged(&mut out, change, merger, ctx);
    }
    Ok(out.done())
}

/// What `change` takes away from the grant, decided without the forge.
pub(super) fn lapsed(prior: Option<&PullFacts>, change: &PullRequest, actor: &str, ctx: &Ctx) -> Option<Step> {
    if prior.is_some_and(|p| p.state == ItemState::Merged) && change.state != ItemState::Merged {
        return None;
    }
    let mut out = Out::new(fold(prior, change, true, ctx));
    let (lapse, why) = grant::drop_lapsed(&mut out.facts)?;
    out.audit(lapse, actor, &change.head_sha, why);
    Some(out.done())
}

/// The facts as `change` shows them, over what the lane remembers.
fn fold(prior: Option<&PullFacts>, change: &PullRequest, count: bool, ctx: &Ctx) -> PullFacts {
    let events = prior.map_or(0, |p| p.events) + u64::from(count);
    PullFacts {
        events,
        repo: Some(ctx.repo.clone()),
        installation_id: ctx.installation_id.or(prior.and_then(|p| p.installation_id)),
        lane: prior.map(|p| p.lane.clone()).unwrap_or_default(),
        ..track::first_seen(change)
    }
}

/// The head commit's author, when the two-person rule needs it.
pub(super) fn head_author(change: &PullRequest, by: &str, seen: &Observed, ctx: &Ctx) -> Result<Option<String>, Need> {
    if !grant::needs_head_author(change, by, ctx.policy) {
        return Ok(None);
    }
    seen.head_author(&change.head_sha)
}

/// The postmortem issue to find or open for a change whose description names none.
pub(super) fn opening(
    facts: &PullFacts,
    change: &PullRequest,
    action: PullRequestAction,
    actor: &str,
    why: &'static str,
    seen: &Observed,
    ctx: &Ctx,
) -> Result<Option<Opening>, Need> {
    if matches!(postmortem::find_reference(&change.body, &ctx.repo.full_name), Ok(Some(_))) {
        return Ok(None);
    }
    let policy = ctx.policy;
    let template = match &policy.postmortem.template {
        Some(path) => seen.template(path)?,
        None => None,
    };
    let incident = Incident {
        repo: &ctx.repo.full_name,
        number: change.number,
        title: &change.title,
        labeler: facts.lane.labeler.as_ref(),
        label: &policy.lane.label,
        now: ctx.now,
    };
    Ok(Some(Opening {
        title: incident::title(&incident),
        body: incident::body(template, &incident),
        label: policy.postmortem.label.clone(),
        marker: incident::marker(&ctx.repo.full_name, change.number),
        change: change.clone(),
        why,
        actor: actor.to_string(),
        action,
    }))
}

/// An audit detail, marked when the grant is the authorizer's own.
pub(super) fn self_marked(detail: String, g: &Grant) -> String {
    if g.self_authorized {
        format!("{detail} (self-authorized: @{} wrote the change)", g.by)
    } else {
        detail
    }
}

fn membership_action(m: &Membership) -> AuditAction {
    match m {
        Membership::Normal => AuditAction::LaneNormal,
        Membership::Hotfix { .. } => AuditAction::LaneHotfix,
        Membership::NotAuthorized { .. } => AuditAction::LaneNotAuthorized,
        Membership::BranchMismatch => AuditAction::LaneBranchMismatch,
    }
}
