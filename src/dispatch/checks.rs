//! Check runs and statuses: a smoke check's result only cues a re-evaluation of the changes
//! it is on, in each change's own queue; the merge reads the results back from the forge.

use super::{new_job, Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::event::{CheckConclusion, CheckSuite, CommitState, Envelope, ItemState, RepoRef};
use crate::lane::job::{Job, Subject};
use crate::lane::key::ChangeKey;
use crate::store::Write;

/// One check run or commit status as an event reports it.
pub(super) struct CheckSeen<'a> {
    pub name: &'a str,
    pub sha: &'a str,
    /// `false` for results that say nothing new (unfinished runs, unknown states).
    pub finished: bool,
    /// The pull requests the forge says it belongs to; empty means "look them up".
    pub pull_numbers: &'a [u64],
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
    let loaded = match d.policies.last_read(envelope.forge, &repo.full_name) {
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
    let now = d.clock.now_ms();
    let mut writes = Vec::new();
    for number in numbers {
        let (Some(facts), _) = d.change_state(ChangeKey::new(envelope.forge, repo.id, number)).await? else { continue };
        if facts.head_sha != sha || facts.state != ItemState::Open {
            continue;
        }
        let change =
            Subject { forge: envelope.forge, repo: repo.clone(), number, installation_id: envelope.installation_id };
        writes.push(Write::Enqueue(new_job(&Job::Refresh { change, sha: sha.to_string(), new_run: false }, now)));
    }
    Ok(writes)
}

/// Whether a check run's conclusion is worth a look (unfinished and stale runs are not).
pub(super) fn check_finished(conclusion: Option<CheckConclusion>) -> bool {
    conclusion.is_some_and(|c| !matches!(c, CheckConclusion::Unknown | CheckConclusion::Stale))
}

pub(super) fn status_finished(state: CommitState) -> bool {
    !matches!(state, CommitState::Pending | CommitState::Unknown)
}

/// A CI run (a GitLab pipeline, a GitHub check suite) started or finished on a commit: the
/// changes it belongs to are re-evaluated, and a run that just started gets the lane's reports
/// posted again, since it shows only what is posted into it (on GitLab, "Pipelines must
/// succeed" looks at the head pipeline alone: one started without them would let the merge
/// through).
pub(super) async fn on_run<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    suite: &CheckSuite,
    started: bool,
) -> Result<Vec<Write>, StepError> {
    // The forge naming the change is enough: a merged-results run tests another commit than
    // the change's head. Found by commit, a change counts only if that commit is its head.
    let named = !suite.pull_numbers.is_empty();
    let numbers = match named {
        true => suite.pull_numbers.clone(),
        false => forge.pulls_for_commit(&repo.full_name, &suite.head_sha).await?,
    };
    let now = d.clock.now_ms();
    let mut writes = Vec::new();
    for number in numbers {
        let (Some(facts), _) = d.change_state(ChangeKey::new(envelope.forge, repo.id, number)).await? else { continue };
        if (!named && facts.head_sha != suite.head_sha) || facts.state != ItemState::Open {
            continue;
        }
        let change =
            Subject { forge: envelope.forge, repo: repo.clone(), number, installation_id: envelope.installation_id };
        writes.push(Write::Enqueue(new_job(
            &Job::Refresh { change, sha: facts.head_sha.clone(), new_run: started },
            now,
        )));
    }
    Ok(writes)
}
