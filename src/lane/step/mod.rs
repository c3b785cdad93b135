//! The lane's decisions about one change, as one pure step: the facts known so far, an input
//! (an event, a command, a forge's answer), what was observed on the forge, the policy and the
//! time go in; the new facts, effects as data and audit entries come out.
//!
//! A step that needs to see something first (who applied the label, the commit's checks, a
//! fresh read of the change before a merge) says so by returning the [`Need`]; the glue
//! observes it and runs the step again with it. [`needs`] is that companion: the same rules,
//! so the observations asked for are exactly those the decision reads.

mod commands;
mod enter;
mod merge;
mod observed;
mod publish;

#[cfg(test)]
mod tests;

pub use merge::{authorization, status_line, MergeAnswer};
pub use observed::{Answer, Need, Observed};

use super::audit::{Audit, AuditAction};
use super::command::Command;
use super::conventions::Conventions;
use super::effect::{Effect, Opening};
use super::event::{PullRequest, PullRequestAction, RepoRef};
use super::policy::{MergeMethod, Policy, PolicyError};
use super::postmortem::IssueLookup;
use super::track::PullFacts;
use crate::store::Millis;

/// Who a sweep's reads are audited as.
const SWEEPER: &str = "hotfix-lane";

/// What a step decides with, beside the change's facts.
pub struct Ctx<'a> {
    pub repo: &'a RepoRef,
    /// The GitHub App installation events come through, kept with the facts.
    pub installation_id: Option<u64>,
    pub policy: &'a Policy,
    /// The problem with the policy file on the default branch, when the last good one applies.
    pub policy_error: Option<&'a PolicyError>,
    pub conventions: &'a Conventions,
    /// Whether the lane's reports can be required from the lane alone (a GitHub App's check
    /// runs): a check it passes by itself, such as `hotfix-lane/approval`, needs that.
    pub pinned_reports: bool,
    pub now: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The change as an event — or a fresh read, for a sweep — shows it; `actor` caused it.
    /// `added`: the labels this event applied (none unless `action` is `Labeled`).
    Change { action: PullRequestAction, change: Box<PullRequest>, added: Vec<String>, actor: String },
    /// The change as a sweep read it: an edit by the lane itself, after which the approval
    /// check is posted again whatever the lane last posted — a pass posted for a merge whose
    /// take-back was lost with a failed call or a killed process must not stand.
    Swept { change: Box<PullRequest> },
    /// The commands of a new comment on the change.
    Commands { comment_id: u64, actor: String, commands: Vec<Command> },
    /// A check on commit `sha` moved; `new_run`: a CI run started on it (which shows only the
    /// reports posted into it).
    ChecksMoved { sha: String, new_run: bool },
    /// Someone reviewed the change at commit `sha`.
    Reviewed { sha: String },
    /// The issue the change names as its postmortem changed, as its event says.
    IssueChanged { lookup: IssueLookup },
    /// The forge's answer to [`Effect::Merge`].
    MergeAnswered { sha: String, method: MergeMethod, answer: MergeAnswer },
    /// The issue [`Effect::OpenPostmortem`] found or opened.
    PostmortemOpened { issue: u64, opening: Box<Opening> },
    /// The id of the lane's comment, once written.
    CommentWritten { id: u64 },
}

/// What a step decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// The change's facts now; `None` when the input changed nothing worth recording.
    pub facts: Option<PullFacts>,
    pub effects: Vec<Effect>,
    pub audit: Vec<Audit>,
}

/// Decides on `input`, or says what must be observed first.
pub fn step(prior: Option<&PullFacts>, input: &Input, seen: &Observed, ctx: &Ctx) -> Result<Step, Need> {
    match input {
        Input::Change { action, change, added, actor } => {
            enter::on_change(prior, *action, change, added, actor, true, seen, ctx)
        }
        Input::Swept { change } => {
            let mut prior = prior.cloned();
            if let Some(p) = prior.as_mut() {
                p.lane.reported.remove(super::approval::APPROVAL_CONTEXT);
            }
            enter::on_change(prior.as_ref(), PullRequestAction::Edited, change, &[], SWEEPER, true, seen, ctx)
        }
        Input::Commands { comment_id, actor, commands } => {
            commands::on_commands(prior, *comment_id, actor, commands, seen, ctx)
        }
        Input::ChecksMoved { sha, new_run } => match prior {
            Some(facts) if facts.head_sha == *sha => {
                publish::checks_moved(Out::new(facts.clone()), *new_run, seen, ctx)
            }
            _ => Ok(Step::default()),
        },
        Input::Reviewed { sha } => match prior {
            Some(facts) if facts.head_sha == *sha && facts.state == super::event::ItemState::Open => {
                let mut out = Out::new(facts.clone());
                publish::approval(&mut out, seen, ctx)?;
                Ok(out.done())
            }
            _ => Ok(Step::default()),
        },
        Input::IssueChanged { lookup } => match prior {
            Some(facts) if facts.state == super::event::ItemState::Open => {
                publish::issue_changed(Out::new(facts.clone()), lookup, seen, ctx)
            }
            _ => Ok(Step::default()),
        },
        Input::MergeAnswered { sha, method, answer } => match prior {
            Some(facts) => merge::answered(Out::new(facts.clone()), sha, *method, answer, seen, ctx),
            None => Ok(Step::default()),
        },
        Input::PostmortemOpened { issue, opening } => {
            let mut change = opening.change.clone();
            let separator = if change.body.trim().is_empty() { "" } else { "\n\n" };
            change.body = format!("{}{separator}Postmortem: #{issue}", change.body.trim_end());
            let mut step = enter::on_change(prior, opening.action, &change, &[], &opening.actor, false, seen, ctx)?;
            let sha = change.head_sha.clone();
            let detail = format!("#{issue} {}", opening.why);
            step.audit
                .insert(0, Audit { action: AuditAction::PostmortemOpened, actor: opening.actor.clone(), sha, detail });
            step.effects.insert(0, Effect::SetBody { body: change.body });
            Ok(step)
        }
        Input::CommentWritten { id } => Ok(Step {
            facts: prior.cloned().map(|mut f| {
                f.lane.comment_id = Some(*id);
                f
            }),
            ..Step::default()
        }),
    }
}

/// What `input` needs observed before the lane can decide on it (one thing at a time: what
/// comes next may depend on the answer).
pub fn needs(prior: Option<&PullFacts>, input: &Input, seen: &Observed, ctx: &Ctx) -> Option<Need> {
    step(prior, input, seen, ctx).err()
}

/// The authority `input` takes away, decided on what is known without asking the forge
/// anything more: kept even when the rest of the decision cannot be made (the forge is down,
/// an issue it names answers strangely). Nothing an author can make fail may keep a grant.
pub fn withdrawn(prior: Option<&PullFacts>, input: &Input, seen: &Observed, ctx: &Ctx) -> Option<Step> {
    match input {
        Input::Change { change, actor, .. } => enter::lapsed(prior, change, actor, ctx),
        Input::Swept { change } => enter::lapsed(prior, change, SWEEPER, ctx),
        Input::Commands { comment_id, actor, commands } => {
            commands::revoked(prior?, *comment_id, actor, commands, seen)
        }
        _ => None,
    }
}

/// A step being built: the facts, and what was decided so far.
struct Out {
    facts: PullFacts,
    effects: Vec<Effect>,
    audit: Vec<Audit>,
}

impl Out {
    fn new(facts: PullFacts) -> Out {
        Out { facts, effects: Vec::new(), audit: Vec::new() }
    }

    /// An entry about commit `sha`, caused by `actor`.
    fn audit(&mut self, action: AuditAction, actor: &str, sha: &str, detail: String) {
        self.audit.push(Audit { action, actor: actor.to_string(), sha: sha.to_string(), detail });
    }

    /// An entry about what hotfix-lane does on its own, on the change's head.
    fn own(&mut self, action: AuditAction, detail: String) {
        let sha = self.facts.head_sha.clone();
        self.audit(action, "hotfix-lane", &sha, detail);
    }

    fn done(self) -> Step {
        Step { facts: Some(self.facts), effects: self.effects, audit: self.audit }
    }
}
