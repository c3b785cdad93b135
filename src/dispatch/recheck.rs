//! Events on issues: every change naming the issue as its postmortem is checked again, in
//! that change's own queue.

use serde::{Deserialize, Serialize};

use super::observe::job_forge;
use super::report::{evaluate, publish, state_word};
use super::{change_key, lane_state_write, AuditScope, Dispatch, StepError};
use crate::forge::Forges;
use crate::lane::event::{Envelope, Issue, IssueAction, ItemState, RepoRef};
use crate::lane::postmortem::IssueLookup;
use crate::store::{ClaimedJob, NewJob, Write};

/// Re-evaluates one change's postmortem check after an event on the issue it names.
pub const RECHECK_JOB: &str = "postmortem_recheck";

#[derive(Serialize, Deserialize)]
struct Recheck {
    repo: RepoRef,
    number: u64,
    installation_id: Option<u64>,
    /// What the issue event said, so the recheck needs no API call.
    lookup: Lookup,
}

#[derive(Serialize, Deserialize)]
enum Lookup {
    Found { is_pull_request: bool, labels: Vec<String> },
    NotFound,
}

/// An event on an issue: every change naming it as postmortem gets a recheck job, queued
/// behind that change's own jobs.
pub(super) async fn on_issue<P: Forges>(
    d: &Dispatch<P>,
    envelope: &Envelope,
    repo: &RepoRef,
    action: IssueAction,
    issue: &Issue,
) -> Result<Vec<Write>, StepError> {
    let forge_name = envelope.forge.as_str();
    let lookup = match action {
        IssueAction::Deleted | IssueAction::Transferred => Lookup::NotFound,
        _ => Lookup::Found { is_pull_request: issue.is_pull_request, labels: issue.labels.clone() },
    };
    let changes = d.store.changes_naming(forge_name, &repo.full_name, issue.number as i64).await?;
    let now = d.clock.now_ms();
    Ok(changes
        .into_iter()
        .map(|c| {
            let recheck = Recheck {
                repo: RepoRef { id: c.repo_id as u64, full_name: c.repo, default_branch: String::new() },
                number: c.number as u64,
                installation_id: envelope.installation_id,
                lookup: match &lookup {
                    Lookup::Found { is_pull_request, labels } => {
                        Lookup::Found { is_pull_request: *is_pull_request, labels: labels.clone() }
                    }
                    Lookup::NotFound => Lookup::NotFound,
                },
            };
            Write::Enqueue(NewJob {
                kind: RECHECK_JOB.into(),
                ordering_key: change_key(forge_name, c.repo_id as u64, c.number as u64),
                payload: serde_json::to_value(recheck).expect("recheck serializes"),
                delivery_id: None,
                max_attempts: 8,
                run_at: now,
            })
        })
        .collect())
}

pub(super) async fn recheck<P: Forges>(d: &Dispatch<P>, forges: &P, job: &ClaimedJob) -> Result<Vec<Write>, StepError> {
    let recheck: Recheck = serde_json::from_value(job.payload.clone())
        .map_err(|e| StepError::Invalid(format!("recheck payload does not parse: {e}")))?;
    let client = forges.client(recheck.installation_id)?;
    let forge = &client;
    let forge_name = job_forge(job);
    let Some(mut facts) = d.pull_state(forge_name, recheck.repo.id, recheck.number).await? else {
        return Ok(vec![]);
    };
    if facts.state != ItemState::Open {
        return Ok(vec![]);
    }
    let repo = recheck.repo;
    let loaded = d.policies.get(forge, &repo.full_name).await?;
    let lookup = match recheck.lookup {
        Lookup::Found { is_pull_request, labels } => IssueLookup::Found { is_pull_request, labels },
        Lookup::NotFound => IssueLookup::NotFound,
    };
    let reference = Ok(facts.lane.postmortem.clone());
    let reports = evaluate(&facts, &reference, &repo.full_name, Some(&lookup), &loaded.policy);
    let now = d.clock.now_ms();
    let published =
        publish(forge, forge_name, &repo, &mut facts, &reports, &loaded.policy, loaded.error.as_ref(), now).await?;
    let mut writes: Vec<Write> = published
        .postmortem_changed
        .into_iter()
        .map(|r| {
            AuditScope::own(now, forge_name, &repo.full_name, &facts).entry(
                &format!("postmortem.{}", state_word(&r)),
                format!("{} (the postmortem issue changed)", r.description),
            )
        })
        .collect();
    writes.extend(published.merge);
    writes.push(lane_state_write(forge_name, repo.id, &facts));
    Ok(writes)
}
