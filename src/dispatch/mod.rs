//! Runs claimed jobs: a stored delivery goes through the lane; what the lane decides is
//! reported to the forge, and comes back as writes for the runner to commit with the job.

mod backport;
mod checks;
mod command;
mod merge;
mod observe;
mod policies;
mod postmortem_issue;
mod pull;
mod queue;
mod recheck;
mod report;
mod responders;

use std::sync::Arc;

use crate::backport::mirror::Mirrors;
use crate::clock::Clock;
use crate::forge::{ForgeError, Forges};
use crate::jobs::{JobHandler, JobResult};
use crate::lane::event::{CheckAction, Envelope, Event, IssueAction, MergeGroupAction, PullRequestAction};
use crate::lane::track::{self, PullFacts};
use crate::metrics::Metrics;
use crate::store::{ClaimedJob, Store, StoreError, Write, DELIVERY_JOB};

pub use backport::{pending as pending_backports, PendingBackport};
pub(crate) use merge::{authorization, try_merge};
pub(crate) use observe::{head_author, look_up, recorded_labeler};
pub use policies::{Loaded, Policies, GITHUB_POLICY_PATH};
pub use pull::RECONCILE_JOB;
pub use queue::{queue_pull_number, QUEUE_SWEEP_JOB};
pub use recheck::RECHECK_JOB;
pub use responders::Responders;

/// Changes untouched for longer than this are left out of the reconcile sweep.
const RECONCILE_HORIZON_MS: i64 = 30 * 24 * 3600 * 1000;

/// Queues a re-evaluation of every open change the lane is watching (in the lane, refused, or
/// commented on): webhooks missed while hotfix-lane was down or unreachable are never
/// redelivered by GitHub. Returns how many were queued.
pub async fn reconcile(store: &Store, forge: &str, now: crate::store::Millis) -> Result<usize, StoreError> {
    let mut queued = 0;
    // Merge groups whose `checks_requested` was missed would wait for the postmortem check
    // until the queue gives up on them: every queue of the repositories the lane knows is
    // looked at too.
    let mut repos = std::collections::BTreeMap::new();
    let mut states = store.lane_states_since(forge, now - RECONCILE_HORIZON_MS);
    while let Some(state) = states.next().await? {
        let Some(facts) = swept(state) else { continue };
        let Some(repo) = &facts.repo else { continue };
        repos.insert(repo.id, (repo.clone(), facts.installation_id));
        let watched =
            facts.lane.membership != crate::lane::membership::Membership::Normal || facts.lane.comment_id.is_some();
        if watched && facts.state == crate::lane::event::ItemState::Open {
            store.enqueue(&pull::reconcile_job(forge, &facts, repo, now), now).await?;
            queued += 1;
        }
    }
    for (repo, installation_id) in repos.into_values() {
        store.enqueue(&queue::queue_sweep_job(forge, &repo, installation_id, now), now).await?;
        queued += 1;
    }
    Ok(queued)
}

pub struct Dispatch<P> {
    pub store: Store,
    /// `None` when no forge credentials are configured: events are tracked, nothing reported.
    pub forge: Option<P>,
    pub policies: Policies,
    /// Refusals remembered, so refused commands cost the rate limit next to nothing.
    pub responders: Responders,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// Warm repositories for backports.
    pub mirrors: Mirrors,
}

/// Why a step of a job could not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    /// Worth another attempt soon, without counting as a failure.
    #[error("{0}")]
    Retry(String),
}

impl From<StepError> for JobResult {
    fn from(err: StepError) -> JobResult {
        match err {
            StepError::Forge(ForgeError::RateLimited(after)) => {
                JobResult::RetryAfter { after, reason: "rate limited by the forge".into() }
            }
            StepError::Retry(reason) => JobResult::RetryAfter { after: std::time::Duration::from_secs(5), reason },
            other => JobResult::Failed(other.to_string()),
        }
    }
}

impl<P: Forges> Dispatch<P> {
    pub fn new(store: Store, forge: Option<P>, clock: Arc<dyn Clock>, metrics: Metrics, mirrors: Mirrors) -> Arc<Self> {
        let (policies, responders) = (Policies::default(), Responders::default());
        Arc::new(Dispatch { store, forge, policies, responders, clock, metrics, mirrors })
    }

    async fn delivery(&self, job: &ClaimedJob) -> Result<Vec<Write>, StepError> {
        let id = job.delivery_id.ok_or_else(|| StepError::Invalid("delivery job without a delivery".into()))?;
        let stored = self
            .store
            .delivery_envelope(id)
            .await?
            .ok_or_else(|| StepError::Invalid(format!("delivery {id} is not stored")))?;
        let envelope: Envelope = serde_json::from_str(&stored)
            .map_err(|e| StepError::Invalid(format!("stored delivery {id} does not parse: {e}")))?;
        let Some(repo) = &envelope.repo else {
            return Ok(vec![]);
        };
        let forge_name = envelope.forge.as_str();
        let Some(forges) = &self.forge else {
            return self.track_only(&envelope).await;
        };
        let client = forges.client(envelope.installation_id)?;
        let forge = &client;
        match &envelope.event {
            Event::PullRequest { action, pull, label } if *action != PullRequestAction::Unknown => {
                let prior = self.pull_state(forge_name, repo.id, pull.number).await?;
                pull::on_pull(self, forge, &envelope, repo, *action, pull, label.as_deref(), prior).await
            }
            Event::Issue { action, issue, .. } if *action != IssueAction::Unknown && !issue.is_pull_request => {
                recheck::on_issue(self, &envelope, repo, *action, issue).await
            }
            Event::CheckRun { action: CheckAction::Completed, check } => {
                let seen = checks::CheckSeen {
                    name: &check.name,
                    sha: &check.head_sha,
                    finished: checks::check_finished(check.conclusion),
                    pull_numbers: &check.pull_numbers,
                };
                checks::on_check(self, forge, &envelope, repo, seen).await
            }
            Event::Status { sha, context, state } => {
                let seen = checks::CheckSeen {
                    name: context,
                    sha,
                    finished: checks::status_finished(*state),
                    pull_numbers: &[],
                };
                checks::on_check(self, forge, &envelope, repo, seen).await
            }
            Event::Comment { action, number, on_pull_request: true, comment } => {
                command::on_comment(self, forge, &envelope, repo, *action, *number, comment).await
            }
            Event::MergeGroup { action: MergeGroupAction::ChecksRequested, group } => {
                queue::on_merge_group(self, forge, &envelope, repo, group).await
            }
            _ => self.track_only(&envelope).await,
        }
    }

    /// Keeps the per-change facts up to date for events that need no decision.
    async fn track_only(&self, envelope: &Envelope) -> Result<Vec<Write>, StepError> {
        let (Some(repo), Some((number, _))) = (&envelope.repo, track::subject(envelope)) else {
            return Ok(vec![]);
        };
        let prior = self.pull_state(envelope.forge.as_str(), repo.id, number).await?;
        Ok(track::observe(prior, envelope)
            .map(|facts| lane_state_write(envelope.forge.as_str(), repo.id, &facts))
            .into_iter()
            .collect())
    }

    /// A change's stored facts. Facts that do not read fail the job loudly — read as "never
    /// seen", they would forget a grant's lapse or a merge.
    async fn pull_state(&self, forge: &str, repo_id: u64, number: u64) -> Result<Option<PullFacts>, StepError> {
        let Some(state) = self.store.lane_state(forge, repo_id as i64, number as i64).await? else {
            return Ok(None);
        };
        serde_json::from_value::<PullFacts>(state).map(Some).map_err(|e| {
            tracing::error!(forge, repo_id, number, error = %e, "stored lane state does not read");
            StepError::Invalid(format!("the stored lane state of #{number} does not read: {e}"))
        })
    }
}

/// A change's stored facts as a sweep reads them: one that does not read is logged and left
/// out, so that it stops its own change's jobs, not the sweep of every other change.
fn swept(state: serde_json::Value) -> Option<PullFacts> {
    serde_json::from_value::<PullFacts>(state)
        .map_err(|e| tracing::error!(error = %e, "a stored lane state does not read; the sweep leaves it out"))
        .ok()
}

/// Feeds the hotfix figures teams track from a job's decisions: grants by outcome, the time
/// from the lane label to the grant, and from the label to the merge.
fn observe_decisions(writes: &[Write], metrics: &Metrics) {
    let since_label = |number: Option<i64>, at: crate::store::Millis| {
        let labeled_at = writes.iter().find_map(|w| match w {
            Write::LaneState { number: n, state, .. } if Some(*n) == number => state["lane"]["labeler"]["at"].as_i64(),
            _ => None,
        })?;
        Some(std::time::Duration::from_millis(at.saturating_sub(labeled_at).max(0) as u64))
    };
    for write in writes {
        let Write::Audit(entry) = write else { continue };
        if let Some(outcome) = entry.action.strip_prefix("grant.") {
            metrics.grant(outcome);
            if outcome == "created" {
                since_label(entry.number, entry.at).into_iter().for_each(|d| metrics.authorization_latency(d));
            }
        }
        if entry.action == "merge.merged" {
            since_label(entry.number, entry.at).into_iter().for_each(|d| metrics.time_to_merge(d));
        }
    }
}

/// Who did what to which change at which commit: the part of an audit entry that stays the
/// same for every decision a job makes about one change.
struct AuditScope<'a> {
    at: crate::store::Millis,
    forge: &'a str,
    repo: &'a str,
    number: u64,
    actor: &'a str,
    sha: &'a str,
}

impl<'a> AuditScope<'a> {
    /// For what hotfix-lane does on its own (merges, sweeps) to a change's head commit.
    fn own(at: crate::store::Millis, forge: &'a str, repo: &'a str, facts: &'a PullFacts) -> AuditScope<'a> {
        AuditScope { at, forge, repo, number: facts.number, actor: "hotfix-lane", sha: &facts.head_sha }
    }

    fn entry(&self, action: &str, detail: String) -> Write {
        Write::Audit(crate::store::AuditEntry {
            at: self.at,
            forge: self.forge.into(),
            repo: self.repo.into(),
            number: Some(self.number as i64),
            actor: self.actor.into(),
            action: action.into(),
            sha: Some(self.sha.into()),
            detail,
        })
    }
}

/// The ordering key of a change's own queue: every job about one change runs there, in order.
pub(crate) fn change_key(forge: &str, repo_id: u64, number: u64) -> String {
    format!("{forge}:{repo_id}:pr:{number}")
}

fn lane_state_write(forge: &str, repo_id: u64, facts: &PullFacts) -> Write {
    Write::LaneState {
        forge: forge.to_string(),
        repo_id: repo_id as i64,
        number: facts.number as i64,
        state: serde_json::to_value(facts).expect("facts serialize"),
    }
}

impl<P: Forges> JobHandler for Dispatch<P> {
    async fn run(&self, job: &ClaimedJob) -> JobResult {
        let result = match job.kind.as_str() {
            DELIVERY_JOB => self.delivery(job).await,
            RECHECK_JOB => match &self.forge {
                Some(forge) => recheck::recheck(self, forge, job).await,
                None => Ok(vec![]),
            },
            RECONCILE_JOB => match &self.forge {
                Some(forge) => pull::reconcile(self, forge, job).await,
                None => Ok(vec![]),
            },
            QUEUE_SWEEP_JOB => match &self.forge {
                Some(forge) => queue::queue_sweep(self, forge, job).await,
                None => Ok(vec![]),
            },
            checks::REFRESH_JOB => match &self.forge {
                Some(forge) => checks::refresh(self, forge, job).await,
                None => Ok(vec![]),
            },
            backport::BACKPORT_JOB => match &self.forge {
                Some(forge) => backport::run(self, forge, job).await,
                None => Ok(vec![]),
            },
            backport::FOLLOWUP_JOB => match &self.forge {
                Some(forge) => backport::followup(self, forge, job).await,
                None => Ok(vec![]),
            },
            other => Err(StepError::Invalid(format!("no handler for job kind `{other}`"))),
        };
        match result {
            Ok(writes) => {
                observe_decisions(&writes, &self.metrics);
                JobResult::Done(writes)
            }
            Err(err) => err.into(),
        }
    }
}
