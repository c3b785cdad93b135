//! `hotfix-lane action`: the lane inside a GitHub Actions job (the action in action.yml). The
//! job's facts come from the event file; inputs from `INPUT_*` variables; the log, outputs and
//! summary follow the Actions runner's contract ([`runner`]).

pub(crate) mod runner;

use std::process::ExitCode;

use super::{Authorization, Job, Mode, Settings};
use crate::ci::runner::{Output, Runner};
use crate::forge::github::payload as github_payload;
use crate::forge::github::queue_pull_number;
use crate::forge::github::{GitHubAuth, GitHubClients};
use crate::forge::{Forge, Forges};
use crate::lane::command::{self, Command};
use crate::lane::event::{CommentAction, Envelope, Event, PullRequest, PullRequestAction};
use crate::lane::policy::Policy;
use runner::Actions;

/// Runs the Action; errors become `::error::` annotations and a non-zero exit.
pub fn main() -> ExitCode {
    // The token is masked before anything else can print it.
    let token = std::env::var("INPUT_TOKEN").unwrap_or_default();
    runner::mask(&token);
    let actions = Actions::from_env();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => return fail(&actions, &format!("cannot start: {err}")),
    };
    match runtime.block_on(run(&token, &actions)) {
        Ok(code) => code,
        Err(message) => fail(&actions, &message),
    }
}

fn fail(actions: &Actions, message: &str) -> ExitCode {
    actions.error(message);
    ExitCode::FAILURE
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn run(token: &str, actions: &Actions) -> Result<ExitCode, String> {
    if token.is_empty() {
        return Err("input `token` is required (for example `token: ${{ github.token }}`)".into());
    }
    let mode_name = env("INPUT_MODE").unwrap_or_else(|| "lane".into());
    let mode = <Mode as clap::ValueEnum>::from_str(&mode_name, false)
        .map_err(|_| format!("unknown mode `{mode_name}`: use `lane`, `postmortem`, `backport` or `merge`"))?;
    let input = |name: &str, default: &str| env(&format!("INPUT_{name}")).unwrap_or_else(|| default.into());
    let settings = Settings::parse(
        ("input `targets`", &input("TARGETS", "")),
        ("input `wait`", &input("WAIT", "30m")),
        ("input `poll-interval`", &input("POLL_INTERVAL", "15s")),
        env("RUNNER_TEMP").map_or_else(std::env::temp_dir, std::path::PathBuf::from),
    )?;
    let event_name =
        env("GITHUB_EVENT_NAME").ok_or("GITHUB_EVENT_NAME is not set: run this inside a GitHub Actions job")?;
    let payload_event = match event_name.as_str() {
        // `pull_request_target` carries the same payload; the Action never checks out its code.
        "pull_request" | "pull_request_target" => "pull_request",
        "merge_group" => "merge_group",
        // A responder's `/hotfix authorize` comment starts a merge.
        "issue_comment" if mode == Mode::Merge => "issue_comment",
        other => {
            return Err(format!("unsupported event `{other}`: run on pull_request, pull_request_target or merge_group"))
        }
    };
    let path = env("GITHUB_EVENT_PATH").ok_or("GITHUB_EVENT_PATH is not set")?;
    let body = std::fs::read(&path).map_err(|e| format!("cannot read the event file {path}: {e}"))?;
    let envelope = github_payload::parse(payload_event, &body)
        .map_err(|e| format!("malformed event file: {e}"))?
        .ok_or("unsupported event")?;
    let api = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
    let forge = GitHubClients::new(&api, GitHubAuth::Token(token.to_string()))
        .and_then(|c| c.client(envelope.forge, None))
        .map_err(|e| e.to_string())?;
    let repo = envelope.repo.as_ref().ok_or("the event names no repository")?;
    let job = Job { forge: &forge, repo, runner: actions };
    let decision = job.decide(current(&forge, &envelope).await?).await?;
    match mode {
        Mode::Lane | Mode::Postmortem => job.verdict(mode, &decision),
        Mode::Backport => {
            let merger = match &envelope.event {
                Event::PullRequest { action: PullRequestAction::Closed, .. } => Some(envelope.sender.login.as_str()),
                _ => None,
            };
            job.backport(&decision, &settings, merger).await
        }
        Mode::Merge => {
            let authorization = authorization(&envelope, &decision.policy, &decision.pull);
            // A re-run replays the event of the first run: the responder's authorization of
            // then, which must not cover whatever the change is now.
            let rerun = env("GITHUB_RUN_ATTEMPT").and_then(|a| a.parse::<u32>().ok()).is_some_and(|a| a > 1);
            if let (Ok(given), true) = (&authorization, rerun) {
                actions.output(Output::Merged, "none").map_err(|e| format!("cannot write the job's outputs: {e}"))?;
                return Err(format!(
                    "a re-run replays @{}'s authorization from the first run; a responder must authorize again",
                    given.by
                ));
            }
            // A revoke is a new comment, and so a new run: this one holds only its event.
            job.merge(decision, &settings, authorization, async |_: &Authorization| Ok(())).await
        }
    }
}

/// The pull request the event is about, read again rather than taken from the event: a re-run
/// replays the event of its first run, with the labels and description of that moment.
async fn current<F: Forge>(forge: &F, envelope: &Envelope) -> Result<PullRequest, String> {
    let repo = envelope.repo.as_ref().ok_or("the event names no repository")?;
    let number = match &envelope.event {
        Event::PullRequest { pull: PullRequest { number, .. }, .. }
        | Event::Comment { number, on_pull_request: true, .. } => *number,
        Event::MergeGroup { group, .. } => queue_pull_number(&group.head_ref)
            .ok_or_else(|| format!("merge group ref `{}` names no pull request", group.head_ref))?,
        _ => return Err("unsupported event: comments count only on pull requests".into()),
    };
    forge.pull(&repo.full_name, number).await.map_err(|e| e.to_string())?.ok_or_else(|| match &envelope.event {
        Event::MergeGroup { .. } => "the queued pull request is gone".to_string(),
        _ => "the pull request is gone".to_string(),
    })
}

/// Who authorized in this event, for how long and why: a new `/hotfix authorize` comment, or
/// the lane label being applied. Edited comments never authorize. A label covers the commit the
/// change had when it was applied, as the event says; a comment names no commit, so it covers
/// the head when the job starts.
fn authorization(envelope: &Envelope, policy: &Policy, now: &PullRequest) -> Result<Authorization, String> {
    let at = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    match &envelope.event {
        Event::Comment { action: CommentAction::Created, comment, .. } => command::parse(&comment.body)
            .into_iter()
            .filter_map(Result::ok)
            .find_map(|c| match c {
                Command::Authorize { duration, reason } => {
                    Some(Authorization { by: comment.author.login.clone(), duration, reason, seen: now.clone(), at })
                }
                _ => None,
            })
            .ok_or_else(|| "no authorization in this event".to_string()),
        Event::PullRequest { action: PullRequestAction::Labeled, label: Some(label), pull, .. }
            if label.eq_ignore_ascii_case(&policy.lane.label) =>
        {
            let seen = PullRequest { head_sha: pull.head_sha.clone(), base_ref: pull.base_ref.clone(), ..now.clone() };
            Ok(Authorization { by: envelope.sender.login.clone(), duration: None, reason: None, seen, at })
        }
        _ => Err("no authorization in this event".into()),
    }
}
