//! What the lane remembers about each pull request between events.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::event::{Envelope, Event, ItemState, PullRequest, RepoRef};
use super::grant::Grant;
use super::membership::{Labeler, Membership};
use super::postmortem::IssueRef;
use super::report::{CheckState, Report};

/// The last known facts of one pull request, kept in the store's lane state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullFacts {
    pub number: u64,
    pub title: String,
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub labels: Vec<String>,
    pub state: ItemState,
    pub from_fork: bool,
    /// Who opened it: their own commands (`postmortem`, `backport`) are allowed.
    #[serde(default)]
    pub author: Option<String>,
    /// Events applied to this pull request; each delivery counts once, however often its job ran.
    pub events: u64,
    /// The repository, for work that starts from stored state (the reconcile sweep).
    #[serde(default)]
    pub repo: Option<RepoRef>,
    /// The GitHub App installation that delivered its events, to act as for it later.
    #[serde(default)]
    pub installation_id: Option<u64>,
    #[serde(default)]
    pub lane: LaneRecord,
}

/// The lane's own memory of a pull request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneRecord {
    pub membership: Membership,
    /// Who applied the lane label, learnt from the `labeled` (or `opened`) event.
    pub labeler: Option<Labeler>,
    /// The postmortem the description names.
    pub postmortem: Option<IssueRef>,
    /// The lane's one comment on the pull request, and what it last said.
    pub comment_id: Option<u64>,
    pub comment: Option<String>,
    /// What was last reported, by context, so an unchanged result is not posted again.
    pub reported: BTreeMap<String, Reported>,
    /// The responder's pre-authorization, if any.
    #[serde(default)]
    pub grant: Option<Grant>,
    /// The head commit and who pushed it, as the last push (or opening) event said.
    #[serde(default)]
    pub pushed: Option<(String, String)>,
    /// Why the last grant lapsed, until a new one is given: for the lane's comment.
    #[serde(default)]
    pub lapsed: Option<String>,
    /// Latest result of each check or status seen on the change, by name.
    #[serde(default)]
    pub checks: BTreeMap<String, CheckResult>,
    /// The commit the lane merged, once it has: never twice.
    #[serde(default)]
    pub merged: Option<String>,
    /// The commit handed to the merge queue (at its front), so it is not enqueued twice.
    #[serde(default)]
    pub enqueued: Option<String>,
    /// The forge's refusal to merge a commit, so it is not asked again for that commit.
    #[serde(default)]
    pub merge_refused: Option<(String, String)>,
    /// When the change merged, for backport lead times.
    #[serde(default)]
    pub merged_at: Option<crate::store::Millis>,
    /// The commit it landed as: where backport outcomes are reported.
    #[serde(default)]
    pub merge_commit: Option<String>,
    /// Branches asked for (`/hotfix backport`, `backport <branch>` labels) before the merge.
    #[serde(default)]
    pub backport_requests: Vec<String>,
    /// Each target's backport, once the change merged.
    #[serde(default)]
    pub backports: BTreeMap<String, super::backport::Backport>,
    /// The one comment listing the backports.
    #[serde(default)]
    pub backport_comment_id: Option<u64>,
    /// Commenters (lowercased) already told they are not responders: told once, not per command.
    #[serde(default)]
    pub refused: std::collections::BTreeSet<String>,
    /// The newest comment whose commands were handled.
    #[serde(default)]
    pub last_comment: Option<u64>,
    /// Who ran `/hotfix revert` on this merged change: its revert is opened once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_requested: Option<String>,
    /// On a revert the lane opened: the grant of the responder who asked for it, at the head
    /// it was opened at. The lane's own label on that head counts as theirs, once (and brings
    /// the grant back if the opening event, which shows no label yet, dropped it). Written only
    /// by the revert job; used up by the label event or the label seen gone, dropped by a push
    /// or a revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_for: Option<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub sha: String,
    pub state: CheckState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    pub sha: String,
    pub report: Report,
}

impl PullFacts {
    /// Whether every smoke check the policy names was last seen green on the head.
    pub fn smoke_green(&self, policy: &super::policy::Policy) -> bool {
        let checks = &policy.merge.smoke_checks;
        !checks.is_empty()
            && checks.iter().all(|c| {
                self.lane.checks.get(&c.name).is_some_and(|r| r.sha == self.head_sha && r.state == CheckState::Success)
            })
    }

    /// Whether the lane's report `context` was last posted green on the head.
    pub fn reported_green(&self, context: &str) -> bool {
        self.lane.reported.get(context).is_some_and(|r| r.sha == self.head_sha && r.report.state == CheckState::Success)
    }

    /// Remembers the smoke checks' states as read on the head.
    pub fn record_smoke(&mut self, states: Vec<(String, CheckState)>) {
        let head = &self.head_sha;
        self.lane.checks =
            states.into_iter().map(|(name, state)| (name, CheckResult { sha: head.clone(), state })).collect();
    }
}

impl LaneRecord {
    /// Whether `report` on `sha` differs from what was last posted.
    pub fn is_news(&self, sha: &str, report: &Report) -> bool {
        self.reported.get(&report.context).is_none_or(|r| r.sha != sha || r.report != *report)
    }

    pub fn remember(&mut self, sha: &str, report: &Report) {
        self.reported.insert(report.context.clone(), Reported { sha: sha.to_string(), report: report.clone() });
    }
}

/// The pull request an event is about, with the facts it carries (if it carries them).
pub fn subject(envelope: &Envelope) -> Option<(u64, Option<&PullRequest>)> {
    match &envelope.event {
        Event::PullRequest { pull, .. } | Event::Review { pull, .. } => Some((pull.number, Some(pull))),
        Event::Comment { number, on_pull_request: true, .. } => Some((*number, None)),
        _ => None,
    }
}

/// Folds one event into the facts known so far. `None` when the event is not about a pull
/// request, or is about one the lane has not seen a full description of yet.
pub fn observe(prior: Option<PullFacts>, envelope: &Envelope) -> Option<PullFacts> {
    let (_, pull) = subject(envelope)?;
    let events = prior.as_ref().map_or(0, |p| p.events) + 1;
    match pull {
        Some(p) => Some(PullFacts {
            events,
            repo: envelope.repo.clone(),
            installation_id: envelope.installation_id,
            lane: prior.map(|p| p.lane).unwrap_or_default(),
            ..first_seen(p)
        }),
        None => prior.map(|p| PullFacts { events, ..p }),
    }
}

/// The facts a pull request itself carries, before any event about it was applied.
pub fn first_seen(p: &PullRequest) -> PullFacts {
    PullFacts {
        number: p.number,
        title: p.title.clone(),
        head_sha: p.head_sha.clone(),
        head_ref: p.head_ref.clone(),
        base_ref: p.base_ref.clone(),
        labels: p.labels.clone(),
        state: p.state,
        from_fork: p.from_fork,
        author: Some(p.author.login.clone()),
        events: 0,
        repo: None,
        installation_id: None,
        lane: LaneRecord::default(),
    }
}
