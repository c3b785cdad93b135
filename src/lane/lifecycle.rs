//! A hotfix's life as durable milestones: entered the lane, authorized, smoke green, merged,
//! deployed, backported, postmortem opened and closed, reverted. The hotfix figures are
//! recomputed from these (see `crate::report`), never from Prometheus, which forgets on restart.
//!
//! Milestones are read off the change's facts before and after a step ([`transitions`]), so
//! every path that moves a change — a webhook, a sweep, the lane's own merge — records them the
//! same way. Each is stored once per (change, milestone, key): a redelivered event, or a job run
//! again after a crash, records nothing new.

use serde::{Deserialize, Serialize};

use super::backport::BackportState;
use super::event::ItemState;
use super::policy::Policy;
use super::track::PullFacts;
use crate::store::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// A responder's label put the change in the lane.
    Entered,
    /// A responder authorized the head commit (`key`).
    Granted,
    /// Every smoke check passed on the head commit (`key`).
    SmokeGreen,
    /// Merged: recorded for every change, hotfix or not, as the denominator of rework and
    /// change failure rates (`detail.hotfix` tells them apart).
    Merged,
    /// A hotfix closed without merging.
    Abandoned,
    /// A production deployment (`key`: the environment) contained the merge.
    Deployed,
    /// Its backport to branch `key` opened, then merged.
    BackportOpened,
    BackportMerged,
    PostmortemOpened,
    /// The postmortem issue was closed, or given the policy's "done" label.
    PostmortemClosed,
    /// A merged revert (`detail.by`) undid this change.
    Reverted,
    /// A hotfix (`detail.by`) says it fixes this change (`Fixes: #N`).
    Named,
    /// The reminders on the postmortem: due within a day, then overdue. Once each.
    RemindedDue,
    RemindedOverdue,
}

impl Milestone {
    pub const ALL: [Milestone; 14] = [
        Milestone::Entered,
        Milestone::Granted,
        Milestone::SmokeGreen,
        Milestone::Merged,
        Milestone::Abandoned,
        Milestone::Deployed,
        Milestone::BackportOpened,
        Milestone::BackportMerged,
        Milestone::PostmortemOpened,
        Milestone::PostmortemClosed,
        Milestone::Reverted,
        Milestone::Named,
        Milestone::RemindedDue,
        Milestone::RemindedOverdue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Entered => "entered",
            Milestone::Granted => "granted",
            Milestone::SmokeGreen => "smoke_green",
            Milestone::Merged => "merged",
            Milestone::Abandoned => "abandoned",
            Milestone::Deployed => "deployed",
            Milestone::BackportOpened => "backport_opened",
            Milestone::BackportMerged => "backport_merged",
            Milestone::PostmortemOpened => "postmortem_opened",
            Milestone::PostmortemClosed => "postmortem_closed",
            Milestone::Reverted => "reverted",
            Milestone::Named => "named",
            Milestone::RemindedDue => "reminded_due",
            Milestone::RemindedOverdue => "reminded_overdue",
        }
    }

    pub fn parse(s: &str) -> Option<Milestone> {
        Milestone::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// What a milestone carries beside when and who. One shape for all, stored as JSON; each
/// milestone fills the fields that concern it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The branch it targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Read from the label the policy names (`severity:1`, GitLab's `severity::1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// On `merged`: whether the change merged in the lane.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hotfix: bool,
    /// The commit concerned: the merge commit of `merged`, the deployed commit of `deployed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// On `merged`: the changes of the same repository it says it fixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<u64>,
    /// On `merged`: the change it reverts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverts: Option<u64>,
    /// On a hotfix's `merged`: the files it touched (for the regression proxy).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// On `reverted` and `named`: the change that did it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<u64>,
    /// On `backport_opened`: the backport's number; on `postmortem_*`: the issue (`repo#n`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// On `postmortem_closed`: the incident's start, when the issue gives an
    /// `Incident-Started:` line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_started: Option<Millis>,
    /// On a hotfix's `merged`: authorized by its own author; handed to the front of a queue.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub self_authorized: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queue_jump: bool,
    /// When it is due, by the policy at the time: a hotfix's postmortem (on `merged`), a
    /// backport before it counts as stale (on `backport_opened`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Millis>,
}

/// One milestone of one change, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    pub forge: String,
    pub repo: String,
    pub number: u64,
    pub milestone: Milestone,
    /// Tells repeats of one milestone apart (a backport's branch, a deployment's environment);
    /// empty where there is one per change.
    pub key: String,
    pub at: Millis,
    pub actor: String,
    pub detail: Detail,
}

/// A milestone read off a step, before the glue says which change it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub milestone: Milestone,
    pub key: String,
    pub at: Millis,
    pub actor: String,
    pub detail: Detail,
}

impl Passed {
    fn new(milestone: Milestone, at: Millis, actor: &str) -> Passed {
        Passed { milestone, key: String::new(), at, actor: actor.to_string(), detail: Detail::default() }
    }

    fn keyed(mut self, key: &str) -> Passed {
        self.key = key.to_string();
        self
    }
}

/// The milestones a change passed between `prior` and `now` (its facts before and after one
/// job), at `at` unless the facts say when.
pub fn transitions(prior: Option<&PullFacts>, now: &PullFacts, policy: &Policy, at: Millis) -> Vec<Passed> {
    let mut out = Vec::new();
    let was = |f: fn(&PullFacts) -> bool| prior.is_some_and(f);
    let lane = &now.lane;
    if let super::membership::Membership::Hotfix { by, since } = &lane.membership {
        if !was(|p| p.lane.membership.in_lane()) {
            let mut p = Passed::new(Milestone::Entered, *since, by);
            p.detail.title = Some(now.title.clone());
            p.detail.base = Some(now.base_ref.clone());
            p.detail.severity = severity(&now.labels, policy);
            out.push(p);
        }
    }
    if let Some(g) = &lane.grant {
        if prior.and_then(|p| p.lane.grant.as_ref()).is_none_or(|old| old.sha != g.sha || old.by != g.by) {
            out.push(Passed::new(Milestone::Granted, g.granted_at, &g.by).keyed(&g.sha));
        }
    }
    if lane.membership.in_lane() && now.smoke_green(policy) && !prior.is_some_and(|p| p.smoke_green(policy)) {
        out.push(Passed::new(Milestone::SmokeGreen, at, "hotfix-lane").keyed(&now.head_sha));
    }
    if now.state == ItemState::Merged && !was(|p| p.state == ItemState::Merged) {
        let mut p = Passed::new(Milestone::Merged, lane.merged_at.unwrap_or(at), "hotfix-lane");
        p.detail.hotfix = lane.membership.in_lane();
        p.detail.title = Some(now.title.clone());
        p.detail.base = Some(now.base_ref.clone());
        p.detail.sha = lane.merge_commit.clone();
        p.detail.severity = severity(&now.labels, policy);
        if let Some(g) = lane.grant.as_ref().filter(|_| p.detail.hotfix) {
            p.detail.self_authorized = g.self_authorized;
        }
        p.detail.queue_jump = p.detail.hotfix && lane.enqueued.is_some();
        if p.detail.hotfix {
            p.detail.due_at = Some(p.at + policy.postmortem.due_after.as_millis() as Millis);
        }
        out.push(p);
    }
    if now.state == ItemState::Closed && lane.membership.in_lane() && !was(|p| p.state == ItemState::Closed) {
        out.push(Passed::new(Milestone::Abandoned, at, "hotfix-lane"));
    }
    for (target, backport) in &lane.backports {
        let before = prior.and_then(|p| p.lane.backports.get(target));
        let opened = |b: &super::backport::Backport| b.opened_at.is_some();
        if let (Some(opened_at), false) = (backport.opened_at, before.is_some_and(opened)) {
            let mut p = Passed::new(Milestone::BackportOpened, opened_at, "hotfix-lane").keyed(target);
            p.detail.reference = backport.pull.map(|n| n.to_string());
            p.detail.due_at = Some(opened_at + backport.stale_after_ms);
            out.push(p);
        }
        let merged = |b: &super::backport::Backport| b.state == BackportState::Merged;
        if merged(backport) && !before.is_some_and(merged) {
            out.push(
                Passed::new(Milestone::BackportMerged, backport.merged_at.unwrap_or(at), "hotfix-lane").keyed(target),
            );
        }
    }
    if let Some(issue) = lane.postmortem.as_ref().filter(|_| lane.membership.in_lane()) {
        if prior.and_then(|p| p.lane.postmortem.as_ref()).is_none() {
            let mut p = Passed::new(Milestone::PostmortemOpened, at, "hotfix-lane");
            p.detail.reference = Some(issue.to_string());
            out.push(p);
        }
    }
    out
}

/// The severity a change's labels give, by the policy's label prefix: `severity:1` and
/// GitLab's scoped `severity::1` both read as `1`.
pub fn severity(labels: &[String], policy: &Policy) -> Option<String> {
    let prefix = policy.metrics.severity_label.as_str();
    labels.iter().find_map(|l| {
        let rest = l.strip_prefix(prefix)?;
        let value = rest.strip_prefix("::").or_else(|| rest.strip_prefix(':'))?;
        (!value.is_empty()).then(|| value.trim().to_string())
    })
}

#[cfg(test)]
mod tests;
