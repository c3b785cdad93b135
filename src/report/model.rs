//! What the report and the page show: the hotfix figures of one scope, the live lane, and one
//! hotfix's timeline. Plain data, serialized as the report's JSON.

use serde::Serialize;

use crate::store::Millis;

/// Which hotfixes a figure covers: those of `repo` (all when `None`) that entered the lane, or
/// merged, within `[since, until)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub repo: Option<String>,
    pub since: Millis,
    pub until: Millis,
}

/// A duration figure over `n` of the `of` hotfixes it could cover ("3 of 41"), in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spread {
    pub n: usize,
    pub of: usize,
    pub median_s: Option<f64>,
    pub p90_s: Option<f64>,
}

/// A rate: `hits` of `of`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Share {
    pub hits: usize,
    pub of: usize,
}

impl Share {
    /// As a fraction; `None` when there is nothing to divide by.
    pub fn rate(&self) -> Option<f64> {
        (self.of > 0).then(|| self.hits as f64 / self.of as f64)
    }
}

/// A hotfix as lists name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HotfixRef {
    pub forge: String,
    pub repo: String,
    pub number: u64,
    pub title: String,
    pub severity: Option<String>,
    pub merged_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub scope: Scope,
    /// Hotfixes that entered the lane in the scope.
    pub entered: usize,
    /// Hotfixes that merged in the scope: the universe of most figures below.
    pub merged: usize,
    /// Hotfixes closed unmerged.
    pub abandoned: usize,
    /// M3: lane entry → first green smoke result on the head commit.
    pub time_to_patch: Spread,
    /// M12: lane entry → a responder's grant.
    pub authorization: Spread,
    /// Lane entry → merged.
    pub time_to_merge: Spread,
    /// M4: merge → first successful production deployment containing it. `n == 0` with
    /// `of > 0` reads "not reported", never zero.
    pub time_to_deploy: Spread,
    /// Incident start (an `Incident-Started:` line in the postmortem) → the hotfix merged.
    /// `n == 0` reads "not observable from the forge".
    pub time_to_restore: Spread,
    /// M7: merged hotfixes neither reverted nor named by another hotfix within 14 days.
    pub success: Share,
    /// M8: merged hotfixes followed within 7 days by another hotfix touching one of their files.
    pub regressions: Share,
    /// M9: postmortems closed (or marked done) by their due date, of those due by now or done.
    pub postmortems_on_time: Share,
    /// Merge → postmortem closed.
    pub postmortem_completion: Spread,
    /// M10: merged hotfixes per week of the scope.
    pub per_week: f64,
    /// Merged hotfixes over all merged changes of the repositories in scope.
    pub rework: Share,
    /// Changes later named by a hotfix (`Fixes:`) or reverted, over merged changes that are
    /// neither hotfixes nor reverts.
    pub change_failure: Share,
    /// Hotfix merge → backport opened, and → backport merged.
    pub backport_opened: Spread,
    pub backport_merged: Spread,
    /// Hotfixes that went to the front of a merge queue, and that merged on their author's own
    /// authorization.
    pub queue_jumps: usize,
    pub self_authorized: usize,
    pub by_severity: Vec<SeverityFigures>,
    pub weeks: Vec<Week>,
    pub overdue_postmortems: Vec<DuePostmortem>,
    /// Postmortems not done yet and not overdue.
    pub pending_postmortems: Vec<DuePostmortem>,
    pub stale_backports: Vec<OpenBackport>,
    /// Merged hotfixes no production deployment was reported for.
    pub undeployed: Vec<HotfixRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeverityFigures {
    /// The severity label's value, or `none`.
    pub severity: String,
    pub merged: usize,
    pub success: Share,
    pub time_to_patch: Spread,
    pub time_to_merge: Spread,
}

/// One week of the scope (weeks start on Monday, 00:00 UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Week {
    pub start: Millis,
    /// Hotfixes merged that week.
    pub merged: usize,
    /// All changes merged that week.
    pub all_merges: usize,
    pub success: Share,
    pub time_to_patch_s: Option<f64>,
    pub time_to_merge_s: Option<f64>,
    pub time_to_deploy_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuePostmortem {
    pub hotfix: HotfixRef,
    /// The postmortem issue (`repo#n`), once there is one.
    pub issue: Option<String>,
    pub due_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenBackport {
    pub hotfix: HotfixRef,
    pub target: String,
    pub opened_at: Millis,
    /// The backport's number.
    pub backport: Option<String>,
}

/// A hotfix in the lane now, for the on-call view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveHotfix {
    pub forge: String,
    pub repo: String,
    pub number: u64,
    pub title: String,
    /// The responder whose label put it in the lane.
    pub labeled_by: String,
    pub since: Millis,
    pub authorized_by: Option<String>,
    pub self_authorized: bool,
    /// What it waits for: `authorization`, `postmortem`, `smoke` or `merge`.
    pub waiting_for: &'static str,
    pub postmortem: Option<String>,
}

/// One line of a hotfix's timeline: a milestone or an audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub at: Millis,
    /// `entered`, `merged`, … for milestones; the audit action (`grant.created`) otherwise.
    pub what: String,
    pub actor: String,
    pub sha: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    pub hotfix: HotfixRef,
    pub entries: Vec<TimelineEntry>,
}
