//! The report as text: a table for a terminal, Markdown for an issue or a chat, CSV for a
//! spreadsheet. JSON is the model itself. Every format lists the same rows, in one order.

use std::fmt::Write as _;

use super::model::{Figures, Share, Spread};
use crate::lane::incident::format_utc;
use crate::lane::policy::format_duration;

/// One line of the report.
pub struct Row {
    /// A stable key, for CSV and tools.
    pub key: &'static str,
    pub label: &'static str,
    pub value: Value,
}

pub enum Value {
    Spread(Spread, Absent),
    Share(Share),
    Count(usize),
    Rate(f64),
}

/// What an empty duration figure means.
#[derive(Clone, Copy)]
pub enum Absent {
    None,
    NotReported,
    NotObservable,
}

pub fn rows(f: &Figures) -> Vec<Row> {
    use Value::*;
    let row = |key, label, value| Row { key, label, value };
    vec![
        row("entered", "Hotfixes entered the lane", Count(f.entered)),
        row("merged", "Hotfixes merged", Count(f.merged)),
        row("abandoned", "Hotfixes closed unmerged", Count(f.abandoned)),
        row("time_to_patch", "Time to patch (M3): entry → smoke green", Spread(f.time_to_patch.clone(), Absent::None)),
        row(
            "authorization",
            "Authorization latency (M12): entry → grant",
            Spread(f.authorization.clone(), Absent::None),
        ),
        row("time_to_merge", "Time to merge: entry → merged", Spread(f.time_to_merge.clone(), Absent::None)),
        row(
            "time_to_deploy",
            "Time to deploy (M4): merged → production",
            Spread(f.time_to_deploy.clone(), Absent::NotReported),
        ),
        row(
            "time_to_restore",
            "Time to restore: incident start → merged",
            Spread(f.time_to_restore.clone(), Absent::NotObservable),
        ),
        row("success", "Hotfix success (M7): not reverted or fixed again in 14 d", Share(f.success)),
        row("regressions", "Regression proxy (M8): another hotfix on its files in 7 d", Share(f.regressions)),
        row("postmortems_on_time", "Postmortems done on time (M9)", Share(f.postmortems_on_time)),
        row(
            "postmortem_completion",
            "Postmortem completion: merged → done",
            Spread(f.postmortem_completion.clone(), Absent::None),
        ),
        row("per_week", "Emergency frequency (M10): hotfixes per week", Rate(f.per_week)),
        row("rework", "Rework rate: hotfix merges of all merges", Share(f.rework)),
        row("change_failure", "Change failure rate: changes reverted or fixed by a hotfix", Share(f.change_failure)),
        row(
            "backport_opened",
            "Backport lead: merged → backport opened",
            Spread(f.backport_opened.clone(), Absent::None),
        ),
        row(
            "backport_merged",
            "Backport lead: merged → backport merged",
            Spread(f.backport_merged.clone(), Absent::None),
        ),
        row("queue_jumps", "Merge-queue jumps", Count(f.queue_jumps)),
        row("self_authorized", "Self-authorized merges", Count(f.self_authorized)),
    ]
}

fn duration(seconds: f64) -> String {
    format_duration(std::time::Duration::from_secs(seconds.round().max(0.0) as u64))
}

/// A row's value in words: "median 12m, p90 40m (3 of 4)", "92 % (11 of 12)".
pub fn words(value: &Value) -> String {
    match value {
        Value::Spread(s, absent) => match (s.median_s, s.p90_s) {
            (Some(m), Some(p)) => format!("median {}, p90 {} ({} of {})", duration(m), duration(p), s.n, s.of),
            _ => match absent {
                Absent::NotReported if s.of > 0 => format!("not reported (0 of {})", s.of),
                Absent::NotObservable => "not observable from the forge".into(),
                _ => format!("none (0 of {})", s.of),
            },
        },
        Value::Share(s) => match s.rate() {
            Some(r) => format!("{:.0} % ({} of {})", r * 100.0, s.hits, s.of),
            None => "none (0 of 0)".into(),
        },
        Value::Count(n) => n.to_string(),
        Value::Rate(r) => format!("{r:.1}"),
    }
}

fn scope_line(f: &Figures) -> String {
    format!(
        "{} from {} to {}",
        f.scope.repo.as_deref().unwrap_or("all repositories"),
        format_utc(f.scope.since),
        format_utc(f.scope.until)
    )
}

pub fn table(f: &Figures) -> String {
    let rows = rows(f);
    let width = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0);
    let mut out = format!("Hotfixes: {}\n\n", scope_line(f));
    for r in &rows {
        let _ = writeln!(out, "{:<width$}  {}", r.label, words(&r.value));
    }
    out.push_str("\nWeek of      merged  all merges  success  patch (median)  merge (median)  deploy (median)\n");
    for w in &f.weeks {
        let median = |s: Option<f64>| s.map_or("-".into(), duration);
        let _ = writeln!(
            out,
            "{:<12} {:>6}  {:>10}  {:>7}  {:>14}  {:>14}  {:>15}",
            &format_utc(w.start)[..10],
            w.merged,
            w.all_merges,
            w.success.rate().map_or("-".into(), |r| format!("{:.0} %", r * 100.0)),
            median(w.time_to_patch_s),
            median(w.time_to_merge_s),
            median(w.time_to_deploy_s),
        );
    }
    for (title, lines) in lists(f) {
        let _ = writeln!(out, "\n{title} ({})", lines.len());
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
    }
    out
}

/// The lists under the figures: what needs someone's attention.
fn lists(f: &Figures) -> Vec<(&'static str, Vec<String>)> {
    let change = |h: &super::model::HotfixRef| format!("{}#{} {}", h.repo, h.number, h.title.replace('\n', " "));
    vec![
        (
            "Overdue postmortems",
            f.overdue_postmortems
                .iter()
                .map(|d| {
                    let issue = d.issue.as_deref().unwrap_or("no issue");
                    format!("{}: due {} ({issue})", change(&d.hotfix), format_utc(d.due_at))
                })
                .collect(),
        ),
        (
            "Stale backports",
            f.stale_backports
                .iter()
                .map(|b| format!("{} → {}: opened {}", change(&b.hotfix), b.target, format_utc(b.opened_at)))
                .collect(),
        ),
        ("Hotfixes without a reported deployment", f.undeployed.iter().map(change).collect()),
    ]
}

/// Markdown: the figures as a table, then the lists. Text from changes is escaped so that a
/// title cannot add markup (or mentions) to a page the report is pasted into.
pub fn markdown(f: &Figures) -> String {
    let mut out = format!("### Hotfixes: {}\n\n| Figure | Value |\n| --- | --- |\n", md_escape(&scope_line(f)));
    for r in rows(f) {
        let _ = writeln!(out, "| {} | {} |", md_escape(r.label), md_escape(&words(&r.value)));
    }
    for (title, lines) in lists(f) {
        let _ = writeln!(out, "\n**{title}** ({})\n", lines.len());
        for l in lines {
            let _ = writeln!(out, "- {}", md_escape(&l));
        }
    }
    out
}

fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_{}[]<>()#+-!|@~".contains(c) {
            out.push('\\');
        }
        out.push(if c == '\n' { ' ' } else { c });
    }
    out
}

/// CSV: `week,figure,n,of,median_seconds,p90_seconds,value` — the whole scope first (empty
/// week), then each week's merged count, success and medians.
pub fn csv(f: &Figures) -> String {
    let mut out = String::from("week,figure,n,of,median_seconds,p90_seconds,value\n");
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    for r in rows(f) {
        let line = match &r.value {
            Value::Spread(s, _) => format!(",{},{},{},{},{},", r.key, s.n, s.of, num(s.median_s), num(s.p90_s)),
            Value::Share(s) => format!(",{},{},{},,,{}", r.key, s.hits, s.of, num(s.rate())),
            Value::Count(n) => format!(",{},,,,,{n}", r.key),
            Value::Rate(v) => format!(",{},,,,,{v}", r.key),
        };
        let _ = writeln!(out, "{line}");
    }
    for w in &f.weeks {
        let day = &format_utc(w.start)[..10];
        let _ = writeln!(out, "{day},merged,,,,,{}", w.merged);
        let _ = writeln!(out, "{day},all_merges,,,,,{}", w.all_merges);
        let _ = writeln!(out, "{day},success,{},{},,,{}", w.success.hits, w.success.of, num(w.success.rate()));
        let _ = writeln!(out, "{day},time_to_patch,,,{},,", num(w.time_to_patch_s));
        let _ = writeln!(out, "{day},time_to_merge,,,{},,", num(w.time_to_merge_s));
        let _ = writeln!(out, "{day},time_to_deploy,,,{},,", num(w.time_to_deploy_s));
    }
    out
}
