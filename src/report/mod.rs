//! The hotfix figures teams track, from the lane's own records: the `report` command, the
//! page and the reminder sweep all read them here.

pub mod figures;
pub mod model;
pub mod text;

use crate::lane::event::{Forge, ItemState};
use crate::lane::lifecycle::Milestone;
use crate::lane::membership::Membership;
use crate::lane::report::CheckState;
use crate::lane::track::PullFacts;
use crate::store::{Millis, Result, Store};
use model::*;

/// How far back the on-call view looks for changes still in the lane.
const LIVE_HORIZON_MS: Millis = 30 * 24 * 3600 * 1000;

/// The figures of `scope`, at `now`.
pub async fn figures(store: &Store, scope: &Scope, now: Millis) -> Result<Figures> {
    // Every milestone of each change with one in the scope: a hotfix merged in it may have
    // entered the lane before it, and be reverted after it.
    let events = store.lifecycle_since(scope.repo.as_deref(), scope.since).await?;
    Ok(figures::compute(&events, scope, now))
}

/// What the live gauges show: postmortems pending and overdue (of hotfixes merged in the last
/// 90 days), and the hotfixes in the lane by what they wait for, with the longest wait.
pub struct Gauges {
    pub pending: usize,
    pub overdue: usize,
    pub waiting: Vec<(&'static str, usize)>,
    pub oldest: Option<std::time::Duration>,
}

pub async fn gauges(store: &Store, now: Millis) -> Result<Gauges> {
    let (pending, overdue) = store.open_postmortems(now - 90 * 24 * 3600 * 1000, now).await?;
    let live = live(store, now).await?;
    let mut waiting: Vec<(&'static str, usize)> = Vec::new();
    for l in &live {
        match waiting.iter_mut().find(|(w, _)| *w == l.waiting_for) {
            Some((_, n)) => *n += 1,
            None => waiting.push((l.waiting_for, 1)),
        }
    }
    let oldest = live.iter().map(|l| l.since).min().map(|s| std::time::Duration::from_millis((now - s).max(0) as u64));
    Ok(Gauges { pending: pending as usize, overdue: overdue as usize, waiting, oldest })
}

/// The hotfixes in the lane now, longest waiting first.
pub async fn live(store: &Store, now: Millis) -> Result<Vec<LiveHotfix>> {
    let mut out = Vec::new();
    for forge in Forge::ALL {
        let mut states = store.lane_states_since(forge.as_str(), now - LIVE_HORIZON_MS);
        while let Some(state) = states.next().await? {
            let Ok(facts) = serde_json::from_value::<PullFacts>(state) else { continue };
            if let Some(live) = live_hotfix(forge, &facts) {
                out.push(live);
            }
        }
    }
    out.sort_by_key(|l| l.since);
    Ok(out)
}

/// A change still open in the lane, and what it waits for, from its stored facts alone.
fn live_hotfix(forge: Forge, facts: &PullFacts) -> Option<LiveHotfix> {
    let Membership::Hotfix { by, since } = &facts.lane.membership else { return None };
    if facts.state != ItemState::Open {
        return None;
    }
    let lane = &facts.lane;
    let grant = lane.grant.as_ref().filter(|g| g.sha == facts.head_sha);
    let postmortem_green = facts.reported_green(crate::lane::report::POSTMORTEM_CONTEXT);
    let smoke_green = !lane.checks.is_empty()
        && lane.checks.values().all(|c| c.sha == facts.head_sha && c.state == CheckState::Success);
    let waiting_for = match () {
        _ if grant.is_none() => "authorization",
        _ if !postmortem_green => "postmortem",
        _ if !smoke_green => "smoke",
        _ => "merge",
    };
    Some(LiveHotfix {
        forge: forge.as_str().into(),
        repo: facts.repo.as_ref().map(|r| r.full_name.clone()).unwrap_or_default(),
        number: facts.number,
        title: facts.title.clone(),
        labeled_by: by.clone(),
        since: *since,
        authorized_by: grant.map(|g| g.by.clone()),
        self_authorized: grant.is_some_and(|g| g.self_authorized),
        waiting_for,
        postmortem: lane.postmortem.as_ref().map(|i| i.to_string()),
    })
}

/// Everything recorded about one change: its milestones and its audit trail, oldest first.
/// `None` when nothing is.
pub async fn timeline(store: &Store, forge: &str, repo: &str, number: u64) -> Result<Option<Timeline>> {
    let events = store.lifecycle_of(forge, repo, number).await?;
    let audit = store.audit_of(forge, repo, number).await?;
    if events.is_empty() && audit.is_empty() {
        return Ok(None);
    }
    let hotfix = match figures::lives(&events).first() {
        Some(life) => life.hotfix_ref(),
        None => HotfixRef {
            forge: forge.into(),
            repo: repo.into(),
            number,
            title: String::new(),
            severity: None,
            merged_at: None,
        },
    };
    let mut entries: Vec<TimelineEntry> =
        events
            .iter()
            .map(|e| TimelineEntry {
                at: e.at,
                what: e.milestone.as_str().into(),
                actor: e.actor.clone(),
                sha: e.detail.sha.clone().or_else(|| {
                    matches!(e.milestone, Milestone::Granted | Milestone::SmokeGreen).then(|| e.key.clone())
                }),
                detail: milestone_detail(e),
            })
            .chain(audit.into_iter().map(|a| TimelineEntry {
                at: a.at,
                what: a.action,
                actor: a.actor,
                sha: a.sha,
                detail: a.detail,
            }))
            .collect();
    entries.sort_by_key(|e| e.at);
    Ok(Some(Timeline { hotfix, entries }))
}

/// What a milestone's line says beside its name.
fn milestone_detail(e: &crate::lane::lifecycle::LifecycleEvent) -> String {
    let d = &e.detail;
    let mut parts = Vec::new();
    if !e.key.is_empty() && !matches!(e.milestone, Milestone::Granted | Milestone::SmokeGreen) {
        parts.push(e.key.clone());
    }
    if let Some(r) = &d.reference {
        parts.push(r.clone());
    }
    if let Some(by) = d.by {
        parts.push(format!("by change {by}"));
    }
    if let Some(n) = d.reverts {
        parts.push(format!("reverts change {n}"));
    }
    if !d.fixes.is_empty() {
        parts.push(format!("fixes {}", d.fixes.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")));
    }
    if d.self_authorized {
        parts.push("self-authorized".into());
    }
    if d.queue_jump {
        parts.push("front of the merge queue".into());
    }
    parts.join("; ")
}
