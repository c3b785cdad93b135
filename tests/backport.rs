//! Backports end to end: real git repositories on disk (a bare "remote" the fake GitHub serves
//! as the clone URL), the real server picking on its mirror, pushing and opening pull requests
//! through the real GitHub client; and the engine alone through `hotfix-lane backport local`.

mod common;

use common::git::GitWorld;
use common::lane::{Lane, NOW, REPO};
use common::Backend;
use serde_json::{json, Value};

const RESPONDERS: &str = "[responders]\nusers = [\"Codertocat\"]\n";
const BRANCH: &str = "hotfix-lane/backport/2-to-master";

/// The hotfix: one fix to `app/server.rs` on a branch from `release-1`.
fn hotfix_commits(world: &GitWorld, count: usize) -> Vec<String> {
    world.git(&["switch", "-q", "-c", "fix", "release-1"]);
    let mut text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    let commits = (1..=count)
        .map(|i| {
            text = text.replacen(&format!("line {}\n", i * 5), &format!("line {} (fixed)\n", i * 5), 1);
            world.write("app/server.rs", &text);
            world.commit(&format!("Fix part {i}\n\nWhy it broke, part {i}."), "Octo Cat <octocat@example.com>")
        })
        .collect();
    world.git(&["switch", "-q", "release-1"]);
    world.push(&["fix"]);
    commits
}

#[derive(Clone, Copy)]
enum Method {
    Squash,
    Merge,
    Rebase,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Squash => "squash",
            Method::Merge => "merge",
            Method::Rebase => "rebase",
        }
    }
}

/// Lands `fix` on `release-1` the way GitHub does for `method`; returns the merge commit and
/// the commits a correct backport picks.
fn land(world: &GitWorld, method: Method) -> (String, Vec<String>) {
    // The base moved on while the fix was reviewed, as it does.
    world.write("CHANGELOG", "1.0.1\n");
    world.commit("Changelog", "Mona <mona@example.com>");
    let merged = match method {
        Method::Squash => {
            world.git(&["merge", "-q", "--squash", "fix"]);
            world.commit("Fix the crash (#2)", "Octo Cat <octocat@example.com>")
        }
        Method::Merge => {
            world.git(&["merge", "-q", "--no-ff", "fix", "-m", "Merge pull request #2 from fix"]);
            world.head()
        }
        Method::Rebase => {
            let commits = world.git(&["rev-list", "--reverse", "release-1..fix"]);
            for c in commits.lines() {
                world.git(&["cherry-pick", c]);
            }
            world.head()
        }
    };
    world.push(&["release-1", "fix:refs/pull/2/head"]);
    let picked = match method {
        Method::Rebase => world.git(&["rev-list", "--reverse", "--first-parent", "release-1~3..release-1"]),
        _ => merged.clone(),
    };
    (merged, picked.lines().map(String::from).collect())
}

/// PR #2 as GitHub serves it once merged into `release-1`.
fn merged_pull(merge_commit: &str, labels: &[&str]) -> Value {
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["state"] = "closed".into();
    pull["merged"] = true.into();
    pull["merge_commit_sha"] = merge_commit.into();
    pull["base"]["ref"] = "release-1".into();
    pull["title"] = "Fix the crash".into();
    pull["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    pull
}

fn closed_event(pull: &Value, sender: &str) -> Value {
    let mut event = common::json_fixture("github/pull_request/labeled.json");
    event["action"] = "closed".into();
    event["label"] = Value::Null;
    event["pull_request"] = pull.clone();
    event["sender"]["login"] = sender.into();
    event
}

async fn lane_with(world: &GitWorld, backend: Backend, policy: &str) -> Lane {
    let lane = Lane::start(backend, policy).await;
    lane.fake.repo(REPO, |r| {
        r.git_dir = Some(world.remote.clone());
        r.label_events.push((2, "hotfix".into(), "Codertocat".into(), "2026-11-26T13:00:00Z".into()));
    });
    lane
}

/// Merges PR #2 (already landed in `world`) and waits for every backport job.
async fn merge(lane: &Lane, merge_commit: &str, labels: &[&str]) {
    let pull = merged_pull(merge_commit, labels);
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull.clone()));
    lane.send("pull_request", closed_event(&pull, "alice")).await;
}

fn backport_pulls(lane: &Lane) -> Vec<Value> {
    lane.fake.repo(REPO, |r| {
        r.pulls
            .values()
            .filter(|p| p["head"]["ref"].as_str().unwrap_or("").starts_with("hotfix-lane/"))
            .cloned()
            .collect()
    })
}

async fn backport_lands_with_the_tree_git_would_make(backend: Backend, method: Method) {
    let world = GitWorld::new();
    hotfix_commits(&world, 3);
    let (merged, picked) = land(&world, method);
    let lane = lane_with(&world, backend, RESPONDERS).await;
    merge(&lane, &merged, &["hotfix"]).await;

    let pulls = backport_pulls(&lane);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pr = &pulls[0];
    assert_eq!(pr["title"], "[Backport master] Fix the crash");
    assert_eq!(pr["base"]["ref"], "master");
    assert_eq!(pr["draft"], false);
    let number = pr["number"].as_u64().unwrap();
    insta::assert_snapshot!(format!("backport_body_{}", method.name()), pr["body"].as_str().unwrap());

    let tip = world.remote_tip(BRANCH).expect("backport branch pushed");
    let picked: Vec<&str> = picked.iter().map(String::as_str).collect();
    assert_eq!(world.tree_of(&tip), world.cherry_pick_tree("origin/master", &picked), "same tree as git cherry-pick");
    // One new commit per picked commit, each saying where it came from, authors kept, the bot committing.
    let log = common::git::remote_git(&world.remote, &["log", "--format=%an|%cn|%B%x00", &format!("master..{tip}")]);
    let entries: Vec<&str> = log.split('\0').map(str::trim).filter(|e| !e.is_empty()).collect();
    assert_eq!(entries.len(), picked.len(), "{log}");
    for (entry, original) in entries.iter().rev().zip(&picked) {
        let expected_author = if matches!(method, Method::Merge) { "GitHub" } else { "Octo Cat" };
        assert!(entry.starts_with(&format!("{expected_author}|hotfix-lane[bot]|")), "{entry}");
        assert!(entry.contains(&format!("(cherry picked from commit {original})")), "{entry}");
    }

    assert_eq!(lane.fake.repo(REPO, |r| r.pull_labels[&number].clone()), vec!["backport"]);
    assert_eq!(lane.fake.repo(REPO, |r| r.assignees[&number].clone()), vec!["Codertocat", "alice"]);
    assert_eq!(lane.status(&merged, "hotfix-lane/backport"), ("success".into(), "backported to master".into()));
    let states: Vec<String> = lane.fake.repo(REPO, |r| {
        r.statuses
            .iter()
            .filter(|s| s.sha == merged && s.context == "hotfix-lane/backport")
            .map(|s| s.state.clone())
            .collect()
    });
    assert_eq!(states, vec!["pending", "success"], "pending from the merge until the backport is open");
    let comments: Vec<String> = lane.comments().into_iter().filter(|c| c.contains("hotfix-lane:backport")).collect();
    assert_eq!(comments.len(), 1);
    insta::assert_snapshot!("backport_table_opened", comments[0]);
}

async fn a_squash_merge_is_backported_as_its_one_commit(backend: Backend) {
    backport_lands_with_the_tree_git_would_make(backend, Method::Squash).await;
}

async fn a_merge_commit_is_picked_against_its_first_parent(backend: Backend) {
    backport_lands_with_the_tree_git_would_make(backend, Method::Merge).await;
}

async fn a_rebase_merge_backports_each_rebased_commit_in_order(backend: Backend) {
    backport_lands_with_the_tree_git_would_make(backend, Method::Rebase).await;
}

/// `master` rewrote the line the fix touches: the backport conflicts.
fn conflicting_master(world: &GitWorld) {
    world.git(&["switch", "-q", "master"]);
    let text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    world.write("app/server.rs", &text.replace("line 5\n", "line five, reworded on master\n"));
    world.commit("Reword line 5", "Mona <mona@example.com>");
    world.push(&["master"]);
}

async fn a_conflict_opens_a_draft_that_fails_until_resolved(backend: Backend) {
    let world = GitWorld::new();
    hotfix_commits(&world, 1);
    conflicting_master(&world);
    world.git(&["switch", "-q", "release-1"]);
    let (merged, _) = land(&world, Method::Squash);
    let lane = lane_with(&world, backend, RESPONDERS).await;
    merge(&lane, &merged, &["hotfix"]).await;

    let pulls = backport_pulls(&lane);
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    let number = pr["number"].as_u64().unwrap();
    assert_eq!(pr["draft"], true);
    insta::assert_snapshot!("backport_body_conflict", pr["body"].as_str().unwrap());
    assert_eq!(lane.fake.repo(REPO, |r| r.pull_labels[&number].clone()), vec!["backport", "backport-conflict"]);
    let tip = world.remote_tip(BRANCH).unwrap();
    let file = common::git::remote_git(&world.remote, &["show", &format!("{tip}:app/server.rs")]);
    assert!(file.contains("<<<<<<< target") && file.contains(">>>>>>> backport"), "{file}");
    assert_eq!(lane.status(&merged, "hotfix-lane/backport").0, "failure");
    assert_eq!(
        lane.status(&tip, "hotfix-lane/backport"),
        ("failure".into(), "conflict markers remain in app/server.rs".into())
    );

    // Someone resolves the conflict on the branch: the check follows.
    let fixed = world.resolve_reworded_line_5(BRANCH);
    let mut event = common::json_fixture("github/pull_request/labeled.json");
    event["action"] = "synchronize".into();
    event["label"] = Value::Null;
    event["pull_request"]["number"] = number.into();
    event["pull_request"]["head"]["ref"] = BRANCH.into();
    event["pull_request"]["head"]["sha"] = fixed.as_str().into();
    event["pull_request"]["labels"] = json!([]);
    lane.send("pull_request", event).await;
    assert_eq!(lane.status(&fixed, "hotfix-lane/backport"), ("success".into(), "no conflicts left".into()));
}

async fn several_targets_one_conflicting_each_get_their_own_outcome(backend: Backend) {
    let world = GitWorld::new();
    world.git(&["branch", "release-2", "master"]);
    world.push(&["release-2"]);
    hotfix_commits(&world, 1);
    conflicting_master(&world);
    world.git(&["switch", "-q", "release-1"]);
    let (merged, _) = land(&world, Method::Squash);
    let policy =
        format!("{RESPONDERS}[backport]\ntargets = [\"master\", \"release-2\"]\nlabels = [\"needs-release-note\"]\n");
    let lane = lane_with(&world, backend, &policy).await;
    merge(&lane, &merged, &["hotfix"]).await;

    let mut pulls: Vec<(String, bool)> = backport_pulls(&lane)
        .iter()
        .map(|p| (p["base"]["ref"].as_str().unwrap().to_string(), p["draft"].as_bool().unwrap()))
        .collect();
    pulls.sort();
    assert_eq!(pulls, vec![("master".into(), true), ("release-2".into(), false)]);
    assert!(world.remote_tip("hotfix-lane/backport/2-to-release-2").is_some());
    assert_eq!(
        lane.status(&merged, "hotfix-lane/backport"),
        ("failure".into(), "backport needs work on master".into())
    );
    let comment = lane.comments().into_iter().find(|c| c.contains("hotfix-lane:backport")).unwrap();
    insta::assert_snapshot!("backport_table_conflict_and_opened", comment);
    let labels = lane.fake.repo(REPO, |r| r.pull_labels.values().next().cloned().unwrap());
    assert!(labels.contains(&"needs-release-note".to_string()), "{labels:?}");
}

async fn redelivery_and_restarts_never_duplicate_or_overwrite(backend: Backend) {
    let world = GitWorld::new();
    hotfix_commits(&world, 1);
    let (merged, _) = land(&world, Method::Squash);
    let lane = lane_with(&world, backend, RESPONDERS).await;
    // The branch is pushed, then the pull request fails (as after a crash): the retry takes up
    // the branch it pushed.
    lane.fake.with(|w| w.failures.push(("POST /repos/Codertocat/Hello-World/pulls".into(), 502)));
    let pull = merged_pull(&merged, &["hotfix"]);
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull.clone()));
    let delivery =
        common::Delivery::new("pull_request", "merged", serde_json::to_vec(&closed_event(&pull, "alice")).unwrap());
    assert_eq!(delivery.send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    common::eventually("the pull request fails once", || async {
        store.jobs_in_state("queued").await.unwrap().iter().any(|j| j.last_error.is_some())
    })
    .await;
    let pushed = world.remote_tip(BRANCH).expect("pushed before the failure");
    lane.clock.advance(60_000);
    common::eventually("the retry runs", || async { !backport_pulls(&lane).is_empty() }).await;
    lane.settle().await;
    assert_eq!(world.remote_tip(BRANCH), Some(pushed), "the branch is never pushed over");
    assert_eq!(backport_pulls(&lane).len(), 1, "the retry completes the one pull request");

    // The same delivery again, and a label asking for the same target: nothing new.
    merge(&lane, &merged, &["hotfix", "backport master"]).await;
    assert_eq!(backport_pulls(&lane).len(), 1);
    assert_eq!(lane.comments().iter().filter(|c| c.contains("hotfix-lane:backport")).count(), 1);
}

async fn a_merged_backport_ends_the_record_and_commands_add_targets(backend: Backend) {
    let world = GitWorld::new();
    world.git(&["branch", "release-0", "master"]);
    world.push(&["release-0"]);
    hotfix_commits(&world, 1);
    let (merged, _) = land(&world, Method::Squash);
    let lane = lane_with(&world, backend, RESPONDERS).await;
    merge(&lane, &merged, &["hotfix"]).await;
    let number = backport_pulls(&lane)[0]["number"].as_u64().unwrap();

    // `/hotfix backport release-0` after the merge adds a target.
    let comment = common::github::comment_event(2, "/hotfix backport release-0", "Codertocat");
    lane.send("issue_comment", comment).await;
    assert!(world.remote_tip("hotfix-lane/backport/2-to-release-0").is_some());
    assert_eq!(backport_pulls(&lane).len(), 2);

    lane.clock.advance(3_600_000);
    let mut closed = common::json_fixture("github/pull_request/labeled.json");
    closed["action"] = "closed".into();
    closed["label"] = Value::Null;
    closed["pull_request"]["number"] = number.into();
    closed["pull_request"]["state"] = "closed".into();
    closed["pull_request"]["merged"] = true.into();
    closed["pull_request"]["head"]["ref"] = BRANCH.into();
    closed["pull_request"]["labels"] = json!([]);
    lane.send("pull_request", closed).await;
    let comment = lane.comments().into_iter().find(|c| c.contains("hotfix-lane:backport")).unwrap();
    insta::assert_snapshot!("backport_table_merged", comment);
    let actions: Vec<String> = lane.store().audit(None, None).await.unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"backport.merged".to_string()), "{actions:?}");
    let metrics = reqwest::get(format!("{}/metrics", lane.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("backport_lead_seconds_count{stage=\"merged\"} 1"), "{metrics}");

    // The one still open is listed, and turns stale after the policy's three days.
    let day = 24 * 3600 * 1000;
    let store = lane.store();
    let pending = |at| async move { hotfix_lane::dispatch::pending_backports(store, at).await.unwrap() };
    let now = pending(NOW + 2 * day).await;
    assert_eq!(now.len(), 1);
    assert_eq!((now[0].backport.target.as_str(), now[0].backport.stale), ("release-0", false));
    assert!(pending(NOW + 4 * day).await[0].backport.stale);
}

on_both_backends!(
    a_squash_merge_is_backported_as_its_one_commit,
    a_merge_commit_is_picked_against_its_first_parent,
    a_rebase_merge_backports_each_rebased_commit_in_order,
    a_conflict_opens_a_draft_that_fails_until_resolved,
    several_targets_one_conflicting_each_get_their_own_outcome,
    redelivery_and_restarts_never_duplicate_or_overwrite,
    a_merged_backport_ends_the_record_and_commands_add_targets,
);

// The engine alone, as people and the benchmark run it.

fn backport_local(world: &GitWorld, onto: &str, branch: &str, commits: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hotfix-lane"))
        .args(["backport", "local", "--repo", world.remote.to_str().unwrap(), "--onto", onto, "--branch", branch])
        .args(commits)
        .output()
        .unwrap()
}

#[test]
fn local_backports_match_git_for_renames_and_binary_files() {
    let world = GitWorld::new();
    world.git(&["switch", "-q", "-c", "fix", "release-1"]);
    world.git(&["mv", "app/config.toml", "app/settings.toml"]);
    let renamed = world.commit("Rename the config", "Octo Cat <octocat@example.com>");
    world.write_bytes("assets/logo.png", &[0x89, b'P', b'N', b'G', 0, 1, 2, 3, 0, 9]);
    let binary = world.commit("Add the logo", "Octo Cat <octocat@example.com>");
    world.push(&["fix"]);

    let out = backport_local(&world, "master", "bp", &[&renamed, &binary]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tip = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(world.remote_tip("bp").as_deref(), Some(tip.as_str()));
    assert_eq!(world.tree_of(&tip), world.cherry_pick_tree("origin/master", &[&renamed, &binary]));

    // An existing branch is never overwritten.
    let again = backport_local(&world, "master", "bp", &[&renamed]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}

#[test]
fn local_backport_conflicts_exit_1_listing_the_paths() {
    let world = GitWorld::new();
    let fix = hotfix_commits(&world, 1);
    conflicting_master(&world);
    let out = backport_local(&world, "master", "bp", &[&fix[0]]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("app/server.rs\tchanged on both sides"), "{stderr}");
    assert!(world.remote_tip("bp").is_none(), "no branch on a conflict");
}

#[test]
fn a_change_already_on_the_target_is_skipped() {
    let world = GitWorld::new();
    let fix = hotfix_commits(&world, 1);
    world.git(&["switch", "-q", "master"]);
    world.git(&["cherry-pick", &fix[0]]);
    world.push(&["master"]);
    let out = backport_local(&world, "master", "bp", &[&fix[0]]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already on master"));
    assert_eq!(world.remote_tip("bp"), world.remote_tip("master"));
}

#[test]
fn a_target_that_moved_on_in_the_same_file_merges_like_git() {
    let world = GitWorld::new();
    let fix = hotfix_commits(&world, 1);
    // master changed the same file far from the fix, and removed another one.
    world.git(&["switch", "-q", "master"]);
    let text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    world.write("app/server.rs", &text.replace("line 30\n", "line 30, reworded on master\n"));
    world.git(&["rm", "-q", "docs/guide.md"]);
    world.commit("Reword line 30, drop the guide", "Mona <mona@example.com>");
    world.push(&["master"]);
    let out = backport_local(&world, "master", "bp", &[&fix[0]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tip = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(world.tree_of(&tip), world.cherry_pick_tree("origin/master", &[&fix[0]]));
}
