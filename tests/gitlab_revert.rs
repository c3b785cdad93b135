//! `/hotfix revert` on GitLab end to end: a real git repository behind the fake GitLab, the
//! revert made on the server's mirror and opened as a merge request in the lane, carrying
//! GitLab's own revert reference and the responder's grant.

mod common;

use common::git::GitWorld;
use common::gitlab::{mr_hook, note_hook, GitLabDriver, POLICY, PROJECT};
use common::scenario::ForgeDriver;
use common::Backend;
use serde_json::json;

const RESPONDERS: &str = "[responders]\nusers = [\"codertocat\"]\n";
const BRANCH: &str = "hotfix-lane/revert-2";

/// `!2` merged into `release-1` with a merge commit, after the target moved on; returns it.
fn landed_hotfix(world: &GitWorld) -> String {
    world.git(&["switch", "-q", "-c", "fix", "release-1"]);
    let text = std::fs::read_to_string(world.work.join("app/server.rs")).unwrap();
    world.write("app/server.rs", &text.replacen("line 5\n", "line 5 (fixed)\n", 1));
    world.commit("Fix the crash", "Octo Cat <octocat@example.com>");
    world.git(&["switch", "-q", "release-1"]);
    world.write("CHANGELOG", "1.0.1\n");
    world.commit("Changelog", "Mona <mona@example.com>");
    let message = "Merge branch 'fix' into 'release-1'\n\nSee merge request acme/platform/payments!2";
    world.git(&["merge", "-q", "--no-ff", "fix", "-m", message]);
    let merged = world.head();
    world.push(&["release-1", "fix", "fix:refs/merge-requests/2/head"]);
    merged
}

async fn a_responders_revert_opens_one_merge_request_in_the_lane(backend: Backend) {
    let world = GitWorld::new();
    let merged = landed_hotfix(&world);
    let mut lane = GitLabDriver::start(backend, RESPONDERS).await;
    lane.fake.project(PROJECT, |p| {
        p.git_dir = Some(world.remote.clone());
        p.default_branch = "master".into();
    });
    lane.fake.set_file(PROJECT, "master", POLICY, RESPONDERS);
    let open = common::fake_gitlab::OpenMr {
        iid: Some(2),
        title: "Fix the crash".into(),
        author: "octocat".into(),
        source_branch: "fix".into(),
        target_branch: "release-1".into(),
        sha: Some(world.git(&["rev-parse", "fix"])),
        ..Default::default()
    };
    let iid = lane.fake.open_mr(PROJECT, open);
    lane.fake.add_label(PROJECT, iid, "hotfix", "codertocat");
    lane.fake.edit_mr(PROJECT, iid, |mr| {
        mr.state = "merged".into();
        mr.merge_commit_sha = Some(merged.clone());
    });
    let hook = mr_hook(&lane.fake, PROJECT, &lane.fake.mr(PROJECT, iid), "merge", "codertocat", json!({}));
    lane.send("Merge Request", hook).await;

    for _ in 0..2 {
        let text = "/hotfix revert";
        let id = lane.fake.add_note(PROJECT, 2, "codertocat", text);
        let hook = note_hook(&lane.fake, PROJECT, &lane.fake.mr(PROJECT, 2), id, text, "create", "codertocat");
        lane.send("Note", hook).await;
    }
    let mrs: Vec<_> = lane
        .fake
        .project(PROJECT, |p| p.merge_requests.values().filter(|m| m.source_branch == BRANCH).cloned().collect());
    assert_eq!(mrs.len(), 1, "once: {mrs:?}");
    let mr = &mrs[0];
    assert_eq!((mr.title.as_str(), mr.target_branch.as_str()), ("Revert \"Fix the crash\"", "release-1"));
    assert!(mr.description.starts_with("This reverts merge request !2\n"), "{}", mr.description);
    assert!(mr.labels.contains(&"hotfix".to_string()), "{:?}", mr.labels);
    let tip = world.remote_tip(BRANCH).expect("revert branch pushed");
    world.git(&["switch", "-q", "--detach", "origin/release-1"]);
    world.git(&["revert", "--no-edit", "-m", "1", &merged]);
    assert_eq!(world.tree_of(&tip), world.git(&["rev-parse", "HEAD^{tree}"]), "same tree as git revert");
    let entries = lane.store().audit(None, None).await.unwrap();
    let grant = entries.iter().find(|e| e.number == Some(mr.iid as i64) && e.action == "grant.created");
    assert_eq!(grant.map(|e| e.actor.as_str()), Some("codertocat"), "{entries:?}");
}

on_both_backends!(a_responders_revert_opens_one_merge_request_in_the_lane);
