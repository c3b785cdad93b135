//! Mode `merge` on GitLab: no event starts the job, so the authorization is read from the
//! merge request's history. A responder's `/hotfix authorize` note, or a responder applying the
//! lane label, authorizes the head commit when it is newer than that commit's arrival on the
//! merge request; a responder's later `/hotfix revoke` takes it back. Edited notes never count,
//! and a note by someone who is not a responder is named in the log and passed over.

use crate::ci::runner::Runner;
use crate::ci::Authorization;
use crate::forge::gitlab::GitLab;
use crate::forge::{Forge, ForgeError};
use crate::lane::command::{self, Command};
use crate::lane::event::PullRequest;
use crate::lane::incident::format_utc;
use crate::lane::policy::Policy;
use crate::store::Millis;

enum Said {
    Authorize(Box<Authorization>),
    Revoke { by: String, at: Millis },
}

/// The newest authorization of `pull`'s head, or why there is none.
pub async fn find(
    forge: &GitLab,
    runner: &dyn Runner,
    repo: &str,
    pull: &PullRequest,
    policy: &Policy,
) -> Result<Result<Authorization, String>, ForgeError> {
    let short: String = pull.head_sha.chars().take(7).collect();
    let Some(since) = forge.head_since(repo, pull.number, &pull.head_sha).await? else {
        return Ok(Err(format!("GitLab has not recorded when {short} became the head yet; run the job again")));
    };
    let authorize = |by: &str, duration, reason, at| {
        Said::Authorize(Box::new(Authorization { by: by.to_string(), duration, reason, seen: pull.clone(), at }))
    };
    let mut said = vec![];
    for note in forge.notes(repo, pull.number).await? {
        if note.edited || note.created_at <= since {
            continue;
        }
        for parsed in command::parse(&note.body).into_iter().filter_map(Result::ok) {
            match parsed {
                Command::Authorize { duration, reason } => {
                    said.push(authorize(&note.author, duration, reason, note.created_at))
                }
                Command::Revoke => said.push(Said::Revoke { by: note.author.clone(), at: note.created_at }),
                _ => {}
            }
        }
    }
    if let Some((by, at)) = forge.labeler(repo, pull.number, &policy.lane.label).await? {
        if at > since {
            said.push(authorize(&by, None, None, at));
        }
    }
    // Newest first; within one note, its last command.
    said.reverse();
    said.sort_by_key(|s| {
        std::cmp::Reverse(match s {
            Said::Authorize(a) => a.at,
            Said::Revoke { at, .. } => *at,
        })
    });
    for entry in said {
        let by = match &entry {
            Said::Authorize(a) => a.by.as_str(),
            Said::Revoke { by, .. } => by.as_str(),
        };
        if !forge.is_responder(repo, by, &policy.responders).await? {
            runner.line(&format!("@{by} is not a responder: what they said on the merge request does not count"));
            continue;
        }
        return Ok(match entry {
            Said::Authorize(given) => Ok(*given),
            Said::Revoke { by, at } => Err(format!("@{by} revoked the authorization at {}", format_utc(at))),
        });
    }
    Ok(Err(format!("no responder has authorized {short} since it became the head at {}", format_utc(since))))
}
