//! `/hotfix revert` end to end: a real git repository on disk behind the fake GitHub, the
//! revert made on the server's mirror, opened as a new pull request in the lane with the
//! responder's grant, merged on its smoke check alone, and counted against the original.

mod common;

use common::fake_github::TOKEN_LOGIN;
use common::git::GitWorld;
use common::lane::{Lane, NOW, REPO};
use common::Backend;
use serde_json::{json, Value};

const POLICY: &str = "[responders]\nusers = [\"Codertocat\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n";
const BRANCH: &str = "hotfix-lane/revert-2";

/// The hotfix #2 on `release-1`, merged with a merge commit (after the base moved on);
/// returns the merge commit.
fn landed_hotfix(world: &GitWorld) -> String {
    world.git(&["switch", "-q", "-c", "fix", "release-1"]);
    let text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    world.write("app/server.rs", &text.replacen("line 5\n", "line 5 (fixed)\n", 1));
    world.commit("Fix the crash", "Octo Cat <octocat@example.com>");
    world.git(&["switch", "-q", "release-1"]);
    world.write("CHANGELOG", "1.0.1\n");
    world.commit("Changelog", "Mona <mona@example.com>");
    world.git(&["merge", "-q", "--no-ff", "fix", "-m", "Merge pull request #2 from fix"]);
    let merged = world.head();
    world.push(&["release-1", "fix", "fix:refs/pull/2/head"]);
    merged
}

/// The tree `git revert -m 1` makes of `merged` on `onto`.
fn git_revert_tree(world: &GitWorld, onto: &str, merged: &str) -> String {
    world.git(&["switch", "-q", "--detach", onto]);
    world.git(&["revert", "--no-edit", "-m", "1", merged]);
    let tree = world.git(&["rev-parse", "HEAD^{tree}"]);
    world.git(&["switch", "-q", "master"]);
    tree
}

fn merged_pull(merge_commit: &str) -> Value {
    let mut pull = common::github::pull(2, "octocat", "release-1", &["hotfix"], "Postmortem: #50");
    pull["state"] = "closed".into();
    pull["merged"] = true.into();
    pull["merge_commit_sha"] = merge_commit.into();
    pull["title"] = "Fix the crash".into();
    pull
}

/// A lane whose #2 merged in the lane on Codertocat's label.
async fn merged_hotfix(world: &GitWorld, backend: Backend) -> Lane {
    let lane = Lane::start(backend, POLICY).await;
    lane.fake.repo(REPO, |r| {
        r.git_dir = Some(world.remote.clone());
        r.label_events.push((2, "hotfix".into(), "Codertocat".into(), "2026-11-26T13:00:00Z".into()));
        r.issues.insert(50, (vec!["postmortem".into()], false));
    });
    let merged = world.git(&["rev-parse", "release-1"]);
    let pull = merged_pull(&merged);
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull.clone()));
    lane.send("pull_request", common::github::pr_event("closed", &pull, None, "Codertocat")).await;
    lane
}

fn revert_pulls(lane: &Lane) -> Vec<Value> {
    lane.fake.repo(REPO, |r| r.pulls.values().filter(|p| p["head"]["ref"] == BRANCH).cloned().collect())
}

async fn audit(lane: &Lane) -> Vec<(i64, String, String, String)> {
    let entries = lane.store().audit(None, None).await.unwrap();
    entries.into_iter().map(|e| (e.number.unwrap_or(0), e.action, e.actor, e.detail)).collect()
}

/// The revert pull request `number` as GitHub shows it once the lane labelled it.
fn shown_revert(lane: &Lane, number: u64, tip: &str) -> Value {
    let opened = &revert_pulls(lane)[0];
    let mut pull =
        common::github::pull(number, TOKEN_LOGIN, "release-1", &["hotfix"], opened["body"].as_str().unwrap());
    pull["title"] = opened["title"].clone();
    pull["head"]["ref"] = BRANCH.into();
    pull["head"]["sha"] = tip.into();
    pull
}

async fn a_responders_revert_opens_one_change_that_merges_on_its_smoke_check(backend: Backend) {
    let world = GitWorld::new();
    let merged = landed_hotfix(&world);
    let lane = merged_hotfix(&world, backend).await;

    lane.send("issue_comment", common::github::comment_event(2, "/hotfix revert", "Codertocat")).await;
    let pulls = revert_pulls(&lane);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pr = &pulls[0];
    let number = pr["number"].as_u64().unwrap();
    assert_eq!(pr["title"], "Revert \"Fix the crash\"");
    assert_eq!(pr["base"]["ref"], "release-1");
    let body = pr["body"].as_str().unwrap();
    assert!(body.starts_with(&format!("Reverts {REPO}#2\n")), "{body}");
    assert!(body.contains("@Codertocat's `/hotfix revert`") && body.contains("Postmortem: "), "{body}");
    let labels = lane.fake.repo(REPO, |r| r.pull_labels.get(&number).cloned().unwrap_or_default());
    assert_eq!(labels, ["hotfix"]);

    let tip = world.remote_tip(BRANCH).expect("revert branch pushed");
    assert_eq!(world.tree_of(&tip), git_revert_tree(&world, "origin/release-1", &merged), "same tree as git revert");
    let log = common::git::remote_git(&world.remote, &["log", "-1", "--format=%cn|%P|%B", &tip]);
    let parent = world.git(&["rev-parse", "origin/release-1"]);
    assert_eq!(log, format!("hotfix-lane[bot]|{parent}|Revert \"Fix the crash\"\n\nThis reverts commit {merged}."));
    let entries = audit(&lane).await;
    let grant = entries.iter().find(|e| e.0 == number as i64 && e.1 == "grant.created").expect("the grant");
    assert_eq!(grant.2, "Codertocat", "{entries:?}");
    assert!(entries.iter().any(|e| e.0 == 2 && e.1 == "revert.requested"), "{entries:?}");
    assert!(entries.iter().any(|e| e.0 == 2 && e.1 == "revert.opened"), "{entries:?}");
    assert!(lane.comments().iter().any(|c| c.contains(&format!("Reverted in #{number}"))), "{:?}", lane.comments());

    // Its webhooks arrive: opened (no label yet), then the lane's own label.
    let shown = shown_revert(&lane, number, &tip);
    lane.fake.repo(REPO, |r| r.pulls.insert(number, shown.clone()));
    let mut unlabelled = shown.clone();
    unlabelled["labels"] = json!([]);
    lane.send("pull_request", common::github::pr_event("opened", &unlabelled, None, TOKEN_LOGIN)).await;
    lane.send("pull_request", common::github::pr_event("labeled", &shown, Some("hotfix"), TOKEN_LOGIN)).await;
    assert!(lane.fake.repo(REPO, |r| r.merges.is_empty()), "not before its smoke check");

    // Smoke goes green: merged with no further authorization.
    lane.clock.advance(60_000);
    lane.fake.post_check_run(REPO, &tip, "smoke", "success", "github-actions");
    let mut check = common::github::check_event(&tip, "smoke", "success");
    for at in ["/check_run/pull_requests/0", "/check_run/check_suite/pull_requests/0"] {
        if let Some(pull) = check.pointer_mut(at) {
            (pull["number"], pull["head"]["sha"], pull["head"]["ref"]) =
                (number.into(), tip.clone().into(), BRANCH.into());
            pull["base"]["ref"] = "release-1".into();
        }
    }
    lane.send("check_run", check).await;
    let merges = lane.fake.repo(REPO, |r| r.merges.clone());
    let entries = audit(&lane).await;
    assert_eq!(
        merges.iter().map(|m| (m.0, m.1.as_str())).collect::<Vec<_>>(),
        [(number, tip.as_str())],
        "{entries:#?}"
    );

    // Once GitHub says it merged, the original counts as not successful.
    let mut done = shown.clone();
    (done["state"], done["merged"], done["merge_commit_sha"]) = ("closed".into(), true.into(), tip.clone().into());
    lane.fake.repo(REPO, |r| r.pulls.insert(number, done.clone()));
    lane.send("pull_request", common::github::pr_event("closed", &done, None, TOKEN_LOGIN)).await;
    let now = NOW + 120_000;
    let scope = hotfix_lane::report::model::Scope { repo: Some(REPO.into()), since: NOW - 86_400_000, until: now + 1 };
    let figures = hotfix_lane::report::figures(lane.store(), &scope, now).await.unwrap();
    assert_eq!((figures.success.hits, figures.success.of), (1, 2), "the revert merged fine, the original did not");
}

async fn reverting_twice_opens_one_change(backend: Backend) {
    let world = GitWorld::new();
    landed_hotfix(&world);
    let lane = merged_hotfix(&world, backend).await;
    // The job's first try pushes, then the pull request fails: the retry takes up its branch.
    lane.fake.with(|w| w.failures.push(("POST /repos/Codertocat/Hello-World/pulls".into(), 502)));
    let comment = common::github::comment_event(2, "/hotfix revert", "Codertocat");
    let delivery = common::Delivery::new("issue_comment", "revert", serde_json::to_vec(&comment).unwrap());
    assert_eq!(delivery.send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    common::eventually("the pull request fails once", || async {
        store.jobs_in_state("queued").await.unwrap().iter().any(|j| j.last_error.is_some())
    })
    .await;
    let pushed = world.remote_tip(BRANCH).expect("pushed before the failure");
    lane.clock.advance(60_000);
    common::eventually("the retry runs", || async { !revert_pulls(&lane).is_empty() }).await;
    lane.settle().await;
    assert_eq!(world.remote_tip(BRANCH), Some(pushed), "never pushed over");
    // The command again, and the comment redelivered: nothing new.
    lane.send("issue_comment", common::github::comment_event(2, "/hotfix revert", "Codertocat")).await;
    lane.deliver(&delivery).await;
    assert_eq!(revert_pulls(&lane).len(), 1);
    let opened = audit(&lane).await.into_iter().filter(|e| e.1 == "revert.opened").count();
    assert_eq!(opened, 1);
}

async fn a_non_responder_cannot_revert(backend: Backend) {
    let world = GitWorld::new();
    landed_hotfix(&world);
    let lane = merged_hotfix(&world, backend).await;
    lane.send("issue_comment", common::github::comment_event(2, "/hotfix revert", "mallory")).await;
    assert!(revert_pulls(&lane).is_empty());
    assert_eq!(world.remote_tip(BRANCH), None);
    assert!(audit(&lane).await.iter().any(|e| e.1 == "revert.refused" && e.2 == "mallory"));
}

async fn a_squatted_revert_branch_is_left_alone(backend: Backend) {
    let world = GitWorld::new();
    landed_hotfix(&world);
    // Someone who can push creates the branch first, with a commit of their own.
    world.git(&["switch", "-q", "-c", "squat", "release-1"]);
    world.write("app/config.toml", "retries = 0\n");
    let squatted = world.commit("Revert \"Fix the crash\"", "Mallory <mallory@example.com>");
    world.push(&[&format!("squat:{BRANCH}")]);
    world.git(&["switch", "-q", "master"]);
    let lane = merged_hotfix(&world, backend).await;
    lane.send("issue_comment", common::github::comment_event(2, "/hotfix revert", "Codertocat")).await;
    assert!(revert_pulls(&lane).is_empty(), "nothing opened from it");
    assert_eq!(world.remote_tip(BRANCH), Some(squatted), "left as it is");
    let failed = audit(&lane).await.into_iter().find(|e| e.1 == "revert.failed").expect("the revert failed");
    assert!(failed.3.contains("not ours"), "{failed:?}");
    assert!(lane.comments().iter().any(|c| c.contains("branch exists and is not ours")), "{:?}", lane.comments());
}

async fn a_revert_that_conflicts_fails_saying_where(backend: Backend) {
    let world = GitWorld::new();
    landed_hotfix(&world);
    let lane = merged_hotfix(&world, backend).await;
    // The fixed line changed again since the merge: the revert cannot apply cleanly.
    world.git(&["switch", "-q", "release-1"]);
    let text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    world.write("app/server.rs", &text.replacen("line 5 (fixed)\n", "line 5 (fixed twice)\n", 1));
    world.commit("Fix it again", "Mona <mona@example.com>");
    world.push(&["release-1"]);
    world.git(&["switch", "-q", "master"]);
    lane.send("issue_comment", common::github::comment_event(2, "/hotfix revert", "Codertocat")).await;
    assert!(revert_pulls(&lane).is_empty());
    assert_eq!(world.remote_tip(BRANCH), None, "nothing pushed");
    let failed = audit(&lane).await.into_iter().find(|e| e.1 == "revert.failed").expect("the revert failed");
    assert!(failed.3.contains("conflicts in `app/server.rs`"), "{failed:?}");
    assert!(lane.comments().iter().any(|c| c.contains("The revert was not opened")), "{:?}", lane.comments());
}

on_both_backends!(
    a_responders_revert_opens_one_change_that_merges_on_its_smoke_check,
    reverting_twice_opens_one_change,
    a_non_responder_cannot_revert,
    a_squatted_revert_branch_is_left_alone,
    a_revert_that_conflicts_fails_saying_where,
);
