//! Events on issues: every change naming the issue as its postmortem is checked again, in
//! that change's own queue.

use super::{new_job, Dispatch, StepError};
use crate::forge::Forges;
use crate::lane::event::{Envelope, Issue, IssueAction, RepoRef};
use crate::lane::job::{Job, Subject};
use crate::lane::postmortem::IssueLookup;
use crate::store::Write;

/// An event on an issue: every change naming it as postmortem gets a recheck job, queued
/// behind that change's own jobs, carrying what the event says so the recheck needs no call.
pub(super) async fn on_issue<P: Forges>(
    d: &Dispatch<P>,
    envelope: &Envelope,
    repo: &RepoRef,
    action: IssueAction,
    issue: &Issue,
) -> Result<Vec<Write>, StepError> {
    let lookup = match action {
        IssueAction::Deleted | IssueAction::Transferred => IssueLookup::NotFound,
        _ => IssueLookup::Found { is_pull_request: issue.is_pull_request, labels: issue.labels.clone() },
    };
    let changes = d.store.changes_naming(envelope.forge.as_str(), &repo.full_name, issue.number as i64).await?;
    let now = d.clock.now_ms();
    Ok(changes
        .into_iter()
        .map(|c| {
            let change = Subject {
                forge: envelope.forge,
                repo: RepoRef { id: c.repo_id as u64, full_name: c.repo, default_branch: String::new() },
                number: c.number as u64,
                installation_id: envelope.installation_id,
            };
            Write::Enqueue(new_job(&Job::Recheck { change, lookup: lookup.clone() }, now))
        })
        .collect())
}
