//! Slash commands from change comments. `/hotfix postmortem` opens the postmortem issue.

use super::observe::head_author;
use super::postmortem_issue;
use super::pull;
use super::{AuditScope, Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::command::{self, Command};
use crate::lane::event::{self, CommentAction, Envelope, Event, PullRequest, PullRequestAction, RepoRef};
use crate::lane::grant;
use crate::lane::incident::format_utc;
use crate::lane::membership::{self, Labeler};
use crate::lane::policy::Policy;
use crate::lane::track;
use crate::store::Write;

pub(super) async fn on_comment<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    action: CommentAction,
    number: u64,
    comment: &event::Comment,
) -> Result<Vec<Write>, StepError> {
    // Edited and deleted comments never run commands: an edit could turn someone else's
    // harmless comment into one.
    let commands: Vec<Command> = match action {
        CommentAction::Created => command::parse(&comment.body).into_iter().filter_map(Result::ok).collect(),
        _ => vec![],
    };
    if commands.is_empty() {
        return d.track_only(envelope).await;
    }
    let now = d.clock.now_ms();
    let loaded = d.policies.get(forge, &repo.full_name).await?;
    let policy = &loaded.policy;
    let actor = &comment.author.login;
    let responder = d.responders.check(forge, &repo.full_name, actor, &loaded, now).await?;
    let forge_name = envelope.forge.as_str();
    let mut prior = d.pull_state(forge_name, repo.id, number).await?;
    // Comment ids only grow: a comment no newer than the last one acted on is a redelivery or
    // arrived late, and its commands — an old authorize among them — must not run again.
    if prior.as_ref().and_then(|p| p.lane.last_comment).is_some_and(|last| comment.id <= last) {
        return d.track_only(envelope).await;
    }
    // A commenter who may run none of their commands costs no look-ups: not a responder, and
    // not the change's known author (who may open its postmortem and ask for backports).
    let author = prior.as_ref().and_then(|p| p.author.as_deref()).is_some_and(|a| a.eq_ignore_ascii_case(actor));
    let authors_own = |c: &Command| matches!(c, Command::Postmortem | Command::Backport { .. });
    let may_run_some = responder || (author && commands.iter().any(authors_own));
    let author_unknown = prior.is_none() && commands.iter().any(authors_own);
    if !may_run_some && !author_unknown {
        return refuse(forge, envelope, repo, (number, comment.id), actor, &commands, prior, policy, now).await;
    }
    let Some(mut pull) = forge.pull(&repo.full_name, number).await? else {
        return Err(StepError::Invalid(format!("pull request #{number} not found")));
    };
    prior.get_or_insert_with(|| track::first_seen(&pull)).lane.last_comment = Some(comment.id);
    let head_sha = pull.head_sha.clone();
    let scope = AuditScope { at: now, forge: forge_name, repo: &repo.full_name, number, actor, sha: &head_sha };
    let audit = |action: &str, detail: String| scope.entry(action, detail);
    let mut writes = Vec::new();
    let mut revoked = Vec::new();
    let mut refusals = Vec::new();
    for command in commands {
        match command {
            Command::Postmortem if responder || actor.eq_ignore_ascii_case(&pull.author.login) => {
                let labeler = prior.as_ref().and_then(|p| p.lane.labeler.clone());
                if let Some(issue) =
                    postmortem_issue::ensure(d, forge, repo, &mut pull, labeler.as_ref(), policy).await?
                {
                    writes.push(audit("postmortem.opened", format!("#{issue} opened on request and linked")));
                }
            }
            Command::Postmortem => {
                let why = ONLY_THEM.replace("{what}", "open its postmortem");
                writes.push(audit("postmortem.command_refused", why.clone()));
                refusals.push(format!("`/hotfix postmortem`: {why}."));
            }
            Command::Authorize { .. } | Command::Revoke if !responder => {
                writes.push(audit("grant.refused", format!("@{actor} is not a responder")));
                refusals.push(format!("@{actor} is not a responder. {}", membership::who_can_authorize(policy)));
            }
            Command::Authorize { duration, reason } => {
                let has_label = pull.labels.iter().any(|l| l.eq_ignore_ascii_case(&policy.lane.label));
                // The grant covers the change as the responder saw it: the head and base of the
                // events delivered before their comment, not a push that raced it (which, if
                // newer, then voids the grant as it arrives).
                let seen = match &prior {
                    Some(p) => {
                        PullRequest { head_sha: p.head_sha.clone(), base_ref: p.base_ref.clone(), ..pull.clone() }
                    }
                    None => pull.clone(),
                };
                let granted = if has_label {
                    let head_author = head_author(forge, repo, &seen, actor, policy).await?;
                    let request = grant::Request { by: actor, duration, reason, head_author: head_author.as_deref() };
                    grant::authorize(&seen, request, policy, now)
                } else {
                    Err(format!(
                        "add the `{}` label first: authorization applies to changes in the lane",
                        policy.lane.label
                    ))
                };
                let g = match granted {
                    Ok(g) => g,
                    Err(why) => {
                        writes.push(audit("grant.refused", why.clone()));
                        refusals.push(format!("`/hotfix authorize`: {why}."));
                        continue;
                    }
                };
                let detail = format!(
                    "until {}{}",
                    format_utc(g.expires_at),
                    g.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                );
                writes.push(audit("grant.created", pull::self_marked(detail, &g)));
                let facts = prior.get_or_insert_with(|| track::first_seen(&pull));
                // A responder's authorization also vouches for the label.
                facts.lane.labeler = Some(Labeler { login: actor.clone(), responder: true, at: now });
                facts.lane.grant = Some(g);
                facts.lane.lapsed = None;
            }
            Command::Revoke => {
                if prior.as_mut().and_then(|p| p.lane.grant.take()).is_some() {
                    let entry = audit("grant.revoked", "by command".into());
                    writes.push(entry.clone());
                    revoked.push(entry);
                }
            }
            Command::Backport { branch } if responder || actor.eq_ignore_ascii_case(&pull.author.login) => {
                let facts = prior.get_or_insert_with(|| track::first_seen(&pull));
                if !facts.lane.backport_requests.contains(&branch) {
                    writes.push(audit("backport.requested", format!("to {branch}")));
                    facts.lane.backport_requests.push(branch);
                }
            }
            Command::Backport { .. } => {
                let why = ONLY_THEM.replace("{what}", "ask for backports");
                writes.push(audit("backport.command_refused", why.clone()));
                refusals.push(format!("`/hotfix backport`: {why}."));
            }
        }
    }
    if !refusals.is_empty() {
        let body = format!("{REFUSAL_MARKER}\n### hotfix-lane\n\n{}\n", refusals.join("\n\n"));
        forge.upsert_comment(&repo.full_name, number, None, REFUSAL_MARKER, &body).await?;
    }
    // Evaluate the change as it now reads, as its `edited` event would.
    let edited = Envelope {
        event: Event::PullRequest { action: PullRequestAction::Edited, pull: pull.clone(), label: None },
        ..envelope.clone()
    };
    match pull::on_pull(d, forge, &edited, repo, PullRequestAction::Edited, &pull, None, prior.clone()).await {
        Ok(evaluated) => {
            writes.extend(evaluated);
            Ok(writes)
        }
        // A revoke stands even when the evaluation after it cannot finish.
        Err(err) => match prior.as_ref().filter(|_| !revoked.is_empty()) {
            Some(facts) => pull::lapsed_first(envelope, repo, facts, revoked, Err(err), now),
            None => Err(err),
        },
    }
}

/// A non-responder's `/hotfix authorize` or `revoke`: audited every time, answered once per
/// commenter and change, and with nothing else looked up — a flood of them costs the policy's
/// revalidation and nothing more.
#[allow(clippy::too_many_arguments)]
async fn refuse<F: Forge>(
    forge: &F,
    envelope: &Envelope,
    repo: &RepoRef,
    (number, comment_id): (u64, u64),
    actor: &str,
    commands: &[Command],
    prior: Option<track::PullFacts>,
    policy: &Policy,
    now: crate::store::Millis,
) -> Result<Vec<Write>, StepError> {
    let forge_name = envelope.forge.as_str();
    let mut facts = match prior {
        Some(facts) => facts,
        None => {
            let Some(pull) = forge.pull(&repo.full_name, number).await? else {
                return Err(StepError::Invalid(format!("pull request #{number} not found")));
            };
            let seen = Envelope {
                event: Event::PullRequest { action: PullRequestAction::Edited, pull, label: None },
                ..envelope.clone()
            };
            track::observe(None, &seen).expect("a pull request event has a subject")
        }
    };
    let scope = AuditScope { at: now, forge: forge_name, repo: &repo.full_name, number, actor, sha: &facts.head_sha };
    let mut writes: Vec<Write> = commands
        .iter()
        .map(|c| match c {
            Command::Postmortem => {
                scope.entry("postmortem.command_refused", ONLY_THEM.replace("{what}", "open its postmortem"))
            }
            Command::Backport { .. } => {
                scope.entry("backport.command_refused", ONLY_THEM.replace("{what}", "ask for backports"))
            }
            _ => scope.entry("grant.refused", format!("@{actor} is not a responder")),
        })
        .collect();
    facts.lane.last_comment = Some(comment_id);
    if facts.lane.refused.insert(actor.to_ascii_lowercase()) {
        let body = format!(
            "{REFUSAL_MARKER}\n### hotfix-lane\n\n@{actor} is not a responder. {}\n",
            membership::who_can_authorize(policy)
        );
        forge.upsert_comment(&repo.full_name, number, None, REFUSAL_MARKER, &body).await?;
    }
    writes.push(super::lane_state_write(forge_name, repo.id, &facts));
    Ok(writes)
}

/// Why someone else's `postmortem` or `backport` command is refused.
const ONLY_THEM: &str = "only responders and the change's author may {what}";

/// Marks the comment that answers refused commands.
const REFUSAL_MARKER: &str = "<!-- hotfix-lane:refused -->";
