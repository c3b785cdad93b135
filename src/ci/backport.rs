//! `mode: backport`: a merged hotfix's backports from inside the job, with the same engine,
//! branches, pull requests and reports as the server, for teams that run no server. Reruns
//! find what an earlier run made. The step fails when any target needs work by hand.

use std::collections::BTreeMap;
use std::process::ExitCode;

use super::{env, runner, Decision};
use crate::backport::mirror::Mirrors;
use crate::backport::open::{self, MakeError, Request};
use crate::forge::Forge;
use crate::lane::backport::{self as decide, Backport, BackportState};
use crate::lane::event::{Envelope, Event, ItemState, PullRequestAction};

pub(super) async fn run<F: Forge>(forge: &F, envelope: &Envelope, decision: &Decision) -> Result<ExitCode, String> {
    let files = runner::Files::from_env();
    let write = |e: std::io::Error| format!("cannot write the step's outputs: {e}");
    let repo = envelope.repo.as_ref().ok_or("the event names no repository")?;
    let pull = &decision.pull;
    let skip = if pull.state != ItemState::Merged {
        Some(format!("#{} is not merged: nothing to backport yet", pull.number))
    } else if !decision.membership.in_lane() {
        Some(format!("#{} is not in the hotfix lane: {}", pull.number, decision.lane.description))
    } else {
        None
    };
    if let Some(why) = skip {
        println!("{}", runner::escape_data(&why));
        files.output("backports", "[]").map_err(write)?;
        files.summary(&format!("### hotfix-lane backports\n\n{why}\n")).map_err(write)?;
        return Ok(ExitCode::SUCCESS);
    }
    let asked: Vec<String> = env("INPUT_TARGETS")
        .unwrap_or_default()
        .split([',', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = asked.iter().find(|t| !crate::lane::command::valid_branch(t)) {
        return Err(format!("input `targets`: `{}` is not a branch name", runner::escape_data(bad)));
    }
    let policy = &decision.policy;
    let targets = decide::targets(policy, &repo.default_branch, &pull.base_ref, &pull.labels, &asked);
    let merger = match &envelope.event {
        Event::PullRequest { action: PullRequestAction::Closed, .. } => Some(envelope.sender.login.as_str()),
        _ => None,
    };
    let temp = env("RUNNER_TEMP").map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let mirrors = Mirrors::new(temp.join("hotfix-lane-mirrors"), u64::MAX);
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let mut backports = BTreeMap::new();
    for target in targets {
        let mut record = Backport::pending(now, policy);
        let request = Request {
            forge_name: envelope.forge.as_str(),
            repo,
            pull,
            target: &target,
            policy,
            merger,
            postmortem: None,
            final_attempt: true,
        };
        match open::make(forge, &mirrors, &request, &mut record, now).await {
            Ok((_, detail)) => println!("{}", runner::escape_data(&detail)),
            Err(MakeError::Forge(err)) => {
                record.state = BackportState::Failed;
                record.detail = Some(err.to_string());
            }
            Err(MakeError::Retry(why)) => {
                record.state = BackportState::Failed;
                record.detail = Some(why);
            }
        }
        backports.insert(target, record);
    }
    let merge_commit = pull.merge_commit_sha.clone().unwrap_or_default();
    open::publish(forge, &repo.full_name, pull.number, &backports, None, &merge_commit)
        .await
        .map_err(|e| e.to_string())?;
    let listed: Vec<serde_json::Value> = backports
        .iter()
        .map(|(target, b)| serde_json::json!({ "target": target, "state": b.state, "pull": b.pull }))
        .collect();
    files.output("backports", &serde_json::Value::Array(listed).to_string()).map_err(write)?;
    files.summary(&decide::comment(&backports).replace(decide::BACKPORT_MARKER, "")).map_err(write)?;
    let failing: Vec<&str> = backports
        .iter()
        .filter(|(_, b)| matches!(b.state, BackportState::Conflict | BackportState::Failed))
        .map(|(t, _)| t.as_str())
        .collect();
    if failing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    runner::error(&format!("backports need work by hand: {}", failing.join(", ")));
    Ok(ExitCode::FAILURE)
}
