//! Mode `merge`: a pre-authorized merge without the server. A responder's authorization covers
//! the head commit it was given for; the job waits (up to the `wait` setting, never past the
//! grant) for the postmortem and smoke checks to pass on that commit and merges it pinned to it,
//! or puts it at the front of the merge queue, by the server's rules and messages. Where the
//! authorization comes from is the forge's: the event that started a GitHub job, the merge
//! request's notes and label events on GitLab.
//!
//! Limits, against the server: the grant lives only as long as this job (a push means
//! authorizing again), the trail is the job's log and summary rather than the audit log, and the
//! job holds a runner while it waits.

use std::process::ExitCode;
use std::time::Duration;

use super::runner::Output;
use super::{Decision, Job, Settings};
use crate::clock::{Clock, SystemClock};
use crate::dispatch::{Loaded, StepError};
use crate::forge::Forge;
use crate::lane::audit::Audit;
use crate::lane::effect::Effect;
use crate::lane::event::PullRequest;
use crate::lane::grant::{self, Blocker};
use crate::lane::incident::format_utc;
use crate::lane::membership::who_can_authorize;
use crate::lane::step::{authorization as authorized_by, Input};
use crate::lane::track;
use crate::store::Millis;

/// A person's authorization of a change, as the forge recorded it.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub by: String,
    pub duration: Option<Duration>,
    pub reason: Option<String>,
    /// The change as it was authorized: its head commit and base are what the grant covers.
    pub seen: PullRequest,
    /// When it was given: the grant runs from then.
    pub at: Millis,
}

impl<F: Forge> Job<'_, F> {
    /// `authorization`: who authorized, or why nobody did (then there is nothing to merge).
    /// `still_given` is asked before every look at the change: `Err` with why once the
    /// authorization no longer stands (a revoke while the job waits).
    pub async fn merge(
        &self,
        decision: Decision,
        settings: &Settings,
        authorization: Result<Authorization, String>,
        still_given: impl AsyncFn(&Authorization) -> Result<(), String>,
    ) -> Result<ExitCode, String> {
        let runner = self.runner;
        let write = |e: std::io::Error| format!("cannot write the job's outputs: {e}");
        let none = || runner.output(Output::Merged, "none").map_err(write);
        let repo = self.repo;
        let policy = decision.policy.clone();
        let loaded = Loaded { policy: policy.clone(), error: None, blob: None };
        let given = match authorization {
            Ok(given) => given,
            Err(why) => {
                runner.line(&format!("{why}: nothing to merge"));
                none()?;
                return Ok(ExitCode::SUCCESS);
            }
        };
        let Authorization { by, duration, reason, seen, at } = given.clone();
        if !self.forge.is_responder(&repo.full_name, &by, &policy.responders).await.map_err(|e| e.to_string())? {
            none()?;
            return Err(format!("@{by} is not a responder. {}", who_can_authorize(&policy, self.forge.conventions())));
        }
        let number = decision.pull.number;
        let noun = self.forge.conventions().change_noun;
        let reference = self.reference(number);
        let clock = SystemClock;
        let head_author = if grant::needs_head_author(&seen, &by, &policy) {
            self.forge.commit_author(&repo.full_name, &seen.head_sha).await.map_err(|e| e.to_string())?
        } else {
            None
        };
        let request = grant::Request { by: &by, duration, reason, head_author: head_author.as_deref() };
        let granted = grant::authorize(&seen, request, &policy, at)?;
        let short: String = granted.sha.chars().take(7).collect();
        runner.line(&format!("authorized by @{by} for {short} until {}", format_utc(granted.expires_at)));
        if granted.self_authorized {
            runner.warning(&format!("@{by} authorized their own change (self-authorized: no second person)"));
        }
        let deadline = (clock.now_ms() + settings.wait.as_millis() as i64).min(granted.expires_at);
        loop {
            if let Err(why) = still_given(&given).await {
                none()?;
                return Err(format!("not merged: {why}"));
            }
            let now = clock.now_ms();
            let pull = self
                .forge
                .pull(&repo.full_name, number)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("the {noun} is gone"))?;
            if pull.merged {
                runner.output(Output::Merged, "merged").map_err(write)?;
                runner.line(&format!("{reference} is merged"));
                return Ok(ExitCode::SUCCESS);
            }
            let current = self.decide(pull.clone()).await?;
            let mut facts = track::first_seen(&pull);
            facts.lane.membership = current.membership.clone();
            facts.lane.grant = Some(granted.clone());
            facts.lane.remember(&pull.head_sha, &current.lane);
            facts.lane.remember(&pull.head_sha, &current.postmortem);
            // The merge itself reads the change, its checks and its postmortem again.
            let input = Input::ChecksMoved { sha: pull.head_sha.clone(), new_run: false };
            let facts = match self.lane(&loaded, number, Some(facts.clone()), input, merges).await {
                Ok(decided) => {
                    trail(self, &decided.audit);
                    let facts = decided.facts.unwrap_or(facts);
                    let outcome = if facts.lane.merged.is_some() {
                        Some("merged")
                    } else if facts.lane.enqueued.is_some() {
                        Some("enqueued")
                    } else if let Some((_, why)) = &facts.lane.merge_refused {
                        none()?;
                        return Err(format!("{} refused the merge: {why}", self.forge.conventions().name));
                    } else {
                        None
                    };
                    if let Some(outcome) = outcome {
                        runner.output(Output::Merged, outcome).map_err(write)?;
                        let line = format!("{reference} {outcome} at {short} on {}", authorized_by(&granted));
                        runner.summary(&format!("### hotfix-lane merge\n\n{line}\n")).map_err(write)?;
                        runner.line(&line);
                        return Ok(ExitCode::SUCCESS);
                    }
                    facts
                }
                // The base moved under the merge: try again at the next look.
                Err(StepError::Retry(why)) => {
                    runner.line(&why);
                    facts
                }
                Err(err) => return Err(err.to_string()),
            };
            match grant::readiness(&facts, &policy, now) {
                Err(blocker @ (Blocker::PostmortemNotGreen | Blocker::SmokePending(_))) if now < deadline => {
                    runner.line(&blocker.explain());
                }
                Err(blocker) => {
                    none()?;
                    return Err(format!("not merged: {}", blocker.explain()));
                }
                Ok(()) if now >= deadline => {
                    none()?;
                    return Err("not merged before the wait ran out".into());
                }
                Ok(()) => {}
            }
            tokio::time::sleep(settings.poll).await;
        }
    }
}

/// What the server would have written to the audit log, in the job's log.
fn trail<F>(job: &Job<'_, F>, audit: &[Audit]) {
    for entry in audit {
        job.runner.line(&format!("audit: {} {}", entry.action, entry.detail));
    }
}

/// The effects a job carries out: the merge and what follows from it. It keeps no lane comment
/// and no reports (the pipeline's own jobs are its checks).
fn merges(effect: &Effect) -> bool {
    matches!(effect, Effect::Merge { .. } | Effect::EnqueueFirst { .. } | Effect::Comment { .. } | Effect::Retry { .. })
}
