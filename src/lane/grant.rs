//! Pre-authorization: a responder's time-bound grant, tied to one commit, and whether a change
//! may be merged on it now.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::policy::Policy;
use super::report::CheckState;
use super::track::PullFacts;
use crate::store::Millis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub by: String,
    /// The head commit the grant covers; a push voids it.
    pub sha: String,
    pub granted_at: Millis,
    pub expires_at: Millis,
    pub reason: Option<String>,
}

impl Grant {
    pub fn new(
        by: &str,
        sha: &str,
        requested: Option<Duration>,
        reason: Option<String>,
        policy: &Policy,
        now: Millis,
    ) -> Grant {
        let length = requested.unwrap_or(policy.merge.max_grant).min(policy.merge.max_grant);
        Grant {
            by: by.to_string(),
            sha: sha.to_string(),
            granted_at: now,
            expires_at: now + length.as_millis() as Millis,
            reason,
        }
    }
}

/// Why a grant cannot be given to this change at all, if it cannot.
pub fn refusal(pull: &super::event::PullRequest, policy: &Policy) -> Option<String> {
    (pull.from_fork && !policy.merge.allow_forks).then(|| {
        "changes from forks are merged on authorization only with `merge.allow_forks = true` in the policy".into()
    })
}

/// Why a change in the lane is not merged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    NotInLane,
    NotOpen,
    NoGrant,
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
        None => Some(Blocker::NoGrant),
        Some(g) if g.sha != facts.head_sha => Some(Blocker::Voided),
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
    if facts.state != super::event::ItemState::Open {
        return Err(Blocker::NotOpen);
    }
    if let Some(blocker) = grant_blocker(facts, now) {
        return Err(blocker);
    }
    let postmortem_green = facts
        .lane
        .reported
        .get(super::report::POSTMORTEM_CONTEXT)
        .is_some_and(|r| r.sha == facts.head_sha && r.report.state == CheckState::Success);
    if !postmortem_green {
        return Err(Blocker::PostmortemNotGreen);
    }
    let result = |name: &String| facts.lane.checks.get(name).filter(|c| c.sha == facts.head_sha).map(|c| c.state);
    let failed: Vec<String> =
        policy.merge.smoke_checks.iter().filter(|n| result(n) == Some(CheckState::Failure)).cloned().collect();
    if !failed.is_empty() {
        return Err(Blocker::SmokeFailed(failed));
    }
    let pending: Vec<String> =
        policy.merge.smoke_checks.iter().filter(|n| result(n) != Some(CheckState::Success)).cloned().collect();
    if !pending.is_empty() {
        return Err(Blocker::SmokePending(pending));
    }
    Ok(())
}
