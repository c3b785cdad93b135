//! A scripted month of hotfixes, each figure counted by hand in the comments.

use super::*;
use crate::lane::lifecycle::Detail;

const T0: Millis = 1_793_577_600_000; // Monday 2026-11-02T00:00:00Z
const MIN: Millis = 60_000;
const HOUR: Millis = 60 * MIN;

struct Script(Vec<LifecycleEvent>);

impl Script {
    fn at(&mut self, number: u64, milestone: Milestone, at: Millis, detail: Detail) -> &mut Self {
        self.keyed(number, milestone, "", at, detail)
    }

    fn keyed(&mut self, number: u64, milestone: Milestone, key: &str, at: Millis, detail: Detail) -> &mut Self {
        self.0.push(LifecycleEvent {
            forge: "github".into(),
            repo: "acme/shop".into(),
            number,
            milestone,
            key: key.into(),
            at,
            actor: "someone".into(),
            detail,
        });
        self
    }
}

fn d() -> Detail {
    Detail::default()
}

fn hotfix_merge(due_after: Millis, at: Millis, files: &[&str], severity: Option<&str>) -> Detail {
    Detail {
        hotfix: true,
        due_at: Some(at + due_after),
        files: files.iter().map(|f| f.to_string()).collect(),
        severity: severity.map(String::from),
        sha: Some(format!("{at:040x}")),
        ..d()
    }
}

fn script() -> Vec<LifecycleEvent> {
    use Milestone::*;
    let week = 7 * DAY;
    let mut s = Script(Vec::new());
    // #1: fast, deployed, backported, postmortem on time, but #2 touches its file a day later.
    s.at(1, Entered, T0 + HOUR, d())
        .keyed(1, Granted, "a", T0 + HOUR + 10 * MIN, d())
        .keyed(1, SmokeGreen, "a", T0 + HOUR + 30 * MIN, d())
        .at(1, Merged, T0 + 2 * HOUR, hotfix_merge(week, T0 + 2 * HOUR, &["a.rs"], Some("1")))
        .keyed(1, Deployed, "production", T0 + 3 * HOUR, d())
        .keyed(1, BackportOpened, "main", T0 + 2 * HOUR + 5 * MIN, Detail { due_at: Some(T0 + 9 * DAY), ..d() })
        .keyed(1, BackportMerged, "main", T0 + DAY + 2 * HOUR, d())
        .at(1, PostmortemOpened, T0 + 2 * HOUR, Detail { reference: Some("acme/shop#100".into()), ..d() })
        .at(1, PostmortemClosed, T0 + 3 * DAY, Detail { incident_started: Some(T0 + 30 * MIN), ..d() });
    // #2: named as fixed by #3 (not a success), postmortem overdue, never deployed.
    s.at(2, Entered, T0 + DAY, d())
        .keyed(2, Granted, "b", T0 + DAY + 20 * MIN, d())
        .keyed(2, SmokeGreen, "b", T0 + DAY + 40 * MIN, d())
        .at(2, Merged, T0 + DAY + HOUR, hotfix_merge(week, T0 + DAY + HOUR, &["a.rs", "b.rs"], Some("2")))
        .keyed(2, Named, "3", T0 + 2 * DAY + 3 * HOUR, Detail { by: Some(3), ..d() });
    // #3: self-authorized, jumped the queue, no smoke result recorded, reverted by #5, late postmortem.
    let mut merge3 = hotfix_merge(week, T0 + 2 * DAY + 3 * HOUR, &[], Some("1"));
    (merge3.self_authorized, merge3.queue_jump, merge3.fixes) = (true, true, vec![2]);
    s.at(3, Entered, T0 + 2 * DAY, d())
        .keyed(3, Granted, "c", T0 + 2 * DAY + HOUR, d())
        .at(3, Merged, T0 + 2 * DAY + 3 * HOUR, merge3)
        .keyed(3, Reverted, "5", T0 + 4 * DAY, Detail { by: Some(5), ..d() })
        .at(3, PostmortemClosed, T0 + 9 * DAY + 4 * HOUR, d());
    // #4 and #6: ordinary changes; #6 is later named by hotfix #7. #5 reverts #3.
    s.at(4, Merged, T0 + DAY + 12 * HOUR, d())
        .at(5, Merged, T0 + 4 * DAY, Detail { reverts: Some(3), ..d() })
        .at(6, Merged, T0 + 5 * DAY, d())
        .keyed(6, Named, "7", T0 + 6 * DAY + 30 * MIN, Detail { by: Some(7), ..d() });
    // #7: its postmortem is not due yet.
    let mut merge7 = hotfix_merge(week, T0 + 6 * DAY + 30 * MIN, &[], None);
    merge7.fixes = vec![6];
    s.at(7, Entered, T0 + 6 * DAY, d()).at(7, Merged, T0 + 6 * DAY + 30 * MIN, merge7);
    // #8: merged before the window; #9: abandoned.
    s.at(8, Merged, T0 - DAY, d());
    s.at(9, Entered, T0 + 3 * DAY, d()).at(9, Abandoned, T0 + 3 * DAY + HOUR, d());
    s.0
}

fn figures() -> Figures {
    let scope = Scope { repo: Some("acme/shop".into()), since: T0, until: T0 + 10 * DAY };
    compute(&script(), &scope, T0 + 10 * DAY)
}

fn spread(n: usize, of: usize, median_s: f64, p90_s: f64) -> Spread {
    Spread { n, of, median_s: Some(median_s), p90_s: Some(p90_s) }
}

#[test]
fn durations_are_counted_over_the_hotfixes_they_could_cover() {
    let f = figures();
    assert_eq!((f.entered, f.merged, f.abandoned), (5, 4, 1));
    // Entered: #1 #2 #3 #7 #9. Smoke green 30 m (#1) and 40 m (#2).
    assert_eq!(f.time_to_patch, spread(2, 5, 2100.0, 2400.0));
    // Grants after 10 m, 20 m, 1 h.
    assert_eq!(f.authorization, spread(3, 5, 1200.0, 3600.0));
    // Merged after 1 h, 1 h, 3 h, 30 m: median of the middle two, p90 the 4th of 4.
    assert_eq!(f.time_to_merge, spread(4, 4, 3600.0, 10_800.0));
    // Only #1 was deployed, an hour after its merge: the rest are "not reported".
    assert_eq!(f.time_to_deploy, spread(1, 4, 3600.0, 3600.0));
    // #1's postmortem says the incident started 30 min after T0: restored 1 h 30 min later.
    assert_eq!(f.time_to_restore, spread(1, 4, 5400.0, 5400.0));
}

#[test]
fn success_regression_and_postmortems_follow_their_definitions() {
    let f = figures();
    // #2 was named as fixed by #3, #3 was reverted: 2 of 4 succeeded.
    assert_eq!(f.success, Share { hits: 2, of: 4 });
    // #2 touched #1's a.rs 23 h after #1 merged.
    assert_eq!(f.regressions, Share { hits: 1, of: 4 });
    // Due: #1 (done in time), #2 (overdue), #3 (done an hour late); #7 not due yet.
    assert_eq!(f.postmortems_on_time, Share { hits: 1, of: 3 });
    assert_eq!(f.overdue_postmortems.iter().map(|p| p.hotfix.number).collect::<Vec<_>>(), [2]);
    assert_eq!(f.pending_postmortems.iter().map(|p| p.hotfix.number).collect::<Vec<_>>(), [7]);
    assert_eq!(f.overdue_postmortems[0].due_at, T0 + 8 * DAY + HOUR);
    // #1 done after 2 d 22 h, #3 after 7 d 1 h.
    assert_eq!(f.postmortem_completion, spread(2, 4, (252_000.0 + 608_400.0) / 2.0, 608_400.0));
}

#[test]
fn rates_leave_fixes_out_of_the_change_failure_denominator() {
    let f = figures();
    // 4 hotfix merges of 7 merges in the window (#8 merged before it).
    assert_eq!(f.rework, Share { hits: 4, of: 7 });
    // Planned changes: #4 and #6 (#5 is a revert, the rest hotfixes); #6 was named by #7.
    assert_eq!(f.change_failure, Share { hits: 1, of: 2 });
    assert!((f.per_week - 2.8).abs() < 1e-9, "4 hotfixes in 10 days: {}", f.per_week);
    assert_eq!((f.queue_jumps, f.self_authorized), (1, 1));
    assert_eq!(f.backport_opened, spread(1, 1, 300.0, 300.0));
    assert_eq!(f.backport_merged, spread(1, 1, 86_400.0, 86_400.0));
    assert!(f.stale_backports.is_empty());
    assert_eq!(f.undeployed.iter().map(|h| h.number).collect::<Vec<_>>(), [2, 3, 7]);
}

#[test]
fn severity_and_weeks_split_the_same_hotfixes() {
    let f = figures();
    let sev: Vec<(&str, usize, Share)> =
        f.by_severity.iter().map(|s| (s.severity.as_str(), s.merged, s.success)).collect();
    assert_eq!(
        sev,
        [("1", 2, Share { hits: 1, of: 2 }), ("2", 1, Share { hits: 0, of: 1 }), ("none", 1, Share { hits: 1, of: 1 })]
    );
    assert_eq!(f.weeks.len(), 2);
    assert_eq!((f.weeks[0].start, f.weeks[0].merged, f.weeks[0].all_merges), (T0, 4, 7));
    assert_eq!((f.weeks[1].start, f.weeks[1].merged, f.weeks[1].all_merges), (T0 + 7 * DAY, 0, 0));
    assert_eq!(f.weeks[0].time_to_merge_s, Some(3600.0));
}

#[test]
fn a_stale_backport_and_an_empty_window() {
    let mut events = script();
    // #1's backport never merged and was due on day 9.
    events.retain(|e| e.milestone != Milestone::BackportMerged);
    let scope = Scope { repo: None, since: T0, until: T0 + 10 * DAY };
    let f = compute(&events, &scope, T0 + 10 * DAY);
    assert_eq!(
        f.stale_backports.iter().map(|b| (b.hotfix.number, b.target.as_str())).collect::<Vec<_>>(),
        [(1, "main")]
    );
    let other = Scope { repo: Some("acme/other".into()), since: T0, until: T0 + 10 * DAY };
    let empty = compute(&events, &other, T0 + 10 * DAY);
    assert_eq!((empty.merged, empty.time_to_deploy.n, empty.success.rate()), (0, 0, None));
}

#[test]
fn weeks_start_on_monday_utc() {
    assert_eq!(week_start(T0), T0);
    assert_eq!(week_start(T0 + 6 * DAY + 23 * HOUR), T0);
    assert_eq!(week_start(T0 - 1), T0 - 7 * DAY);
}

/// M8 at its edges: a later hotfix of the same repository within 7 days (inclusive) sharing a
/// file counts; one at the same moment, a millisecond past the window, in another repository or
/// touching other files does not.
#[test]
fn a_regression_is_a_later_hotfix_of_the_repository_within_the_window_sharing_a_file() {
    let window = REGRESSION_WINDOW;
    let cases: [(&str, Millis, &str, &str, bool); 6] = [
        ("within the window", window, "acme/shop", "a.rs", true),
        ("at the same moment", 0, "acme/shop", "a.rs", false),
        ("a millisecond late", window + 1, "acme/shop", "a.rs", false),
        ("in another repository", HOUR, "acme/other", "a.rs", false),
        ("other files", HOUR, "acme/shop", "b.rs", false),
        ("an hour later", HOUR, "acme/shop", "a.rs", true),
    ];
    for (what, after, repo, file, counts) in cases {
        let mut s = Script(Vec::new());
        s.at(1, Milestone::Merged, T0, hotfix_merge(7 * DAY, T0, &["a.rs", "c.rs"], None));
        s.at(2, Milestone::Merged, T0 + after, hotfix_merge(7 * DAY, T0 + after, &[file], None));
        s.0[1].repo = repo.into();
        let scope = Scope { repo: None, since: T0 - DAY, until: T0 + 30 * DAY };
        let f = compute(&s.0, &scope, T0 + 30 * DAY);
        assert_eq!(f.regressions.hits, usize::from(counts), "{what}: {:?}", f.regressions);
    }
}
