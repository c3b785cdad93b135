//! The `hotfix-lane/approval` check end to end on GitHub, for branch protection that requires
//! it instead of a review count (no bypass list): real reviews through the real router, the
//! real client reading them from the fake GitHub, permissions checked there.

mod common;

use common::github as gh;
use common::lane::{Lane, REPO};
use common::Backend;
use serde_json::Value;

const HEAD: &str = gh::FIXTURE_HEAD;
const APPROVAL: &str = "hotfix-lane/approval";
/// alice and Codertocat are responders; one approving review of the head is the normal rule.
const POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n\
                      method = \"squash\"\n[approval]\nreviews = 1\n";

/// Codertocat's pull request #2 at `HEAD`, naming postmortem #50, as `labels` show it.
async fn opened(backend: Backend, labels: &[&str]) -> Lane {
    let lane = Lane::start(backend, POLICY).await;
    lane.fake.repo(REPO, |r| {
        r.issues.insert(50, (vec!["postmortem".into()], false));
        r.pulls.insert(2, gh::pull(2, "Codertocat", "master", labels, "Postmortem: #50"));
    });
    lane.fake.with(|w| {
        for (login, role) in [("bob", "write"), ("mallory", "read"), ("alice", "write")] {
            w.permissions.insert((REPO.into(), login.into()), role.into());
        }
    });
    let pull = gh::pull(2, "Codertocat", "master", &[], "Postmortem: #50");
    lane.send("pull_request", gh::pr_event("opened", &pull, None, "Codertocat")).await;
    lane
}

/// `by`'s review of `commit`, stored on the fake and delivered.
async fn review(lane: &Lane, by: &str, state: &str, commit: &str) {
    lane.fake.repo(REPO, |r| r.reviews.entry(2).or_default().push((by.into(), state.to_uppercase(), commit.into())));
    let mut event = common::json_fixture("github/pull_request_review/submitted.json");
    event["review"]["state"] = state.into();
    event["review"]["user"]["login"] = by.into();
    event["review"]["commit_id"] = commit.into();
    event["sender"]["login"] = by.into();
    lane.send("pull_request_review", event).await;
}

async fn an_approving_review_of_the_head_by_a_writer_passes_the_check(backend: Backend) {
    let lane = opened(backend, &[]).await;
    assert_eq!(
        lane.status(HEAD, APPROVAL),
        ("pending".into(), "0 of 1 approving review(s) of this commit, or a responder's hotfix grant".into())
    );
    review(&lane, "bob", "approved", HEAD).await;
    assert_eq!(lane.status(HEAD, APPROVAL), ("success".into(), "approved by @bob".into()));
}

async fn an_approval_by_someone_who_cannot_push_does_not_count(backend: Backend) {
    let lane = opened(backend, &[]).await;
    review(&lane, "mallory", "approved", HEAD).await;
    assert_eq!(lane.status(HEAD, APPROVAL).0, "pending", "branch protection would not count a reader either");
}

async fn an_approval_of_an_earlier_commit_does_not_count(backend: Backend) {
    let lane = opened(backend, &[]).await;
    review(&lane, "bob", "approved", "0000000000000000000000000000000000000001").await;
    assert_eq!(lane.status(HEAD, APPROVAL).0, "pending");
}

async fn a_request_for_changes_after_an_approval_withdraws_it(backend: Backend) {
    let lane = opened(backend, &[]).await;
    review(&lane, "bob", "approved", HEAD).await;
    review(&lane, "bob", "changes_requested", HEAD).await;
    assert_eq!(lane.status(HEAD, APPROVAL).0, "pending");
}

async fn a_hotfix_grant_passes_the_check_only_as_the_lane_merges(backend: Backend) {
    let lane = opened(backend, &["hotfix"]).await;
    let labeled = gh::pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
    lane.send("pull_request", gh::pr_event("labeled", &labeled, Some("hotfix"), "alice")).await;
    // A live grant alone leaves it pending: a green check would let anyone with merge rights
    // merge past reviews once the grant lapsed.
    assert_eq!(lane.status(HEAD, APPROVAL).0, "pending");
    lane.fake.take_calls();
    lane.fake.post_check_run(REPO, HEAD, "smoke", "success", "github-actions");
    lane.send("check_run", gh::check_event(HEAD, "smoke", "success")).await;
    let (state, description) = lane.status(HEAD, APPROVAL);
    assert_eq!(state, "success");
    assert!(description.starts_with("merging on @alice's hotfix grant (until "), "{description}");
    let calls = lane.fake.take_calls();
    let posted = calls.iter().position(|c| c.starts_with("POST /repos/Codertocat/Hello-World/statuses/"));
    let merged = calls.iter().position(|c| c.ends_with("/pulls/2/merge"));
    assert!(posted.is_some() && posted < merged, "the check is green before the merge asks for it: {calls:?}");
    let merges: Vec<Value> = lane.fake.repo(REPO, |r| r.merges.iter().map(|m| m.1.clone().into()).collect());
    assert_eq!(merges, vec![Value::from(HEAD)]);
}

on_both_backends!(
    an_approving_review_of_the_head_by_a_writer_passes_the_check,
    an_approval_by_someone_who_cannot_push_does_not_count,
    an_approval_of_an_earlier_commit_does_not_count,
    a_request_for_changes_after_an_approval_withdraws_it,
    a_hotfix_grant_passes_the_check_only_as_the_lane_merges,
);
