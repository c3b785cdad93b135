//! What the lane shows on a change: the lane and postmortem checks on its head, the check of a
//! policy file it edits, its one comment, and the backports its merge starts.

use super::{merge, Ctx, Need, Observed, Out, Step};
use crate::lane::approval;
use crate::lane::audit::AuditAction;
use crate::lane::backport::{self as backports, Backport};
use crate::lane::comment;
use crate::lane::effect::Effect;
use crate::lane::event::PullRequest;
use crate::lane::job::{Job, Subject};
use crate::lane::markdown;
use crate::lane::membership;
use crate::lane::policy::Policy;
use crate::lane::postmortem::{self, IssueLookup, IssueRef};
use crate::lane::report::{CheckState, Report, LANE_CONTEXT, POLICY_CONTEXT, POSTMORTEM_CONTEXT};
use crate::lane::track::PullFacts;

/// The named issue as the forge has it: looked up only for changes in the lane, and only in
/// allowed repositories.
pub(super) fn look_up(
    facts: &PullFacts,
    reference: &Result<Option<IssueRef>, String>,
    seen: &Observed,
    ctx: &Ctx,
) -> Result<Option<IssueLookup>, Need> {
    let in_lane = facts.lane.membership.in_lane();
    postmortem::to_look_up(in_lane, reference, &ctx.repo.full_name, ctx.policy).map(|r| seen.issue(r)).transpose()
}

/// The lane and postmortem reports for the change's current state.
pub(super) fn evaluate(
    facts: &PullFacts,
    reference: &Result<Option<IssueRef>, String>,
    lookup: Option<&IssueLookup>,
    ctx: &Ctx,
) -> [Report; 2] {
    let membership = &facts.lane.membership;
    [
        membership::report(membership, ctx.policy, ctx.conventions),
        postmortem::verdict(membership.in_lane(), reference, &ctx.repo.full_name, lookup, ctx.policy),
    ]
}

/// The postmortem report, when its state differs from the last one posted: for the audit log.
pub(super) fn postmortem_moved(facts: &PullFacts, report: &Report) -> Option<Report> {
    let moved = facts.lane.reported.get(&report.context).is_none_or(|r| r.report.state != report.state);
    moved.then(|| report.clone())
}

/// Posts what is news of `reports`, then merges if the lane now may — the comment follows the
/// merge's answer — or else brings the comment up to date.
pub(super) fn publish(out: &mut Out, reports: [Report; 2], seen: &Observed, ctx: &Ctx) -> Result<(), Need> {
    for report in reports.iter().cloned() {
        post(out, report);
    }
    approval(out, seen, ctx)?;
    if merge::consider(out, seen, ctx)? {
        return Ok(());
    }
    comment(out, Some(&reports), ctx);
    Ok(())
}

/// Posts `hotfix-lane/approval` from the head's reviews, when the policy asks for the check.
pub(super) fn approval(out: &mut Out, seen: &Observed, ctx: &Ctx) -> Result<(), Need> {
    let Some(required) = approval_reviews(ctx) else { return Ok(()) };
    if out.facts.state != crate::lane::event::ItemState::Open {
        return Ok(());
    }
    let report = approval_by_reviews(&out.facts, required, seen)?;
    post(out, report);
    Ok(())
}

/// `hotfix-lane/approval` as the head's reviews have it: approvals by people with write access,
/// but not by the change's author, the head commit's author, or whoever pushed the head.
pub(super) fn approval_by_reviews(facts: &PullFacts, required: u32, seen: &Observed) -> Result<Report, Need> {
    let head = &facts.head_sha;
    let head_author = seen.head_author(head)?;
    let pusher = facts.lane.pushed.as_ref().filter(|(sha, _)| sha == head).map(|(_, who)| who.as_str());
    let excluded = [facts.author.as_deref().unwrap_or(""), head_author.as_deref().unwrap_or(""), pusher.unwrap_or("")];
    Ok(approval::by_reviews(seen.approvers(head)?, &excluded, required))
}

/// The approving reviews `hotfix-lane/approval` asks for, when the lane reports it: only as a
/// GitHub App, whose check runs a ruleset can require from that App alone. A commit status
/// (a token's reports) can be posted by anyone who can push, so the check would prove nothing.
pub(super) fn approval_reviews(ctx: &Ctx) -> Option<u32> {
    ctx.policy.approval.required().filter(|_| ctx.pinned_reports)
}

/// Posts `report` on the head if it is news there.
pub(super) fn post(out: &mut Out, report: Report) {
    let head = out.facts.head_sha.clone();
    if out.facts.lane.is_news(&head, &report) {
        out.effects.push(Effect::Report { sha: head.clone(), report: report.clone() });
        out.facts.lane.remember(&head, &report);
    }
}

/// A check on the head moved: merge if the lane may now, and update the comment from the
/// reports last posted on the head.
pub(super) fn checks_moved(mut out: Out, new_run: bool, seen: &Observed, ctx: &Ctx) -> Result<Step, Need> {
    if new_run {
        let head = out.facts.head_sha.clone();
        for reported in out.facts.lane.reported.values().filter(|r| r.sha == head) {
            out.effects.push(Effect::Report { sha: head.clone(), report: reported.report.clone() });
        }
    }
    smoke_seen(&mut out, seen, ctx)?;
    if !merge::consider(&mut out, seen, ctx)? {
        comment(&mut out, None, ctx);
    }
    Ok(out.done())
}

/// Reads the smoke checks of a hotfix's head until they are first seen green, whether or not
/// it could merge yet: the time to patch is taken from that moment, not from the grant.
fn smoke_seen(out: &mut Out, seen: &Observed, ctx: &Ctx) -> Result<(), Need> {
    let facts = &out.facts;
    let open = facts.state == crate::lane::event::ItemState::Open;
    if ctx.policy.merge.smoke_checks.is_empty()
        || facts.smoke_green(ctx.policy)
        || !open
        || !facts.lane.membership.in_lane()
    {
        return Ok(());
    }
    let head = facts.head_sha.clone();
    out.facts.record_smoke(crate::lane::smoke::states(ctx.policy, seen.checks(&head)?));
    Ok(())
}

/// The postmortem issue changed: its check again, as the issue's event describes it.
pub(super) fn issue_changed(mut out: Out, lookup: &IssueLookup, seen: &Observed, ctx: &Ctx) -> Result<Step, Need> {
    let reference = Ok(out.facts.lane.postmortem.clone());
    let reports = evaluate(&out.facts, &reference, Some(lookup), ctx);
    if let Some(changed) = postmortem_moved(&out.facts, &reports[1]) {
        let detail = format!("{} (the postmortem issue changed)", changed.description);
        out.own(AuditAction::Postmortem(changed.state), detail);
    }
    publish(&mut out, reports, seen, ctx)?;
    Ok(out.done())
}

/// Brings the lane's one comment up to date: for changes in (or once in) the lane. `reports`
/// are the ones just decided; else the ones last posted on the head.
pub(super) fn comment(out: &mut Out, reports: Option<&[Report; 2]>, ctx: &Ctx) {
    let lane = &out.facts.lane;
    if lane.membership == membership::Membership::Normal && lane.comment_id.is_none() {
        return;
    }
    let last = |context: &str| lane.reported.get(context).filter(|r| r.sha == out.facts.head_sha).map(|r| &r.report);
    let (lane_report, postmortem_report) = match reports {
        Some([lane, postmortem]) => (lane, postmortem),
        None => match (last(LANE_CONTEXT), last(POSTMORTEM_CONTEXT)) {
            (Some(lane), Some(postmortem)) => (lane, postmortem),
            _ => return,
        },
    };
    let status = merge::status_line(&out.facts, ctx.policy, ctx.now, ctx.conventions);
    let mut body = comment::render(&lane.membership, lane_report, postmortem_report, status.as_deref(), ctx.policy);
    if let Some(error) = ctx.policy_error {
        body.push_str(&format!(
            "\n⚠️ `{}` on the default branch is invalid ({error}); the last valid policy applies.\n",
            ctx.conventions.policy_path
        ));
    }
    if lane.comment.as_deref() != Some(body.as_str()) {
        out.effects.push(Effect::LaneComment { known: lane.comment_id, body: body.clone() });
        out.facts.lane.comment = Some(body);
    }
}

/// Marks the comment that explains an invalid policy file in a change.
const POLICY_MARKER: &str = "<!-- hotfix-lane:policy -->";

/// A change that edits the policy file gets the new version validated before it can merge:
/// reported as `hotfix-lane/policy`, with the problems spelled out in a comment.
pub(super) fn policy_edit(out: &mut Out, change: &PullRequest, seen: &Observed, ctx: &Ctx) -> Result<(), Need> {
    let path = ctx.conventions.policy_path;
    if !seen.changed_files()?.iter().any(|f| f == path) {
        return Ok(());
    }
    let (state, description, details) = match seen.file(path, &change.head_sha)? {
        None => (CheckState::Success, "policy file removed: defaults apply".to_string(), String::new()),
        Some(text) => match Policy::parse_for(text, ctx.conventions.forge) {
            Ok(_) => (CheckState::Success, "policy file valid".to_string(), String::new()),
            Err(error) => {
                // The message quotes the change's file: fenced, no markup in it renders.
                let message = markdown::fence(&format!("{path}:{error}"));
                let body = format!(
                    "{POLICY_MARKER}\n### hotfix-lane\n\n❌ `{path}` in this change is invalid:\n\n{message}\n\nThe lane keeps using the policy on the default branch until a valid one is merged.\n"
                );
                let (repo, number) = (ctx.repo.full_name.clone(), change.number);
                out.effects.push(Effect::Comment { repo, number, marker: POLICY_MARKER, body });
                (CheckState::Failure, format!("policy file invalid: {error}"), message)
            }
        },
    };
    // A check run shows the details (or else the description) as Markdown: the fenced message.
    let report = Report::new(POLICY_CONTEXT, state, description, details);
    if out.facts.lane.is_news(&change.head_sha, &report) {
        out.effects.push(Effect::Report { sha: change.head_sha.clone(), report: report.clone() });
        out.facts.lane.remember(&change.head_sha, &report);
    }
    Ok(())
}

/// A hotfix merged: when, as which commit, and a backport to each new target — reported
/// pending on the merge commit from the start, so it never looks done while backports are made.
pub(super) fn merged(out: &mut Out, change: &PullRequest, merger: Option<&str>, ctx: &Ctx) {
    let lane = &mut out.facts.lane;
    lane.merged_at.get_or_insert(ctx.now);
    lane.merge_commit = change.merge_commit_sha.clone().or(lane.merge_commit.take());
    let targets = backports::targets(
        ctx.policy,
        &ctx.repo.default_branch,
        &change.base_ref,
        &change.labels,
        &lane.backport_requests,
    );
    let mut started = false;
    for target in targets {
        if out.facts.lane.backports.contains_key(&target) {
            continue;
        }
        out.facts.lane.backports.insert(target.clone(), Backport::pending(ctx.now, ctx.policy));
        let subject = Subject {
            forge: ctx.conventions.forge,
            repo: ctx.repo.clone(),
            number: out.facts.number,
            installation_id: out.facts.installation_id,
        };
        out.effects.push(Effect::Enqueue(Job::Backport {
            change: subject,
            target,
            merger: merger.map(str::to_string),
        }));
        started = true;
    }
    if let Some(sha) = change.merge_commit_sha.clone().filter(|_| started) {
        let report = backports::summary_report(&out.facts.lane.backports, ctx.conventions);
        out.effects.push(Effect::Report { sha, report });
    }
}
