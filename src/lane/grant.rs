//! Pre-authorization: a responder's time-bound grant, tied to one commit and one base branch,
//! what makes it lapse, and whether a change may be merged on it now.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::audit::AuditAction;
use super::event::{ItemState, PullRequest};
use super::policy::Policy;
use super::report::CheckState;
use super::track::PullFacts;
use crate::store::Millis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub by: String,
    /// The head commit the grant covers; a push voids it.
    pub sha: String,
    /// The branch the change was to merge into; retargeting voids the grant. (Grants stored
    /// before this was recorded have none, and so cover nothing.)
    #[serde(default)]
    pub base: String,
    /// The lane label the change carried; removing it ends the grant.
    #[serde(default)]
    pub label: String,
    pub granted_at: Millis,
    pub expires_at: Millis,
    pub reason: Option<String>,
    /// Given by the change's own author, as the policy allows with `merge.allow_self_authorize`.
    #[serde(default)]
    pub self_authorized: bool,
}

/// What a responder asks for when they authorize.
pub struct Request<'a> {
    pub by: &'a str,
    pub duration: Option<Duration>,
    pub reason: Option<String>,
    /// Who GitHub says wrote the head commit, when it links the commit to an account.
    pub head_author: Option<&'a str>,
}

/// Whether the two-person rule needs the head commit's author: not when the authorizer wrote
/// the change anyway, or the policy lets them authorize their own.
pub fn needs_head_author(pull: &PullRequest, by: &str, policy: &Policy) -> bool {
    !policy.merge.allow_self_authorize && !by.eq_ignore_ascii_case(&pull.author.login)
}

/// The grant for `pull`, or why the lane may not give one: changes from forks, and changes the
/// authorizer wrote themselves (two people by default), unless the policy allows them.
pub fn authorize(pull: &PullRequest, request: Request<'_>, policy: &Policy, now: Millis) -> Result<Grant, String> {
    if pull.from_fork && !policy.merge.allow_forks {
        return Err(
            "changes from forks are merged on authorization only with `merge.allow_forks = true` in the policy".into(),
        );
    }
    let by = request.by;
    let own =
        by.eq_ignore_ascii_case(&pull.author.login) || request.head_author.is_some_and(|a| a.eq_ignore_ascii_case(by));
    if own && !policy.merge.allow_self_authorize {
        return Err(format!(
            "@{by} wrote this change, and a change needs a second person to authorize it: another responder must \
             `/hotfix authorize` it (or the policy sets `merge.allow_self_authorize = true`)"
        ));
    }
    let length = request.duration.unwrap_or(policy.merge.max_grant).min(policy.merge.max_grant);
    Ok(Grant {
        by: by.to_string(),
        sha: pull.head_sha.clone(),
        base: pull.base_ref.clone(),
        label: policy.lane.label.clone(),
        granted_at: now,
        expires_at: now + length.as_millis() as Millis,
        reason: request.reason,
        self_authorized: own,
    })
}

/// Drops the grant if the change as it now is no longer carries it, remembering why for the
/// lane's comment. Returns the audit action and why.
pub fn drop_lapsed(facts: &mut PullFacts) -> Option<(AuditAction, String)> {
    let (action, why) = lapse(facts.lane.grant.as_ref()?, facts)?;
    facts.lane.grant = None;
    facts.lane.lapsed = Some(why.clone());
    Some((action, why))
}

/// Whether the change as it now is still carries the grant. A push or a new base voids it; the
/// label removed or the change closed ends it. A lapsed grant is dropped, never kept: pushing
/// the authorized commit back must not revive it. Returns the audit action and why.
pub fn lapse(grant: &Grant, facts: &PullFacts) -> Option<(AuditAction, String)> {
    if grant.sha != facts.head_sha {
        let short: String = grant.sha.chars().take(7).collect();
        return Some((AuditAction::GrantVoided, format!("new commits since the authorization of `{short}`")));
    }
    if grant.base != facts.base_ref {
        let was = if grant.base.is_empty() { "an unrecorded branch" } else { grant.base.as_str() };
        return Some((AuditAction::GrantVoided, format!("the base changed from {was} to {}", facts.base_ref)));
    }
    if facts.state != ItemState::Open {
        return Some((AuditAction::GrantCleared, "the change was closed".into()));
    }
    if !facts.labels.iter().any(|l| l.eq_ignore_ascii_case(&grant.label)) {
        return Some((AuditAction::GrantCleared, format!("the `{}` label was removed", grant.label)));
    }
    None
}

/// Why a change in the lane is not merged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    NotInLane,
    NotOpen,
    NoGrant,
    /// The grant there was lapsed (a push, a new base, the label removed), and why.
    Lapsed(String),
    Expired,
    /// New commits since the grant.
    Voided,
    PostmortemNotGreen,
    SmokeFailed(Vec<String>),
    SmokePending(Vec<String>),
}

impl Blocker {
    pub fn explain(&self) -> String {
        match self {
            Blocker::NotInLane => "not in the hotfix lane".into(),
            Blocker::NotOpen => "closed".into(),
            Blocker::NoGrant => "waiting for a responder's `/hotfix authorize`".into(),
            Blocker::Lapsed(why) => format!("{why}; a responder must `/hotfix authorize` the change as it is now"),
            Blocker::Expired => "the authorization expired; a responder can `/hotfix authorize` again".into(),
            Blocker::Voided => {
                "new commits since the authorization; a responder must `/hotfix authorize` this commit".into()
            }
            Blocker::PostmortemNotGreen => "waiting for `hotfix-lane/postmortem`".into(),
            Blocker::SmokeFailed(names) => format!("smoke checks failed: {}", quoted(names)),
            Blocker::SmokePending(names) => format!("waiting for smoke checks: {}", quoted(names)),
        }
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Whether the grant, if any, covers the change's head right now.
pub fn grant_blocker(facts: &PullFacts, now: Millis) -> Option<Blocker> {
    match &facts.lane.grant {
        None => Some(facts.lane.lapsed.clone().map_or(Blocker::NoGrant, Blocker::Lapsed)),
        Some(g) if g.sha != facts.head_sha || g.base != facts.base_ref => Some(Blocker::Voided),
        Some(g) if g.expires_at <= now => Some(Blocker::Expired),
        Some(_) => None,
    }
}

/// `Ok` when the lane may merge the change now: in the lane, open, a live grant for its head,
/// the postmortem check and every smoke check green on that head.
pub fn readiness(facts: &PullFacts, policy: &Policy, now: Millis) -> Result<(), Blocker> {
    if !facts.lane.membership.in_lane() {
        return Err(Blocker::NotInLane);
    }
    if facts.state != ItemState::Open {
        return Err(Blocker::NotOpen);
    }
    if let Some(blocker) = grant_blocker(facts, now) {
        return Err(blocker);
    }
    if !facts.reported_green(super::report::POSTMORTEM_CONTEXT) {
        return Err(Blocker::PostmortemNotGreen);
    }
    let result = |name: &String| facts.lane.checks.get(name).filter(|c| c.sha == facts.head_sha).map(|c| c.state);
    let names = || policy.merge.smoke_checks.iter().map(|c| &c.name);
    let failed: Vec<String> = names().filter(|n| result(n) == Some(CheckState::Failure)).cloned().collect();
    if !failed.is_empty() {
        return Err(Blocker::SmokeFailed(failed));
    }
    let pending: Vec<String> = names().filter(|n| result(n) != Some(CheckState::Success)).cloned().collect();
    if !pending.is_empty() {
        return Err(Blocker::SmokePending(pending));
    }
    Ok(())
}
