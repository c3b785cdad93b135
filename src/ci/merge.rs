//! `mode: merge`: a pre-authorized merge without the server. The authorization is the event
//! that started the job — a responder's `/hotfix authorize` comment, or a responder applying the
//! lane label — and covers the head commit at that moment. The step then waits (up to `wait`,
//! never past the grant) for the postmortem and smoke checks to pass on that commit and merges it
//! pinned to it, or puts it at the front of the merge queue, by the server's rules and messages.
//!
//! Limits, against the server: the grant lives only as long as this job (a later event does not
//! resume it, and a push means authorizing again), `/hotfix revoke` is cancelling the workflow
//! run, the trail is the job's log and summary rather than the audit log, and the job holds a
//! runner while it waits.

use std::process::ExitCode;
use std::time::Duration;

use super::{decide_for, env, runner, Decision};
use crate::clock::{Clock, SystemClock};
use crate::dispatch::{Loaded, StepError};
use crate::forge::Forge;
use crate::lane::audit::Audit;
use crate::lane::command::{self, Command};
use crate::lane::effect::Effect;
use crate::lane::event::{CommentAction, Envelope, Event, PullRequest, PullRequestAction};
use crate::lane::grant::{self, Blocker};
use crate::lane::incident::format_utc;
use crate::lane::membership::who_can_authorize;
use crate::lane::policy::parse_duration;
use crate::lane::step::{authorization as authorized_by, Input};
use crate::lane::track;

pub(super) async fn run<F: Forge>(forge: &F, envelope: &Envelope, decision: Decision) -> Result<ExitCode, String> {
    let files = runner::Files::from_env();
    let write = |e: std::io::Error| format!("cannot write the step's outputs: {e}");
    let repo = envelope.repo.as_ref().ok_or("the event names no repository")?;
    let policy = decision.policy.clone();
    let loaded = Loaded { policy: policy.clone(), error: None, blob: None };
    let Some((by, duration, reason)) = authorization(envelope, &policy) else {
        println!("no authorization in this event: nothing to merge");
        files.output("merged", "none").map_err(write)?;
        return Ok(ExitCode::SUCCESS);
    };
    // A re-run replays the event of the first run: the responder's authorization of then,
    // which must not cover whatever the change is now.
    if env("GITHUB_RUN_ATTEMPT").and_then(|a| a.parse::<u32>().ok()).is_some_and(|a| a > 1) {
        files.output("merged", "none").map_err(write)?;
        return Err(format!(
            "a re-run replays @{by}'s authorization from the first run; a responder must authorize again"
        ));
    }
    if !forge.is_responder(&repo.full_name, &by, &policy.responders).await.map_err(|e| e.to_string())? {
        return Err(format!("@{by} is not a responder. {}", who_can_authorize(&policy)));
    }
    let number = decision.pull.number;
    let clock = SystemClock;
    // A label covers the commit the change had when it was applied, as the event says; a
    // comment names no commit, so it covers the head when the job starts.
    let seen = match &envelope.event {
        Event::PullRequest { pull, .. } => {
            PullRequest { head_sha: pull.head_sha.clone(), base_ref: pull.base_ref.clone(), ..decision.pull.clone() }
        }
        _ => decision.pull.clone(),
    };
    let head_author = if grant::needs_head_author(&seen, &by, &policy) {
        forge.commit_author(&repo.full_name, &seen.head_sha).await.map_err(|e| e.to_string())?
    } else {
        None
    };
    let request = grant::Request { by: &by, duration, reason, head_author: head_author.as_deref() };
    let granted = grant::authorize(&seen, request, &policy, clock.now_ms())?;
    let short: String = granted.sha.chars().take(7).collect();
    println!("authorized by @{by} for {short} until {}", format_utc(granted.expires_at));
    if granted.self_authorized {
        runner::warning(&format!("@{by} authorized their own change (self-authorized: no second person)"));
    }
    let wait = duration_input("WAIT", "30m")?;
    let poll = duration_input("POLL_INTERVAL", "15s")?;
    let deadline = (clock.now_ms() + wait.as_millis() as i64).min(granted.expires_at);
    loop {
        let now = clock.now_ms();
        let pull =
            forge.pull(&repo.full_name, number).await.map_err(|e| e.to_string())?.ok_or("the pull request is gone")?;
        if pull.merged {
            files.output("merged", "merged").map_err(write)?;
            println!("#{number} is merged");
            return Ok(ExitCode::SUCCESS);
        }
        let current = decide_for(forge, repo, pull.clone()).await?;
        let mut facts = track::first_seen(&pull);
        facts.lane.membership = current.membership.clone();
        facts.lane.grant = Some(granted.clone());
        facts.lane.remember(&pull.head_sha, &current.lane);
        facts.lane.remember(&pull.head_sha, &current.postmortem);
        // The merge itself reads the change, its checks and its postmortem again.
        let input = Input::ChecksMoved { sha: pull.head_sha.clone(), new_run: false };
        let facts = match super::lane(forge, repo, &loaded, number, Some(facts.clone()), input, merges).await {
            Ok(decided) => {
                trail(&decided.audit);
                let facts = decided.facts.unwrap_or(facts);
                let outcome = if facts.lane.merged.is_some() {
                    Some("merged")
                } else if facts.lane.enqueued.is_some() {
                    Some("enqueued")
                } else if let Some((_, why)) = &facts.lane.merge_refused {
                    return Err(format!("GitHub refused the merge: {why}"));
                } else {
                    None
                };
                if let Some(outcome) = outcome {
                    files.output("merged", outcome).map_err(write)?;
                    let line = format!("#{number} {outcome} at {short} on {}", authorized_by(&granted));
                    files.summary(&format!("### hotfix-lane merge\n\n{line}\n")).map_err(write)?;
                    println!("{line}");
                    return Ok(ExitCode::SUCCESS);
                }
                facts
            }
            // The base moved under the merge: try again at the next look.
            Err(StepError::Retry(why)) => {
                println!("{}", runner::escape_data(&why));
                facts
            }
            Err(err) => return Err(err.to_string()),
        };
        match grant::readiness(&facts, &policy, now) {
            Err(blocker @ (Blocker::PostmortemNotGreen | Blocker::SmokePending(_))) if now < deadline => {
                println!("{}", runner::escape_data(&blocker.explain()));
            }
            Err(blocker) => {
                files.output("merged", "none").map_err(write)?;
                return Err(format!("not merged: {}", blocker.explain()));
            }
            Ok(()) if now >= deadline => {
                files.output("merged", "none").map_err(write)?;
                return Err("not merged before the wait ran out".into());
            }
            Ok(()) => {}
        }
        tokio::time::sleep(poll).await;
    }
}

/// Who authorized in this event, for how long and why: a new `/hotfix authorize` comment, or
/// the lane label being applied. Edited comments never authorize.
fn authorization(
    envelope: &Envelope,
    policy: &crate::lane::policy::Policy,
) -> Option<(String, Option<Duration>, Option<String>)> {
    match &envelope.event {
        Event::Comment { action: CommentAction::Created, comment, .. } => {
            command::parse(&comment.body).into_iter().filter_map(Result::ok).find_map(|c| match c {
                Command::Authorize { duration, reason } => Some((comment.author.login.clone(), duration, reason)),
                _ => None,
            })
        }
        Event::PullRequest { action: PullRequestAction::Labeled, label: Some(label), .. }
            if label.eq_ignore_ascii_case(&policy.lane.label) =>
        {
            Some((envelope.sender.login.clone(), None, None))
        }
        _ => None,
    }
}

fn duration_input(name: &str, default: &str) -> Result<Duration, String> {
    let text = env(&format!("INPUT_{name}")).unwrap_or_else(|| default.to_string());
    parse_duration(&text).map_err(|e| format!("input `{}`: {e}", name.to_lowercase().replace('_', "-")))
}

/// What the server would have written to the audit log, in the job's log.
fn trail(audit: &[Audit]) {
    for entry in audit {
        println!("audit: {} {}", entry.action, runner::escape_data(&entry.detail));
    }
}

/// The effects the Action carries out: the merge and what follows from it. It keeps no lane
/// comment and no reports (the workflow's own jobs are its checks).
fn merges(effect: &Effect) -> bool {
    matches!(effect, Effect::Merge { .. } | Effect::EnqueueFirst { .. } | Effect::Comment { .. } | Effect::Retry { .. })
}
