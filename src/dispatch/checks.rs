//! Check runs and statuses: a smoke check's result only cues a re-evaluation of the changes
//! it is on, in each change's own queue; the merge reads the results back from the forge.

use serde::{Deserialize, Serialize};

use super::observe::job_forge;
use super::{change_key, lane_state_write, Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::event::{CheckConclusion, CommitState, Envelope, ItemState, RepoRef};
use crate::store::{ClaimedJob, NewJob, Write};

/// One check run or commit status as an event reports it.
pub(super) struct CheckSeen<'a> {
    pub name: &'a str,
    pub sha: &'a str,
    /// `false` for results that say nothing new (unfinished runs, unknown states).
    pub finished: bool,
    /// The pull requests the forge says it belongs to; empty means "look them up".
    pub pull_numbers: &'a [u64],
}

/// Re-evaluates one change in its own queue after a check on its head moved.
pub const REFRESH_JOB: &str = "refresh";

#[derive(Serialize, Deserialize)]
struct Refresh {
    repo: RepoRef,
    number: u64,
    installation_id: Option<u64>,
    sha: String,
}

/// A smoke check's result on a commit: each change whose head it is gets a re-evaluation in
/// that change's own queue, behind the change's earlier events (a revoke among them). The
/// event itself is only a hint: the result counts once read back from the forge.
pub(super) async fn on_check<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    seen: CheckSeen<'_>,
) -> Result<Vec<Write>, StepError> {
    let CheckSeen { name, sha, finished, pull_numbers } = seen;
    if !finished {
        return Ok(vec![]);
    }
    // Every status of every CI job arrives here: the name filter needs no fresh read, since the
    // queued refresh revalidates the policy before it decides.
    let loaded = match d.policies.last_read(&repo.full_name) {
        Some(loaded) => loaded,
        None => d.policies.get(forge, &repo.full_name).await?,
    };
    if !loaded.policy.merge.smoke_checks.iter().any(|c| c.name == name) {
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
        let Some(facts) = d.pull_state(forge_name, repo.id, number).await? else { continue };
        if facts.head_sha != sha || facts.state != ItemState::Open {
            continue;
        }
        let refresh =
            Refresh { repo: repo.clone(), number, installation_id: envelope.installation_id, sha: sha.to_string() };
        writes.push(Write::Enqueue(NewJob {
            kind: REFRESH_JOB.into(),
            ordering_key: change_key(forge_name, repo.id, number),
            payload: serde_json::to_value(refresh).expect("refresh serializes"),
            delivery_id: None,
            max_attempts: 8,
            run_at: now,
        }));
    }
    Ok(writes)
}

/// Runs a [`REFRESH_JOB`]: merges the change if the lane now may, and updates its comment.
pub(super) async fn refresh<P: Forges>(d: &Dispatch<P>, forges: &P, job: &ClaimedJob) -> Result<Vec<Write>, StepError> {
    let Refresh { repo, number, installation_id, sha } = serde_json::from_value(job.payload.clone())
        .map_err(|e| StepError::Invalid(format!("refresh payload does not parse: {e}")))?;
    let forge_name = job_forge(job);
    let Some(mut facts) = d.pull_state(forge_name, repo.id, number).await? else { return Ok(vec![]) };
    if facts.head_sha != sha {
        return Ok(vec![]);
    }
    let client = forges.client(installation_id)?;
    let loaded = d.policies.get(&client, &repo.full_name).await?;
    let now = d.clock.now_ms();
    let mut writes =
        super::report::refresh(&client, forge_name, &repo, &mut facts, &loaded.policy, loaded.error.as_ref(), now)
            .await?;
    writes.push(lane_state_write(forge_name, repo.id, &facts));
    Ok(writes)
}

/// Whether a check run's conclusion is worth a look (unfinished and stale runs are not).
pub(super) fn check_finished(conclusion: Option<CheckConclusion>) -> bool {
    conclusion.is_some_and(|c| !matches!(c, CheckConclusion::Unknown | CheckConclusion::Stale))
}

pub(super) fn status_finished(state: CommitState) -> bool {
    !matches!(state, CommitState::Pending | CommitState::Unknown)
}
