//! Runs claimed jobs: a stored delivery or a queued job becomes an input about one change,
//! which goes through the lane ([`change`]) and comes back as writes for the runner to commit
//! with the job. The forge is written to only by [`apply`].

mod apply;
mod backport;
pub(crate) mod change;
mod checks;
mod command;
mod deploy;
mod lifecycle;
mod observe;
mod policies;
mod pull;
mod queue;
mod recheck;
mod remind;
mod responders;
mod revert;
mod written;

use std::sync::Arc;

use crate::backport::mirror::Mirrors;
use crate::clock::Clock;
use crate::forge::{ForgeError, Forges};
use crate::jobs::{JobHandler, JobResult};
use crate::lane::audit::{Audit, AuditAction};
use crate::lane::conventions::Conventions;
use crate::lane::event::{
    CheckAction, CheckStatus, Envelope, Event, Forge, IssueAction, MergeGroupAction, PullRequestAction,
};
use crate::lane::job::{Job, Subject};
use crate::lane::key::ChangeKey;
use crate::lane::step::{Ctx, Input, Observed};
use crate::lane::track::{self, PullFacts};
use crate::metrics::Metrics;
use crate::store::{AuditEntry, ClaimedJob, Millis, NewJob, Store, StoreError, Write, DELIVERY_JOB};

pub use backport::{pending as pending_backports, PendingBackport};
pub use policies::{Loaded, Policies};
pub use responders::Responders;

/// Changes untouched for longer than this are left out of the reconcile sweep.
const RECONCILE_HORIZON_MS: i64 = 30 * 24 * 3600 * 1000;

/// Queues a re-evaluation of every open change of `forge` the lane is watching (in the lane,
/// refused, commented on, or passed by the approval check): webhooks missed while hotfix-lane
/// was down or unreachable are never redelivered. Queues the postmortem reminders that are due
/// too. Returns how many jobs were queued.
pub async fn reconcile(store: &Store, forge: Forge, now: Millis) -> Result<usize, StoreError> {
    let mut queued = 0;
    // Merge groups whose `checks_requested` was missed would wait for the postmortem check
    // until the queue gives up on them: every queue of the repositories the lane knows is
    // looked at too.
    let mut repos = std::collections::BTreeMap::new();
    let recorded = remind::Recorded::load(store, now - RECONCILE_HORIZON_MS, now).await?;
    let mut states = store.lane_states_since(forge.as_str(), now - RECONCILE_HORIZON_MS);
    while let Some(state) = states.next().await? {
        let Some(facts) = swept(state) else { continue };
        let Some(repo) = &facts.repo else { continue };
        repos.insert(repo.id, (repo.clone(), facts.installation_id));
        // A green approval check is watched too: a dismissal whose webhook never came must
        // not leave it green.
        let approved = facts.reported_green(crate::lane::approval::APPROVAL_CONTEXT);
        let watched = facts.lane.membership != crate::lane::membership::Membership::Normal
            || facts.lane.comment_id.is_some()
            || approved;
        if let Some(job) = remind::sweep(&recorded, forge, &facts, now) {
            store.enqueue(&new_job(&job, now), now).await?;
            queued += 1;
        }
        if watched && facts.state == crate::lane::event::ItemState::Open {
            let subject =
                Subject { forge, repo: repo.clone(), number: facts.number, installation_id: facts.installation_id };
            store.enqueue(&new_job(&Job::Reconcile(subject), now), now).await?;
            queued += 1;
        }
    }
    for (repo, installation_id) in repos.into_values() {
        store.enqueue(&new_job(&Job::QueueSweep { forge, repo, installation_id }, now), now).await?;
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
    /// Reports written lately, so retried jobs do not post them again.
    pub written: written::Written,
}

/// Why a job could not finish.
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

/// A job as queued: its stored kind and payload, its queue and its attempts.
pub(crate) fn new_job(job: &Job, run_at: Millis) -> NewJob {
    let (kind, payload) = job.to_stored();
    NewJob {
        kind,
        ordering_key: job.ordering_key(),
        payload,
        delivery_id: None,
        max_attempts: job.max_attempts(),
        run_at,
    }
}

impl<P: Forges> Dispatch<P> {
    pub fn new(store: Store, forge: Option<P>, clock: Arc<dyn Clock>, metrics: Metrics, mirrors: Mirrors) -> Arc<Self> {
        let (policies, responders) = (Policies::default(), Responders::default());
        let written = written::Written::default();
        Arc::new(Dispatch { store, forge, policies, responders, clock, metrics, mirrors, written })
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
        let Some(forges) = &self.forge else {
            return self.track_only(&envelope).await;
        };
        let client = forges.client(envelope.forge, envelope.installation_id)?;
        let forge = &client;
        let subject = |number| Subject {
            forge: envelope.forge,
            repo: repo.clone(),
            number,
            installation_id: envelope.installation_id,
        };
        match &envelope.event {
            Event::PullRequest { action, pull, label, also_added } if *action != PullRequestAction::Unknown => {
                let added = match action {
                    PullRequestAction::Labeled => label.iter().chain(also_added).cloned().collect(),
                    _ => vec![],
                };
                let number = pull.number;
                let mut pull = pull.clone();
                // GitLab's hook names the author only when they caused it; the two-person rule
                // needs them, so a hook that does not is completed from the merge request.
                if pull.author.login.is_empty() {
                    if let Some(read) = crate::forge::Forge::pull(forge, &repo.full_name, pull.number).await? {
                        pull.author = read.author;
                    }
                }
                let input = Input::Change {
                    action: *action,
                    change: Box::new(pull),
                    added,
                    actor: envelope.sender.login.clone(),
                };
                self.decide(forge, &subject(number), input, Observed::default()).await
            }
            Event::Issue { action, issue, .. } if *action != IssueAction::Unknown && !issue.is_pull_request => {
                recheck::on_issue(self, forge, &envelope, repo, *action, issue).await
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
            Event::CheckSuite { action: action @ (CheckAction::Completed | CheckAction::Requested), suite } => {
                // A run is new while queued; once running it already holds what was posted.
                let started = *action == CheckAction::Requested && suite.status == CheckStatus::Queued;
                checks::on_run(self, forge, &envelope, repo, suite, started).await
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
                match command::input(*action, comment) {
                    Some(input) => self.decide(forge, &subject(*number), input, Observed::default()).await,
                    None => self.track_only(&envelope).await,
                }
            }
            // Reviews matter only to the approval check (the step ignores them without it).
            Event::Review { pull, .. } => {
                let input = Input::Reviewed { sha: pull.head_sha.clone() };
                self.decide(forge, &subject(pull.number), input, Observed::default()).await
            }
            Event::MergeGroup { action: MergeGroupAction::ChecksRequested, group } => {
                queue::on_merge_group(self, forge, &envelope, repo, group).await
            }
            Event::Deployment { sha, environment, tier } => {
                deploy::on_deployment(self, forge, &envelope, repo, sha, environment, tier.as_deref()).await
            }
            _ => self.track_only(&envelope).await,
        }
    }

    /// A queued job, decoded once.
    async fn queued(&self, forges: &P, job: &ClaimedJob) -> Result<Vec<Write>, StepError> {
        let queued = Job::from_stored(&job.kind, &job.payload).map_err(StepError::Invalid)?;
        let (forge, installation_id) = queued.acting_as();
        let client = forges.client(forge, installation_id)?;
        match queued {
            Job::Reconcile(subject) => pull::reconcile(self, &client, &subject).await,
            Job::Refresh { change, sha, new_run } => {
                if new_run {
                    // Forgotten here, in the change's own queue, so no earlier job re-remembers them.
                    self.written.forget(&change.repo.full_name, &sha);
                }
                self.decide(&client, &change, Input::ChecksMoved { sha, new_run }, Observed::default()).await
            }
            Job::Recheck { change, lookup } => {
                self.decide(&client, &change, Input::IssueChanged { lookup }, Observed::default()).await
            }
            Job::QueueSweep { forge, repo, installation_id } => {
                queue::queue_sweep(self, &client, forge, &repo, installation_id).await
            }
            Job::Backport { change, target, merger } => {
                backport::run(self, &client, &change, &target, merger, job.attempts >= job.max_attempts).await
            }
            Job::BackportFollowup { change, target, pull, head_sha, state } => {
                backport::followup(self, &client, &change, &target, pull, &head_sha, state).await
            }
            Job::Remind { change, reminder } => remind::run(self, &client, &change, reminder).await,
            Job::Revert { change, by } => {
                revert::run(self, &client, &change, &by, job.attempts >= job.max_attempts).await
            }
        }
    }

    /// Runs `input` about `subject`'s change through the lane, on the policy on its default
    /// branch now, and hands back the job's writes.
    async fn decide(
        &self,
        forge: &P::Client,
        subject: &Subject,
        input: Input,
        seed: Observed,
    ) -> Result<Vec<Write>, StepError> {
        let (prior, read) = self.change_state(subject.key()).await?;
        let loaded = self.policies.get(forge, &subject.repo.full_name).await?;
        let ctx = Ctx {
            repo: &subject.repo,
            installation_id: subject.installation_id,
            policy: &loaded.policy,
            policy_error: loaded.error.as_ref(),
            conventions: Conventions::of(subject.forge),
            pinned_reports: crate::forge::Forge::pinned_reports(forge),
            now: self.clock.now_ms(),
        };
        let change = change::Change {
            forge,
            ctx,
            number: subject.number,
            loaded: &loaded,
            responders: Some(&self.responders),
            written: Some(&self.written),
            applies: change::everything,
        };
        let shown = match &input {
            Input::Change { change, .. } | Input::Swept { change } => Some((**change).clone()),
            _ => None,
        };
        let decided = change.run(prior.clone(), input, seed).await?;
        let facts = decided.facts.as_ref();
        let now = self.clock.now_ms();
        let passed =
            lifecycle::milestones(self, forge, subject, prior.as_ref(), facts, shown.as_ref(), &loaded.policy, now)
                .await;
        let mut writes = self.record(subject, prior.as_ref(), read, decided);
        writes.extend(passed);
        Ok(writes)
    }

    /// The job's writes for what the lane decided: audit entries, queued jobs, and the facts
    /// (with the version they were decided on) when they changed.
    fn record(
        &self,
        subject: &Subject,
        prior: Option<&PullFacts>,
        read: Option<i64>,
        decided: change::Decided,
    ) -> Vec<Write> {
        let now = self.clock.now_ms();
        let labeled_at = decided.facts.as_ref().and_then(|f| f.lane.labeler.as_ref()).map(|l| l.at);
        observe_decisions(&decided.audit, labeled_at, now, &self.metrics);
        let forge = subject.forge.as_str();
        let mut writes: Vec<Write> = decided.audit.into_iter().map(|a| audit_write(now, subject, a)).collect();
        writes.extend(decided.jobs.iter().map(|(job, at)| Write::Enqueue(new_job(job, *at))));
        if let Some(facts) = decided.facts.filter(|f| Some(f) != prior) {
            let issue = facts.lane.membership.in_lane().then(|| facts.lane.postmortem.clone()).flatten();
            writes.push(Write::PostmortemLink {
                forge: forge.into(),
                repo_id: subject.repo.id as i64,
                repo: subject.repo.full_name.clone(),
                number: facts.number as i64,
                issue: issue.map(|i| (i.repo, i.number as i64)),
            });
            writes.push(lane_state_write(subject.key(), &facts, read));
        }
        writes
    }

    /// Keeps the per-change facts up to date for events that need no decision.
    async fn track_only(&self, envelope: &Envelope) -> Result<Vec<Write>, StepError> {
        let (Some(repo), Some((number, _))) = (&envelope.repo, track::subject(envelope)) else {
            return Ok(vec![]);
        };
        let key = ChangeKey::new(envelope.forge, repo.id, number);
        let (prior, read) = self.change_state(key).await?;
        Ok(track::observe(prior, envelope).map(|facts| lane_state_write(key, &facts, read)).into_iter().collect())
    }

    /// A change's stored facts and their version. Facts that do not read fail the job loudly —
    /// read as "never seen", they would forget a grant's lapse or a merge.
    async fn change_state(&self, key: ChangeKey) -> Result<(Option<PullFacts>, Option<i64>), StepError> {
        let stored = self.store.versioned_lane_state(key.forge.as_str(), key.repo_id as i64, key.number as i64).await?;
        let Some((state, version)) = stored else { return Ok((None, None)) };
        let facts = serde_json::from_value::<PullFacts>(state).map_err(|e| {
            tracing::error!(%key, error = %e, "stored lane state does not read");
            StepError::Invalid(format!("the stored lane state of #{} does not read: {e}", key.number))
        })?;
        Ok((Some(facts), Some(version)))
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
fn observe_decisions(audit: &[Audit], labeled_at: Option<Millis>, now: Millis, metrics: &Metrics) {
    let since_label = || labeled_at.map(|at| std::time::Duration::from_millis(now.saturating_sub(at).max(0) as u64));
    for entry in audit {
        if let Some(outcome) = entry.action.grant_outcome() {
            metrics.grant(outcome);
        }
        match entry.action {
            AuditAction::GrantCreated => since_label().into_iter().for_each(|d| metrics.authorization_latency(d)),
            AuditAction::MergeMerged => since_label().into_iter().for_each(|d| metrics.time_to_merge(d)),
            _ => {}
        }
    }
}

fn audit_write(at: Millis, subject: &Subject, audit: Audit) -> Write {
    Write::Audit(AuditEntry {
        at,
        forge: subject.forge.as_str().into(),
        repo: subject.repo.full_name.clone(),
        number: Some(subject.number as i64),
        actor: audit.actor,
        action: audit.action.as_str().into(),
        sha: Some(audit.sha),
        detail: audit.detail,
    })
}

fn lane_state_write(key: ChangeKey, facts: &PullFacts, read: Option<i64>) -> Write {
    Write::LaneState {
        forge: key.forge.as_str().to_string(),
        repo_id: key.repo_id as i64,
        number: key.number as i64,
        state: serde_json::to_value(facts).expect("facts serialize"),
        read,
    }
}

impl<P: Forges> JobHandler for Dispatch<P> {
    async fn run(&self, job: &ClaimedJob) -> JobResult {
        let result = match (job.kind.as_str(), &self.forge) {
            (DELIVERY_JOB, _) => self.delivery(job).await,
            (_, Some(forges)) => self.queued(forges, job).await,
            // Without forge credentials nothing was queued but deliveries.
            (_, None) => Ok(vec![]),
        };
        match result {
            Ok(writes) => {
                log_decisions(job, &writes);
                JobResult::Done(writes)
            }
            Err(err) => err.into(),
        }
    }
}

/// One line per job saying what the lane decided and why, so an operator can follow a
/// delivery to its outcome (the audit log has the same, per decision). Debug-formatted: a
/// reason can quote text from a change, and must not start a log line of its own.
fn log_decisions(job: &ClaimedJob, writes: &[Write]) {
    let decided: Vec<String> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Audit(e) => Some(format!("{} ({})", e.action, e.detail)),
            _ => None,
        })
        .collect();
    let delivery = job.delivery_id.map(|id| id.to_string()).unwrap_or_default();
    if decided.is_empty() {
        tracing::debug!(kind = %job.kind, %delivery, change = %job.ordering_key, "nothing to decide");
    } else {
        tracing::info!(kind = %job.kind, %delivery, change = %job.ordering_key, decided = ?decided, "lane decided");
    }
}
