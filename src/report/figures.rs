//! The hotfix figures, computed from stored milestones: pure, so that a figure is a function
//! of what was recorded and a test can hand-count it.
//!
//! Definitions (see the README's "Hotfix figures"): each duration is taken between the first
//! recording of each milestone; medians average the two middle values, p90 is the nearest rank.

use std::collections::BTreeMap;

use super::model::*;
use crate::lane::lifecycle::{LifecycleEvent, Milestone};
use crate::store::Millis;

const DAY: Millis = 24 * 3600 * 1000;
const WEEK: Millis = 7 * DAY;
/// A hotfix reverted or fixed again within this long did not succeed (M7).
pub const SUCCESS_WINDOW: Millis = 14 * DAY;
/// Another hotfix touching one of its files within this long counts as a regression (M8).
pub const REGRESSION_WINDOW: Millis = 7 * DAY;

/// The milestones of one change.
pub(crate) struct Life<'a> {
    pub events: Vec<&'a LifecycleEvent>,
}

impl<'a> Life<'a> {
    /// The first recording of `m`.
    pub fn first(&self, m: Milestone) -> Option<&'a LifecycleEvent> {
        self.events.iter().copied().filter(|e| e.milestone == m).min_by_key(|e| e.at)
    }

    pub fn all(&self, m: Milestone) -> impl Iterator<Item = &'a LifecycleEvent> + '_ {
        self.events.iter().copied().filter(move |e| e.milestone == m)
    }

    fn at(&self, m: Milestone) -> Option<Millis> {
        self.first(m).map(|e| e.at)
    }

    /// From lane entry to the first `m` after it.
    fn since_entry(&self, m: Milestone) -> Option<Millis> {
        let entry = self.at(Milestone::Entered)?;
        self.all(m).map(|e| e.at).filter(|at| *at >= entry).min().map(|at| at - entry)
    }

    pub fn head(&self) -> &'a LifecycleEvent {
        self.events[0]
    }

    /// Merged in the lane.
    pub fn merged_hotfix(&self) -> Option<&'a LifecycleEvent> {
        self.first(Milestone::Merged).filter(|e| e.detail.hotfix)
    }

    pub fn hotfix_ref(&self) -> HotfixRef {
        let head = self.head();
        let merged = self.first(Milestone::Merged);
        let entered = self.first(Milestone::Entered);
        let title = [merged, entered].into_iter().flatten().find_map(|e| e.detail.title.clone()).unwrap_or_default();
        let severity = [merged, entered].into_iter().flatten().find_map(|e| e.detail.severity.clone());
        HotfixRef {
            forge: head.forge.clone(),
            repo: head.repo.clone(),
            number: head.number,
            title,
            severity,
            merged_at: merged.map(|e| e.at),
        }
    }
}

/// Groups `events` by change, in the order the store gives them.
pub(crate) fn lives(events: &[LifecycleEvent]) -> Vec<Life<'_>> {
    let mut by_change: BTreeMap<(&str, &str, u64), Vec<&LifecycleEvent>> = BTreeMap::new();
    for e in events {
        by_change.entry((e.forge.as_str(), e.repo.as_str(), e.number)).or_default().push(e);
    }
    by_change.into_values().map(|events| Life { events }).collect()
}

/// Durations in milliseconds → a spread in seconds over `of`.
fn spread(mut ms: Vec<Millis>, of: usize) -> Spread {
    ms.sort_unstable();
    let n = ms.len();
    let secs = |v: Millis| v as f64 / 1000.0;
    let median = match n {
        0 => None,
        _ if n % 2 == 1 => Some(secs(ms[n / 2])),
        _ => Some((secs(ms[n / 2 - 1]) + secs(ms[n / 2])) / 2.0),
    };
    let p90 = (n > 0).then(|| secs(ms[(n * 9).div_ceil(10) - 1]));
    Spread { n, of, median_s: median, p90_s: p90 }
}

/// Monday 00:00 UTC of the week holding `t` (1970-01-01 was a Thursday).
pub fn week_start(t: Millis) -> Millis {
    let day = t.div_euclid(DAY);
    (day - (day + 3).rem_euclid(7)) * DAY
}

/// Whether a life's hotfix failed (M7): reverted, or named as fixed by another hotfix, within
/// [`SUCCESS_WINDOW`] of its merge.
fn failed(life: &Life, merged_at: Millis) -> bool {
    life.all(Milestone::Reverted).chain(life.all(Milestone::Named)).any(|e| e.at - merged_at <= SUCCESS_WINDOW)
}

/// The figures of `scope` from every milestone of the changes concerned, at `now`.
pub fn compute(events: &[LifecycleEvent], scope: &Scope, now: Millis) -> Figures {
    let lives: Vec<Life> =
        lives(events).into_iter().filter(|l| scope.repo.as_deref().is_none_or(|r| l.head().repo == r)).collect();
    let within = |at: Millis| at >= scope.since && at < scope.until;
    let merged: Vec<(&Life, &LifecycleEvent)> =
        lives.iter().filter_map(|l| l.merged_hotfix().map(|m| (l, m))).filter(|(_, m)| within(m.at)).collect();
    let entered: Vec<(&Life, Millis)> =
        lives.iter().filter_map(|l| l.at(Milestone::Entered).map(|at| (l, at))).filter(|(_, at)| within(*at)).collect();

    let time_to_patch =
        spread(entered.iter().filter_map(|(l, _)| l.since_entry(Milestone::SmokeGreen)).collect(), entered.len());
    let authorization =
        spread(entered.iter().filter_map(|(l, _)| l.since_entry(Milestone::Granted)).collect(), entered.len());
    let time_to_merge =
        spread(merged.iter().filter_map(|(l, m)| l.at(Milestone::Entered).map(|e| m.at - e)).collect(), merged.len());
    let deployed_after =
        |l: &Life, m: &LifecycleEvent| l.all(Milestone::Deployed).map(|d| d.at).filter(|at| *at >= m.at).min();
    let time_to_deploy =
        spread(merged.iter().filter_map(|(l, m)| deployed_after(l, m).map(|d| d - m.at)).collect(), merged.len());
    let incident_started = |l: &Life| l.first(Milestone::PostmortemClosed).and_then(|e| e.detail.incident_started);
    let time_to_restore = spread(
        merged.iter().filter_map(|(l, m)| incident_started(l).map(|s| m.at - s)).filter(|d| *d >= 0).collect(),
        merged.len(),
    );
    let success = Share { hits: merged.iter().filter(|(l, m)| !failed(l, m.at)).count(), of: merged.len() };

    // M8: another merged hotfix of the same repository within the window that shares a file.
    // Each repository's hotfix merges by time, so that each looks only at those in its window.
    let mut merges_by_repo: BTreeMap<&str, Vec<&LifecycleEvent>> = BTreeMap::new();
    for m in lives.iter().filter_map(|l| l.merged_hotfix()) {
        merges_by_repo.entry(m.repo.as_str()).or_default().push(m);
    }
    merges_by_repo.values_mut().for_each(|merges| merges.sort_by_key(|m| m.at));
    let regressed = |m: &LifecycleEvent| {
        let later = &merges_by_repo[m.repo.as_str()];
        later[later.partition_point(|o| o.at <= m.at)..]
            .iter()
            .take_while(|o| o.at - m.at <= REGRESSION_WINDOW)
            .any(|o| o.number != m.number && o.detail.files.iter().any(|f| m.detail.files.contains(f)))
    };
    let regressions = Share { hits: merged.iter().filter(|(_, m)| regressed(m)).count(), of: merged.len() };

    let mut postmortems_on_time = Share::default();
    let (mut overdue, mut pending, mut completion) = (Vec::new(), Vec::new(), Vec::new());
    for (l, m) in &merged {
        let Some(due_at) = m.detail.due_at else { continue };
        let done = l.at(Milestone::PostmortemClosed);
        let issue = l.first(Milestone::PostmortemOpened).and_then(|e| e.detail.reference.clone());
        match done {
            Some(done) => {
                postmortems_on_time.of += 1;
                postmortems_on_time.hits += usize::from(done <= due_at);
                completion.push(done - m.at);
            }
            None if due_at <= now => {
                postmortems_on_time.of += 1;
                overdue.push(DuePostmortem { hotfix: l.hotfix_ref(), issue, due_at });
            }
            None => pending.push(DuePostmortem { hotfix: l.hotfix_ref(), issue, due_at }),
        }
    }
    overdue.sort_by_key(|d| d.due_at);
    pending.sort_by_key(|d| d.due_at);

    let all_merges: Vec<&Life> = lives.iter().filter(|l| l.at(Milestone::Merged).is_some_and(within)).collect();
    let rework = Share { hits: merged.len(), of: all_merges.len() };
    let planned: Vec<&&Life> = all_merges
        .iter()
        .filter(|l| l.first(Milestone::Merged).is_some_and(|m| !m.detail.hotfix && m.detail.reverts.is_none()))
        .collect();
    let change_failure = Share {
        hits: planned
            .iter()
            .filter(|l| l.first(Milestone::Reverted).is_some() || l.first(Milestone::Named).is_some())
            .count(),
        of: planned.len(),
    };

    let (mut opened, mut landed, mut opened_count, mut stale) = (Vec::new(), Vec::new(), 0, Vec::new());
    for (l, m) in &merged {
        for o in l.all(Milestone::BackportOpened) {
            opened_count += 1;
            opened.push(o.at - m.at);
            match l.all(Milestone::BackportMerged).find(|b| b.key == o.key) {
                Some(b) => landed.push(b.at - m.at),
                None if o.detail.due_at.is_some_and(|due| due <= now) => stale.push(OpenBackport {
                    hotfix: l.hotfix_ref(),
                    target: o.key.clone(),
                    opened_at: o.at,
                    backport: o.detail.reference.clone(),
                }),
                None => {}
            }
        }
    }
    let backport_opened = spread(opened, opened_count);
    let backport_merged = spread(landed, opened_count);

    let severity_of = |l: &Life| l.hotfix_ref().severity.unwrap_or_else(|| "none".into());
    let mut severities: BTreeMap<String, Vec<(&Life, &LifecycleEvent)>> = BTreeMap::new();
    for (l, m) in &merged {
        severities.entry(severity_of(l)).or_default().push((l, m));
    }
    let by_severity = severities
        .into_iter()
        .map(|(severity, group)| SeverityFigures {
            severity,
            merged: group.len(),
            success: Share { hits: group.iter().filter(|(l, m)| !failed(l, m.at)).count(), of: group.len() },
            time_to_patch: spread(
                group.iter().filter_map(|(l, _)| l.since_entry(Milestone::SmokeGreen)).collect(),
                group.len(),
            ),
            time_to_merge: spread(
                group.iter().filter_map(|(l, m)| l.at(Milestone::Entered).map(|e| m.at - e)).collect(),
                group.len(),
            ),
        })
        .collect();

    let mut weeks = Vec::new();
    let mut start = week_start(scope.since);
    while start < scope.until {
        let this = |at: Millis| at >= start.max(scope.since) && at < (start + WEEK).min(scope.until);
        let group: Vec<&(&Life, &LifecycleEvent)> = merged.iter().filter(|(_, m)| this(m.at)).collect();
        let median = |v: Vec<Millis>| spread(v, 0).median_s;
        weeks.push(Week {
            start,
            merged: group.len(),
            all_merges: all_merges.iter().filter(|l| l.at(Milestone::Merged).is_some_and(this)).count(),
            success: Share { hits: group.iter().filter(|(l, m)| !failed(l, m.at)).count(), of: group.len() },
            time_to_patch_s: median(group.iter().filter_map(|(l, _)| l.since_entry(Milestone::SmokeGreen)).collect()),
            time_to_merge_s: median(
                group.iter().filter_map(|(l, m)| l.at(Milestone::Entered).map(|e| m.at - e)).collect(),
            ),
            time_to_deploy_s: median(
                group.iter().filter_map(|(l, m)| deployed_after(l, m).map(|d| d - m.at)).collect(),
            ),
        });
        start += WEEK;
    }

    let undeployed =
        merged.iter().filter(|(l, m)| deployed_after(l, m).is_none()).map(|(l, _)| l.hotfix_ref()).collect();
    let days = (scope.until - scope.since).max(DAY) as f64 / DAY as f64;
    Figures {
        scope: scope.clone(),
        entered: entered.len(),
        merged: merged.len(),
        abandoned: lives.iter().filter(|l| l.at(Milestone::Abandoned).is_some_and(within)).count(),
        time_to_patch,
        authorization,
        time_to_merge,
        time_to_deploy,
        time_to_restore,
        success,
        regressions,
        postmortems_on_time,
        postmortem_completion: spread(completion, merged.len()),
        per_week: merged.len() as f64 * 7.0 / days,
        rework,
        change_failure,
        backport_opened,
        backport_merged,
        queue_jumps: merged.iter().filter(|(_, m)| m.detail.queue_jump).count(),
        self_authorized: merged.iter().filter(|(_, m)| m.detail.self_authorized).count(),
        by_severity,
        weeks,
        overdue_postmortems: overdue,
        pending_postmortems: pending,
        stale_backports: stale,
        undeployed,
    }
}

#[cfg(test)]
mod tests;
