//! Backport jobs: once a hotfix merges, one job per target picks the landed commits on the
//! repository's warm mirror, pushes `hotfix-lane/backport/<pr>-to-<target>` and opens the pull
//! request (a draft with the conflicts committed when the pick conflicts).
//!
//! Idempotent by construction: the branch name is the key. A retry finds the branch it pushed
//! before (it is never pushed over, so commits people added stay), and the pull request on it.
//! Outcomes are reported as `hotfix-lane/backport` on the merge commit and in one comment on
//! the original change, edited as targets finish.

use serde::{Deserialize, Serialize};

use super::{lane_state_write, AuditScope, Dispatch, StepError};
use crate::backport::open;
use crate::forge::{Forge, Forges};
use crate::lane::backport::{self as decide, Backport, BackportState};
use crate::lane::event::{ItemState, RepoRef};
use crate::lane::policy::Policy;
use crate::lane::track::PullFacts;
use crate::store::{ClaimedJob, Millis, NewJob, Write};

pub const BACKPORT_JOB: &str = "backport";
/// A backport pull request changed (pushed to, merged, closed): folded into the original
/// change's record, in that change's job order.
pub const FOLLOWUP_JOB: &str = "backport_followup";

#[derive(Serialize, Deserialize)]
struct Job {
    repo: RepoRef,
    number: u64,
    target: String,
    installation_id: Option<u64>,
    /// Who merged the original change: asked to review the backport.
    merger: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Followup {
    pub repo: RepoRef,
    pub number: u64,
    pub target: String,
    pub installation_id: Option<u64>,
    pub pull: u64,
    pub head_sha: String,
    pub state: ItemState,
}

fn pull_key(forge: &str, repo: &RepoRef, number: u64) -> String {
    format!("{forge}:{}:pr:{number}", repo.id)
}

/// Records a pending backport for each new target and queues its job.
pub(super) fn start(
    forge: &str,
    repo: &RepoRef,
    facts: &mut PullFacts,
    targets: Vec<String>,
    policy: &Policy,
    merger: Option<&str>,
    now: Millis,
) -> Vec<Write> {
    let mut writes = Vec::new();
    for target in targets {
        if facts.lane.backports.contains_key(&target) {
            continue;
        }
        let pending = Backport::pending(now, policy);
        facts.lane.backports.insert(target.clone(), pending);
        let job = Job {
            repo: repo.clone(),
            number: facts.number,
            target,
            installation_id: facts.installation_id,
            merger: merger.map(str::to_string),
        };
        writes.push(Write::Enqueue(NewJob {
            kind: BACKPORT_JOB.into(),
            ordering_key: pull_key(forge, repo, facts.number),
            payload: serde_json::to_value(job).expect("serializes"),
            delivery_id: None,
            max_attempts: 5,
            run_at: now,
        }));
    }
    writes
}

pub(super) fn followup_job(forge: &str, followup: &Followup, now: Millis) -> Write {
    Write::Enqueue(NewJob {
        kind: FOLLOWUP_JOB.into(),
        ordering_key: pull_key(forge, &followup.repo, followup.number),
        payload: serde_json::to_value(followup).expect("serializes"),
        delivery_id: None,
        max_attempts: 5,
        run_at: now,
    })
}

pub(super) async fn run<P: Forges>(d: &Dispatch<P>, forges: &P, job: &ClaimedJob) -> Result<Vec<Write>, StepError> {
    let Job { repo, number, target, installation_id, merger } = serde_json::from_value(job.payload.clone())
        .map_err(|e| StepError::Invalid(format!("backport payload does not parse: {e}")))?;
    let forge_name = super::observe::job_forge(job);
    let Some(mut facts) = d.pull_state(forge_name, repo.id, number).await? else { return Ok(vec![]) };
    let Some(record) = facts.lane.backports.get_mut(&target).filter(|b| b.state == BackportState::Pending) else {
        return Ok(vec![]);
    };
    let client = forges.client(installation_id)?;
    let forge = &client;
    let now = d.clock.now_ms();
    let policy = d.policies.get(forge, &repo.full_name).await?.policy.clone();
    let pull = forge
        .pull(&repo.full_name, number)
        .await?
        .ok_or_else(|| StepError::Invalid(format!("pull request #{number} not found")))?;
    let request = open::Request {
        forge_name,
        repo: &repo,
        pull: &pull,
        target: &target,
        policy: &policy,
        merger: merger.as_deref(),
        postmortem: facts.lane.postmortem.as_ref().map(|p| p.to_string()),
        // A transient failure (network, lock) is worth another attempt; the last one is
        // reported, never left looking green.
        final_attempt: job.attempts >= job.max_attempts,
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
    let scope = own_scope(now, forge_name, &repo.full_name, number, &merge_commit);
    let mut writes = vec![scope.entry(action, detail)];
    publish(forge, &repo, &mut facts, &merge_commit).await?;
    writes.push(lane_state_write(forge_name, repo.id, &facts));
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

/// Every unmerged backport of `forge`'s changes, oldest first.
pub async fn pending(store: &crate::store::Store, forge: &str, now: Millis) -> Result<Vec<PendingBackport>, StepError> {
    let mut all = Vec::new();
    let mut states = store.lane_states_since(forge, 0);
    while let Some(state) = states.next().await? {
        let Some(facts) = super::swept(state) else { continue };
        let Some(repo) = &facts.repo else { continue };
        for backport in decide::unmerged(&facts.lane.backports, now) {
            all.push(PendingBackport { repo: repo.full_name.clone(), number: facts.number, backport });
        }
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.backport.age_ms));
    Ok(all)
}

/// Reports every target's state on the merge commit and in the backport comment.
async fn publish<F: Forge>(
    forge: &F,
    repo: &RepoRef,
    facts: &mut PullFacts,
    merge_commit: &str,
) -> Result<(), StepError> {
    let known = facts.lane.backport_comment_id;
    let id = open::publish(forge, &repo.full_name, facts.number, &facts.lane.backports, known, merge_commit).await?;
    facts.lane.backport_comment_id = Some(id);
    Ok(())
}

/// Backports are hotfix-lane's own doing, on the merge commit (or the backport's head).
fn own_scope<'a>(at: Millis, forge: &'a str, repo: &'a str, number: u64, sha: &'a str) -> AuditScope<'a> {
    AuditScope { at, forge, repo, number, actor: "hotfix-lane", sha }
}

/// A backport pull request moved: its check follows the conflicts people resolve; its merge
/// or close ends the original's record for that target.
pub(super) async fn followup<P: Forges>(
    d: &Dispatch<P>,
    forges: &P,
    job: &ClaimedJob,
) -> Result<Vec<Write>, StepError> {
    let Followup { repo, number, target, installation_id, pull, head_sha, state } =
        serde_json::from_value(job.payload.clone())
            .map_err(|e| StepError::Invalid(format!("backport follow-up payload does not parse: {e}")))?;
    let forge_name = super::observe::job_forge(job);
    let Some(mut facts) = d.pull_state(forge_name, repo.id, number).await? else { return Ok(vec![]) };
    let Some(record) = facts.lane.backports.get_mut(&target).filter(|b| b.pull == Some(pull)) else {
        return Ok(vec![]);
    };
    let client = forges.client(installation_id)?;
    let forge = &client;
    let now = d.clock.now_ms();
    let scope = own_scope(now, forge_name, &repo.full_name, number, &head_sha);
    let mut writes = Vec::new();
    match state {
        ItemState::Open if record.conflicts.is_empty() => return Ok(vec![]),
        ItemState::Open => {
            let mut still_marked = Vec::new();
            for path in open::marked_paths(&record.conflicts) {
                let text = forge.file(&repo.full_name, &path, &head_sha).await?;
                if text.is_some_and(|f| decide::has_conflict_markers(&f.text)) {
                    still_marked.push(path);
                }
            }
            let report = decide::head_report(record, &head_sha, &still_marked);
            forge.report(&repo.full_name, &head_sha, &report).await?;
            return Ok(vec![]);
        }
        ItemState::Merged if record.state != BackportState::Merged => {
            record.state = BackportState::Merged;
            record.merged_at = Some(now);
            if let Some(merged_at) = facts.lane.merged_at {
                d.metrics
                    .backport_lead_time("merged", std::time::Duration::from_millis((now - merged_at).max(0) as u64));
            }
            writes.push(scope.entry("backport.merged", format!("#{pull} to {target}")));
        }
        ItemState::Closed if !matches!(record.state, BackportState::Merged | BackportState::Closed) => {
            record.state = BackportState::Closed;
            writes.push(scope.entry("backport.closed", format!("#{pull} to {target} closed without merging")));
        }
        _ => return Ok(vec![]),
    }
    let merge_commit = facts.lane.merge_commit.clone().unwrap_or_default();
    publish(forge, &repo, &mut facts, &merge_commit).await?;
    writes.push(lane_state_write(forge_name, repo.id, &facts));
    Ok(writes)
}
