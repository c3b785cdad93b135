//! Merging on a responder's pre-authorization, and the smoke-check results it waits for.

use super::observe::look_up;
use super::{AuditScope, StepError};
use crate::forge::{Forge, MergeOutcome};
use crate::lane::event::{ItemState, PullRequest, RepoRef};
use crate::lane::grant::{self, Blocker, Grant};
use crate::lane::incident::format_utc;
use crate::lane::policy::{MergeMethod, Policy};
use crate::lane::postmortem;
use crate::lane::report::CheckState;
use crate::lane::smoke;
use crate::lane::track::{CheckResult, PullFacts};
use crate::store::{Millis, Write};

/// Merges the change if the lane may now, pinned to the head commit the grant covers.
///
/// What the stored facts say only decides whether to look: the merge itself is decided on the
/// forge's facts of this moment — the change read again (head, base, labels, state, body), its
/// postmortem issue, the smoke checks from the sources the policy names, and the authorizer
/// still a responder. Returns the audit entries of what happened; `facts` records a merge so it
/// never repeats, and whatever the reads showed.
pub(crate) async fn try_merge<F: Forge>(
    forge: &F,
    forge_name: &str,
    repo: &RepoRef,
    facts: &mut PullFacts,
    policy: &Policy,
    now: Millis,
) -> Result<Vec<Write>, StepError> {
    let handed_over = facts.lane.enqueued.as_deref() == Some(facts.head_sha.as_str());
    let refused = facts.lane.merge_refused.as_ref().is_some_and(|(sha, _)| *sha == facts.head_sha);
    if facts.lane.merged.is_some() || handed_over || refused || !worth_a_look(facts, policy, now) {
        return Ok(vec![]);
    }
    let audit = |action: &str, detail: String, facts: &PullFacts| {
        AuditScope::own(now, forge_name, &repo.full_name, facts).entry(action, detail)
    };
    let Some(fresh) = forge.pull(&repo.full_name, facts.number).await? else { return Ok(vec![]) };
    if fresh.merged {
        // A merge whose answer was lost, or one made by hand: the forge's word is what counts.
        facts.lane.merged = Some(fresh.head_sha.clone());
        facts.lane.merge_commit = fresh.merge_commit_sha.clone();
        facts.state = ItemState::Merged;
        return Ok(vec![audit("merge.merged", "merged, as read back from the forge".into(), facts)]);
    }
    observe_fresh(facts, &fresh);
    if let Some((action, why)) = grant::drop_lapsed(facts) {
        return Ok(vec![audit(action, why, facts)]);
    }
    let reference = postmortem::find_reference(&fresh.body, &repo.full_name);
    let lookup = look_up(forge, &facts.lane.membership, &reference, &repo.full_name, policy).await?;
    let verdict = postmortem::verdict(true, &reference, &repo.full_name, lookup.as_ref(), policy);
    if verdict.state != CheckState::Success {
        // The change's own events report the new verdict; here it only stops the merge.
        return Ok(vec![]);
    }
    let seen = forge.commit_checks(&repo.full_name, &facts.head_sha).await?;
    facts.lane.checks = smoke::states(policy, &seen)
        .into_iter()
        .map(|(name, state)| (name, CheckResult { sha: facts.head_sha.clone(), state }))
        .collect();
    if grant::readiness(facts, policy, now).is_err() {
        return Ok(vec![]);
    }
    let Some(g) = facts.lane.grant.clone() else { return Ok(vec![]) };
    if !forge.is_responder(&repo.full_name, &g.by, &policy.responders).await? {
        facts.lane.grant = None;
        return Ok(vec![audit("grant.cleared", format!("@{} is no longer a responder", g.by), facts)]);
    }
    let method = match policy.merge.method {
        MergeMethod::Merge => "merge",
        MergeMethod::Squash => "squash",
        MergeMethod::Rebase => "rebase",
    };
    let on = authorization(&g);
    let outcome = forge.merge(&repo.full_name, facts.number, &facts.head_sha, method).await?;
    let outcome = match outcome {
        // A retried job after a merge that did happen: the forge says so, and that is a merge.
        MergeOutcome::Refused(_) if forge.pull(&repo.full_name, facts.number).await?.is_some_and(|p| p.merged) => {
            MergeOutcome::Merged
        }
        other => other,
    };
    match outcome {
        MergeOutcome::Merged => {
            facts.lane.merged = Some(facts.head_sha.clone());
            facts.state = ItemState::Merged;
            if g.self_authorized {
                note_self_authorized(forge, facts, &g).await?;
            }
            Ok(vec![audit("merge.merged", format!("{method} merge on {on}"), facts)])
        }
        MergeOutcome::BaseModified => Err(StepError::Retry("the base branch moved during the merge".into())),
        MergeOutcome::QueueRequired => {
            forge.enqueue_first(&repo.full_name, facts.number, &facts.head_sha).await?;
            facts.lane.enqueued = Some(facts.head_sha.clone());
            Ok(vec![audit("merge.enqueued", format!("at the front of the merge queue on {on}"), facts)])
        }
        MergeOutcome::Refused(why) => {
            facts.lane.merge_refused = Some((facts.head_sha.clone(), why.clone()));
            Ok(vec![audit("merge.refused", why, facts)])
        }
    }
}

/// Marks the hotfix's postmortem issue: a self-authorized merge is one the review should look
/// at, since nobody but its author vouched for it.
async fn note_self_authorized<F: Forge>(forge: &F, facts: &PullFacts, g: &Grant) -> Result<(), StepError> {
    let Some(issue) = &facts.lane.postmortem else { return Ok(()) };
    let short: String = facts.head_sha.chars().take(7).collect();
    let body = format!(
        "{SELF_AUTHORIZED_MARKER}\n### hotfix-lane\n\n⚠️ The hotfix #{} merged `{short}` on its author's own \
         authorization (@{}): no second person reviewed or authorized it. The policy allows this with \
         `merge.allow_self_authorize = true`.\n",
        facts.number, g.by
    );
    forge.upsert_comment(&issue.repo, issue.number, None, SELF_AUTHORIZED_MARKER, &body).await?;
    Ok(())
}

/// Marks the note on a postmortem issue about a self-authorized merge.
const SELF_AUTHORIZED_MARKER: &str = "<!-- hotfix-lane:self-authorized -->";

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
pub(crate) fn authorization(g: &Grant) -> String {
    if g.self_authorized {
        format!("@{}'s own authorization (self-authorized: no second person)", g.by)
    } else {
        format!("@{}'s authorization", g.by)
    }
}

/// The authorization and merge line of the lane's comment.
pub(super) fn status_line(facts: &PullFacts, policy: &Policy, now: Millis) -> Option<String> {
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
        return Some(format!("❌ **Merge:** GitHub refused to merge `{}`: {why}", &sha[..7.min(sha.len())]));
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
        Err(blocker) => format!("⏳ **Merge:** {}", blocker.explain()),
    };
    Some(format!("{authorization}\n\n{merge}"))
}
