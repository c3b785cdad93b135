//! The hotfix figures end to end: scripted lifecycles played on the fake forge through the
//! real server, with an injected clock, then the report read from the store — each figure
//! against a hand count. On both forges and both store backends.

mod common;

use std::time::Duration;

use common::scenario::{Change, ForgeDriver, IssueRef, Landed, NewChange, Scenario, Source, State};
use hotfix_lane::report::model::{Figures, Scope, Share, Spread};
use hotfix_lane::store::Store;

/// Two responders, `smoke` must pass, postmortems due a week after the merge.
const POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n";
const CI: Source = Source::App("github-actions");
const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A hotfix by Codertocat naming postmortem `issue`, labelled by himself (which puts it in the
/// lane but authorizes nothing), authorized by alice after `authorize`, smoke green `green`
/// after the label: merged by the lane.
async fn hotfix<D: ForgeDriver>(
    s: &mut Scenario<D>,
    issue: u64,
    extra: &str,
    authorize: Duration,
    green: Duration,
) -> Change {
    s.open_issue(issue, &["postmortem"], "alice").await;
    let body = format!("Postmortem: #{issue}\n\n{extra}");
    let pr = s.open(NewChange::by("Codertocat").body(&body)).await;
    s.label(pr, "hotfix", "Codertocat").await;
    s.advance(authorize);
    s.comment(pr, "/hotfix authorize 4h", "alice").await;
    s.advance(green - authorize);
    s.report(pr, "smoke", State::Success, CI).await;
    let merged = s.landed().into_iter().any(|l| matches!(l, Landed::Merged { change, .. } if change == pr));
    assert!(merged, "{pr:?} merged once its smoke check passed");
    pr
}

/// An ordinary change merged by hand; returns it and the commit it landed as.
async fn ordinary<D: ForgeDriver>(s: &mut Scenario<D>, body: &str) -> (Change, String) {
    let pr = s.open(NewChange::by("Codertocat").body(body)).await;
    let sha = s.merge_by_hand(pr, "Codertocat").await;
    (pr, sha)
}

/// Runs the sweep the server runs every few minutes (reminders are queued there), and waits
/// for its jobs.
async fn sweep<D: ForgeDriver>(s: &Scenario<D>) {
    let store = s.forge.store();
    let now = hotfix_lane::clock::Clock::now_ms(s.forge.clock());
    for forge in hotfix_lane::lane::event::Forge::ALL {
        hotfix_lane::dispatch::reconcile(store, forge, now).await.unwrap();
    }
    common::settle(store).await;
}

async fn figures<D: ForgeDriver>(s: &Scenario<D>, since: i64) -> Figures {
    let now = hotfix_lane::clock::Clock::now_ms(s.forge.clock());
    let scope = Scope { repo: Some(s.forge.repo()), since, until: now + 1 };
    hotfix_lane::report::figures(s.forge.store(), &scope, now).await.unwrap()
}

fn spread(n: usize, of: usize, median: Duration, p90: Duration) -> Spread {
    Spread { n, of, median_s: Some(median.as_secs_f64()), p90_s: Some(p90.as_secs_f64()) }
}

/// #1 is deployed (by a later commit that contains it) and reverted, its revert relanded; #2
/// fixes an ordinary change, is deployed only to staging, and its postmortem goes overdue.
async fn a_scripted_week_of_hotfixes_reports_what_a_hand_count_gives<D: ForgeDriver>(backend: common::Backend) {
    let mut s = Scenario::<D>::start(backend, POLICY).await;
    s.allow_unread_comments("this test reads the figures, the lane's comments are tested elsewhere");
    let start = hotfix_lane::clock::Clock::now_ms(s.forge.clock());

    // #1: authorized after 10 min, smoke green after 30 min, merged then.
    let h1 = hotfix(&mut s, 50, "", 10 * MIN, 30 * MIN).await;
    let h1_sha = s.default_head();
    // An ordinary change lands on top, and that commit goes to production an hour later.
    let (n1, _) = ordinary(&mut s, "Tidy the logs.").await;
    s.advance(HOUR);
    let deployed = s.default_head();
    s.deploy(&deployed, "production", "deployer").await;

    // #2 fixes the ordinary change: authorized after 20 min, green after 40 min.
    s.advance(HOUR);
    let h2 = hotfix(&mut s, 51, &format!("Fixes: {}", reference::<D>(n1)), 20 * MIN, 40 * MIN).await;
    s.deploy(&s.default_head(), "staging", "deployer").await;

    // #1 is reverted by hand, and the revert reverted: a reland, which fails only the revert.
    s.advance(HOUR);
    let (_, revert_sha) = ordinary(&mut s, &format!("Revert \"Fix\"\n\nThis reverts commit {h1_sha}.")).await;
    ordinary(&mut s, &format!("Reapply \"Fix\"\n\nThis reverts commit {revert_sha}.")).await;
    ordinary(&mut s, "Another ordinary change.").await;

    // #1's postmortem is done on day 2 and says when the incident began, 30 min before the label.
    s.advance(2 * DAY);
    let began = common::github::rfc3339(start - 30 * 60_000);
    s.close_issue(IssueRef(50), &format!("## Timeline\nIncident-Started: {began}\n"), "alice").await;
    // #2's is never done: a week and a day later it is overdue.
    s.advance(6 * DAY);
    let f = figures(&s, start - DAY.as_millis() as i64).await;

    assert_eq!((f.entered, f.merged, f.abandoned), (2, 2, 0));
    assert_eq!(f.time_to_patch, spread(2, 2, 35 * MIN, 40 * MIN));
    assert_eq!(f.authorization, spread(2, 2, 15 * MIN, 20 * MIN));
    assert_eq!(f.time_to_merge, spread(2, 2, 35 * MIN, 40 * MIN));
    // Only #1 reached production (staging does not count): #2's is "not reported".
    assert_eq!(f.time_to_deploy, spread(1, 2, HOUR, HOUR));
    assert_eq!(f.undeployed.iter().map(|h| h.number).collect::<Vec<_>>(), [h2.0]);
    // Incident start → #1 merged: 30 min before the label to 30 min after it.
    assert_eq!(f.time_to_restore, spread(1, 2, HOUR, HOUR));
    // #1 was reverted; #2 stands.
    assert_eq!(f.success, Share { hits: 1, of: 2 });
    // #1's postmortem on time; #2's overdue.
    assert_eq!(f.postmortems_on_time, Share { hits: 1, of: 2 });
    assert_eq!(f.overdue_postmortems.iter().map(|p| p.hotfix.number).collect::<Vec<_>>(), [h2.0]);
    // 2 hotfixes of 6 merges; of the 2 planned changes (the reverts left out), #2 fixed one.
    assert_eq!(f.rework, Share { hits: 2, of: 6 });
    assert_eq!(f.change_failure, Share { hits: 1, of: 2 });
    assert_eq!((f.queue_jumps, f.self_authorized), (0, 0));
    let timeline = hotfix_lane::report::timeline(s.forge.store(), forge_name::<D>(), &s.forge.repo(), h1.0)
        .await
        .unwrap()
        .expect("a timeline");
    let what: Vec<&str> = timeline.entries.iter().map(|e| e.what.as_str()).collect();
    for step in ["entered", "granted", "smoke_green", "merged", "deployed", "reverted", "postmortem_closed"] {
        assert!(what.contains(&step), "{step} missing from {what:?}");
    }
    assert!(what.contains(&"grant.created") && what.contains(&"merge.merged"), "the audit trail is in it: {what:?}");
}

/// A postmortem left open is reminded once when it is due within a day, once when overdue, on
/// the change and on its issue — however often the sweep runs.
async fn a_postmortem_is_reminded_once_due_and_once_overdue<D: ForgeDriver>(backend: common::Backend) {
    let mut s = Scenario::<D>::start(backend, POLICY).await;
    s.allow_unread_comments("only the reminders are read here");
    let pr = hotfix(&mut s, 50, "", MIN, 2 * MIN).await;
    let reminders = |s: &Scenario<D>| {
        s.forge
            .written()
            .into_iter()
            .filter(|w| w.body.contains("The postmortem of hotfix"))
            .map(|w| (w.on, w.body))
            .collect::<Vec<_>>()
    };
    sweep(&s).await;
    assert!(reminders(&s).is_empty(), "not due yet");
    s.advance(6 * DAY + HOUR);
    sweep(&s).await;
    sweep(&s).await;
    let due = reminders(&s);
    let on: Vec<u64> = due.iter().map(|(on, _)| *on).collect();
    assert_eq!(on, [50, pr.0], "once on the issue and once on the change: {due:?}");
    assert!(due.iter().all(|(_, body)| body.contains("is due by")), "{due:?}");
    s.advance(DAY);
    sweep(&s).await;
    sweep(&s).await;
    let all = reminders(&s);
    assert_eq!(all.len(), 4, "then once each overdue: {all:?}");
    assert!(all[2..].iter().all(|(_, body)| body.contains("is overdue")), "{all:?}");
    s.close_issue(IssueRef(50), "Done.", "alice").await;
    s.advance(DAY);
    sweep(&s).await;
    assert_eq!(reminders(&s).len(), 4, "nothing after it is done");
}

/// The live gauges count open postmortems in the database; they say what the figures say from
/// the milestones, also over a database written before due times had a column of their own.
async fn the_gauges_count_open_postmortems_as_the_figures_do(backend: common::Backend) {
    use common::hotfixes::{expect, scripted, DAY};
    let now = 1_800_000_000_000;
    let db = common::TestDb::new(backend).await;
    let store = db.store().await;
    store.record_lifecycle(&scripted(now, "Fix the ledger")).await.unwrap();
    let scope = Scope { repo: None, since: now - 90 * DAY, until: now + 1 };
    let f = hotfix_lane::report::figures(&store, &scope, now).await.unwrap();
    let numbers =
        |d: &[hotfix_lane::report::model::DuePostmortem]| d.iter().map(|p| p.hotfix.number).collect::<Vec<_>>();
    assert_eq!(
        (numbers(&f.pending_postmortems), numbers(&f.overdue_postmortems)),
        (vec![expect::PENDING], vec![expect::OVERDUE])
    );
    let counted = |store: Store| async move {
        let g = hotfix_lane::report::gauges(&store, now).await.unwrap();
        store.close().await;
        (g.pending, g.overdue)
    };
    assert_eq!(counted(store).await, (1, 1));

    // The release before: no `due_at` column, migration 6 not run.
    let undo = [
        "DROP INDEX lifecycle_events_due",
        "ALTER TABLE lifecycle_events DROP COLUMN due_at",
        "DELETE FROM _sqlx_migrations WHERE version = 6",
    ];
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    for sql in undo {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    assert_eq!(counted(db.store().await).await, (1, 1), "the due times are read back from the details");
}

fn forge_name<D: ForgeDriver>() -> &'static str {
    if std::any::type_name::<D>().contains("GitLab") {
        "gitlab"
    } else {
        "github"
    }
}

/// How a change is named in a text on `D`'s forge.
fn reference<D: ForgeDriver>(change: Change) -> String {
    match forge_name::<D>() {
        "gitlab" => format!("!{}", change.0),
        _ => format!("#{}", change.0),
    }
}

on_both_backends!(forge github = crate::common::github::GitHubDriver:
    a_scripted_week_of_hotfixes_reports_what_a_hand_count_gives,
    a_postmortem_is_reminded_once_due_and_once_overdue,
);

on_both_backends!(forge gitlab = crate::common::gitlab::GitLabDriver:
    a_scripted_week_of_hotfixes_reports_what_a_hand_count_gives,
    a_postmortem_is_reminded_once_due_and_once_overdue,
);

/// The messages `git revert` itself writes — of a commit, of a merge (`-m 1`), and of a revert
/// (a reland) — name the commit they revert.
#[test]
fn git_revert_messages_name_the_commit_they_revert() {
    use hotfix_lane::lane::conventions::Conventions;
    use hotfix_lane::lane::lineage::{reverted, Reverted};
    let world = common::git::GitWorld::new();
    let conventions = Conventions::of(hotfix_lane::lane::event::Forge::Github);
    let message = |sha: &str| world.git(&["log", "-1", "--format=%B", sha]);
    world.write("app/config.toml", "retries = 5\ntimeout = 10\n");
    let fix = world.commit("Fix retries", "Mona <mona@example.com>");
    world.git(&["revert", "--no-edit", "HEAD"]);
    let revert = world.head();
    assert_eq!(reverted(&message(&revert), "x", "o/r", conventions), Some(Reverted::Commit(fix.clone())));
    world.git(&["revert", "--no-edit", "HEAD"]);
    let reland = world.head();
    assert_eq!(
        reverted(&message(&reland), "x", "o/r", conventions),
        Some(Reverted::Commit(revert)),
        "{}",
        message(&reland)
    );
    world.git(&["switch", "-q", "-c", "topic"]);
    world.write("docs/guide.md", "# Guide\n\nShorter.\n");
    world.commit("Shorten the guide", "Mona <mona@example.com>");
    world.git(&["switch", "-q", "master"]);
    world.git(&["merge", "-q", "--no-ff", "--no-edit", "topic"]);
    let merge = world.head();
    world.git(&["revert", "--no-edit", "-m", "1", "HEAD"]);
    let undone = message(&world.head());
    assert!(undone.contains("reversing"), "git's merge revert wording: {undone}");
    assert_eq!(reverted(&undone, "x", "o/r", conventions), Some(Reverted::Commit(merge)));
}

on_both_backends!(the_gauges_count_open_postmortems_as_the_figures_do);
