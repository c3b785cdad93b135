//! The lane writes only in its own places, and takes attribution from the forge's truth.
//!
//! Anyone who can comment can post the lane's markers, anyone who can push can create a branch
//! named like the lane's backport or a merge-queue group, and anyone can pad a change's history
//! past the first page: none of it makes the lane adopt, attribute or report what it did not
//! make. Its own comments, branches and pull requests are still found and reused.

use std::process::Command;

use crate::common::fake_github::{Comment, APP_SLUG, TOKEN_LOGIN};
use crate::common::git::GitWorld;
use crate::common::lane::{Lane, NOW, POLICY, REPO};
use crate::common::{eventually, Backend, Delivery};
use hotfix_lane::forge::github::GitHubAuth;
use serde_json::{json, Value};

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
/// Codertocat is the responder; mallory can push, comment and open pull requests.
const RESPONDERS: &str = "[responders]\nusers = [\"Codertocat\"]\n";
const BRANCH: &str = "hotfix-lane/backport/2-to-master";
const LANE_MARKER: &str = "<!-- hotfix-lane -->";
const BACKPORT_MARKER: &str = "<!-- hotfix-lane:backport -->";

/// A `pull_request` delivery for PR #2 of the fixture repository, with an empty description.
fn pr_event(action: &str, label: Option<&str>, labels: &[&str], sender: &str) -> Value {
    let mut event = crate::common::json_fixture("github/pull_request/labeled.json");
    event["action"] = action.into();
    event["label"] = label.map_or(Value::Null, |l| json!({ "name": l }));
    event["pull_request"]["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    event["pull_request"]["body"] = "".into();
    event["sender"]["login"] = sender.into();
    event
}

/// A comment on PR #2, as `author`.
fn comment_event(body: &str, author: &str) -> Value {
    crate::common::github::comment_event(2, body, author)
}

/// PR #2 as the fake serves it, labelled `hotfix`, with `body`.
fn serve_pull(lane: &Lane, body: &str) {
    let mut pull = crate::common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["labels"] = json!([{ "name": "hotfix" }]);
    pull["body"] = body.into();
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull));
}

/// A comment already on PR #2.
fn posted(lane: &Lane, id: u64, author: &str, body: &str) {
    let comment = Comment { id, number: 2, body: body.into(), author: author.into() };
    lane.fake.repo(REPO, |r| r.comments.push(comment));
}

fn comment_by_id(lane: &Lane, id: u64) -> Comment {
    lane.fake.comments(REPO, 2).into_iter().find(|c| c.id == id).expect("the comment is still there")
}

/// The comments on PR #2 written by `login`.
fn comments_by(lane: &Lane, login: &str) -> Vec<Comment> {
    lane.fake.comments(REPO, 2).into_iter().filter(|c| c.author == login).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_the_lane_markers_in_a_comment_does_not_hijack_the_lanes_comments() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    serve_pull(&lane, "");
    let bait = "nice fix <!-- hotfix-lane --> <!-- hotfix-lane:refused --> <!-- hotfix-lane:policy -->";
    posted(&lane, 555, "mallory", bait);
    lane.fake.repo(REPO, |r| {
        r.pull_files.insert(2, vec![POLICY.into()]);
        r.files.insert((HEAD.into(), POLICY.into()), "[lane]\nlabell = \"sev1\"\n".into());
    });

    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Codertocat")).await;
    lane.send("issue_comment", comment_event("/hotfix revoke", "mallory")).await;
    lane.send("pull_request", pr_event("synchronize", None, &["hotfix"], "Codertocat")).await;

    assert_eq!(comment_by_id(&lane, 555).body, bait, "the lane never writes into someone else's comment");
    let own = comments_by(&lane, TOKEN_LOGIN);
    for marker in [LANE_MARKER, "<!-- hotfix-lane:refused -->", "<!-- hotfix-lane:policy -->"] {
        assert_eq!(own.iter().filter(|c| c.body.contains(marker)).count(), 1, "{marker} in {own:#?}");
    }
    assert!(own.iter().any(|c| c.body.contains("@mallory is not a responder")), "{own:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_finds_its_own_comment_past_the_first_page() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    // A busy change: 120 comments, then the lane's own from an earlier life whose state is lost,
    // then one by mallory posing as it.
    for i in 0..120 {
        posted(&lane, 100 + i, "reviewer", "+1");
    }
    posted(&lane, 900, TOKEN_LOGIN, &format!("{LANE_MARKER}\nan earlier report"));
    posted(&lane, 901, "mallory", &format!("{LANE_MARKER}\n✅ merged on @Codertocat's authorization"));

    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Codertocat")).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Codertocat")).await;

    let own = comments_by(&lane, TOKEN_LOGIN);
    assert_eq!(own.len(), 1, "retries never add a second comment: {own:#?}");
    assert_eq!(own[0].id, 900);
    assert!(own[0].body.contains("applied by @Codertocat, a responder"), "{}", own[0].body);
    assert!(comment_by_id(&lane, 901).body.contains("✅ merged"), "mallory's comment is left alone");
}

/// A throwaway RSA key for App mode, made by the openssl command.
fn app_private_key() -> String {
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("the openssl command (CI installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_named_like_the_app_does_not_own_the_lane_comment() {
    let auth = GitHubAuth::App { app_id: 4242, private_key_pem: app_private_key() };
    let lane = Lane::start_as(Backend::Sqlite, RESPONDERS, auth).await;
    let bot = format!("{APP_SLUG}[bot]");
    // Anyone can register the App's slug as a user name; only the bot has the `[bot]` suffix.
    posted(&lane, 700, APP_SLUG, &format!("{LANE_MARKER}\nlooks official"));
    posted(&lane, 701, &bot, &format!("{LANE_MARKER}\nan earlier report"));

    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Codertocat")).await;

    assert_eq!(comment_by_id(&lane, 700).body, format!("{LANE_MARKER}\nlooks official"));
    let own = comments_by(&lane, &bot);
    assert_eq!(own.len(), 1, "{own:#?}");
    assert!(own[0].id == 701 && own[0].body.contains("applied by @Codertocat"), "{own:#?}");
    let calls = lane.fake.take_calls();
    assert_eq!(calls.iter().filter(|c| *c == "GET /app").count(), 1, "the App's slug, asked once: {calls:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_carrying_the_postmortem_marker_is_not_taken_for_the_lanes_own() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    serve_pull(&lane, "");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Codertocat")).await;
    lane.fake.repo(REPO, |r| {
        r.issues.insert(40, (vec!["postmortem".into()], false));
        let body = "Nothing to see.\n<!-- hotfix-lane:postmortem-for Codertocat/Hello-World#2 -->";
        r.issue_texts.insert(40, ("Postmortem".into(), body.into()));
        r.issue_authors.insert(40, "mallory".into());
    });
    lane.send("issue_comment", comment_event("/hotfix postmortem", "Codertocat")).await;
    let (number, author) =
        lane.fake.repo(REPO, |r| r.issue_authors.iter().map(|(n, a)| (*n, a.clone())).find(|(n, _)| *n != 40)).unwrap();
    assert_eq!(author, TOKEN_LOGIN);
    let body = lane.fake.repo(REPO, |r| r.pulls[&2]["body"].as_str().unwrap_or_default().to_string());
    assert_eq!(body, format!("Postmortem: #{number}"), "the lane links the issue it opened, not mallory's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padding_a_change_past_100_events_does_not_hide_the_latest_labeler() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    let event = |kind: &str, actor: &str, at: &str| json!({ "event": kind, "label": { "name": "hotfix" }, "actor": { "id": 1, "login": actor }, "created_at": at });
    lane.fake.repo(REPO, |r| {
        // The responder labelled the change once and took the label off again.
        r.label_events.push((2, "hotfix".into(), "Codertocat".into(), "2026-11-26T12:00:00Z".into()));
        r.events.push((2, event("unlabeled", "Codertocat", "2026-11-26T12:05:00Z")));
        // mallory renames the change 150 times, then labels it herself.
        for i in 0..150 {
            let renamed = json!({ "event": "renamed", "actor": { "id": 2, "login": "mallory" },
                "rename": { "from": format!("t{i}"), "to": format!("t{}", i + 1) }, "created_at": "2026-11-26T12:10:00Z" });
            r.events.push((2, renamed));
        }
        r.events.push((2, event("labeled", "mallory", "2026-11-26T13:00:00Z")));
    });

    // Seen only now (say, after an outage): the lane asks the forge who labelled it.
    lane.send("pull_request", pr_event("synchronize", None, &["hotfix"], "mallory")).await;

    assert_eq!(lane.status(HEAD, "hotfix-lane/lane").0, "failure", "mallory is no responder");
    let state = lane.store().lane_state("github", 186853002, 2).await.unwrap().unwrap();
    assert_eq!(state["lane"]["labeler"]["login"], "mallory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_edit_past_file_100_is_still_validated() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    lane.fake.repo(REPO, |r| {
        let mut files: Vec<String> = (0..150).map(|i| format!("src/generated_{i}.rs")).collect();
        files.push(POLICY.into());
        r.pull_files.insert(2, files);
        r.files.insert((HEAD.into(), POLICY.into()), "[responders]\nusers = [\"mallory\"]\nteam = 1\n".into());
    });
    lane.send("pull_request", pr_event("synchronize", None, &[], "mallory")).await;
    let status = lane.fake.status(REPO, HEAD, "hotfix-lane/policy").expect("the policy edit is checked");
    assert_eq!(status.state, "failure", "{status:?}");
}

/// PR #2 on the fake, labelled by the responder when the lane was not listening.
async fn hotfix_lane() -> Lane {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    lane.fake
        .repo(REPO, |r| r.label_events.push((2, "hotfix".into(), "Codertocat".into(), "2026-11-26T13:00:00Z".into())));
    lane
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_named_like_a_queue_group_gets_no_postmortem_verdict() {
    let lane = hotfix_lane().await;
    serve_pull(&lane, "Postmortem: #50");
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    let mut seen = pr_event("synchronize", None, &["hotfix"], "Codertocat");
    seen["pull_request"]["body"] = "Postmortem: #50".into();
    lane.send("pull_request", seen).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").0, "success");
    // mallory pushes her own commit to a branch named like #2's merge group; the queue is empty.
    let spoof = "6666666666666666666666666666666666666666";
    lane.fake
        .repo(REPO, |r| r.queue_refs.push((format!("refs/heads/gh-readonly-queue/master/pr-2-{HEAD}"), spoof.into())));

    hotfix_lane::dispatch::reconcile(lane.store(), hotfix_lane::lane::event::Forge::Github, NOW).await.unwrap();
    lane.settle().await;

    assert_eq!(lane.fake.status(REPO, spoof, "hotfix-lane/postmortem"), None, "no verdict on a commit no queue tests");
    let calls = lane.fake.take_calls();
    assert!(calls.contains(&"POST /graphql".to_string()), "the queue itself was asked: {calls:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queueing_a_change_behind_a_hotfix_does_not_carry_it_past_the_postmortem_check() {
    let lane = hotfix_lane().await;
    serve_pull(&lane, "no postmortem yet");
    let mut normal = crate::common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    (normal["number"], normal["labels"]) = (3.into(), json!([]));
    let (hotfix_group, normal_group) =
        ("7777777777777777777777777777777777777777", "8888888888888888888888888888888888888888");
    lane.fake.repo(REPO, |r| {
        r.pulls.insert(3, normal);
        r.merge_queue.insert("master".into(), vec![(2, hotfix_group.into()), (3, normal_group.into())]);
    });
    lane.send("pull_request", pr_event("synchronize", None, &["hotfix"], "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").0, "failure", "#2 is a hotfix with no postmortem");
    // The group for #3 holds #2 too: the queue merges both when it passes.
    let mut group = crate::common::json_fixture("github/merge_group/checks_requested.json");
    group["repository"] = crate::common::json_fixture("github/pull_request/labeled.json")["repository"].clone();
    group["merge_group"]["head_sha"] = normal_group.into();
    group["merge_group"]["head_ref"] = format!("refs/heads/gh-readonly-queue/master/pr-3-{HEAD}").into();
    group["merge_group"]["base_ref"] = "refs/heads/master".into();
    lane.send("merge_group", group).await;

    let status = lane.fake.status(REPO, normal_group, "hotfix-lane/postmortem").expect("the group is reported on");
    assert_eq!((status.state.as_str(), status.description.as_str()), ("failure", "#2: no postmortem referenced"));
}

// Backports: a real repository on disk behind the fake.

/// `release-1` got the fix to `app/server.rs` as one squashed commit; returns it.
fn landed_hotfix(world: &GitWorld) -> String {
    world.git(&["switch", "-q", "-c", "fix", "release-1"]);
    let text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    world.write("app/server.rs", &text.replace("line 5\n", "line 5 (fixed)\n"));
    world.commit("Fix the crash", "Octo Cat <octocat@example.com>");
    world.git(&["switch", "-q", "release-1"]);
    world.git(&["merge", "-q", "--squash", "fix"]);
    let merged = world.commit("Fix the crash (#2)", "Octo Cat <octocat@example.com>");
    world.push(&["release-1", "fix:refs/pull/2/head"]);
    merged
}

async fn backport_lane(world: &GitWorld) -> Lane {
    let lane = hotfix_lane().await;
    lane.fake.repo(REPO, |r| r.git_dir = Some(world.remote.clone()));
    lane
}

/// The delivery saying PR #2 merged into `release-1` as `merged`, by alice.
fn merged_event(lane: &Lane, merged: &str) -> Vec<u8> {
    let mut pull = crate::common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["state"] = "closed".into();
    pull["merged"] = true.into();
    pull["merge_commit_sha"] = merged.into();
    pull["base"]["ref"] = "release-1".into();
    pull["title"] = "Fix the crash".into();
    pull["labels"] = json!([{ "name": "hotfix" }]);
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull.clone()));
    let mut event = crate::common::json_fixture("github/pull_request/labeled.json");
    event["action"] = "closed".into();
    event["label"] = Value::Null;
    event["pull_request"] = pull;
    event["sender"]["login"] = "alice".into();
    serde_json::to_vec(&event).unwrap()
}

fn backport_pulls(lane: &Lane) -> Vec<Value> {
    lane.fake.repo(REPO, |r| r.pulls.values().filter(|p| p["head"]["ref"] == BRANCH).cloned().collect())
}

fn backport_comment(lane: &Lane) -> String {
    let own = comments_by(lane, TOKEN_LOGIN);
    own.into_iter().find(|c| c.body.contains(BACKPORT_MARKER)).expect("the lane's backport comment").body
}

/// Asserts the backport to `master` failed as "not ours", took up no pull request and left the
/// branch at `tip`.
fn assert_not_adopted(lane: &Lane, world: &GitWorld, merged: &str, tip: &str) {
    let comment = backport_comment(lane);
    assert!(comment.contains("| `master` | ❌ failed: branch exists and is not ours"), "{comment}");
    assert_eq!(lane.status(merged, "hotfix-lane/backport"), ("failure".into(), "backport needs work on master".into()));
    assert_eq!(world.remote_tip(BRANCH).as_deref(), Some(tip), "the branch is never pushed over");
    let decorated = lane.fake.repo(REPO, |r| r.pull_labels.clone());
    assert!(decorated.is_empty(), "no pull request is presented as the backport: {decorated:?}");
}

/// A commit on the work tree's HEAD with `committer` ("Name <email>") instead of the world's.
fn commit_as(world: &GitWorld, message: &str, committer: &str) -> String {
    let (name, email) = committer.trim_end_matches('>').split_once(" <").unwrap();
    world.git(&["add", "-A"]);
    let out = Command::new("git")
        .current_dir(&world.work)
        .args(["commit", "-q", "--author", "Octo Cat <octocat@example.com>", "-m", message])
        .env("GIT_COMMITTER_NAME", name)
        .env("GIT_COMMITTER_EMAIL", email)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    world.head()
}

/// mallory's `hotfix-lane/backport/2-to-master`: the fix, and a backdoor.
fn squatted_branch(world: &GitWorld, message: &str, committer: &str) -> String {
    world.git(&["switch", "-q", "-c", "squat", "origin/master"]);
    let text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    world.write("app/server.rs", &text.replace("line 5\n", "line 5 (fixed)\n"));
    world.write("app/backdoor.rs", "fn open() {}\n");
    let tip = commit_as(world, message, committer);
    world.push(&[&format!("squat:{BRANCH}")]);
    world.git(&["switch", "-q", "master"]);
    tip
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_created_backport_branch_is_not_adopted() {
    let world = GitWorld::new();
    let merged = landed_hotfix(&world);
    let tip = squatted_branch(&world, "Fix the crash (#2)", "mallory <mallory@example.com>");
    let lane = backport_lane(&world).await;
    posted(&lane, 556, "mallory", &format!("{BACKPORT_MARKER}\n| `master` | ✅ opened | #9 |"));

    lane.deliver(&Delivery::new("pull_request", "merged", merged_event(&lane, &merged))).await;

    assert_not_adopted(&lane, &world, &merged, &tip);
    assert!(backport_pulls(&lane).is_empty(), "no pull request from mallory's branch");
    assert!(comment_by_id(&lane, 556).body.contains("#9"), "mallory's comment is left alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backport_branch_forged_with_the_lanes_committer_and_trailer_is_not_adopted() {
    let world = GitWorld::new();
    let merged = landed_hotfix(&world);
    let master = world.git(&["rev-parse", "origin/master"]);
    let message = format!(
        "Fix the crash (#2)\n\n(cherry picked from commit {merged})\nHotfix-Lane-Backport: {merged} onto {master}\n"
    );
    let tip = squatted_branch(&world, &message, "hotfix-lane[bot] <hotfix-lane[bot]@users.noreply.github.com>");
    let lane = backport_lane(&world).await;

    lane.deliver(&Delivery::new("pull_request", "merged", merged_event(&lane, &merged))).await;

    assert_not_adopted(&lane, &world, &merged, &tip);
    assert!(backport_pulls(&lane).is_empty());
}

/// Sends `delivery`, lets its backport job fail once on the injected failure, runs `meanwhile`,
/// then lets the retry run.
async fn deliver_with_one_failed_attempt(lane: &Lane, delivery: &Delivery, meanwhile: impl FnOnce()) {
    assert_eq!(delivery.send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the first attempt fails", || async {
        store.jobs_in_state("queued").await.unwrap().iter().any(|j| j.last_error.is_some())
    })
    .await;
    meanwhile();
    lane.clock.advance(60_000);
    eventually("the retry runs", || async {
        let counts = store.job_counts().await.unwrap();
        counts.queued == 0 && counts.running == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backport_pull_request_opened_by_someone_else_is_not_adopted() {
    let world = GitWorld::new();
    let merged = landed_hotfix(&world);
    let lane = backport_lane(&world).await;
    // The lane pushes its branch, then GitHub fails the pull request: mallory is quicker.
    lane.fake.with(|w| w.failures.push(("POST /repos/Codertocat/Hello-World/pulls".into(), 502)));
    let delivery = Delivery::new("pull_request", "merged", merged_event(&lane, &merged));
    deliver_with_one_failed_attempt(&lane, &delivery, || {
        let squat = json!({
            "number": 77, "title": "[Backport master] Fix the crash",
            "body": "Backport of #2 to `master`, opened by hotfix-lane.", "state": "open", "merged": false,
            "head": { "ref": BRANCH, "sha": "" }, "base": { "ref": "master" }, "user": { "id": 2, "login": "mallory" },
        });
        lane.fake.repo(REPO, |r| r.pulls.insert(77, squat));
    })
    .await;

    let tip = world.remote_tip(BRANCH).expect("the lane's branch");
    assert_not_adopted(&lane, &world, &merged, &tip);
    assert!(backport_comment(&lane).contains("pull request #77"), "{}", backport_comment(&lane));
    assert_eq!(backport_pulls(&lane).len(), 1, "only mallory's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_backport_reuses_its_own_branch_and_pull_request() {
    let world = GitWorld::new();
    let merged = landed_hotfix(&world);
    let lane = backport_lane(&world).await;
    // The branch is pushed and the pull request opened, then labelling it fails: three times,
    // for adding a label is asked again twice before the attempt gives up.
    lane.fake.with(|w| {
        for _ in 0..3 {
            w.failures.push(("POST /repos/Codertocat/Hello-World/issues/3/labels".into(), 502));
        }
    });
    let delivery = Delivery::new("pull_request", "merged", merged_event(&lane, &merged));
    let mut first_tip = None;
    deliver_with_one_failed_attempt(&lane, &delivery, || first_tip = world.remote_tip(BRANCH)).await;
    lane.settle().await;

    assert_eq!(world.remote_tip(BRANCH), first_tip, "the retry takes up its own branch as it is");
    let pulls = backport_pulls(&lane);
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!((pulls[0]["number"].clone(), pulls[0]["user"]["login"].clone()), (json!(3), json!(TOKEN_LOGIN)));
    assert_eq!(lane.fake.repo(REPO, |r| r.pull_labels[&3].clone()), vec!["backport"]);
    assert!(backport_comment(&lane).contains("| `master` | ✅ opened | #3 |"), "{}", backport_comment(&lane));
    assert_eq!(lane.status(&merged, "hotfix-lane/backport"), ("success".into(), "backported to master".into()));
}
