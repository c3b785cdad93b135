//! Events on issues: every change naming the issue as its postmortem is checked again, in
//! that change's own queue.

use super::{new_job, Dispatch, StepError};
use crate::forge::Forges;
use crate::lane::event::{Envelope, Issue, IssueAction, ItemState, RepoRef};
use crate::lane::job::{Job, Subject};
use crate::lane::lifecycle::{Detail, LifecycleEvent, Milestone};
use crate::lane::lineage;
use crate::lane::postmortem::IssueLookup;
use crate::store::{LinkedChange, Millis, Write};

/// An event on an issue: every change naming it as postmortem gets a recheck job, queued
/// behind that change's own jobs, carrying what the event says so the recheck needs no call.
/// A postmortem closed (or given the policy's done label) completes its hotfixes' postmortem;
/// the `Fixes:` lines it carries name the changes those hotfixes fix.
pub(super) async fn on_issue<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
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
    let mut writes = Vec::new();
    if !changes.is_empty() {
        let loaded = d.policies.get(forge, &repo.full_name).await?;
        let done_label = loaded.policy.postmortem.done_label.as_deref();
        let done = match action {
            IssueAction::Closed => issue.state == ItemState::Closed,
            _ => done_label.is_some_and(|l| issue.labels.iter().any(|have| have.eq_ignore_ascii_case(l))),
        };
        let conventions = crate::lane::conventions::Conventions::of(envelope.forge);
        let fixes = lineage::fixes(&issue.body, &repo.full_name, conventions);
        for c in &changes {
            if done {
                let events = d.store.lifecycle_of(envelope.forge.as_str(), &c.repo, c.number as u64).await?;
                let merged = events.iter().find(|e| e.milestone == Milestone::Merged);
                let closed = events.iter().any(|e| e.milestone == Milestone::PostmortemClosed);
                if let (Some(m), false) = (merged, closed) {
                    d.metrics.postmortem_completed(std::time::Duration::from_millis((now - m.at).max(0) as u64));
                }
            }
            let milestones = postmortem_milestones(envelope, repo, issue, c, done, &fixes, now);
            writes.extend(milestones.into_iter().map(Write::Lifecycle));
        }
    }
    Ok(writes
        .into_iter()
        .chain(changes.into_iter().map(|c| {
            let change = Subject {
                forge: envelope.forge,
                repo: RepoRef { id: c.repo_id as u64, full_name: c.repo, default_branch: String::new() },
                number: c.number as u64,
                installation_id: envelope.installation_id,
            };
            Write::Enqueue(new_job(&Job::Recheck { change, lookup: lookup.clone() }, now))
        }))
        .collect())
}

/// The milestones an event on hotfix `c`'s postmortem issue passes: completion, and the
/// changes its `Fixes:` lines name.
fn postmortem_milestones(
    envelope: &Envelope,
    repo: &RepoRef,
    issue: &Issue,
    c: &LinkedChange,
    done: bool,
    fixes: &[u64],
    now: Millis,
) -> Vec<LifecycleEvent> {
    let event = |number: u64, milestone, key: String, detail| LifecycleEvent {
        forge: envelope.forge.as_str().into(),
        repo: c.repo.clone(),
        number,
        milestone,
        key,
        at: now,
        actor: envelope.sender.login.clone(),
        detail,
    };
    let number = c.number as u64;
    let mut out = Vec::new();
    if done {
        let detail = Detail {
            reference: Some(format!("{}#{}", repo.full_name, issue.number)),
            incident_started: lineage::incident_started(&issue.body),
            ..Detail::default()
        };
        out.push(event(number, Milestone::PostmortemClosed, String::new(), detail));
    }
    // Only changes of the hotfix's own repository are named (the issue may live elsewhere).
    if c.repo.eq_ignore_ascii_case(&repo.full_name) {
        for fixed in fixes.iter().filter(|n| **n != number) {
            let detail = Detail { by: Some(number), ..Detail::default() };
            out.push(event(*fixed, Milestone::Named, number.to_string(), detail));
        }
    }
    out
}
