//! The lane inside a CI job, on either forge: `hotfix-lane action` (GitHub Actions) and
//! `hotfix-lane gitlab-ci` (GitLab CI) run the server's own lane (policy, membership,
//! postmortem rules, grants and messages) with nothing written but what a mode is for.
//!
//! Modes: `lane` publishes the lane decision for the pipeline to pick the smoke suite;
//! `postmortem` is the blocking check, failing the job with the server's message; `backport`
//! opens a merged hotfix's backports; `merge` merges on a responder's authorization once the
//! checks pass. What is forge-specific — where the job's facts come from, and how the job's log,
//! outputs and summary work — lives in [`github`] and [`gitlab`] behind [`runner::Runner`].

mod backport;
pub mod github;
pub mod gitlab;
mod merge;
pub mod runner;

use std::process::ExitCode;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::dispatch::change::Change;
use crate::dispatch::{Loaded, Policies};
use crate::forge::Forge;
use crate::lane::comment;
use crate::lane::effect::Effect;
use crate::lane::event::{PullRequest, PullRequestAction, RepoRef};
use crate::lane::membership::Membership;
use crate::lane::report::{CheckState, Report, LANE_CONTEXT, POSTMORTEM_CONTEXT};
use crate::lane::step::{Ctx, Input, Observed};
use crate::lane::track::PullFacts;
use runner::{Output, Runner};

pub use merge::Authorization;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Publish the lane decision.
    Lane,
    /// Fail unless the postmortem check passes.
    Postmortem,
    /// Open the backports of a merged hotfix.
    Backport,
    /// Merge on a responder's authorization once the checks pass.
    Merge,
}

/// What `backport` and `merge` take from the job's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Backport targets asked for; empty: the policy's.
    pub targets: Vec<String>,
    /// How long `merge` waits for the checks.
    pub wait: Duration,
    /// How often `merge` looks while waiting.
    pub poll: Duration,
    /// Where `backport` keeps its git mirrors.
    pub temp: std::path::PathBuf,
}

impl Settings {
    /// `targets`: branches separated by commas or newlines, as `setting` (named in errors)
    /// holds them; `wait` and `poll`: durations such as `30m`.
    pub fn parse(
        (setting_targets, targets): (&str, &str),
        (setting_wait, wait): (&str, &str),
        (setting_poll, poll): (&str, &str),
        temp: std::path::PathBuf,
    ) -> Result<Settings, String> {
        let targets: Vec<String> =
            targets.split([',', '\n']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
        if let Some(bad) = targets.iter().find(|t| !crate::lane::command::valid_branch(t)) {
            return Err(format!("{setting_targets}: `{bad}` is not a branch name"));
        }
        let duration = |setting: &str, text: &str| {
            crate::lane::policy::parse_duration(text).map_err(|e| format!("{setting}: {e}"))
        };
        Ok(Settings { targets, wait: duration(setting_wait, wait)?, poll: duration(setting_poll, poll)?, temp })
    }
}

/// One job's view of a change: the forge, the project, and the runner it reports through.
pub struct Job<'a, F> {
    pub forge: &'a F,
    pub repo: &'a RepoRef,
    pub runner: &'a dyn Runner,
}

pub struct Decision {
    pub number: u64,
    pub pull: PullRequest,
    pub policy: crate::lane::policy::Policy,
    pub membership: Membership,
    pub lane: Report,
    pub postmortem: Report,
    pub summary: String,
}

impl<F: Forge> Job<'_, F> {
    /// The lane decision for `pull` as it is now: the server's step, with nothing written.
    pub async fn decide(&self, pull: PullRequest) -> Result<Decision, String> {
        let policies = Policies::default();
        let loaded = policies.get(self.forge, &self.repo.full_name).await.map_err(|e| e.to_string())?;
        if let Some(error) = &loaded.error {
            let path = self.forge.conventions().policy_path;
            self.runner.warning(&format!("{path} on the default branch is invalid: {error}"));
        }
        // A merged change (the backport mode runs after the merge) is decided as it stood open.
        let change = PullRequest { state: crate::lane::event::ItemState::Open, ..pull.clone() };
        let input = Input::Change {
            action: PullRequestAction::Edited,
            change: Box::new(change),
            added: vec![],
            actor: String::new(),
        };
        let decided = self.lane(&loaded, pull.number, None, input, |_| false).await.map_err(|e| e.to_string())?;
        let noun = self.forge.conventions().change_noun;
        let facts = decided.facts.ok_or(format!("the lane decided nothing about the {noun}"))?;
        let report = |context: &str| {
            facts.lane.reported.get(context).map(|r| r.report.clone()).ok_or(format!("the lane reported no {context}"))
        };
        let (lane, postmortem) = (report(LANE_CONTEXT)?, report(POSTMORTEM_CONTEXT)?);
        let policy = loaded.policy.clone();
        let membership = facts.lane.membership.clone();
        let summary = comment::render(&membership, &lane, &postmortem, None, &policy).replace(comment::MARKER, "");
        Ok(Decision { number: pull.number, membership, lane, postmortem, summary, pull, policy })
    }

    /// Drives `input` through the server's lane for change `number`, applying only the effects
    /// `applies` lets through.
    async fn lane(
        &self,
        loaded: &Loaded,
        number: u64,
        prior: Option<PullFacts>,
        input: Input,
        applies: fn(&Effect) -> bool,
    ) -> Result<crate::dispatch::change::Decided, crate::dispatch::StepError> {
        let ctx = Ctx {
            repo: self.repo,
            installation_id: None,
            policy: &loaded.policy,
            policy_error: loaded.error.as_ref(),
            conventions: self.forge.conventions(),
            // Nothing is reported from a CI job; see `ci::merge` for what it applies.
            pinned_reports: false,
            now: SystemClock.now_ms(),
        };
        let change = Change { forge: self.forge, ctx, number, loaded, responders: None, written: None, applies };
        change.run(prior, input, Observed::default()).await
    }

    /// Modes `lane` and `postmortem`: publishes the decision; `postmortem` fails the job unless
    /// the check passes.
    pub fn verdict(&self, mode: Mode, decision: &Decision) -> Result<ExitCode, String> {
        self.publish(decision, mode).map_err(|e| format!("cannot write the job's outputs: {e}"))?;
        Ok(match (mode, decision.postmortem.state) {
            (Mode::Postmortem, CheckState::Failure) => {
                self.runner.error(&format!("hotfix-lane/postmortem: {}", decision.postmortem.description));
                ExitCode::FAILURE
            }
            _ => ExitCode::SUCCESS,
        })
    }

    fn publish(&self, decision: &Decision, mode: Mode) -> std::io::Result<()> {
        let runner = self.runner;
        let hotfix = decision.membership.in_lane();
        runner.output(Output::Lane, if hotfix { "hotfix" } else { "normal" })?;
        runner.output(Output::Suite, if hotfix { "smoke" } else { "full" })?;
        runner.output(Output::Change, &decision.number.to_string())?;
        let postmortem = if decision.postmortem.state == CheckState::Success { "success" } else { "failure" };
        runner.output(Output::Postmortem, postmortem)?;
        runner.line(&format!("hotfix-lane/lane: {}", decision.lane.description));
        runner.line(&format!("hotfix-lane/postmortem: {}", decision.postmortem.description));
        let summary = match (mode, decision.membership == Membership::Normal) {
            (Mode::Lane, true) => {
                let noun = self.forge.conventions().change_noun;
                let change = format!("{}{} {}", noun[..1].to_uppercase(), &noun[1..], self.reference(decision.number));
                format!("### hotfix-lane\n\n{change}: normal lane, full suite.\n")
            }
            _ => decision.summary.clone(),
        };
        runner.summary(&summary)
    }

    /// How the forge writes a reference to change `number`: `#12`, `!12`.
    fn reference(&self, number: u64) -> String {
        match self.forge.conventions().forge {
            crate::lane::event::Forge::Github => format!("#{number}"),
            crate::lane::event::Forge::Gitlab => format!("!{number}"),
        }
    }
}
