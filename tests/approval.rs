//! The `hotfix-lane/approval` check end to end on GitHub, for branch protection that requires
//! it instead of a review count (no bypass list): real reviews through the real router, the
//! real client (as a GitHub App: the check is a check run a ruleset can pin to the App) reading
//! them from the fake GitHub, permissions checked there.

mod common;

use common::github as gh;
use common::lane::{Lane, REPO};
use common::Backend;
use hotfix_lane::forge::github::GitHubAuth;
use serde_json::Value;

const HEAD: &str = gh::FIXTURE_HEAD;
const APPROVAL: &str = "hotfix-lane/approval";
/// alice and Codertocat are responders; one approving review of the head is the normal rule.
const POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n\
                      method = \"squash\"\n[approval]\nreviews = 1\n";

/// Codertocat's pull request #2 at `HEAD`, naming postmortem #50, as `labels` show it.
async fn opened(backend: Backend, labels: &[&str]) -> Lane {
    let app = GitHubAuth::App { app_id: 4242, private_key_pem: gh::app_private_key() };
    opened_as(Lane::start_as(backend, POLICY, app).await, labels).await
}

async fn opened_as(lane: Lane, labels: &[&str]) -> Lane {
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

/// `event` as the App's webhook delivers it: naming its installation.
fn app_event(mut event: Value) -> Value {
    event["installation"] = serde_json::json!({ "id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==" });
    event
}

/// The approval check runs on `HEAD`, oldest first: (state, title).
fn approvals(lane: &Lane) -> Vec<(String, String)> {
    lane.fake.repo(REPO, |r| {
        r.check_runs
            .iter()
            .filter(|c| c.sha == HEAD && c.context == APPROVAL)
            .map(|c| (c.state.clone(), c.description.clone()))
            .collect()
    })
}

fn approval(lane: &Lane) -> (String, String) {
    approvals(lane).pop().expect("an approval check run")
}

/// `by`'s review of `commit`, stored on the fake and delivered.
async fn review(lane: &Lane, by: &str, state: &str, commit: &str) {
    lane.fake.repo(REPO, |r| r.reviews.entry(2).or_default().push((by.into(), state.to_uppercase(), commit.into())));
    let mut event = common::json_fixture("github/pull_request_review/submitted.json");
    event["review"]["state"] = state.into();
    event["review"]["user"]["login"] = by.into();
    event["review"]["commit_id"] = commit.into();
    event["sender"]["login"] = by.into();
    event["pull_request"]["head"]["sha"] = lane.fake.repo(REPO, |r| r.pulls[&2]["head"]["sha"].clone());
    lane.send("pull_request_review", event).await;
}

async fn an_approving_review_of_the_head_by_a_writer_passes_the_check(backend: Backend) {
    let lane = opened(backend, &[]).await;
    assert_eq!(
        approval(&lane),
        ("pending".into(), "0 of 1 approving review(s) of this commit, or a responder's hotfix grant".into())
    );
    review(&lane, "bob", "approved", HEAD).await;
    assert_eq!(approval(&lane), ("success".into(), "approved by @bob".into()));
}

async fn an_approval_by_someone_who_cannot_push_does_not_count(backend: Backend) {
    let lane = opened(backend, &[]).await;
    review(&lane, "mallory", "approved", HEAD).await;
    assert_eq!(approval(&lane).0, "pending", "branch protection would not count a reader either");
}

async fn an_approval_of_an_earlier_commit_does_not_count(backend: Backend) {
    let lane = opened(backend, &[]).await;
    review(&lane, "bob", "approved", "0000000000000000000000000000000000000001").await;
    assert_eq!(approval(&lane).0, "pending");
}

async fn a_request_for_changes_after_an_approval_withdraws_it(backend: Backend) {
    let lane = opened(backend, &[]).await;
    review(&lane, "bob", "approved", HEAD).await;
    review(&lane, "bob", "changes_requested", HEAD).await;
    assert_eq!(approval(&lane).0, "pending");
}

async fn a_hotfix_grant_passes_the_check_only_as_the_lane_merges(backend: Backend) {
    let lane = opened(backend, &["hotfix"]).await;
    let labeled = gh::pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
    lane.send("pull_request", gh::pr_event("labeled", &labeled, Some("hotfix"), "alice")).await;
    // A live grant alone leaves it pending: a green check would let anyone with merge rights
    // merge past reviews once the grant lapsed.
    assert_eq!(approval(&lane).0, "pending");
    lane.fake.take_calls();
    lane.fake.post_check_run(REPO, HEAD, "smoke", "success", "github-actions");
    lane.send("check_run", app_event(gh::check_event(HEAD, "smoke", "success"))).await;
    let (state, description) = approval(&lane);
    assert_eq!(state, "success");
    assert!(description.starts_with("merging on @alice's hotfix grant (until "), "{description}");
    let calls = lane.fake.take_calls();
    let posted = calls.iter().rposition(|c| c == "POST /repos/Codertocat/Hello-World/check-runs");
    let merged = calls.iter().position(|c| c.ends_with("/pulls/2/merge"));
    assert!(posted.is_some() && posted < merged, "the check is green before the merge asks for it: {calls:?}");
    let merges: Vec<Value> = lane.fake.repo(REPO, |r| r.merges.iter().map(|m| m.1.clone().into()).collect());
    assert_eq!(merges, vec![Value::from(HEAD)]);
}

async fn a_merge_on_a_grant_that_fails_takes_the_approval_check_back(backend: Backend) {
    let lane = opened(backend, &["hotfix"]).await;
    let labeled = gh::pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
    lane.send("pull_request", gh::pr_event("labeled", &labeled, Some("hotfix"), "alice")).await;
    // The merge call fails (a timeout, a 5xx): anyone could merge by hand past reviews on a
    // green check left standing, even after the grant is revoked or lapses.
    lane.fake.with(|w| w.failures.push(("PUT /repos/Codertocat/Hello-World/pulls/2/merge".into(), 502)));
    lane.fake.post_check_run(REPO, HEAD, "smoke", "success", "github-actions");
    let body = serde_json::to_vec(&app_event(gh::check_event(HEAD, "smoke", "success"))).unwrap();
    let delivery = common::Delivery::new("check_run", "green", body);
    assert_eq!(delivery.send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    common::eventually("the merge job fails, to be retried", || async {
        store.jobs_in_state("queued").await.unwrap().iter().any(|j| j.last_error.is_some())
    })
    .await;
    let states: Vec<String> = approvals(&lane).into_iter().map(|a| a.0).collect();
    assert_eq!(states, ["pending", "success", "pending"], "taken back as soon as the merge did not happen");
    assert!(lane.fake.repo(REPO, |r| r.merges.is_empty()));
}

async fn a_writer_who_pushes_onto_someone_elses_pull_request_cannot_approve_her_push(backend: Backend) {
    let lane = opened(backend, &[]).await;
    // bob (write access) pushes onto Codertocat's pull request, then approves what he pushed.
    let pushed = "5555555555555555555555555555555555555555";
    lane.fake.repo(REPO, |r| r.pulls.get_mut(&2).unwrap()["head"]["sha"] = pushed.into());
    let mut pull = gh::pull(2, "Codertocat", "master", &[], "Postmortem: #50");
    pull["head"]["sha"] = pushed.into();
    lane.send("pull_request", gh::pr_event("synchronize", &pull, None, "bob")).await;
    review(&lane, "bob", "approved", pushed).await;
    let on_push = |lane: &Lane| {
        lane.fake.repo(REPO, |r| {
            r.check_runs.iter().rev().find(|c| c.sha == pushed && c.context == APPROVAL).map(|c| c.state.clone())
        })
    };
    assert_eq!(on_push(&lane).as_deref(), Some("pending"), "bob's own push is not his to approve");
    lane.fake.with(|w| w.permissions.insert((REPO.into(), "carol".into()), "write".into()));
    review(&lane, "carol", "approved", pushed).await;
    assert_eq!(on_push(&lane).as_deref(), Some("success"));
}

async fn a_pass_left_standing_by_a_merge_cut_short_is_taken_back_at_the_next_sweep(backend: Backend) {
    let lane = opened(backend, &["hotfix"]).await;
    let labeled = gh::pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
    lane.send("pull_request", gh::pr_event("labeled", &labeled, Some("hotfix"), "alice")).await;
    assert_eq!(approval(&lane).0, "pending");
    // The lane posted the pass and was killed before the merge (or its take-back failed): the
    // check is green on the forge, and the lane's own record never saw it.
    lane.fake.post_check_run(REPO, HEAD, APPROVAL, "success", "hotfix-lane");
    lane.send("issue_comment", app_event(gh::comment_event(2, "/hotfix revoke", "alice"))).await;
    assert_eq!(approval(&lane).0, "success", "an event that changes nothing of it leaves it as it is");
    let now = hotfix_lane::clock::Clock::now_ms(lane.clock.as_ref());
    hotfix_lane::dispatch::reconcile(lane.store(), hotfix_lane::lane::event::Forge::Github, now).await.unwrap();
    lane.settle().await;
    assert_eq!(approval(&lane).0, "pending", "the sweep posts it again as the reviews have it");
    assert!(lane.fake.repo(REPO, |r| r.merges.is_empty()));
}

async fn a_dismissal_whose_webhook_never_came_takes_the_approval_back_at_the_next_sweep(backend: Backend) {
    let lane = opened(backend, &[]).await;
    review(&lane, "bob", "approved", HEAD).await;
    assert_eq!(approval(&lane).0, "success");
    // A maintainer dismisses bob's review; the webhook is lost.
    lane.fake.repo(REPO, |r| r.reviews.get_mut(&2).unwrap()[0].1 = "DISMISSED".into());
    let now = hotfix_lane::clock::Clock::now_ms(lane.clock.as_ref());
    hotfix_lane::dispatch::reconcile(lane.store(), hotfix_lane::lane::event::Forge::Github, now).await.unwrap();
    lane.settle().await;
    assert_eq!(approval(&lane).0, "pending", "the sweep reads the reviews again");
}

async fn with_a_token_the_lane_does_not_report_the_approval_check(backend: Backend) {
    // A commit status can be posted by anyone who can push: it would prove nothing.
    let lane = opened_as(Lane::start(backend, POLICY).await, &[]).await;
    review(&lane, "bob", "approved", HEAD).await;
    assert!(lane.fake.status(REPO, HEAD, APPROVAL).is_none());
    assert!(approvals(&lane).is_empty());
}

on_both_backends!(
    a_pass_left_standing_by_a_merge_cut_short_is_taken_back_at_the_next_sweep,
    a_dismissal_whose_webhook_never_came_takes_the_approval_back_at_the_next_sweep,
    a_merge_on_a_grant_that_fails_takes_the_approval_check_back,
    a_writer_who_pushes_onto_someone_elses_pull_request_cannot_approve_her_push,
    with_a_token_the_lane_does_not_report_the_approval_check,
    an_approving_review_of_the_head_by_a_writer_passes_the_check,
    an_approval_by_someone_who_cannot_push_does_not_count,
    an_approval_of_an_earlier_commit_does_not_count,
    a_request_for_changes_after_an_approval_withdraws_it,
    a_hotfix_grant_passes_the_check_only_as_the_lane_merges,
);
