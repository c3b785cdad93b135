//! Slash commands from a change's comments: `/hotfix authorize`, `revoke`, `postmortem`,
//! `backport <branch>` and `revert`, each allowed only to whom it belongs.

use super::enter::{self, head_author, opening, self_marked};
use super::{Ctx, Need, Observed, Out, Step};
use crate::lane::audit::AuditAction;
use crate::lane::command::Command;
use crate::lane::effect::Effect;
use crate::lane::event::{ItemState, PullRequest, PullRequestAction};
use crate::lane::grant;
use crate::lane::incident::format_utc;
use crate::lane::job::{Job, Subject};
use crate::lane::membership::{self, Labeler, Membership};
use crate::lane::track::{self, PullFacts};

/// Why someone else's `postmortem` or `backport` command is refused.
const ONLY_THEM: &str = "only responders and the change's author may {what}";

/// Marks the comment that answers refused commands.
const REFUSAL_MARKER: &str = "<!-- hotfix-lane:refused -->";

/// The audit entry of a command `actor` may not run, and why.
fn refusal(command: &Command, actor: &str) -> (AuditAction, String) {
    match command {
        Command::Postmortem => {
            (AuditAction::PostmortemCommandRefused, ONLY_THEM.replace("{what}", "open its postmortem"))
        }
        Command::Backport { .. } => {
            (AuditAction::BackportCommandRefused, ONLY_THEM.replace("{what}", "ask for backports"))
        }
        Command::Authorize { .. } | Command::Revoke => {
            (AuditAction::GrantRefused, format!("@{actor} is not a responder"))
        }
        Command::Revert => (AuditAction::RevertRefused, format!("@{actor} is not a responder")),
    }
}

fn authors_own(c: &Command) -> bool {
    matches!(c, Command::Postmortem | Command::Backport { .. })
}

pub(super) fn on_commands(
    prior: Option<&PullFacts>,
    comment_id: u64,
    actor: &str,
    commands: &[Command],
    seen: &Observed,
    ctx: &Ctx,
) -> Result<Step, Need> {
    // Comment ids only grow: a comment no newer than the last one acted on is a redelivery or
    // arrived late, and its commands — an old authorize among them — must not run again.
    if prior.and_then(|p| p.lane.last_comment).is_some_and(|last| comment_id <= last) {
        return Ok(Step::default());
    }
    let responder = seen.responder(actor)?;
    // A commenter who may run none of their commands costs no look-ups: not a responder, and
    // not the change's known author (who may open its postmortem and ask for backports).
    let author = prior.and_then(|p| p.author.as_deref()).is_some_and(|a| a.eq_ignore_ascii_case(actor));
    let may_run_some = responder || (author && commands.iter().any(authors_own));
    let author_unknown = prior.is_none() && commands.iter().any(authors_own);
    if !may_run_some && !author_unknown {
        return refuse(prior, comment_id, actor, commands, seen, ctx);
    }
    let Some(change) = seen.change()?.cloned() else { return Ok(not_found(ctx)) };
    let mut facts = prior.cloned().unwrap_or_else(|| first_seen(&change, ctx));
    facts.lane.last_comment = Some(comment_id);
    let is_author = actor.eq_ignore_ascii_case(&change.author.login);
    let mut out = Out::new(facts);
    let sha = change.head_sha.clone();
    let mut refusals = Vec::new();
    let mut postmortem = None;
    for command in commands {
        match command {
            Command::Postmortem if responder || is_author => {
                let why = "opened on request and linked";
                if postmortem.is_none() {
                    postmortem = opening(&out.facts, &change, PullRequestAction::Edited, actor, why, seen, ctx)?;
                }
            }
            Command::Postmortem => {
                let (action, why) = refusal(command, actor);
                out.audit(action, actor, &sha, why.clone());
                refusals.push(format!("`/hotfix postmortem`: {why}."));
            }
            Command::Authorize { .. } | Command::Revoke | Command::Revert if !responder => {
                let (action, why) = refusal(command, actor);
                out.audit(action, actor, &sha, why);
                refusals.push(format!(
                    "@{actor} is not a responder. {}",
                    membership::who_can_authorize(ctx.policy, ctx.conventions)
                ));
            }
            Command::Authorize { duration, reason } => {
                match authorize(&out.facts, prior, &change, actor, *duration, reason.clone(), seen, ctx)? {
                    Ok(g) => {
                        let detail = format!(
                            "until {}{}",
                            format_utc(g.expires_at),
                            g.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                        );
                        out.audit(AuditAction::GrantCreated, actor, &sha, self_marked(detail, &g));
                        // A responder's authorization also vouches for the label.
                        out.facts.lane.labeler =
                            Some(Labeler { login: actor.to_string(), responder: true, at: ctx.now });
                        out.facts.lane.grant = Some(g);
                        out.facts.lane.lapsed = None;
                    }
                    Err(why) => {
                        out.audit(AuditAction::GrantRefused, actor, &sha, why.clone());
                        refusals.push(format!("`/hotfix authorize`: {why}."));
                    }
                }
            }
            Command::Revoke => {
                // A revert's one-shot label goes with its grant: re-labelling gives nothing back.
                out.facts.lane.revert_for = None;
                if out.facts.lane.grant.take().is_some() {
                    // The comment says why the grant is gone, as for a push or an expiry.
                    out.facts.lane.lapsed = Some(format!("revoked by @{actor}"));
                    out.audit(AuditAction::GrantRevoked, actor, &sha, "by command".into());
                }
            }
            Command::Backport { branch } if responder || is_author => {
                if !out.facts.lane.backport_requests.contains(branch) {
                    out.audit(AuditAction::BackportRequested, actor, &sha, format!("to {branch}"));
                    out.facts.lane.backport_requests.push(branch.clone());
                }
            }
            Command::Backport { .. } => {
                let (action, why) = refusal(command, actor);
                out.audit(action, actor, &sha, why.clone());
                refusals.push(format!("`/hotfix backport`: {why}."));
            }
            Command::Revert => match revertible(&out.facts, &change, ctx) {
                Err(why) => {
                    out.audit(AuditAction::RevertRefused, actor, &sha, why.clone());
                    refusals.push(format!("`/hotfix revert`: {why}."));
                }
                // Once per change: a second command, or the comment redelivered, opens nothing.
                Ok(()) if out.facts.lane.revert_requested.is_some() => {}
                Ok(()) => {
                    let merged = change.merge_commit_sha.clone().unwrap_or_else(|| sha.clone());
                    out.audit(AuditAction::RevertRequested, actor, &merged, "by command".into());
                    out.facts.lane.revert_requested = Some(actor.to_string());
                    let subject = Subject {
                        forge: ctx.conventions.forge,
                        repo: ctx.repo.clone(),
                        number: change.number,
                        installation_id: ctx.installation_id,
                    };
                    out.effects.push(Effect::Enqueue(Job::Revert { change: subject, by: actor.to_string() }));
                }
            },
        }
    }
    if !refusals.is_empty() {
        let body = format!("{REFUSAL_MARKER}\n### hotfix-lane\n\n{}\n", refusals.join("\n\n"));
        let (repo, number) = (ctx.repo.full_name.clone(), change.number);
        out.effects.push(Effect::Comment { repo, number, issue: false, marker: REFUSAL_MARKER, body });
    }
    if let Some(opening) = postmortem {
        // The evaluation goes on once the issue exists and is linked.
        out.effects.push(Effect::OpenPostmortem { opening: Box::new(opening) });
        return Ok(out.done());
    }
    // Evaluate the change as it now reads, as its `edited` event would.
    let Out { facts, mut effects, mut audit } = out;
    let evaluated = enter::on_change(Some(&facts), PullRequestAction::Edited, &change, &[], actor, true, seen, ctx)?;
    effects.extend(evaluated.effects);
    audit.extend(evaluated.audit);
    Ok(Step { facts: evaluated.facts.or(Some(facts)), effects, audit })
}

/// The grant for the change as the responder saw it: the head and base of the events delivered
/// before their comment, not a push that raced it (which, if newer, voids the grant as it
/// arrives).
#[allow(clippy::too_many_arguments)]
fn authorize(
    facts: &PullFacts,
    prior: Option<&PullFacts>,
    change: &PullRequest,
    actor: &str,
    duration: Option<std::time::Duration>,
    reason: Option<String>,
    seen: &Observed,
    ctx: &Ctx,
) -> Result<Result<grant::Grant, String>, Need> {
    let label = &ctx.policy.lane.label;
    if !change.labels.iter().any(|l| l.eq_ignore_ascii_case(label)) {
        return Ok(Err(format!("add the `{label}` label first: authorization applies to changes in the lane")));
    }
    let as_seen = match prior {
        Some(p) => PullRequest { head_sha: p.head_sha.clone(), base_ref: p.base_ref.clone(), ..change.clone() },
        None => PullRequest { head_sha: facts.head_sha.clone(), base_ref: facts.base_ref.clone(), ..change.clone() },
    };
    let head_author = head_author(&as_seen, actor, seen, ctx)?;
    let request = grant::Request { by: actor, duration, reason, head_author: head_author.as_deref() };
    Ok(grant::authorize(&as_seen, request, ctx.policy, ctx.now))
}

/// Whether `/hotfix revert` applies: only a hotfix that merged in the lane is rolled back by
/// the lane (anything else is reverted the ordinary way, with the forge's own button).
fn revertible(facts: &PullFacts, change: &PullRequest, ctx: &Ctx) -> Result<(), String> {
    let noun = ctx.conventions.change_noun;
    if change.state != ItemState::Merged {
        return Err(format!("only a merged {noun} can be reverted, and this one is not merged"));
    }
    if !matches!(facts.lane.membership, Membership::Hotfix { .. }) {
        return Err(format!("this {noun} did not merge in the lane: revert it the usual way"));
    }
    if change.merge_commit_sha.as_deref().is_none_or(str::is_empty) {
        return Err(format!("this {noun} merged without a merge commit to revert"));
    }
    Ok(())
}

/// A commenter's commands none of which they may run: audited every time, answered once per
/// commenter and change, and with nothing else looked up — a flood of them costs the policy's
/// revalidation and nothing more.
fn refuse(
    prior: Option<&PullFacts>,
    comment_id: u64,
    actor: &str,
    commands: &[Command],
    seen: &Observed,
    ctx: &Ctx,
) -> Result<Step, Need> {
    let facts = match prior {
        Some(facts) => facts.clone(),
        None => match seen.change()? {
            Some(change) => first_seen(change, ctx),
            None => return Ok(not_found(ctx)),
        },
    };
    let mut out = Out::new(facts);
    let sha = out.facts.head_sha.clone();
    for command in commands {
        let (action, why) = refusal(command, actor);
        out.audit(action, actor, &sha, why);
    }
    out.facts.lane.last_comment = Some(comment_id);
    if out.facts.lane.refused.insert(actor.to_ascii_lowercase()) {
        let body = format!(
            "{REFUSAL_MARKER}\n### hotfix-lane\n\n@{actor} is not a responder. {}\n",
            membership::who_can_authorize(ctx.policy, ctx.conventions)
        );
        let (repo, number) = (ctx.repo.full_name.clone(), out.facts.number);
        out.effects.push(Effect::Comment { repo, number, issue: false, marker: REFUSAL_MARKER, body });
    }
    Ok(out.done())
}

/// A responder's revoke, kept when the rest of the comment's work cannot finish.
pub(super) fn revoked(
    prior: &PullFacts,
    comment_id: u64,
    actor: &str,
    commands: &[Command],
    seen: &Observed,
) -> Option<Step> {
    let newer = prior.lane.last_comment.is_none_or(|last| comment_id > last);
    let revokes = commands.iter().any(|c| matches!(c, Command::Revoke));
    if !newer || !revokes || prior.lane.grant.is_none() || seen.known_responder(actor) != Some(true) {
        return None;
    }
    let mut out = Out::new(prior.clone());
    out.facts.lane.grant = None;
    out.facts.lane.revert_for = None;
    out.facts.lane.lapsed = Some(format!("revoked by @{actor}"));
    out.facts.lane.last_comment = Some(comment_id);
    let sha = out.facts.head_sha.clone();
    out.audit(AuditAction::GrantRevoked, actor, &sha, "by command".into());
    Some(out.done())
}

/// A change the forge no longer has cannot take commands: the job fails with the reason.
fn not_found(ctx: &Ctx) -> Step {
    let reason = format!("the {} is not found", ctx.conventions.change_noun);
    Step { effects: vec![Effect::Retry { reason, failed: true }], ..Step::default() }
}

fn first_seen(change: &PullRequest, ctx: &Ctx) -> PullFacts {
    PullFacts { repo: Some(ctx.repo.clone()), installation_id: ctx.installation_id, ..track::first_seen(change) }
}
