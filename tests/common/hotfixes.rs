//! A scripted set of hotfixes as lifecycle milestones, with the figures a person counts from
//! them by hand, for the page's tests.

use hotfix_lane::lane::lifecycle::{Detail, LifecycleEvent, Milestone};

/// Not the lane harness's repository: a test that also drives a live change there keeps its
/// figures apart.
pub const REPO: &str = "acme/payments";
pub const MIN: i64 = 60 * 1000;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// What the last 7 days of [`scripted`] add up to, at its `now`.
pub mod expect {
    /// #10, #11, #12, #13 entered; #10, #11, #12 merged; #13 abandoned.
    pub const ENTERED: usize = 4;
    pub const MERGED: usize = 3;
    pub const ABANDONED: usize = 1;
    /// #11 was reverted within 14 days.
    pub const SUCCESS: &str = "2 of 3";
    pub const SUCCESS_RATE: &str = "67 %";
    /// #12's postmortem closed on time, #11's is overdue, #10's is not due yet.
    pub const POSTMORTEMS: &str = "1 of 2";
    /// #20 was named by #12's `Fixes:`; #21 was not: of the two planned changes.
    pub const CHANGE_FAILURE: &str = "1 of 2";
    /// Three hotfixes of five merged changes.
    pub const REWORK: &str = "3 of 5";
    /// #10 and #11 went green; #12 never reported smoke: of the four that entered.
    pub const TIME_TO_PATCH: &str = "2 of 4";
    pub const TIME_TO_PATCH_MEDIAN: &str = "25 min";
    /// #10 and #12 were deployed, #11 was not.
    pub const TIME_TO_DEPLOY: &str = "2 of 3";
    pub const OVERDUE: u64 = 11;
    pub const PENDING: u64 = 10;
    pub const UNDEPLOYED: u64 = 11;
    /// #12's milestones: entered, merged, deployed, backport_opened, postmortem_opened, postmortem_closed.
    pub const TIMELINE_12: usize = 6;
}

pub fn at(number: u64, milestone: Milestone, at: i64, actor: &str) -> LifecycleEvent {
    LifecycleEvent {
        forge: "github".into(),
        repo: REPO.into(),
        number,
        milestone,
        key: String::new(),
        at,
        actor: actor.into(),
        detail: Detail::default(),
    }
}

fn keyed(mut e: LifecycleEvent, key: &str) -> LifecycleEvent {
    e.key = key.into();
    e
}

fn with(mut e: LifecycleEvent, edit: impl FnOnce(&mut Detail)) -> LifecycleEvent {
    edit(&mut e.detail);
    e
}

fn entered(number: u64, at: i64, by: &str, title: &str, severity: &str) -> LifecycleEvent {
    with(self::at(number, Milestone::Entered, at, by), |d| {
        d.title = Some(title.into());
        d.base = Some("master".into());
        d.severity = Some(severity.into());
    })
}

fn merged(number: u64, at: i64, title: &str, severity: &str, due_after: i64) -> LifecycleEvent {
    with(self::at(number, Milestone::Merged, at, "hotfix-lane"), |d| {
        d.hotfix = true;
        d.title = Some(title.into());
        d.severity = Some(severity.into());
        d.sha = Some(format!("c0ffee{number:02}{}", "ab".repeat(16)));
        d.due_at = Some(at + due_after);
    })
}

/// Five hotfixes and two planned changes of the last week before `now`; `title_12` is #12's
/// title (a test puts markup there).
pub fn scripted(now: i64, title_12: &str) -> Vec<LifecycleEvent> {
    let t10 = now - 5 * DAY;
    let t11 = now - 4 * DAY;
    let t12 = now - 3 * DAY;
    vec![
        // #10: authorized, green in 30 min, merged, deployed; its postmortem is due in 2 days.
        entered(10, t10, "alice", "Fix checkout timeout", "1"),
        keyed(at(10, Milestone::Granted, t10 + 10 * MIN, "bob"), "a10"),
        keyed(at(10, Milestone::SmokeGreen, t10 + 30 * MIN, "hotfix-lane"), "a10"),
        merged(10, t10 + HOUR, "Fix checkout timeout", "1", 7 * DAY),
        keyed(at(10, Milestone::Deployed, t10 + 2 * HOUR, "deployer"), "production"),
        // #11: self-authorized, green in 20 min, merged, never deployed, reverted by #15; its
        // postmortem was due a day after the merge.
        entered(11, t11, "carol", "Roll back the cache change", "2"),
        with(merged(11, t11 + 40 * MIN, "Roll back the cache change", "2", DAY), |d| d.self_authorized = true),
        keyed(at(11, Milestone::SmokeGreen, t11 + 20 * MIN, "hotfix-lane"), "b11"),
        with(at(11, Milestone::Reverted, t11 + 2 * DAY, "hotfix-lane"), |d| d.by = Some(15)),
        // #12: merged in 2 h, no smoke reported; deployed; a backport that went stale; its
        // postmortem closed a day after the merge.
        entered(12, t12, "alice", title_12, "1"),
        merged(12, t12 + 2 * HOUR, title_12, "1", 7 * DAY),
        keyed(at(12, Milestone::Deployed, t12 + 5 * HOUR, "deployer"), "production"),
        with(keyed(at(12, Milestone::BackportOpened, t12 + 3 * HOUR, "hotfix-lane"), "release-1.2"), |d| {
            d.reference = Some("31".into());
            d.due_at = Some(t12 + 5 * HOUR);
        }),
        with(at(12, Milestone::PostmortemOpened, t12 + 3 * HOUR, "hotfix-lane"), |d| {
            d.reference = Some(format!("{REPO}#40"))
        }),
        with(at(12, Milestone::PostmortemClosed, t12 + DAY, "alice"), |d| d.reference = Some(format!("{REPO}#40"))),
        // #13: entered, then closed unmerged.
        entered(13, now - 2 * DAY, "bob", "Try a bigger pool", "3"),
        at(13, Milestone::Abandoned, now - DAY, "hotfix-lane"),
        // Planned changes: #20, later named by #12; #21.
        with(at(20, Milestone::Merged, now - 6 * DAY, "hotfix-lane"), |d| d.title = Some("Cache everything".into())),
        with(at(20, Milestone::Named, t12 + 2 * HOUR, "hotfix-lane"), |d| d.by = Some(12)),
        with(at(21, Milestone::Merged, now - 6 * DAY, "hotfix-lane"), |d| d.title = Some("Docs".into())),
    ]
}
