//! Backport jobs: once a hotfix merges, one job per target picks the landed commits on the
//! repository's warm mirror, pushes `hotfix-lane/backport/<pr>-to-<target>` and opens the pull
//! request (a draft with the conflicts committed when the pick conflicts).
//!
//! Idempotent by construction: the branch name is the key. A retry finds the branch it pushed
//! before (it is never pushed over, so commits people added stay), and the pull request on it.
//! Outcomes are reported as `hotfix-lane/backport` on the merge commit and in one comment on
//! the original change, edited as targets finish.

use serde::Serialize;

use super::apply::apply;
use super::{audit_write, lane_state_write, Dispatch, StepError};
use crate::backport::open;
use crate::forge::{Forge, Forges};
use crate::lane::audit::{Audit, AuditAction};
use crate::lane::backport::{self as decide, BackportState, BACKPORT_MARKER};
use crate::lane::effect::Effect;
use crate::lane::event::ItemState;
use crate::lane::job::Subject;
use crate::lane::track::PullFacts;
use crate::store::{Millis, Write};

/// Opens the backport of `change` to `target`, if it is still to be made.
pub(super) async fn run<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    change: &Subject,
    target: &str,
    merger: Option<String>,
    final_attempt: bool,
) -> Result<Vec<Write>, StepError> {
    let (repo, number) = (&change.repo, change.number);
    let forge_name = change.forge.as_str();
    let (Some(mut facts), read) = d.change_state(change.key()).await? else { return Ok(vec![]) };
    let Some(record) = facts.lane.backports.get_mut(target).filter(|b| b.state == BackportState::Pending) else {
        return Ok(vec![]);
    };
    let now = d.clock.now_ms();
    let policy = d.policies.get(forge, &repo.full_name).await?.policy.clone();
    let pull = forge.pull(&repo.full_name, number).await?.ok_or_else(|| {
        let c = forge.conventions();
        StepError::Invalid(format!("{} {} not found", c.change_noun, c.change_ref(number)))
    })?;
    let request = open::Request {
        forge_name,
        repo,
        pull: &pull,
        target,
        policy: &policy,
        merger: merger.as_deref(),
        postmortem: facts.lane.postmortem.as_ref().map(|p| p.to_string()),
        // A transient failure (network, lock) is worth another attempt; the last one is
        // reported, never left looking green.
        final_attempt,
    };
    let (action, detail) = match open::make(forge, &d.mirrors, &request, record, now).await {
        Ok(done) => done,
        Err(open::MakeError::Forge(err)) => return Err(err.into()),
        Err(open::MakeError::Retry(why)) => return Err(StepError::Invalid(why)),
    };
    if record.state == BackportState::Opened || record.state == BackportState::Conflict {
        if let Some(merged_at) = facts.lane.merged_at {
            d.metrics.backport_lead_time("opened", std::time::Duration::from_millis((now - merged_at).max(0) as u64));
        }
    }
    let merge_commit = pull.merge_commit_sha.clone().unwrap_or_default();
    let mut writes = vec![audit_write(now, change, own(action, &merge_commit, detail))];
    publish(d, forge, &repo.full_name, &mut facts, &merge_commit).await?;
    writes.push(lane_state_write(change.key(), &facts, read));
    Ok(writes)
}

/// A change's backport still waiting to merge, wherever the lane knows one.
#[derive(Debug, Clone, Serialize)]
pub struct PendingBackport {
    pub repo: String,
    pub number: u64,
    #[serde(flatten)]
    pub backport: decide::Unmerged,
}

/// Every unmerged backport the lane knows of, on every forge, oldest first.
pub async fn pending(store: &crate::store::Store, now: Millis) -> Result<Vec<PendingBackport>, StepError> {
    let mut all = Vec::new();
    for forge in crate::lane::event::Forge::ALL {
        let mut states = store.lane_states_since(forge.as_str(), 0);
        while let Some(state) = states.next().await? {
            let Some(facts) = super::swept(state) else { continue };
            let Some(repo) = &facts.repo else { continue };
            for backport in decide::unmerged(&facts.lane.backports, now) {
                all.push(PendingBackport { repo: repo.full_name.clone(), number: facts.number, backport });
            }
        }
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.backport.age_ms));
    Ok(all)
}

/// Reports every target's state on the merge commit and in the backport comment. The report
/// goes through what the lane wrote lately: a job attempt that posted it and then failed (on
/// the comment, say) does not post it again on its next attempt.
async fn publish<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    repo: &str,
    facts: &mut PullFacts,
    merge_commit: &str,
) -> Result<(), StepError> {
    let summary = decide::summary_report(&facts.lane.backports, forge.conventions());
    if !merge_commit.is_empty() {
        let effect = Effect::Report { sha: merge_commit.to_string(), report: summary.clone() };
        apply(forge, Some(&d.written), repo, facts.number, effect).await?;
    }
    let known = facts.lane.backport_comment_id;
    let id = forge.upsert_comment(repo, facts.number, known, BACKPORT_MARKER, &summary.details).await?;
    facts.lane.backport_comment_id = Some(id);
    Ok(())
}

/// Backports are hotfix-lane's own doing, on the merge commit (or the backport's head).
fn own(action: AuditAction, sha: &str, detail: String) -> Audit {
    Audit { action, actor: "hotfix-lane".into(), sha: sha.to_string(), detail }
}

/// A backport pull request moved: its check follows the conflicts people resolve; its merge
/// or close ends the original's record for that target.
pub(super) async fn followup<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    change: &Subject,
    target: &str,
    pull: u64,
    head_sha: &str,
    state: ItemState,
) -> Result<Vec<Write>, StepError> {
    let repo = &change.repo;
    let (Some(mut facts), read) = d.change_state(change.key()).await? else { return Ok(vec![]) };
    let Some(record) = facts.lane.backports.get_mut(target).filter(|b| b.pull == Some(pull)) else {
        return Ok(vec![]);
    };
    let now = d.clock.now_ms();
    let reference = forge.conventions().change_ref(pull);
    let mut writes = Vec::new();
    match state {
        ItemState::Open if record.conflicts.is_empty() => return Ok(vec![]),
        ItemState::Open => {
            let mut still_marked = Vec::new();
            for path in open::marked_paths(&record.conflicts) {
                let text = forge.file(&repo.full_name, &path, head_sha).await?;
                if text.is_some_and(|f| decide::has_conflict_markers(&f.text)) {
                    still_marked.push(path);
                }
            }
            let report = decide::head_report(record, head_sha, &still_marked);
            apply(forge, Some(&d.written), &repo.full_name, pull, Effect::Report { sha: head_sha.to_string(), report })
                .await?;
            return Ok(vec![]);
        }
        ItemState::Merged if record.state != BackportState::Merged => {
            record.state = BackportState::Merged;
            record.merged_at = Some(now);
            if let Some(merged_at) = facts.lane.merged_at {
                d.metrics
                    .backport_lead_time("merged", std::time::Duration::from_millis((now - merged_at).max(0) as u64));
            }
            writes.push(audit_write(
                now,
                change,
                own(AuditAction::BackportMerged, head_sha, format!("{reference} to {target}")),
            ));
        }
        ItemState::Closed if !matches!(record.state, BackportState::Merged | BackportState::Closed) => {
            record.state = BackportState::Closed;
            let detail = format!("{reference} to {target} closed without merging");
            writes.push(audit_write(now, change, own(AuditAction::BackportClosed, head_sha, detail)));
        }
        _ => return Ok(vec![]),
    }
    let merge_commit = facts.lane.merge_commit.clone().unwrap_or_default();
    publish(d, forge, &repo.full_name, &mut facts, &merge_commit).await?;
    writes.push(lane_state_write(change.key(), &facts, read));
    Ok(writes)
}
