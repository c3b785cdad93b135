//! The milestones a job's decision passed ([`lifecycle::transitions`]), as writes committed with
//! the job. A merge is completed with what the change says it reverts and fixes and, for a
//! hotfix, the files it touched: read from the forge once, when the merge is first recorded.

use super::{Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::event::PullRequest;
use crate::lane::job::Subject;
use crate::lane::lifecycle::{self, Detail, LifecycleEvent, Milestone, Passed};
use crate::lane::lineage::{self, Reverted};
use crate::lane::policy::Policy;
use crate::lane::track::PullFacts;
use crate::store::{Millis, Write};

/// What `subject`'s change passed between `prior` and `facts`. `change`: the change as the
/// job's event showed it, if it did. A merge whose extra reads fail is recorded without what
/// they would add (a warning says so): the merge itself is never lost to them.
#[allow(clippy::too_many_arguments)]
pub(super) async fn milestones<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    subject: &Subject,
    prior: Option<&PullFacts>,
    facts: Option<&PullFacts>,
    change: Option<&PullRequest>,
    policy: &Policy,
    now: Millis,
) -> Vec<Write> {
    let Some(facts) = facts.or(prior) else { return vec![] };
    let mut out = Vec::new();
    for mut passed in lifecycle::transitions(prior, facts, policy, now) {
        if passed.milestone == Milestone::Merged {
            match merged_links(d, forge, subject, facts, change, &mut passed).await {
                Ok(links) => out.extend(links),
                Err(e) => tracing::warn!(repo = %subject.repo.full_name, number = subject.number, error = %e,
                    "the merge is recorded without what it reverts, fixes or touches: the forge did not answer"),
            }
        }
        observe(d, subject, facts, &passed);
        out.push(event(subject, passed));
    }
    out.into_iter().map(Write::Lifecycle).collect()
}

/// Feeds the live histograms and counters the dashboard reads.
fn observe<P: Forges>(d: &Dispatch<P>, subject: &Subject, facts: &PullFacts, passed: &Passed) {
    let forge = subject.forge.as_str();
    let since_entry = || match facts.lane.membership {
        crate::lane::membership::Membership::Hotfix { since, .. } => {
            Some(std::time::Duration::from_millis((passed.at - since).max(0) as u64))
        }
        _ => None,
    };
    match passed.milestone {
        Milestone::SmokeGreen => since_entry().into_iter().for_each(|d_| d.metrics.time_to_patch(d_)),
        Milestone::Merged => {
            d.metrics.change_merged(forge, passed.detail.hotfix);
            if passed.detail.hotfix {
                d.metrics.hotfix_outcome(forge, "merged");
            }
        }
        Milestone::Abandoned => d.metrics.hotfix_outcome(forge, "abandoned"),
        _ => {}
    }
}

/// Fills in what the merged change reverts and fixes (and its files, for a hotfix), and
/// returns the milestones that puts on the changes it names.
async fn merged_links<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    subject: &Subject,
    facts: &PullFacts,
    change: Option<&PullRequest>,
    passed: &mut Passed,
) -> Result<Vec<LifecycleEvent>, StepError> {
    let repo = subject.repo.full_name.as_str();
    let read;
    let change = match change {
        Some(c) => c,
        None => match forge.pull(repo, subject.number).await? {
            Some(c) => {
                read = c;
                &read
            }
            None => return Ok(vec![]),
        },
    };
    let conventions = forge.conventions();
    let reverts = match lineage::reverted(&change.body, &change.head_ref, repo, conventions) {
        Some(Reverted::Change(n)) => Some(n),
        Some(Reverted::Commit(sha)) => d.store.merged_as(subject.forge.as_str(), repo, &sha).await?,
        None => None,
    }
    .filter(|n| *n != subject.number);
    passed.detail.reverts = reverts;
    if passed.detail.hotfix {
        passed.detail.fixes =
            lineage::fixes(&change.body, repo, conventions).into_iter().filter(|n| *n != facts.number).collect();
        passed.detail.files = forge.changed_files(repo, subject.number).await?;
    }
    if passed.detail.sha.is_none() {
        passed.detail.sha = change.merge_commit_sha.clone();
    }
    let named = |milestone, number| LifecycleEvent {
        forge: subject.forge.as_str().into(),
        repo: repo.into(),
        number,
        milestone,
        key: subject.number.to_string(),
        at: passed.at,
        actor: passed.actor.clone(),
        detail: Detail { by: Some(subject.number), ..Detail::default() },
    };
    if let Some(n) = reverts {
        let target = d.store.lifecycle_of(subject.forge.as_str(), repo, n).await?;
        if target.iter().any(|e| e.milestone == Milestone::Merged && e.detail.hotfix) {
            d.metrics.hotfix_reverted(subject.forge.as_str());
        }
    }
    let mut out: Vec<LifecycleEvent> = reverts.map(|n| named(Milestone::Reverted, n)).into_iter().collect();
    out.extend(passed.detail.fixes.iter().map(|n| named(Milestone::Named, *n)));
    Ok(out)
}

pub(super) fn event(subject: &Subject, passed: Passed) -> LifecycleEvent {
    LifecycleEvent {
        forge: subject.forge.as_str().into(),
        repo: subject.repo.full_name.clone(),
        number: subject.number,
        milestone: passed.milestone,
        key: passed.key,
        at: passed.at,
        actor: passed.actor,
        detail: passed.detail,
    }
}
