//! Merging on a responder's pre-authorization, and the smoke-check results it waits for.

use super::{lane_state_write, AuditScope, Dispatch, StepError};
use crate::forge::{Forge, Forges, MergeOutcome};
use crate::lane::event::{CheckConclusion, CommitState, Envelope, ItemState, RepoRef};
use crate::lane::grant::{self, Blocker};
use crate::lane::incident::format_utc;
use crate::lane::policy::{MergeMethod, Policy};
use crate::lane::report::CheckState;
use crate::lane::track::{CheckResult, PullFacts};
use crate::store::{Millis, Write};

/// Merges the change if the lane may now, pinned to the head commit the grant covers.
/// Returns the audit entries of what happened; `facts` records a merge so it never repeats.
pub(crate) async fn try_merge<F: Forge>(
    forge: &F,
    forge_name: &str,
    repo: &RepoRef,
    facts: &mut PullFacts,
    policy: &Policy,
    now: Millis,
) -> Result<Vec<Write>, StepError> {
    let handed_over = facts.lane.enqueued.as_deref() == Some(facts.head_sha.as_str());
    if facts.lane.merged.is_some() || handed_over || grant::readiness(facts, policy, now).is_err() {
        return Ok(vec![]);
    }
    if facts.lane.merge_refused.as_ref().is_some_and(|(sha, _)| *sha == facts.head_sha) {
        return Ok(vec![]);
    }
    let method = match policy.merge.method {
        MergeMethod::Merge => "merge",
        MergeMethod::Squash => "squash",
        MergeMethod::Rebase => "rebase",
    };
    let by = facts.lane.grant.as_ref().map_or_else(String::new, |g| g.by.clone());
    let audit = |action: &str, detail: String, facts: &PullFacts| {
        AuditScope::own(now, forge_name, &repo.full_name, facts).entry(action, detail)
    };
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
            Ok(vec![audit("merge.merged", format!("{method} merge on @{by}'s authorization"), facts)])
        }
        MergeOutcome::BaseModified => Err(StepError::Retry("the base branch moved during the merge".into())),
        MergeOutcome::QueueRequired => {
            forge.enqueue_first(&repo.full_name, facts.number, &facts.head_sha).await?;
            facts.lane.enqueued = Some(facts.head_sha.clone());
            Ok(vec![audit(
                "merge.enqueued",
                format!("at the front of the merge queue on @{by}'s authorization"),
                facts,
            )])
        }
        MergeOutcome::Refused(why) => {
            facts.lane.merge_refused = Some((facts.head_sha.clone(), why.clone()));
            Ok(vec![audit("merge.refused", why, facts)])
        }
    }
}

/// The authorization and merge line of the lane's comment.
pub(super) fn status_line(facts: &PullFacts, policy: &Policy, now: Millis) -> Option<String> {
    if !facts.lane.membership.in_lane() {
        return None;
    }
    let short: String = facts.head_sha.chars().take(7).collect();
    if facts.lane.merged.is_some() {
        let by = facts.lane.grant.as_ref().map_or("a responder".into(), |g| format!("@{}", g.by));
        return Some(format!("✅ **Merge:** merged `{short}` on {by}'s authorization"));
    }
    if facts.lane.enqueued.as_deref() == Some(facts.head_sha.as_str()) {
        return Some(format!("✅ **Merge:** `{short}` is at the front of the merge queue"));
    }
    if let Some((sha, why)) = facts.lane.merge_refused.as_ref().filter(|(sha, _)| *sha == facts.head_sha) {
        return Some(format!("❌ **Merge:** GitHub refused to merge `{}`: {why}", &sha[..7.min(sha.len())]));
    }
    let authorization = match (grant::grant_blocker(facts, now), &facts.lane.grant) {
        (None, Some(g)) => format!("✅ **Authorization:** @{} until {}, for `{short}`", g.by, format_utc(g.expires_at)),
        (Some(blocker), _) => format!("⏳ **Authorization:** {}", blocker.explain()),
        (None, None) => return None,
    };
    let merge = match grant::readiness(facts, policy, now) {
        Ok(()) => "⏳ **Merge:** merging".to_string(),
        Err(Blocker::NoGrant | Blocker::Expired | Blocker::Voided) => return Some(authorization),
        Err(blocker) => format!("⏳ **Merge:** {}", blocker.explain()),
    };
    Some(format!("{authorization}\n\n{merge}"))
}

/// One check run or commit status as an event reports it.
pub(super) struct CheckSeen<'a> {
    pub name: &'a str,
    pub sha: &'a str,
    /// `None` for results that do not count (unfinished, stale).
    pub state: Option<CheckState>,
    /// The pull requests the forge says it belongs to; empty means "look them up".
    pub pull_numbers: &'a [u64],
}

/// A check or status result on a commit: recorded on the changes whose head it is, which may
/// then be merged.
pub(super) async fn on_check<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    seen: CheckSeen<'_>,
) -> Result<Vec<Write>, StepError> {
    let CheckSeen { name, sha, state, pull_numbers } = seen;
    let Some(state) = state else { return Ok(vec![]) };
    let loaded = d.policies.get(forge, repo).await?;
    if !loaded.policy.merge.smoke_checks.iter().any(|c| c == name) {
        return Ok(vec![]);
    }
    let numbers = if pull_numbers.is_empty() {
        forge.pulls_for_commit(&repo.full_name, sha).await?
    } else {
        pull_numbers.to_vec()
    };
    let forge_name = envelope.forge.as_str();
    let now = d.clock.now_ms();
    let mut writes = Vec::new();
    for number in numbers {
        let Some(mut facts) = d.pull_state(forge_name, repo.id, number).await? else { continue };
        if facts.head_sha != sha {
            continue;
        }
        facts.lane.checks.insert(name.to_string(), CheckResult { sha: sha.to_string(), state });
        writes.extend(
            super::pull::refresh(forge, forge_name, repo, &mut facts, &loaded.policy, loaded.error.as_ref(), now)
                .await?,
        );
        writes.push(lane_state_write(forge_name, repo.id, &facts));
    }
    Ok(writes)
}

/// A check run's conclusion as pass, fail, or not finished (`None` ignores it).
pub(super) fn check_state(conclusion: Option<CheckConclusion>) -> Option<CheckState> {
    match conclusion? {
        CheckConclusion::Success | CheckConclusion::Neutral | CheckConclusion::Skipped => Some(CheckState::Success),
        CheckConclusion::Unknown | CheckConclusion::Stale => None,
        _ => Some(CheckState::Failure),
    }
}

pub(super) fn status_state(state: CommitState) -> Option<CheckState> {
    match state {
        CommitState::Success => Some(CheckState::Success),
        CommitState::Failure | CommitState::Error => Some(CheckState::Failure),
        CommitState::Pending => Some(CheckState::Pending),
        CommitState::Unknown => None,
    }
}
