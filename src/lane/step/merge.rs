//! Merging on a responder's pre-authorization, decided on the forge's facts of this moment,
//! and what the forge's answer to the merge means.

use super::publish::{self, comment};
use super::{Ctx, Need, Observed, Out, Step};
use crate::lane::approval;
use crate::lane::audit::AuditAction;
use crate::lane::conventions::Conventions;
use crate::lane::effect::{Effect, MergeApproval};
use crate::lane::event::{ItemState, PullRequest};
use crate::lane::grant::{self, Blocker, Grant};
use crate::lane::incident::format_utc;
use crate::lane::policy::{MergeMethod, Policy};
use crate::lane::postmortem;
use crate::lane::report::CheckState;
use crate::lane::smoke;
use crate::lane::track::PullFacts;
use crate::store::Millis;

/// What the forge answered to a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeAnswer {
    Merged,
    /// The base branch moved under the merge: worth trying again.
    BaseModified,
    /// The base branch only accepts changes through its merge queue.
    QueueRequired,
    /// The forge refused (conflicts, head moved, protection), and why.
    Refused(String),
    /// No answer came (an error, a timeout): the merge may or may not have happened.
    Lost(String),
}

/// Decides whether to merge now, and if so asks for it (true). What the stored facts say only
/// decides whether to look: the merge itself is decided on the change read again (head, base,
/// labels, state, description), its postmortem issue, the smoke checks from the sources the
/// policy names, and the authorizer still a responder.
pub(super) fn consider(out: &mut Out, seen: &Observed, ctx: &Ctx) -> Result<bool, Need> {
    let (policy, facts) = (ctx.policy, &out.facts);
    let handed_over = facts.lane.enqueued.as_deref() == Some(facts.head_sha.as_str());
    let refused = facts.lane.merge_refused.as_ref().is_some_and(|(sha, _)| *sha == facts.head_sha);
    if facts.lane.merged.is_some() || handed_over || refused || !worth_a_look(facts, policy, ctx.now) {
        return Ok(false);
    }
    let Some(fresh) = seen.change()? else { return Ok(false) };
    if fresh.merged {
        // A merge whose answer was lost, or one made by hand: the forge's word is what counts.
        record_merged(out, fresh, "merged, as read back from the forge".into());
        return Ok(false);
    }
    observe_fresh(&mut out.facts, fresh);
    if let Some((lapse, why)) = grant::drop_lapsed(&mut out.facts) {
        out.own(lapse, why);
        return Ok(false);
    }
    let reference = postmortem::find_reference(&fresh.body, &ctx.repo.full_name);
    let lookup = publish::look_up(&out.facts, &reference, seen, ctx)?;
    let verdict = postmortem::verdict(true, &reference, &ctx.repo.full_name, lookup.as_ref(), policy);
    if verdict.state != CheckState::Success {
        // The change's own events report the new verdict; here it only stops the merge.
        return Ok(false);
    }
    let head = out.facts.head_sha.clone();
    out.facts.record_smoke(smoke::states(policy, seen.checks(&head)?));
    if grant::readiness(&out.facts, policy, ctx.now).is_err() {
        return Ok(false);
    }
    let Some(g) = out.facts.lane.grant.clone() else { return Ok(false) };
    if !seen.responder(&g.by)? {
        out.facts.lane.grant = None;
        out.own(AuditAction::GrantCleared, format!("@{} is no longer a responder", g.by));
        return Ok(false);
    }
    // Passed on the grant only with the merge itself: see `lane::approval`.
    let approval = match publish::approval_reviews(ctx) {
        Some(required) => {
            let otherwise = publish::approval_by_reviews(&out.facts, required, seen)?;
            out.facts.lane.remember(&head, &otherwise);
            Some(Box::new(MergeApproval { pass: approval::by_grant(&g), otherwise }))
        }
        None => None,
    };
    out.effects.push(Effect::Merge { sha: head, method: policy.merge.method, approval });
    Ok(true)
}

/// The forge answered the merge of `sha`.
pub(super) fn answered(
    mut out: Out,
    sha: &str,
    method: MergeMethod,
    answer: &MergeAnswer,
    seen: &Observed,
    ctx: &Ctx,
) -> Result<Step, Need> {
    let on = out.facts.lane.grant.as_ref().map_or("a responder's authorization".into(), authorization);
    let method = method_word(method);
    match answer {
        MergeAnswer::Merged => merged(&mut out, sha, format!("{method} merge on {on}"), ctx),
        MergeAnswer::BaseModified => {
            out.effects.push(Effect::Retry { reason: "the base branch moved during the merge".into(), failed: false });
        }
        MergeAnswer::QueueRequired => {
            out.effects.push(Effect::EnqueueFirst { sha: sha.to_string() });
            out.facts.lane.enqueued = Some(sha.to_string());
            out.own(AuditAction::MergeEnqueued, format!("at the front of the merge queue on {on}"));
            comment(&mut out, None, ctx);
        }
        // A refusal of a merge that did happen (a retried job), or no answer at all: what the
        // forge shows now says what happened.
        MergeAnswer::Refused(why) | MergeAnswer::Lost(why) => match seen.change()? {
            Some(fresh) if fresh.merged => {
                let detail = match answer {
                    MergeAnswer::Lost(_) => {
                        format!("{method} merge on {on}; the answer was lost, read back from the forge")
                    }
                    _ => format!("{method} merge on {on}"),
                };
                let fresh = fresh.clone();
                merged(&mut out, sha, detail, ctx);
                out.facts.lane.merge_commit = fresh.merge_commit_sha.clone().or(out.facts.lane.merge_commit.take());
            }
            _ if matches!(answer, MergeAnswer::Lost(_)) => {
                out.effects.push(Effect::Retry { reason: format!("the merge went unanswered: {why}"), failed: true });
            }
            _ => {
                out.facts.lane.merge_refused = Some((sha.to_string(), why.clone()));
                out.own(AuditAction::MergeRefused, why.clone());
                comment(&mut out, None, ctx);
            }
        },
    }
    Ok(out.done())
}

/// The lane merged the change: recorded, never repeated; a self-authorized merge is noted on
/// the postmortem issue, since nobody but its author vouched for it.
fn merged(out: &mut Out, sha: &str, detail: String, ctx: &Ctx) {
    out.facts.lane.merged = Some(sha.to_string());
    out.facts.state = ItemState::Merged;
    out.own(AuditAction::MergeMerged, detail);
    if let (Some(g), Some(issue)) =
        (out.facts.lane.grant.as_ref().filter(|g| g.self_authorized), &out.facts.lane.postmortem)
    {
        let short: String = sha.chars().take(7).collect();
        let body = format!(
            "{SELF_AUTHORIZED_MARKER}\n### hotfix-lane\n\n⚠️ The hotfix #{} merged `{short}` on its author's own \
             authorization (@{}): no second person reviewed or authorized it. The policy allows this with \
             `merge.allow_self_authorize = true`.\n",
            out.facts.number, g.by
        );
        let (repo, number) = (issue.repo.clone(), issue.number);
        out.effects.push(Effect::Comment { repo, number, marker: SELF_AUTHORIZED_MARKER, body });
    }
    comment(out, None, ctx);
}

fn record_merged(out: &mut Out, fresh: &PullRequest, detail: String) {
    out.facts.lane.merged = Some(fresh.head_sha.clone());
    out.facts.lane.merge_commit = fresh.merge_commit_sha.clone();
    out.facts.state = ItemState::Merged;
    out.own(AuditAction::MergeMerged, detail);
}

/// Marks the note on a postmortem issue about a self-authorized merge.
const SELF_AUTHORIZED_MARKER: &str = "<!-- hotfix-lane:self-authorized -->";

fn method_word(method: MergeMethod) -> &'static str {
    match method {
        MergeMethod::Merge => "merge",
        MergeMethod::Squash => "squash",
        MergeMethod::Rebase => "rebase",
    }
}

/// Whether the stored facts make a merge possible at all, so that reading the forge is worth
/// it: everything but the smoke checks, which are read from the forge at merge time.
fn worth_a_look(facts: &PullFacts, policy: &Policy, now: Millis) -> bool {
    matches!(grant::readiness(facts, policy, now), Ok(()) | Err(Blocker::SmokePending(_) | Blocker::SmokeFailed(_)))
}

/// What the forge says the change is now, over what events said.
fn observe_fresh(facts: &mut PullFacts, fresh: &PullRequest) {
    facts.head_sha = fresh.head_sha.clone();
    facts.base_ref = fresh.base_ref.clone();
    facts.labels = fresh.labels.clone();
    facts.state = fresh.state;
}

/// "@alice's authorization", marked when the authorizer wrote the change.
pub fn authorization(g: &Grant) -> String {
    if g.self_authorized {
        format!("@{}'s own authorization (self-authorized: no second person)", g.by)
    } else {
        format!("@{}'s authorization", g.by)
    }
}

/// The authorization and merge line of the lane's comment.
pub fn status_line(facts: &PullFacts, policy: &Policy, now: Millis, conventions: &Conventions) -> Option<String> {
    if !facts.lane.membership.in_lane() {
        return None;
    }
    let short: String = facts.head_sha.chars().take(7).collect();
    if facts.lane.merged.is_some() {
        let on = facts.lane.grant.as_ref().map_or("a responder's authorization".into(), authorization);
        return Some(format!("✅ **Merge:** merged `{short}` on {on}"));
    }
    if facts.lane.enqueued.as_deref() == Some(facts.head_sha.as_str()) {
        return Some(format!("✅ **Merge:** `{short}` is at the front of the merge queue"));
    }
    if let Some((sha, why)) = facts.lane.merge_refused.as_ref().filter(|(sha, _)| *sha == facts.head_sha) {
        let name = conventions.name;
        return Some(format!("❌ **Merge:** {name} refused to merge `{}`: {why}", &sha[..7.min(sha.len())]));
    }
    let authorization = match (grant::grant_blocker(facts, now), &facts.lane.grant) {
        (None, Some(g)) => format!(
            "✅ **Authorization:** @{} until {}, for `{short}`{}",
            g.by,
            format_utc(g.expires_at),
            if g.self_authorized { " (self-authorized: no second person)" } else { "" }
        ),
        (Some(blocker), _) => format!("⏳ **Authorization:** {}", blocker.explain()),
        (None, None) => return None,
    };
    let merge = match grant::readiness(facts, policy, now) {
        Ok(()) => "⏳ **Merge:** merging".to_string(),
        Err(Blocker::NoGrant | Blocker::Lapsed(_) | Blocker::Expired | Blocker::Voided) => return Some(authorization),
        Err(blocker @ Blocker::SmokeFailed(_)) => format!("❌ **Merge:** {}", blocker.explain()),
        Err(blocker) => format!("⏳ **Merge:** {}", blocker.explain()),
    };
    Some(format!("{authorization}\n\n{merge}"))
}
