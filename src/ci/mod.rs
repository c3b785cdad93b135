//! `hotfix-lane action`: the lane's decisions inside a GitHub Actions job, with the same core
//! (policy, membership, postmortem rules and messages) as the server.
//!
//! Modes: `lane` publishes the lane decision (`lane`, `suite`, `pr`, `postmortem` outputs) for
//! workflows to pick the smoke suite; `postmortem` is the blocking check, failing the step with
//! the same message as the server's check. Reads only; the server does the writes.

mod backport;
mod merge;
mod runner;

use std::process::ExitCode;

use crate::clock::{Clock, SystemClock};
use crate::dispatch::change::Change;
use crate::dispatch::{Loaded, Policies};
use crate::forge::github::payload as github_payload;
use crate::forge::github::queue_pull_number;
use crate::forge::github::{GitHubAuth, GitHubClients};
use crate::forge::{Forge, Forges};
use crate::lane::comment;
use crate::lane::conventions::Conventions;
use crate::lane::effect::Effect;
use crate::lane::event::{Envelope, Event, PullRequest, PullRequestAction, RepoRef};
use crate::lane::membership::Membership;
use crate::lane::report::{CheckState, Report, LANE_CONTEXT, POSTMORTEM_CONTEXT};
use crate::lane::step::{Ctx, Input, Observed};
use crate::lane::track::PullFacts;

pub use runner::escape_data;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Lane,
    Postmortem,
    Backport,
    Merge,
}

/// Runs the Action; errors become `::error::` annotations and a non-zero exit.
pub fn main() -> ExitCode {
    // The token is masked before anything else can print it.
    let token = std::env::var("INPUT_TOKEN").unwrap_or_default();
    runner::mask(&token);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => return fail(&format!("cannot start: {err}")),
    };
    match runtime.block_on(run(&token)) {
        Ok(code) => code,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    runner::error(message);
    ExitCode::FAILURE
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn run(token: &str) -> Result<ExitCode, String> {
    if token.is_empty() {
        return Err("input `token` is required (for example `token: ${{ github.token }}`)".into());
    }
    let mode = match env("INPUT_MODE").as_deref().unwrap_or("lane") {
        "lane" => Mode::Lane,
        "postmortem" => Mode::Postmortem,
        "backport" => Mode::Backport,
        "merge" => Mode::Merge,
        other => return Err(format!("unknown mode `{other}`: use `lane`, `postmortem`, `backport` or `merge`")),
    };
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
    let decision = decide(&forge, &envelope).await?;
    match mode {
        Mode::Backport => return backport::run(&forge, &envelope, &decision).await,
        Mode::Merge => return merge::run(&forge, &envelope, decision).await,
        Mode::Lane | Mode::Postmortem => {}
    }
    publish(&decision, mode).map_err(|e| format!("cannot write the step's outputs: {e}"))?;
    Ok(match (mode, decision.postmortem.state) {
        (Mode::Postmortem, CheckState::Failure) => {
            runner::error(&format!("hotfix-lane/postmortem: {}", decision.postmortem.description));
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}

struct Decision {
    number: u64,
    pull: PullRequest,
    policy: crate::lane::policy::Policy,
    membership: Membership,
    lane: Report,
    postmortem: Report,
    summary: String,
}

async fn decide<F: Forge>(forge: &F, envelope: &Envelope) -> Result<Decision, String> {
    let repo: &RepoRef = envelope.repo.as_ref().ok_or("the event names no repository")?;
    let pull: PullRequest = match &envelope.event {
        // Read again, not taken from the event: a re-run replays the event of its first run,
        // with the labels and description of that moment.
        Event::PullRequest { pull: PullRequest { number, .. }, .. }
        | Event::Comment { number, on_pull_request: true, .. } => {
            forge.pull(&repo.full_name, *number).await.map_err(|e| e.to_string())?.ok_or("the pull request is gone")?
        }
        Event::MergeGroup { group, .. } => {
            let number = queue_pull_number(&group.head_ref)
                .ok_or_else(|| format!("merge group ref `{}` names no pull request", group.head_ref))?;
            forge
                .pull(&repo.full_name, number)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the queued pull request is gone")?
        }
        _ => return Err("unsupported event: comments count only on pull requests".into()),
    };
    decide_for(forge, repo, pull).await
}

/// The lane decision for `pull` as it is now: the server's step, with nothing written.
async fn decide_for<F: Forge>(forge: &F, repo: &RepoRef, pull: PullRequest) -> Result<Decision, String> {
    let policies = Policies::default();
    let loaded = policies.get(forge, &repo.full_name).await.map_err(|e| e.to_string())?;
    if let Some(error) = &loaded.error {
        runner::warning(&format!("{} on the default branch is invalid: {error}", Conventions::of(FORGE).policy_path));
    }
    // A merged change (the backport mode runs after the merge) is decided as it stood open.
    let change = PullRequest { state: crate::lane::event::ItemState::Open, ..pull.clone() };
    let input = Input::Change {
        action: PullRequestAction::Edited,
        change: Box::new(change),
        added: vec![],
        actor: String::new(),
    };
    let decided = lane(forge, repo, &loaded, pull.number, None, input, |_| false).await.map_err(|e| e.to_string())?;
    let facts = decided.facts.ok_or("the lane decided nothing about the pull request")?;
    let report = |context: &str| {
        facts.lane.reported.get(context).map(|r| r.report.clone()).ok_or(format!("the lane reported no {context}"))
    };
    let (lane, postmortem) = (report(LANE_CONTEXT)?, report(POSTMORTEM_CONTEXT)?);
    let policy = loaded.policy.clone();
    let membership = facts.lane.membership.clone();
    let summary = comment::render(&membership, &lane, &postmortem, None, &policy).replace(comment::MARKER, "");
    Ok(Decision { number: pull.number, membership, lane, postmortem, summary, pull, policy })
}

/// The forge the Action runs on.
const FORGE: crate::lane::event::Forge = crate::lane::event::Forge::Github;

/// Drives `input` through the server's lane for change `number`, applying only the effects
/// `applies` lets through.
async fn lane<F: Forge>(
    forge: &F,
    repo: &RepoRef,
    loaded: &Loaded,
    number: u64,
    prior: Option<PullFacts>,
    input: Input,
    applies: fn(&Effect) -> bool,
) -> Result<crate::dispatch::change::Decided, crate::dispatch::StepError> {
    let ctx = Ctx {
        repo,
        installation_id: None,
        policy: &loaded.policy,
        policy_error: loaded.error.as_ref(),
        conventions: Conventions::of(FORGE),
        now: SystemClock.now_ms(),
    };
    let change = Change { forge, ctx, number, loaded, responders: None, written: None, applies };
    change.run(prior, input, Observed::default()).await
}

fn publish(decision: &Decision, mode: Mode) -> std::io::Result<()> {
    let files = runner::Files::from_env();
    let hotfix = decision.membership.in_lane();
    files.output("lane", if hotfix { "hotfix" } else { "normal" })?;
    files.output("suite", if hotfix { "smoke" } else { "full" })?;
    files.output("pr", &decision.number.to_string())?;
    files.output("postmortem", if decision.postmortem.state == CheckState::Success { "success" } else { "failure" })?;
    println!("hotfix-lane/lane: {}", escape_data(&decision.lane.description));
    println!("hotfix-lane/postmortem: {}", escape_data(&decision.postmortem.description));
    let summary = match (mode, decision.membership == Membership::Normal) {
        (Mode::Lane, true) => {
            format!("### hotfix-lane\n\nPull request #{}: normal lane, full suite.\n", decision.number)
        }
        _ => decision.summary.clone(),
    };
    files.summary(&summary)
}
