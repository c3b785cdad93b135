//! Backport merge requests on GitLab end to end: real git repositories on disk (a bare
//! "remote" the fake GitLab serves as the project's clone URL), the real server picking on its
//! mirror, pushing and opening merge requests through the real GitLab client — for each way
//! GitLab lands a merge request (merge commit, squash and merge, fast-forward).

mod common;

use common::fake_gitlab::{MergeRequest, OpenMr};
use common::git::GitWorld;
use common::gitlab::{mr_hook, note_hook, GitLabDriver, POLICY, PROJECT};
use common::lane::NOW;
use common::scenario::ForgeDriver;
use common::Backend;
use serde_json::json;

const RESPONDERS: &str = "[responders]\nusers = [\"codertocat\"]\n";
const BRANCH: &str = "hotfix-lane/backport/2-to-master";
const BACKPORT_MARKER: &str = "hotfix-lane:backport";

#[derive(Clone, Copy, Debug)]
enum Method {
    /// `merge_method = merge`: a merge commit.
    MergeCommit,
    /// Squash on merge: a squash commit, merged with a merge commit.
    SquashAndMerge,
    /// `merge_method = ff`: the rebased commits themselves land.
    FastForward,
}

/// What landed on `release-1`, as GitLab reports it on the merged merge request.
struct Landed {
    merge_commit: Option<String>,
    squash_commit: Option<String>,
    /// The merge request's head once merged.
    head: String,
    /// `release-1` just before the merge (`diff_refs.base_sha`).
    base: String,
    /// The commits a correct backport picks, oldest first.
    picked: Vec<String>,
}

impl Landed {
    /// The commit the lane reports the backport's summary on.
    fn reported_on(&self) -> String {
        self.merge_commit.clone().or(self.squash_commit.clone()).unwrap_or(self.head.clone())
    }
}

/// The hotfix: `count` commits to `app/server.rs` on `fix`, from `release-1`.
fn hotfix_commits(world: &GitWorld, count: usize) {
    world.git(&["switch", "-q", "-c", "fix", "release-1"]);
    let mut text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    for i in 1..=count {
        text = text.replacen(&format!("line {}\n", i * 5), &format!("line {} (fixed)\n", i * 5), 1);
        world.write("app/server.rs", &text);
        world.commit(&format!("Fix part {i}\n\nWhy it broke, part {i}."), "Octo Cat <octocat@example.com>");
    }
    world.git(&["switch", "-q", "release-1"]);
}

/// Lands `fix` on `release-1` the way GitLab does for `method`.
fn land(world: &GitWorld, method: Method, count: usize) -> Landed {
    // The target moved on while the fix was reviewed, as it does.
    world.write("CHANGELOG", "1.0.1\n");
    world.commit("Changelog", "Mona <mona@example.com>");
    let base = world.head();
    let message = "Merge branch 'fix' into 'release-1'\n\nFix the crash\n\nSee merge request acme/platform/payments!2";
    let landed = match method {
        Method::MergeCommit => {
            world.git(&["merge", "-q", "--no-ff", "fix", "-m", message]);
            let merge = world.head();
            Landed {
                merge_commit: Some(merge.clone()),
                squash_commit: None,
                head: world.git(&["rev-parse", "fix"]),
                base,
                picked: vec![merge],
            }
        }
        Method::SquashAndMerge => {
            // GitLab squashes the merge request's commits onto where it started, then merges that.
            world.git(&["switch", "-q", "-c", "squashed", &format!("fix~{count}")]);
            world.git(&["merge", "-q", "--squash", "fix"]);
            let squash = world.commit("Fix the crash", "Octo Cat <octocat@example.com>");
            world.git(&["switch", "-q", "release-1"]);
            world.git(&["merge", "-q", "--no-ff", "squashed", "-m", message]);
            let merge = world.head();
            Landed {
                merge_commit: Some(merge.clone()),
                squash_commit: Some(squash),
                head: world.git(&["rev-parse", "fix"]),
                base,
                picked: vec![merge],
            }
        }
        Method::FastForward => {
            // The merge request is rebased onto its target, then the target moves up to it.
            world.git(&["switch", "-q", "fix"]);
            world.git(&["rebase", "-q", "release-1"]);
            world.git(&["switch", "-q", "release-1"]);
            world.git(&["merge", "-q", "--ff-only", "fix"]);
            let head = world.head();
            let picked = world.git(&["rev-list", "--reverse", &format!("{base}..{head}")]);
            Landed {
                merge_commit: None,
                squash_commit: None,
                head,
                base,
                picked: picked.lines().map(String::from).collect(),
            }
        }
    };
    world.push(&["release-1", "fix", "fix:refs/merge-requests/2/head"]);
    landed
}

/// The lane on a project whose git side is `world` (default branch `master`).
async fn lane_with(world: &GitWorld, backend: Backend, policy: &str) -> GitLabDriver {
    let lane = GitLabDriver::start(backend, policy).await;
    lane.fake.project(PROJECT, |p| {
        p.git_dir = Some(world.remote.clone());
        p.default_branch = "master".into();
    });
    lane.fake.set_file(PROJECT, "master", POLICY, policy);
    lane
}

/// `!2`, labelled `hotfix` by a responder, merged by alice as `landed`; the lane hears of it
/// only from the merge (and sees who labelled it in the label events).
async fn merge(lane: &mut GitLabDriver, landed: &Landed) -> serde_json::Value {
    let open = OpenMr {
        iid: Some(2),
        title: "Fix the crash".into(),
        author: "octocat".into(),
        source_branch: "fix".into(),
        target_branch: "release-1".into(),
        sha: Some(landed.head.clone()),
        ..OpenMr::default()
    };
    let iid = lane.fake.open_mr(PROJECT, open);
    lane.fake.add_label(PROJECT, iid, "hotfix", "codertocat");
    let alice = lane.fake.user("alice");
    lane.fake.edit_mr(PROJECT, iid, |mr| {
        mr.state = "merged".into();
        mr.merge_commit_sha = landed.merge_commit.clone();
        mr.squash_commit_sha = landed.squash_commit.clone();
        mr.base_sha = Some(landed.base.clone());
        mr.merged_by = Some(alice);
    });
    let hook = mr_hook(&lane.fake, PROJECT, &lane.fake.mr(PROJECT, iid), "merge", "alice", json!({}));
    lane.send("Merge Request", hook.clone()).await;
    hook
}

fn backport_mrs(lane: &GitLabDriver) -> Vec<MergeRequest> {
    lane.fake.project(PROJECT, |p| {
        p.merge_requests.values().filter(|m| m.source_branch.starts_with("hotfix-lane/")).cloned().collect()
    })
}

fn usernames(lane: &GitLabDriver, ids: &[u64]) -> Vec<String> {
    lane.fake.with(|w| ids.iter().map(|id| w.username(*id)).collect())
}

/// The lane's notes on `!iid` carrying the backport table.
fn backport_notes(lane: &GitLabDriver, iid: u64) -> Vec<String> {
    let mr = lane.fake.mr(PROJECT, iid);
    mr.notes.iter().filter(|n| n.body.contains(BACKPORT_MARKER)).map(|n| n.body.clone()).collect()
}

fn status(lane: &GitLabDriver, sha: &str) -> (String, String) {
    let s = lane.fake.status(PROJECT, sha, "hotfix-lane/backport").expect("hotfix-lane/backport reported");
    (s.state, s.description)
}

async fn backport_lands_with_the_tree_git_would_make(backend: Backend, method: Method) {
    let world = GitWorld::new();
    hotfix_commits(&world, 3);
    let landed = land(&world, method, 3);
    let mut lane = lane_with(&world, backend, RESPONDERS).await;
    merge(&mut lane, &landed).await;

    let mrs = backport_mrs(&lane);
    assert_eq!(mrs.len(), 1, "{mrs:?}");
    let mr = &mrs[0];
    assert_eq!(
        (mr.title.as_str(), mr.target_branch.as_str(), mr.draft),
        ("[Backport master] Fix the crash", "master", false)
    );
    let merged = landed.reported_on();
    assert!(
        mr.description
            .starts_with(&format!("Backport of !2 to `master` (merge commit {merged}), opened by hotfix-lane.")),
        "a merge request is `!2` on GitLab (`#2` is an issue): {}",
        mr.description
    );

    let tip = world.remote_tip(BRANCH).expect("backport branch pushed");
    assert_eq!(mr.sha, tip);
    let picked: Vec<&str> = landed.picked.iter().map(String::as_str).collect();
    assert_eq!(world.tree_of(&tip), world.cherry_pick_tree("origin/master", &picked), "same tree as git cherry-pick");
    let log = common::git::remote_git(&world.remote, &["log", "--format=%an|%cn|%B%x00", &format!("master..{tip}")]);
    let entries: Vec<&str> = log.split('\0').map(str::trim).filter(|e| !e.is_empty()).collect();
    assert_eq!(entries.len(), picked.len(), "one backport commit per landed commit: {log}");
    for (entry, original) in entries.iter().rev().zip(&picked) {
        let author = if matches!(method, Method::FastForward) { "Octo Cat" } else { "GitHub" };
        assert!(entry.starts_with(&format!("{author}|hotfix-lane[bot]|")), "{entry}");
        assert!(entry.contains(&format!("(cherry picked from commit {original})")), "{entry}");
    }

    assert_eq!(mr.labels, vec!["backport"]);
    assert_eq!(usernames(&lane, &mr.assignees), vec!["octocat", "alice"], "the author and the merger");
    assert_eq!(usernames(&lane, &mr.reviewers), vec!["octocat", "alice"]);
    assert_eq!(status(&lane, &merged), ("success".into(), "backported to master".into()));
    let notes = backport_notes(&lane, 2);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("| Target | State | Merge request |") && notes[0].contains(&format!("| !{} |", mr.iid)),
        "{}",
        notes[0]
    );
}

async fn a_merge_commit_is_picked_against_its_first_parent(backend: Backend) {
    backport_lands_with_the_tree_git_would_make(backend, Method::MergeCommit).await;
}

async fn a_squashed_merge_request_is_backported_through_its_merge_commit(backend: Backend) {
    backport_lands_with_the_tree_git_would_make(backend, Method::SquashAndMerge).await;
}

async fn a_fast_forward_merge_backports_each_landed_commit_in_order(backend: Backend) {
    backport_lands_with_the_tree_git_would_make(backend, Method::FastForward).await;
}

async fn a_conflict_opens_a_draft_that_fails_until_resolved(backend: Backend) {
    let world = GitWorld::new();
    hotfix_commits(&world, 1);
    world.git(&["switch", "-q", "master"]);
    let text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    world.write("app/server.rs", &text.replace("line 5\n", "line five, reworded on master\n"));
    world.commit("Reword line 5", "Mona <mona@example.com>");
    world.push(&["master"]);
    world.git(&["switch", "-q", "release-1"]);
    let landed = land(&world, Method::MergeCommit, 1);
    let mut lane = lane_with(&world, backend, RESPONDERS).await;
    merge(&mut lane, &landed).await;

    let mrs = backport_mrs(&lane);
    assert_eq!(mrs.len(), 1);
    let mr = &mrs[0];
    assert!(mr.draft && mr.title == "Draft: [Backport master] Fix the crash", "{}", mr.title);
    assert_eq!(mr.labels, vec!["backport", "backport-conflict"]);
    assert!(mr.description.contains("Then mark the merge request ready for review."), "{}", mr.description);
    let tip = world.remote_tip(BRANCH).unwrap();
    assert_eq!(status(&lane, &landed.reported_on()).0, "failed");
    assert_eq!(status(&lane, &tip), ("failed".into(), "conflict markers remain in app/server.rs".into()));

    // Someone resolves the conflict on the branch: the status follows.
    let fixed = world.resolve_reworded_line_5(BRANCH);
    lane.fake.edit_mr(PROJECT, mr.iid, |m| {
        m.sha = fixed.clone();
        m.commits.push(fixed.clone());
    });
    let mut hook = mr_hook(&lane.fake, PROJECT, &lane.fake.mr(PROJECT, mr.iid), "update", "mona", json!({}));
    hook["object_attributes"]["oldrev"] = tip.clone().into();
    lane.send("Merge Request", hook).await;
    assert_eq!(status(&lane, &fixed), ("success".into(), "no conflicts left".into()));
}

async fn a_redelivered_merge_hook_opens_no_second_merge_request_or_note(backend: Backend) {
    let world = GitWorld::new();
    hotfix_commits(&world, 1);
    let landed = land(&world, Method::MergeCommit, 1);
    let mut lane = lane_with(&world, backend, RESPONDERS).await;
    let hook = merge(&mut lane, &landed).await;
    let pushed = world.remote_tip(BRANCH).expect("pushed");
    // GitLab retries a hook it thinks failed with a new Idempotency-Key: the same facts again.
    lane.send("Merge Request", hook).await;
    assert_eq!(backport_mrs(&lane).len(), 1);
    assert_eq!(backport_notes(&lane, 2).len(), 1);
    assert_eq!(world.remote_tip(BRANCH), Some(pushed), "the branch is never pushed over");
}

async fn a_backport_branch_pushed_by_someone_else_first_is_not_adopted(backend: Backend) {
    let world = GitWorld::new();
    hotfix_commits(&world, 1);
    let landed = land(&world, Method::MergeCommit, 1);
    // Anyone with push access can create the predictable branch before the merge.
    world.git(&["switch", "-q", "-c", "squat", "master"]);
    world.write("app/server.rs", "backdoor\n");
    let squatted = world.commit("Backport", "Mallory <mallory@example.com>");
    world.push(&[&format!("squat:{BRANCH}")]);
    world.git(&["switch", "-q", "release-1"]);
    let mut lane = lane_with(&world, backend, RESPONDERS).await;
    merge(&mut lane, &landed).await;

    assert!(backport_mrs(&lane).is_empty(), "no merge request from a branch the lane did not make");
    assert_eq!(world.remote_tip(BRANCH), Some(squatted), "left as it was");
    let (state, description) = status(&lane, &landed.reported_on());
    assert_eq!((state.as_str(), description.as_str()), ("failed", "backport needs work on master"));
    let notes = backport_notes(&lane, 2);
    assert!(notes[0].contains("branch exists and is not ours"), "{}", notes[0]);
}

async fn a_note_adds_a_target_and_a_merged_backport_ends_its_record(backend: Backend) {
    let world = GitWorld::new();
    world.git(&["branch", "release-0", "master"]);
    world.push(&["release-0"]);
    hotfix_commits(&world, 1);
    let landed = land(&world, Method::MergeCommit, 1);
    let mut lane = lane_with(&world, backend, RESPONDERS).await;
    merge(&mut lane, &landed).await;
    let to_master = backport_mrs(&lane)[0].iid;

    // `/hotfix backport release-0` on the merged merge request adds a target.
    let text = "/hotfix backport release-0";
    let id = lane.fake.add_note(PROJECT, 2, "codertocat", text);
    let hook = note_hook(&lane.fake, PROJECT, &lane.fake.mr(PROJECT, 2), id, text, "create", "codertocat");
    lane.send("Note", hook).await;
    assert!(world.remote_tip("hotfix-lane/backport/2-to-release-0").is_some());
    assert_eq!(backport_mrs(&lane).len(), 2);

    // The backport to master merges an hour later: its row says so, and the lead time counts.
    lane.clock.advance(3_600_000);
    lane.fake.edit_mr(PROJECT, to_master, |m| m.state = "merged".into());
    let hook = mr_hook(&lane.fake, PROJECT, &lane.fake.mr(PROJECT, to_master), "merge", "alice", json!({}));
    lane.send("Merge Request", hook).await;
    let notes = backport_notes(&lane, 2);
    assert_eq!(notes.len(), 1, "one note, edited as targets finish: {notes:?}");
    assert!(notes[0].contains(&format!("| `master` | ✅ merged | !{to_master} |")), "{}", notes[0]);
    let actions: Vec<String> = lane.store().audit(None, None).await.unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"backport.merged".to_string()), "{actions:?}");
    let metrics = reqwest::get(format!("{}/metrics", lane.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("backport_lead_seconds_count{stage=\"merged\"} 1"), "{metrics}");

    // The one still open is listed, and turns stale after the policy's three days.
    let day = 24 * 3600 * 1000;
    let pending = hotfix_lane::dispatch::pending_backports(lane.store(), NOW + 4 * day).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].backport.target.as_str(), pending[0].backport.stale), ("release-0", true));
}

on_both_backends!(
    a_note_adds_a_target_and_a_merged_backport_ends_its_record,
    a_merge_commit_is_picked_against_its_first_parent,
    a_squashed_merge_request_is_backported_through_its_merge_commit,
    a_fast_forward_merge_backports_each_landed_commit_in_order,
    a_conflict_opens_a_draft_that_fails_until_resolved,
    a_redelivered_merge_hook_opens_no_second_merge_request_or_note,
    a_backport_branch_pushed_by_someone_else_first_is_not_adopted,
);
