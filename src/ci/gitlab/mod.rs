//! `hotfix-lane gitlab-ci <mode>`: the lane inside a GitLab CI job. The job's facts come from
//! GitLab's predefined variables (`CI_API_V4_URL`, `CI_MERGE_REQUEST_PROJECT_PATH`,
//! `CI_MERGE_REQUEST_IID`, `CI_MERGE_REQUEST_EVENT_TYPE`, …) and, for everything a merge request
//! author could write (title, description, labels, who labelled it), from the API: nothing of
//! the merge request reaches a shell. The token is a project or group access token in the
//! masked variable `HOTFIX_LANE_TOKEN`; it is never printed.
//!
//! Exit codes: 0 done (the lane decided, the postmortem check passes, merged or nothing to
//! merge, backports opened); 1 the lane says no (postmortem missing, not merged, a backport
//! needs work by hand) or GitLab failed part-way; 2 a usage error; 3 the job is not set up to
//! run this (no usable token, not the right kind of pipeline, the project or merge request
//! unreadable).

mod authorization;
pub(crate) mod runner;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use subtle::ConstantTimeEq;

use super::{Job, Mode, Settings};
use crate::ci::runner::Runner;
use crate::forge::gitlab::GitLab;
use crate::forge::Forge;
use crate::lane::event::RepoRef;
use runner::GitLabCi;

/// The variable holding the lane's token.
pub const TOKEN_VARIABLE: &str = "HOTFIX_LANE_TOKEN";
/// Exit code of a job that is not set up to run the lane.
const SETUP: u8 = 3;

const NEEDS_TOKEN: &str = "CI_JOB_TOKEN, the job's own token, cannot read a merge request's notes and label \
    events, post commit statuses, open merge requests or merge: create a project or group access token (role \
    Developer, Maintainer to merge or backport; scope `api`) and store it in Settings → CI/CD → Variables as \
    HOTFIX_LANE_TOKEN, masked (and not protected: merge request pipelines of unprotected branches do not get \
    protected variables)";

enum Stop {
    /// The job is not set up to run the lane.
    Setup(String),
    /// The lane ran and failed.
    Failed(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str, why: &str) -> Result<String, Stop> {
    env(name).ok_or_else(|| Stop::Setup(format!("{name} is not set: {why}")))
}

pub fn main(mode: Mode) -> ExitCode {
    let runner =
        GitLabCi { dotenv: env("HOTFIX_LANE_DOTENV").map_or_else(|| runner::DEFAULT_DOTENV.into(), PathBuf::from) };
    // A report left in the job's directory by an earlier job (shell executors keep it) must not
    // speak for this one.
    if let Err(err) = std::fs::remove_file(&runner.dotenv).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    }) {
        return stop(&runner, Stop::Setup(format!("cannot remove the old {}: {err}", runner.dotenv.display())));
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => return stop(&runner, Stop::Failed(format!("cannot start: {err}"))),
    };
    runner.start_section("hotfix_lane", &format!("hotfix-lane gitlab-ci {}", mode_name(mode)));
    let done = runtime.block_on(run(mode, &runner));
    runner.end_section("hotfix_lane");
    match done {
        Ok(code) => code,
        Err(why) => stop(&runner, why),
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Lane => "lane",
        Mode::Postmortem => "postmortem",
        Mode::Backport => "backport",
        Mode::Merge => "merge",
    }
}

fn stop(runner: &GitLabCi, why: Stop) -> ExitCode {
    match why {
        Stop::Setup(message) => {
            runner.error(&message);
            ExitCode::from(SETUP)
        }
        Stop::Failed(message) => {
            runner.error(&message);
            ExitCode::FAILURE
        }
    }
}

/// The token, if it is one the lane can work with.
fn token() -> Result<String, Stop> {
    let job_token = env("CI_JOB_TOKEN").unwrap_or_default();
    let Some(token) = env(TOKEN_VARIABLE) else {
        return Err(Stop::Setup(format!("{TOKEN_VARIABLE} is not set. {NEEDS_TOKEN}")));
    };
    if !job_token.is_empty() && bool::from(token.as_bytes().ct_eq(job_token.as_bytes())) {
        return Err(Stop::Setup(format!("{TOKEN_VARIABLE} holds the job's CI_JOB_TOKEN. {NEEDS_TOKEN}")));
    }
    Ok(token)
}

async fn run(mode: Mode, runner: &GitLabCi) -> Result<ExitCode, Stop> {
    if env("GITLAB_CI").as_deref() != Some("true") {
        return Err(Stop::Setup("GITLAB_CI is not `true`: run `hotfix-lane gitlab-ci` inside a GitLab CI job".into()));
    }
    let token = token()?;
    let api = required("CI_API_V4_URL", "run this inside a GitLab CI job")?;
    let instance = api
        .trim_end_matches('/')
        .strip_suffix("/api/v4")
        .ok_or_else(|| Stop::Setup(format!("CI_API_V4_URL `{api}` does not end in /api/v4")))?;
    let forge = GitLab::new(instance, &token).map_err(|e| Stop::Setup(e.to_string()))?;
    let setting = |name: &str, default: &str| env(name).unwrap_or_else(|| default.into());
    let settings = Settings::parse(
        ("HOTFIX_LANE_TARGETS", &setting("HOTFIX_LANE_TARGETS", "")),
        ("HOTFIX_LANE_WAIT", &setting("HOTFIX_LANE_WAIT", "30m")),
        ("HOTFIX_LANE_POLL_INTERVAL", &setting("HOTFIX_LANE_POLL_INTERVAL", "15s")),
        env("CI_BUILDS_DIR").map_or_else(std::env::temp_dir, |d| PathBuf::from(d).join(".hotfix-lane")),
    )
    .map_err(Stop::Setup)?;
    let source = setting("CI_PIPELINE_SOURCE", "unknown");
    let merge_request_pipeline = source == "merge_request_event";
    match (mode, merge_request_pipeline) {
        (Mode::Backport, true) => {
            return Err(Stop::Setup(
                "mode backport runs after the merge, in the pipeline of the branch merged into: add `rules: - if: \
                 $CI_PIPELINE_SOURCE == \"push\"` to its job"
                    .into(),
            ))
        }
        (Mode::Lane | Mode::Postmortem | Mode::Merge, false) => {
            return Err(Stop::Setup(format!(
                "not a merge request pipeline (CI_PIPELINE_SOURCE is `{source}`): mode {} decides about a merge \
                 request, so its job needs `rules: - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"`",
                mode_name(mode)
            )))
        }
        _ => {}
    }
    let unreadable = |what: String| {
        move |e: crate::forge::ForgeError| {
            Stop::Setup(format!("cannot read {what} with {TOKEN_VARIABLE}: {e} (does the token have scope `api` and a role in the project?)"))
        }
    };
    if mode == Mode::Backport {
        let repo = RepoRef {
            id: required("CI_PROJECT_ID", "run this inside a GitLab CI job")?.parse().unwrap_or_default(),
            full_name: required("CI_PROJECT_PATH", "run this inside a GitLab CI job")?,
            default_branch: required("CI_DEFAULT_BRANCH", "run this inside a GitLab CI job")?,
        };
        let job = Job { forge: &forge, repo: &repo, runner };
        let sha = required("CI_COMMIT_SHA", "run this inside a GitLab CI job")?;
        let short: String = sha.chars().take(7).collect();
        let found = forge.merged_as(&repo.full_name, &sha).await.map_err(unreadable(format!("commit {short}")))?;
        let Some(iid) = found else {
            runner.line(&format!("{short} is the merge of no merge request: nothing to backport"));
            return Ok(ExitCode::SUCCESS);
        };
        let pull = forge
            .pull(&repo.full_name, iid)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the merge request is gone".to_string())?;
        let decision = job.decide(pull).await?;
        let merger = env("GITLAB_USER_LOGIN");
        return Ok(job.backport(&decision, &settings, merger.as_deref()).await?);
    }
    let iid: u64 = required("CI_MERGE_REQUEST_IID", "a merge request pipeline sets it")?
        .parse()
        .map_err(|_| Stop::Setup("CI_MERGE_REQUEST_IID is not a number".into()))?;
    // The merge request's own project: a pipeline of a fork's merge request may run in the fork.
    let repo = RepoRef {
        id: required("CI_MERGE_REQUEST_PROJECT_ID", "a merge request pipeline sets it")?.parse().unwrap_or_default(),
        full_name: required("CI_MERGE_REQUEST_PROJECT_PATH", "a merge request pipeline sets it")?,
        default_branch: setting("CI_DEFAULT_BRANCH", ""),
    };
    let job = Job { forge: &forge, repo: &repo, runner };
    let pull = forge
        .pull(&repo.full_name, iid)
        .await
        .map_err(unreadable(format!("merge request !{iid}")))?
        .ok_or_else(|| Stop::Setup(format!("merge request !{iid} of {} is not there", repo.full_name)))?;
    let mut decision = job.decide(pull).await?;
    if env("CI_MERGE_REQUEST_EVENT_TYPE").as_deref() == Some("merge_train") {
        let sha = required("CI_COMMIT_SHA", "run this inside a GitLab CI job")?;
        decision = train::decide(&job, decision, &sha).await?;
    }
    match mode {
        Mode::Merge => {
            let (pull, policy) = (decision.pull.clone(), decision.policy.clone());
            let found = authorization::find(&forge, runner, &repo.full_name, &pull, &policy)
                .await
                .map_err(|e| e.to_string())?;
            // Read again before every look: a `/hotfix revoke` (or a newer authorization, or a
            // push) while the job waits ends this one.
            let still_given = async |given: &crate::ci::Authorization| match authorization::find(
                &forge,
                runner,
                &repo.full_name,
                &pull,
                &policy,
            )
            .await
            {
                Ok(Ok(now)) if now.by == given.by && now.at == given.at => Ok(()),
                Ok(Ok(now)) => Err(format!("@{}'s authorization was replaced by @{}'s", given.by, now.by)),
                Ok(Err(why)) => Err(format!("@{}'s authorization no longer stands: {why}", given.by)),
                Err(e) => Err(e.to_string()),
            };
            Ok(job.merge(decision, &settings, found, still_given).await?)
        }
        _ => Ok(job.verdict(mode, &decision)?),
    }
}
