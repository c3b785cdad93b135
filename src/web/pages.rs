//! The page's views: what each shows, assembled from the report's data into rows of text the
//! templates print. Templates auto-escape: titles, names and details come from changes and
//! are untrusted.

use askama::Template;

use super::format::{self, duration_ms, percent, time, universe};
use super::Web;
use crate::report::model::{Figures, HotfixRef, Scope, Share, Spread};
use crate::store::{Millis, Result};

const DAY: Millis = 24 * 3600 * 1000;
/// How far back the on-call view looks for postmortems due and deployments missing.
pub const ONCALL_DAYS: i64 = 90;

#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    message: Option<&'a str>,
}

pub fn login(message: Option<&str>) -> std::result::Result<String, askama::Error> {
    Login { message }.render()
}

/// A change as a row names it: its forge page and its timeline.
pub struct ChangeLink {
    pub name: String,
    pub title: String,
    pub forge_url: Option<String>,
    pub timeline_url: String,
}

impl ChangeLink {
    fn new(web: &Web, forge: &str, repo: &str, number: u64, title: &str) -> ChangeLink {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("forge", forge)
            .append_pair("repo", repo)
            .append_pair("number", &number.to_string())
            .finish();
        ChangeLink {
            name: format!("{repo}#{number}"),
            title: title.to_string(),
            forge_url: web.links.change(forge, repo, number),
            timeline_url: format!("/timeline?{query}"),
        }
    }

    fn of(web: &Web, h: &HotfixRef) -> ChangeLink {
        ChangeLink::new(web, &h.forge, &h.repo, h.number, &h.title)
    }
}

pub struct LiveRow {
    pub change: ChangeLink,
    pub labeled_by: String,
    pub authorized_by: Option<String>,
    pub self_authorized: bool,
    pub waiting_for: &'static str,
    pub since: String,
    pub in_lane: String,
    pub postmortem: Option<String>,
}

pub struct DueRow {
    pub change: ChangeLink,
    pub issue: Option<String>,
    pub due: String,
    /// `overdue by 2 d` or `due in 3 d`.
    pub when: String,
}

pub struct BackportRow {
    pub change: String,
    /// The hotfix's timeline and forge page, where the lane recorded its milestones.
    pub link: Option<ChangeLink>,
    pub target: String,
    pub pull: Option<u64>,
    pub state: String,
    pub age: String,
    pub stale: bool,
}

pub struct UndeployedRow {
    pub change: ChangeLink,
    pub merged: String,
}

#[derive(Template)]
#[template(path = "oncall.html")]
struct Oncall {
    page: &'static str,
    now: String,
    days: i64,
    live: Vec<LiveRow>,
    overdue: Vec<DueRow>,
    pending: Vec<DueRow>,
    backports: Vec<BackportRow>,
    undeployed: Vec<UndeployedRow>,
}

pub async fn oncall(web: &Web) -> Result<std::result::Result<String, askama::Error>> {
    let now = web.clock.now_ms();
    let live = crate::report::live(&web.store, now).await?;
    let scope = Scope { repo: None, since: now - ONCALL_DAYS * DAY, until: now + 1 };
    let figures = crate::report::figures(&web.store, &scope, now).await?;
    let backports = crate::dispatch::pending_backports(&web.store, now).await.map_err(|e| match e {
        crate::dispatch::StepError::Store(e) => e,
        other => crate::store::StoreError::Corrupt(other.to_string()),
    })?;
    let due = |d: &crate::report::model::DuePostmortem| DueRow {
        change: ChangeLink::of(web, &d.hotfix),
        issue: d.issue.clone(),
        due: time(d.due_at),
        when: match d.due_at <= now {
            true => format!("overdue by {}", duration_ms(now - d.due_at)),
            false => format!("due in {}", duration_ms(d.due_at - now)),
        },
    };
    Ok(Oncall {
        page: "oncall",
        now: time(now),
        days: ONCALL_DAYS,
        live: live
            .iter()
            .map(|l| LiveRow {
                change: ChangeLink::new(web, &l.forge, &l.repo, l.number, &l.title),
                labeled_by: l.labeled_by.clone(),
                authorized_by: l.authorized_by.clone(),
                self_authorized: l.self_authorized,
                waiting_for: format::waiting_for(l.waiting_for),
                since: time(l.since),
                in_lane: duration_ms(now - l.since),
                postmortem: l.postmortem.clone(),
            })
            .collect(),
        overdue: figures.overdue_postmortems.iter().map(due).collect(),
        pending: figures.pending_postmortems.iter().map(due).collect(),
        backports: backport_rows(web, &figures, &backports),
        undeployed: figures
            .undeployed
            .iter()
            .map(|h| UndeployedRow {
                change: ChangeLink::of(web, h),
                merged: h.merged_at.map(time).unwrap_or_default(),
            })
            .collect(),
    }
    .render())
}

/// The backports not merged: those the lane tracks now, and those its milestones show went
/// stale (a backport the lane stopped tracking stays on the list until it merges).
fn backport_rows(web: &Web, figures: &Figures, tracked: &[crate::dispatch::PendingBackport]) -> Vec<BackportRow> {
    let now = web.clock.now_ms();
    let mut rows: Vec<BackportRow> = figures
        .stale_backports
        .iter()
        .map(|b| BackportRow {
            change: format!("{}#{}", b.hotfix.repo, b.hotfix.number),
            link: Some(ChangeLink::of(web, &b.hotfix)),
            target: b.target.clone(),
            pull: b.backport.as_deref().and_then(|n| n.parse().ok()),
            state: "opened".into(),
            age: duration_ms(now - b.opened_at),
            stale: true,
        })
        .collect();
    for b in tracked {
        let name = format!("{}#{}", b.repo, b.number);
        if let Some(row) = rows.iter_mut().find(|r| r.change == name && r.target == b.backport.target) {
            row.state = format!("{:?}", b.backport.state).to_lowercase();
            continue;
        }
        rows.push(BackportRow {
            change: name,
            link: None,
            target: b.backport.target.clone(),
            pull: b.backport.pull,
            state: format!("{:?}", b.backport.state).to_lowercase(),
            age: duration_ms(b.backport.age_ms),
            stale: b.backport.stale,
        });
    }
    rows
}

/// One figure of the executive view: what it is, its value, its universe.
pub struct Figure {
    pub id: &'static str,
    pub name: &'static str,
    pub value: String,
    pub universe: String,
    pub note: &'static str,
}

fn share(id: &'static str, name: &'static str, s: &Share, note: &'static str) -> Figure {
    Figure { id, name, value: percent(s), universe: universe(s.hits, s.of), note }
}

pub struct SpreadRow {
    pub id: &'static str,
    pub name: &'static str,
    pub median: String,
    pub p90: String,
    pub universe: String,
}

fn spread_row(id: &'static str, name: &'static str, s: &Spread, absent: &str) -> SpreadRow {
    let (median, p90) = format::spread(s, absent);
    SpreadRow { id, name, median, p90, universe: universe(s.n, s.of) }
}

/// A small bar chart: one bar per week, its values stated in `desc` for screen readers.
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub desc: String,
    pub width: u32,
    pub height: u32,
    pub bars: Vec<Bar>,
}

pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub label: String,
}

const CHART_W: u32 = 320;
const CHART_H: u32 = 80;

/// `values` per week (`None`: nothing that week), scaled to the largest.
fn chart(
    id: &'static str,
    title: &str,
    weeks: &[String],
    values: &[Option<f64>],
    show: impl Fn(f64) -> String,
) -> Chart {
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let n = values.len().max(1) as u32;
    let slot = CHART_W / n;
    let w = (slot * 3 / 4).max(1);
    let mut said = Vec::new();
    let mut bars = Vec::new();
    for (i, (week, value)) in weeks.iter().zip(values).enumerate() {
        match value {
            Some(v) => {
                said.push(format!("week of {week}: {}", show(*v)));
                let h = if max > 0.0 { ((v / max) * (CHART_H - 2) as f64).round() as u32 } else { 0 };
                let h = if *v > 0.0 { h.max(2) } else { 0 };
                bars.push(Bar {
                    x: i as u32 * slot,
                    y: CHART_H - h,
                    w,
                    h,
                    label: format!("week of {week}: {}", show(*v)),
                });
            }
            None => said.push(format!("week of {week}: none")),
        }
    }
    let desc = if said.is_empty() { "No weeks in scope.".to_string() } else { format!("{}.", said.join("; ")) };
    Chart { id, title: title.to_string(), desc, width: CHART_W, height: CHART_H, bars }
}

pub struct WeekRow {
    pub start: String,
    pub merged: usize,
    pub all_merges: usize,
    pub success: String,
    pub patch: String,
    pub merge: String,
    pub deploy: String,
}

pub struct SeverityRow {
    pub severity: String,
    pub merged: usize,
    pub success: String,
    pub success_universe: String,
    pub patch: String,
    pub merge: String,
}

#[derive(Template)]
#[template(path = "executive.html")]
struct Executive {
    page: &'static str,
    days: i64,
    day_choices: [i64; 3],
    repo: Option<String>,
    repos: Vec<String>,
    since: String,
    until: String,
    entered: usize,
    merged: usize,
    abandoned: usize,
    per_week: String,
    rates: Vec<Figure>,
    spreads: Vec<SpreadRow>,
    charts: Vec<Chart>,
    weeks: Vec<WeekRow>,
    severities: Vec<SeverityRow>,
}

pub async fn executive(
    web: &Web,
    days: i64,
    repo: Option<String>,
) -> Result<std::result::Result<String, askama::Error>> {
    let now = web.clock.now_ms();
    let scope = Scope { repo: repo.clone(), since: now - days * DAY, until: now + 1 };
    let f: Figures = crate::report::figures(&web.store, &scope, now).await?;
    let repos = web.store.lifecycle_repos().await?;
    let week_names: Vec<String> = f.weeks.iter().map(|w| time(w.start)[..10].to_string()).collect();
    let minutes = |s: f64| format::duration_s(s);
    let charts = vec![
        chart(
            "chart-per-week",
            "Hotfixes merged per week",
            &week_names,
            &f.weeks.iter().map(|w| Some(w.merged as f64)).collect::<Vec<_>>(),
            |v| format!("{v}"),
        ),
        chart(
            "chart-patch",
            "Median time to patch per week",
            &week_names,
            &f.weeks.iter().map(|w| w.time_to_patch_s).collect::<Vec<_>>(),
            minutes,
        ),
        chart(
            "chart-merge",
            "Median time to merge per week",
            &week_names,
            &f.weeks.iter().map(|w| w.time_to_merge_s).collect::<Vec<_>>(),
            minutes,
        ),
        chart(
            "chart-deploy",
            "Median time to deploy per week",
            &week_names,
            &f.weeks.iter().map(|w| w.time_to_deploy_s).collect::<Vec<_>>(),
            minutes,
        ),
    ];
    let opt = |v: Option<f64>, absent: &str| v.map_or_else(|| absent.to_string(), format::duration_s);
    Ok(Executive {
        page: "executive",
        days,
        day_choices: [7, 30, 90],
        repo,
        repos,
        since: time(scope.since),
        until: time(now),
        entered: f.entered,
        merged: f.merged,
        abandoned: f.abandoned,
        per_week: format!("{:.1}", f.per_week),
        rates: vec![
            share(
                "success",
                "Success rate",
                &f.success,
                "merged hotfixes neither reverted nor fixed again within 14 days",
            ),
            share(
                "postmortems",
                "Postmortem compliance",
                &f.postmortems_on_time,
                "postmortems done by their due date, of those due or done",
            ),
            share(
                "change-failure",
                "Change failure rate",
                &f.change_failure,
                "planned changes later reverted or fixed by a hotfix",
            ),
            share("rework", "Rework rate", &f.rework, "merged hotfixes of all merged changes"),
            share(
                "regressions",
                "Regressions",
                &f.regressions,
                "hotfixes followed within 7 days by another touching one of their files",
            ),
        ],
        spreads: vec![
            spread_row("time-to-patch", "Time to patch (lane entry to green smoke)", &f.time_to_patch, "none yet"),
            spread_row("authorization", "Time to authorization", &f.authorization, "none yet"),
            spread_row("time-to-merge", "Time to merge (lane entry to merge)", &f.time_to_merge, "none yet"),
            spread_row("time-to-deploy", "Time to deploy (merge to production)", &f.time_to_deploy, "not reported"),
            spread_row(
                "time-to-restore",
                "Time to restore (incident start to merge)",
                &f.time_to_restore,
                "not observable from the forge",
            ),
            spread_row("postmortem-completion", "Merge to postmortem done", &f.postmortem_completion, "none yet"),
        ],
        charts,
        weeks: f
            .weeks
            .iter()
            .zip(&week_names)
            .map(|(w, name)| WeekRow {
                start: name.clone(),
                merged: w.merged,
                all_merges: w.all_merges,
                success: format!("{} ({})", percent(&w.success), universe(w.success.hits, w.success.of)),
                patch: opt(w.time_to_patch_s, "none"),
                merge: opt(w.time_to_merge_s, "none"),
                deploy: opt(w.time_to_deploy_s, "not reported"),
            })
            .collect(),
        severities: f
            .by_severity
            .iter()
            .map(|s| SeverityRow {
                severity: s.severity.clone(),
                merged: s.merged,
                success: percent(&s.success),
                success_universe: universe(s.success.hits, s.success.of),
                patch: format::spread(&s.time_to_patch, "none yet").0,
                merge: format::spread(&s.time_to_merge, "none yet").0,
            })
            .collect(),
    }
    .render())
}

pub struct EntryRow {
    pub at: String,
    pub what: String,
    pub actor: String,
    pub sha: Option<String>,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "timeline.html")]
struct TimelinePage {
    page: &'static str,
    change: ChangeLink,
    severity: Option<String>,
    merged: Option<String>,
    entries: Vec<EntryRow>,
}

pub async fn timeline(
    web: &Web,
    forge: &str,
    repo: &str,
    number: u64,
) -> Result<Option<std::result::Result<String, askama::Error>>> {
    let Some(t) = crate::report::timeline(&web.store, forge, repo, number).await? else { return Ok(None) };
    Ok(Some(
        TimelinePage {
            page: "timeline",
            change: ChangeLink::of(web, &t.hotfix),
            severity: t.hotfix.severity.clone(),
            merged: t.hotfix.merged_at.map(time),
            entries: t
                .entries
                .iter()
                .map(|e| EntryRow {
                    at: time(e.at),
                    what: e.what.clone(),
                    actor: e.actor.clone(),
                    sha: e.sha.as_ref().map(|s| s.chars().take(12).collect()),
                    detail: e.detail.clone(),
                })
                .collect(),
        }
        .render(),
    ))
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFound<'a> {
    page: &'static str,
    change: String,
    forge: &'a str,
}

pub fn not_found(forge: &str, repo: &str, number: u64) -> std::result::Result<String, askama::Error> {
    NotFound { page: "timeline", change: format!("{repo}#{number}"), forge }.render()
}

#[cfg(test)]
mod tests;
