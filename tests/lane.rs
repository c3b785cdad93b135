//! The hotfix lane end to end: real webhooks through the real router, the real forge client
//! against a stateful fake forge on loopback, every comment the lane writes snapshotted.
//!
//! The lane's rules are scenarios in the forge-neutral test language (`common::scenario`), run
//! per forge and per store backend; what needs the GitHub fake's own controls (injected
//! failures, replayed deliveries, API call counts, App mode) drives the harness directly below.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_github::FakeGitHub;
use common::github as gh;
use common::lane::{Lane, NOW, POLICY, REPO};
use common::scenario::{Change, ForgeDriver, Landed, NewChange, Scenario, Source, State, LANE, POSTMORTEM};
use common::{base_url, eventually, Backend, Delivery, TestDb};
use hotfix_lane::clock::ManualClock;
use hotfix_lane::forge::github::GitHubAuth;
use serde_json::{json, Value};

const HEAD: &str = gh::FIXTURE_HEAD;

const RESPONDERS: &str = "[responders]\nusers = [\"Codertocat\"]\n";
/// Two responders, so that one can authorize the other's change; `smoke` must pass; squash.
const MERGE_POLICY: &str =
    "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\nmethod = \"squash\"\n";
/// The CI App that runs `smoke`.
const CI: Source = Source::App("github-actions");

// The lane's rules, on every forge.

/// Codertocat's fix, naming the postmortem #50 that alice opened: not in the lane yet.
async fn fix_with_postmortem<D: ForgeDriver>(backend: Backend, policy: &str) -> (Scenario<D>, Change) {
    let mut s = Scenario::<D>::start(backend, policy).await;
    s.open_issue(50, &["postmortem"], "alice").await;
    let pr = s.open(NewChange::by("Codertocat").body("Postmortem: #50")).await;
    (s, pr)
}

/// [`fix_with_postmortem`], labelled by the responder alice: authorized, waiting for smoke.
async fn authorized_by_label<D: ForgeDriver>(backend: Backend) -> (Scenario<D>, Change) {
    let (mut s, pr) = fix_with_postmortem::<D>(backend, MERGE_POLICY).await;
    s.label(pr, "hotfix", "alice").await;
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Success), "postmortem #50");
    insta::assert_snapshot!("authorized_by_label", s.next_comment(pr));
    (s, pr)
}

fn squashed(change: Change, sha: &str) -> Landed {
    Landed::Merged { change, sha: sha.into(), method: "squash".into() }
}

async fn a_normal_pull_request_passes_without_a_comment<D: ForgeDriver>(backend: Backend) {
    let mut s = Scenario::<D>::start(backend, RESPONDERS).await;
    let pr = s.open(NewChange::by("Codertocat").body("Small fix.")).await;
    assert_eq!(s.expect_check(pr, LANE, State::Success), "normal");
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Success), "not a hotfix");
    s.expect_no_new_comment(pr);
}

/// Label → authorize → green → merged: the author's own label puts the fix in the lane, a
/// second responder authorizes it, and the lane merges it once its smoke check passes.
async fn a_hotfix_merges_once_another_responder_authorizes_it_and_smoke_passes<D: ForgeDriver>(backend: Backend) {
    let (mut s, pr) = fix_with_postmortem::<D>(backend, MERGE_POLICY).await;
    let head = s.head(pr);
    s.label(pr, "hotfix", "Codertocat").await;
    assert_eq!(s.expect_check(pr, LANE, State::Success), "hotfix: smoke-only");
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Success), "postmortem #50");
    insta::assert_snapshot!("labelled_by_its_author", s.next_comment(pr));

    s.comment(pr, "/hotfix authorize 2h checkout is down", "alice").await;
    insta::assert_snapshot!("authorized_waiting_for_smoke", s.next_comment(pr));
    assert!(s.landed().is_empty(), "not before the smoke check");
    s.report(pr, "smoke", State::Failure, CI).await;
    insta::assert_snapshot!("smoke_failed", s.next_comment(pr));
    assert!(s.landed().is_empty(), "not on a red smoke check");
    s.report(pr, "smoke", State::Success, CI).await;
    assert_eq!(s.landed(), [squashed(pr, &head)], "merged once, pinned to the head");
    insta::assert_snapshot!("merged_on_a_second_responders_authorization", s.next_comment(pr));

    // Whatever arrives afterwards, it never merges twice, nor grants again.
    let before = s.audit().await;
    s.report(pr, "smoke", State::Success, CI).await;
    s.edit_description(pr, "Postmortem: #50\n\nShipped.", "Codertocat").await;
    s.label(pr, "hotfix", "alice").await;
    assert_eq!(s.landed().len(), 1);
    s.expect_no_new_comment(pr);
    let after = s.audit().await;
    let again: Vec<&String> = after[before.len()..]
        .iter()
        .filter(|a| ["merge.merged", "grant.created", "lane.hotfix"].contains(&a.as_str()))
        .collect();
    assert!(again.is_empty(), "{after:?}");
    let metrics = s.metrics().await;
    assert!(metrics.contains("hotfix_lane_grants_total{outcome=\"created\"} 1"), "{metrics}");
    assert!(metrics.contains("hotfix_lane_time_to_merge_seconds_count 1"), "{metrics}");
    assert!(metrics.contains("hotfix_lane_authorization_seconds_count 1"), "{metrics}");
}

/// The common case during an incident: the fix is pushed, CI goes green, then a responder says
/// "ship it". The lane reads the commit's checks when the grant arrives.
async fn a_hotfix_whose_ci_went_green_before_the_label_merges_when_a_responder_labels_it<D: ForgeDriver>(
    backend: Backend,
) {
    let (mut s, pr) = fix_with_postmortem::<D>(backend, MERGE_POLICY).await;
    s.report(pr, "smoke", State::Success, CI).await;
    assert!(s.landed().is_empty(), "not in the lane yet");
    s.label(pr, "hotfix", "alice").await;
    assert_eq!(s.landed(), [squashed(pr, &s.head(pr))]);
    insta::assert_snapshot!("merged", s.next_comment(pr));
}

async fn a_label_from_a_non_responder_is_refused_and_explained<D: ForgeDriver>(backend: Backend) {
    let mut s = Scenario::<D>::start(backend, "[responders]\nusers = [\"alice\"]\nteams = [\"@acme/oncall\"]\n").await;
    let pr = s.open(NewChange::by("Codertocat")).await;
    s.label(pr, "hotfix", "mallory").await;
    assert_eq!(s.expect_check(pr, LANE, State::Failure), "hotfix label not authorized");
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Success), "not a hotfix");
    insta::assert_snapshot!("label_by_non_responder", s.next_comment(pr));
    let audit = s.audit_log().await;
    let refused: Vec<_> = audit.iter().filter(|e| e.action == "lane.not_authorized").collect();
    assert_eq!(refused.len(), 1, "{audit:?}");
    assert_eq!(refused[0].actor, "mallory");
}

async fn a_push_after_the_grant_voids_it<D: ForgeDriver>(backend: Backend) {
    let (mut s, pr) = authorized_by_label::<D>(backend).await;
    let new_head = s.push(pr, "Codertocat").await;
    insta::assert_snapshot!("grant_voided_by_a_push", s.next_comment(pr));
    assert!(s.audit().await.contains(&"grant.voided".to_string()));
    s.report(pr, "smoke", State::Success, CI).await;
    assert!(s.landed().is_empty(), "the grant covered the old commit only");
    s.expect_no_new_comment(pr);
    // Re-authorized for the new commit, it merges.
    s.comment(pr, "/hotfix authorize 1h db failover", "alice").await;
    assert_eq!(s.landed(), [squashed(pr, &new_head)]);
    insta::assert_snapshot!("merged_after_a_new_authorization", s.next_comment(pr));
}

async fn an_expired_grant_does_not_merge<D: ForgeDriver>(backend: Backend) {
    let (mut s, pr) = authorized_by_label::<D>(backend).await;
    s.advance(Duration::from_millis(4 * 3600 * 1000 + 1));
    s.report(pr, "smoke", State::Success, CI).await;
    assert!(s.landed().is_empty());
    insta::assert_snapshot!("grant_expired", s.next_comment(pr));
}

async fn a_revoked_grant_does_not_merge<D: ForgeDriver>(backend: Backend) {
    let (mut s, pr) = authorized_by_label::<D>(backend).await;
    s.comment(pr, "/hotfix revoke", "alice").await;
    insta::assert_snapshot!("grant_revoked", s.next_comment(pr));
    s.report(pr, "smoke", State::Success, CI).await;
    assert!(s.landed().is_empty());
    assert!(s.audit().await.contains(&"grant.revoked".to_string()));
}

async fn only_responders_authorize_and_edits_never_do<D: ForgeDriver>(backend: Backend) {
    let (mut s, pr) = authorized_by_label::<D>(backend).await;
    s.comment(pr, "/hotfix revoke", "mallory").await;
    insta::assert_snapshot!("command_refused", s.next_comment(pr));
    assert_eq!(s.comments(pr).len(), 2, "the refusal is a comment of its own");
    s.comment(pr, "/hotfix revoke", "alice").await;
    insta::assert_snapshot!("grant_revoked", s.next_comment(pr));
    let said = s.comment(pr, "I will authorize it once CI is done.", "alice").await;
    s.edit_comment(said, "/hotfix authorize", "alice").await;
    s.report(pr, "smoke", State::Success, CI).await;
    assert!(s.landed().is_empty(), "an edited comment grants nothing");
}

async fn a_merge_queue_branch_gets_the_hotfix_at_its_front<D: ForgeDriver>(backend: Backend) {
    let (mut s, pr) = authorized_by_label::<D>(backend).await;
    s.require_merge_queue("master");
    s.report(pr, "smoke", State::Success, CI).await;
    let head = s.head(pr);
    assert_eq!(s.landed(), [Landed::Enqueued { change: pr, sha: head, front: true }]);
    insta::assert_snapshot!("at_the_front_of_the_merge_queue", s.next_comment(pr));
    s.report(pr, "smoke", State::Success, CI).await;
    assert_eq!(s.landed().len(), 1, "never enqueued twice");
    assert!(s.audit().await.contains(&"merge.enqueued".to_string()));
}

async fn a_hotfix_without_a_postmortem_is_blocked_until_the_issue_exists<D: ForgeDriver>(backend: Backend) {
    // A smoke check that never reports keeps the lane from merging while the check flips.
    let mut s = Scenario::<D>::start(backend, &format!("{RESPONDERS}[merge]\nsmoke_checks = [\"smoke\"]\n")).await;
    let pr = s.open(NewChange::by("Codertocat").body("Fix the outage.")).await;
    s.label(pr, "hotfix", "Codertocat").await;
    assert_eq!(s.expect_check(pr, LANE, State::Success), "hotfix: smoke-only");
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Failure), "no postmortem referenced");
    insta::assert_snapshot!("hotfix_without_postmortem", s.next_comment(pr));

    // The description names an issue that does not exist yet.
    s.edit_description(pr, "Fix the outage.\n\nPostmortem: #50", "Codertocat").await;
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Failure), "#50 does not exist");
    insta::assert_snapshot!("hotfix_postmortem_missing", s.next_comment(pr));

    // The issue is opened, labelled: the check flips without touching the change.
    let postmortem = s.open_issue(50, &["postmortem"], "Codertocat").await;
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Success), "postmortem #50");
    insta::assert_snapshot!("hotfix_postmortem_found", s.next_comment(pr));

    // It loses its label: blocked again.
    s.unlabel_issue(postmortem, "postmortem", "Codertocat").await;
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Failure), "#50 lacks the `postmortem` label");
    insta::assert_snapshot!("hotfix_postmortem_unlabelled", s.next_comment(pr));

    assert_eq!(s.comments(pr).len(), 1, "one comment, kept up to date");
    assert_eq!(
        s.audit().await,
        [
            "postmortem.success", // opened as a normal change
            "lane.hotfix",
            "grant.refused",
            "postmortem.failure",
            "postmortem.success",
            "postmortem.failure"
        ],
        "each lane decision is audited once"
    );
}

async fn slash_postmortem_opens_and_links_the_issue_once<D: ForgeDriver>(backend: Backend) {
    let mut s = Scenario::<D>::start(backend, RESPONDERS).await;
    let pr = s.open(NewChange::by("Codertocat").body("Fix the outage.")).await;
    s.label(pr, "hotfix", "Codertocat").await;
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Failure), "no postmortem referenced");
    insta::assert_snapshot!("hotfix_without_postmortem", s.next_comment(pr));

    s.comment(pr, "/hotfix postmortem", "Codertocat").await;
    let issues = s.issues_opened();
    assert_eq!(issues.len(), 1, "one postmortem issue");
    let issue = &issues[0];
    assert_eq!(issue.title, "Postmortem: Update the README with new information.");
    assert_eq!(issue.labels, ["postmortem"]);
    insta::assert_snapshot!("postmortem_issue_body", issue.body);
    assert_eq!(s.description(pr), format!("Fix the outage.\n\nPostmortem: #{}", issue.number));
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Success), format!("postmortem #{}", issue.number));
    insta::assert_snapshot!("postmortem_opened_by_command", s.next_comment(pr));

    // Asking again changes nothing.
    s.comment(pr, "/hotfix postmortem", "Codertocat").await;
    assert_eq!(s.issues_opened().len(), 1);
    s.expect_no_new_comment(pr);
    let actions = s.audit().await;
    assert_eq!(actions.iter().filter(|a| *a == "postmortem.opened").count(), 1, "{actions:?}");
}

async fn only_responders_and_the_author_open_postmortems<D: ForgeDriver>(backend: Backend) {
    let mut s = Scenario::<D>::start(backend, RESPONDERS).await;
    let pr = s.open(NewChange::by("Codertocat")).await;
    s.comment(pr, "/hotfix postmortem", "drive-by").await;
    assert!(s.issues_opened().is_empty());
    insta::assert_snapshot!("postmortem_command_refused", s.next_comment(pr));
    let audit = s.audit_log().await;
    let refused: Vec<&str> =
        audit.iter().filter(|e| e.action == "postmortem.command_refused").map(|e| e.actor.as_str()).collect();
    assert_eq!(refused, ["drive-by"]);
    // An edited comment never runs a command.
    let said = s.comment(pr, "Should this have a postmortem?", "Codertocat").await;
    s.edit_comment(said, "/hotfix postmortem", "Codertocat").await;
    assert!(s.issues_opened().is_empty());
}

async fn the_policy_can_open_the_postmortem_when_the_label_is_applied<D: ForgeDriver>(backend: Backend) {
    let mut s = Scenario::<D>::start(backend, &format!("{RESPONDERS}[postmortem]\nopen_on_label = true\n")).await;
    let pr = s.open(NewChange::by("Codertocat").body("Fix.")).await;
    s.label(pr, "hotfix", "Codertocat").await;
    let issues = s.issues_opened();
    assert_eq!(issues.len(), 1, "an issue was opened");
    assert_eq!(s.expect_check(pr, POSTMORTEM, State::Success), format!("postmortem #{}", issues[0].number));
    insta::assert_snapshot!("postmortem_opened_on_label", s.next_comment(pr));
}

async fn an_invalid_policy_is_reported_and_the_last_good_one_kept<D: ForgeDriver>(backend: Backend) {
    let mut s = Scenario::<D>::start(backend, RESPONDERS).await;
    let pr = s.open(NewChange::by("Codertocat")).await;
    s.label(pr, "hotfix", "Codertocat").await;
    insta::assert_snapshot!("hotfix_without_postmortem", s.next_comment(pr));
    // The default branch gets a broken policy.
    s.push_policy("[responders]\nuser = [\"x\"]\n", "alice").await;
    s.edit_description(pr, "still broken", "Codertocat").await;
    assert_eq!(s.expect_check(pr, LANE, State::Success), "hotfix: smoke-only", "the last good policy still applies");
    insta::assert_snapshot!("policy_invalid_on_the_default_branch", s.next_comment(pr));
    assert_eq!(s.comments(pr).len(), 1);
}

async fn the_merge_queue_enforces_the_postmortem_check<D: ForgeDriver>(backend: Backend) {
    let mut s = Scenario::<D>::start(backend, RESPONDERS).await;
    let pr = s.open(NewChange::by("Codertocat").body("no reference")).await;
    s.label(pr, "hotfix", "Codertocat").await;
    insta::assert_snapshot!("hotfix_without_postmortem", s.next_comment(pr));

    let group = s.queue(pr).await;
    assert_eq!(s.expect_check_on(&group, POSTMORTEM, State::Failure), "no postmortem referenced");

    s.open_issue(9, &["postmortem"], "Codertocat").await;
    s.edit_description(pr, "Postmortem: #9", "Codertocat").await;
    assert!(s.next_comment(pr).contains("✅ **Postmortem:** postmortem #9"));
    // The queue builds a new group for the edited change.
    let group = s.queue(pr).await;
    assert_eq!(s.expect_check_on(&group, POSTMORTEM, State::Success), "postmortem #9");
}

on_both_backends!(forge github = crate::common::github::GitHubDriver:
    a_normal_pull_request_passes_without_a_comment,
    a_hotfix_merges_once_another_responder_authorizes_it_and_smoke_passes,
    a_hotfix_whose_ci_went_green_before_the_label_merges_when_a_responder_labels_it,
    a_label_from_a_non_responder_is_refused_and_explained,
    a_push_after_the_grant_voids_it,
    an_expired_grant_does_not_merge,
    a_revoked_grant_does_not_merge,
    only_responders_authorize_and_edits_never_do,
    a_merge_queue_branch_gets_the_hotfix_at_its_front,
    a_hotfix_without_a_postmortem_is_blocked_until_the_issue_exists,
    slash_postmortem_opens_and_links_the_issue_once,
    only_responders_and_the_author_open_postmortems,
    the_policy_can_open_the_postmortem_when_the_label_is_applied,
    an_invalid_policy_is_reported_and_the_last_good_one_kept,
    the_merge_queue_enforces_the_postmortem_check,
);

// GitLab cannot put a change at the front of a merge train: `tests/gitlab_lane.rs` has what it does.
on_both_backends!(forge gitlab = crate::common::gitlab::GitLabDriver:
    a_normal_pull_request_passes_without_a_comment,
    a_hotfix_merges_once_another_responder_authorizes_it_and_smoke_passes,
    a_hotfix_whose_ci_went_green_before_the_label_merges_when_a_responder_labels_it,
    a_label_from_a_non_responder_is_refused_and_explained,
    a_push_after_the_grant_voids_it,
    an_expired_grant_does_not_merge,
    a_revoked_grant_does_not_merge,
    only_responders_authorize_and_edits_never_do,
    a_hotfix_without_a_postmortem_is_blocked_until_the_issue_exists,
    slash_postmortem_opens_and_links_the_issue_once,
    only_responders_and_the_author_open_postmortems,
    the_policy_can_open_the_postmortem_when_the_label_is_applied,
    an_invalid_policy_is_reported_and_the_last_good_one_kept,
    the_merge_queue_enforces_the_postmortem_check,
);

// GitHub's own controls: the harness, driven directly.

/// A `pull_request` delivery for PR #2 of the fixture repository, by Codertocat.
fn pr_event(action: &str, label: Option<&str>, labels: &[&str], body: &str, sender: &str) -> Value {
    gh::pr_event(action, &gh::pull(2, "Codertocat", "master", labels, body), label, sender)
}

/// A comment on PR #2, as `author`.
fn comment_event(body: &str, author: &str) -> Value {
    gh::comment_event(2, body, author)
}

/// Serves PR #2 from the fake, labelled `hotfix`, with `body`.
fn serve_pull(lane: &Lane, body: &str) {
    lane.fake.repo(REPO, |r| r.pulls.insert(2, gh::pull(2, "Codertocat", "master", &["hotfix"], body)));
}

fn pull_body(lane: &Lane) -> String {
    lane.fake.repo(REPO, |r| r.pulls[&2]["body"].as_str().unwrap_or_default().to_string())
}

async fn a_retried_postmortem_command_finds_the_issue_it_opened(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    serve_pull(&lane, "");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    // An earlier attempt opened the issue, then died before linking it.
    lane.fake.repo(REPO, |r| {
        r.issues.insert(40, (vec!["postmortem".into()], false));
        r.issue_texts
            .insert(40, ("Postmortem".into(), "<!-- hotfix-lane:postmortem-for Codertocat/Hello-World#2 -->".into()));
        r.issue_authors.insert(40, common::fake_github::TOKEN_LOGIN.into());
    });
    lane.send("issue_comment", comment_event("/hotfix postmortem", "Codertocat")).await;
    assert_eq!(lane.fake.repo(REPO, |r| r.issue_texts.len()), 1, "no second issue");
    assert_eq!(pull_body(&lane), "Postmortem: #40");
}

async fn each_bad_reference_has_its_own_message(backend: Backend) {
    let lane = Lane::start(backend, &format!("{RESPONDERS}[postmortem]\nallowed_repos = [\"acme/incidents\"]\n")).await;
    lane.fake.repo(REPO, |r| {
        r.issues.insert(7, (vec!["postmortem".into()], true));
        r.issues.insert(8, (vec!["bug".into()], false));
    });
    lane.fake.repo("acme/incidents", |r| r.issues.insert(3, (vec!["postmortem".into()], false)));
    let cases = [
        ("Postmortem: #99", "#99 does not exist"),
        ("Postmortem: #7", "#7 is a pull request"),
        ("Postmortem: #8", "#8 lacks the `postmortem` label"),
        ("Postmortem: other/repo#3", "other/repo#3: repository not allowed"),
        ("Postmortem: tomorrow", "postmortem reference unreadable"),
        ("Postmortem: https://github.com/acme/incidents/issues/3", "postmortem acme/incidents#3"),
    ];
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    for (body, expected) in cases {
        lane.send("pull_request", pr_event("edited", None, &["hotfix"], body, "Codertocat")).await;
        assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").1, expected, "{body}");
    }
}

async fn a_team_member_is_a_responder(backend: Backend) {
    let lane = Lane::start(backend, "[responders]\nteams = [\"@acme/oncall\"]\n").await;
    lane.fake.with(|w| w.teams.insert(("acme".into(), "oncall".into()), vec!["bob".into()]));
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "bob")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane").1, "hotfix: smoke-only");
}

async fn the_reconcile_sweep_reports_on_merge_groups_whose_webhook_was_missed(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    serve_pull(&lane, "no reference");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "no reference", "Codertocat")).await;
    let group_ref = format!("refs/heads/gh-readonly-queue/master/pr-2-{HEAD}");
    let (missed, reported) = ("2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333");
    let ahead = gh::pull(3, "Codertocat", "master", &[], "");
    lane.fake.repo(REPO, |r| {
        r.queue_refs.push((group_ref.clone(), missed.into()));
        r.queue_refs.push((format!("refs/heads/gh-readonly-queue/master/pr-3-{HEAD}"), reported.into()));
        // #3 is ahead of #2 in the queue; its group has its report already.
        r.pulls.insert(3, ahead);
        r.merge_queue.insert("master".into(), vec![(3, reported.into()), (2, missed.into())]);
        r.statuses.push(common::fake_github::Status {
            sha: reported.into(),
            context: "hotfix-lane/postmortem".into(),
            state: "failure".into(),
            description: "no postmortem referenced".into(),
            by: "ci".into(),
            suite: 0,
        });
    });
    hotfix_lane::dispatch::reconcile(lane.store(), hotfix_lane::lane::event::Forge::Github, NOW).await.unwrap();
    lane.settle().await;
    assert_eq!(lane.status(missed, "hotfix-lane/postmortem"), ("failure".into(), "no postmortem referenced".into()));
    let on_reported = lane.fake.repo(REPO, |r| r.statuses.iter().filter(|s| s.sha == reported).count());
    assert_eq!(on_reported, 1, "a group that has its report is left alone");
}

async fn redelivered_events_never_double_comment(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    let delivery = Delivery::new(
        "pull_request",
        "same-delivery",
        serde_json::to_vec(&pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).unwrap(),
    );
    lane.deliver(&delivery).await;
    lane.deliver(&delivery).await;
    // A different delivery with the same content (GitHub's "redeliver" gives a new id too).
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    assert_eq!(lane.comments().len(), 1);
    let statuses = lane.fake.repo(REPO, |r| r.statuses.len());
    assert_eq!(statuses, 2, "unchanged reports are not posted again");
}

async fn one_hotfix_lifecycle_costs_few_api_calls(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    lane.send("pull_request", pr_event("edited", None, &["hotfix"], "Postmortem: #50", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").1, "postmortem #50");
    let calls = lane.fake.take_calls();
    insta::assert_snapshot!("api_calls_label_to_green", calls.join("\n"));
    assert!(calls.len() <= 9, "{calls:#?}");
}

async fn a_label_applied_while_not_listening_is_attributed_by_the_forge(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.fake
        .repo(REPO, |r| r.label_events.push((2, "hotfix".into(), "Codertocat".into(), "2026-11-26T13:00:00Z".into())));
    lane.send("pull_request", pr_event("synchronize", None, &["hotfix"], "", "someone-else")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane").1, "hotfix: smoke-only");
    let state = lane.store().lane_state("github", 186853002, 2).await.unwrap().unwrap();
    assert_eq!(state["lane"]["labeler"]["login"], "Codertocat");
}

async fn the_reconcile_sweep_catches_what_webhooks_missed(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    serve_pull(&lane, "Postmortem: #50");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Postmortem: #50", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").1, "#50 does not exist");
    // The issue appears, but its webhook never arrives.
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    let queued =
        hotfix_lane::dispatch::reconcile(lane.store(), hotfix_lane::lane::event::Forge::Github, NOW).await.unwrap();
    assert_eq!(queued, 2, "the open change the lane watches, and its repository's merge queue");
    lane.settle().await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("success".into(), "postmortem #50".into()));
}

async fn a_change_to_the_policy_file_is_validated_on_the_change(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.fake.repo(REPO, |r| {
        r.pull_files.insert(2, vec![POLICY.into(), "README.md".into()]);
        r.files.insert((HEAD.into(), POLICY.into()), "[lane]\nlabell = \"sev1\"\n".into());
    });
    lane.send("pull_request", pr_event("synchronize", None, &[], "", "Codertocat")).await;
    assert_eq!(
        lane.status(HEAD, "hotfix-lane/policy"),
        (
            "failure".into(),
            "policy file invalid: 2:1: unknown field `labell`, expected `label` or `branch_patterns`".into()
        )
    );
    insta::assert_snapshot!("policy_edit_invalid", lane.comments().join("\n---\n"));
    lane.fake.repo(REPO, |r| r.files.insert((HEAD.into(), POLICY.into()), "[lane]\nlabel = \"sev1\"\n".into()));
    lane.send("pull_request", pr_event("synchronize", None, &[], "", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/policy"), ("success".into(), "policy file valid".into()));
}

/// A throwaway RSA key for the App-mode test, made by the openssl command.
async fn as_a_github_app_it_acts_per_installation_and_reports_check_runs(backend: Backend) {
    let auth = GitHubAuth::App { app_id: 4242, private_key_pem: gh::app_private_key() };
    let lane = Lane::start_as(backend, RESPONDERS, auth).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("failure".into(), "no postmortem referenced".into()));
    let auth = lane.fake.with(|w| w.auth.clone());
    let (_, jwt) =
        auth.iter().find(|(path, _)| path == "/app/installations/1/access_tokens").expect("a token was bought");
    let claims = jwt.strip_prefix("Bearer ").and_then(|t| t.split('.').nth(1)).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], 4242);
    let repo_calls: Vec<&String> = auth.iter().filter(|(p, _)| p.starts_with("/repos/")).map(|(_, a)| a).collect();
    assert!(!repo_calls.is_empty());
    assert!(repo_calls.iter().all(|a| a.ends_with("ghs_installation_1")), "{repo_calls:?}");
    let calls = lane.fake.take_calls();
    assert!(calls.iter().any(|c| c == "POST /repos/Codertocat/Hello-World/check-runs"), "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains("/statuses/")), "check runs, not statuses, in App mode");
}

async fn the_audit_api_needs_its_token(backend: Backend) {
    let lane = Lane::start(backend, RESPONDERS).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    let get = |auth: Option<&str>, query: &str| {
        let mut req = lane.client.get(format!("{}/api/audit{query}", lane.base));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    assert_eq!(get(Some("anything"), "").await.unwrap().status(), 404, "off without a configured token");
    drop(lane);

    let fake = FakeGitHub::start().await;
    fake.repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), RESPONDERS.into()));
    let db = TestDb::new(backend).await;
    let mut settings = common::settings(&db);
    settings.github_api_url = fake.url.clone();
    settings.github_auth = Some(GitHubAuth::Token("t".into()));
    settings.admin_token = Some("s3cret-admin".into());
    let server = common::start_server_with(settings, Arc::new(ManualClock::new(NOW))).await;
    let base = base_url(&server);
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(&pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).unwrap();
    assert_eq!(Delivery::new("pull_request", "a1", body).send(&client, &base).await.0, 202);
    let store = server.store.clone();
    eventually("the decision is audited", || async { !store.audit(None, None).await.unwrap().is_empty() }).await;

    let url = |q: &str| format!("{base}/api/audit{q}");
    assert_eq!(client.get(url("")).send().await.unwrap().status(), 401);
    assert_eq!(client.get(url("")).bearer_auth("wrong").send().await.unwrap().status(), 401);
    let entries: Value = client.get(url("")).bearer_auth("s3cret-admin").send().await.unwrap().json().await.unwrap();
    assert_eq!(entries[0]["action"], "lane.hotfix");
    assert_eq!(entries[0]["actor"], "Codertocat");
    assert_eq!(entries[0]["sha"], HEAD);
    let other: Value =
        client.get(url("?repo=acme/other")).bearer_auth("s3cret-admin").send().await.unwrap().json().await.unwrap();
    assert_eq!(other, json!([]));
    assert_eq!(client.get(url("?since=someday")).bearer_auth("s3cret-admin").send().await.unwrap().status(), 400);
}

/// CI reports the smoke check on `sha`: the check run the forge lists, and its webhook.
async fn ci(lane: &Lane, conclusion: &str, sha: &str) {
    lane.fake.post_check_run(REPO, sha, "smoke", conclusion, "github-actions");
    lane.send("check_run", gh::check_event(sha, "smoke", conclusion)).await;
}

/// A hotfix by Codertocat, labelled by the responder alice, naming an existing postmortem:
/// waiting for smoke only.
async fn authorized_hotfix(backend: Backend) -> Lane {
    authorized_hotfix_on(Lane::start(backend, MERGE_POLICY).await).await
}

async fn authorized_hotfix_on(lane: Lane) -> Lane {
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    serve_pull(&lane, "Postmortem: #50");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "Postmortem: #50", "alice")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").0, "success");
    lane
}

fn merges(lane: &Lane) -> Vec<(u64, String, String)> {
    lane.fake.repo(REPO, |r| r.merges.clone())
}

async fn audit_actions(lane: &Lane) -> Vec<String> {
    lane.store().audit(Some(REPO), None).await.unwrap().into_iter().map(|e| e.action).collect()
}

async fn forks_need_the_policy_to_opt_in(backend: Backend) {
    let lane = Lane::start(backend, MERGE_POLICY).await;
    let mut event = pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat");
    event["pull_request"]["head"]["repo"]["id"] = 999.into();
    lane.send("pull_request", event).await;
    let actions = audit_actions(&lane).await;
    assert!(actions.contains(&"grant.refused".to_string()), "{actions:?}");
}

async fn a_moved_base_is_retried_and_a_refusal_explained(backend: Backend) {
    let lane = authorized_hotfix(backend).await;
    lane.fake.repo(REPO, |r| {
        r.merge_answers.push_back((409, "Head branch was modified. Review and try the merge again.".into()))
    });
    ci(&lane, "success", HEAD).await;
    assert!(merges(&lane).is_empty());
    assert!(
        lane.comments()[0].contains("GitHub refused to merge `ec26c3e`: Head branch was modified."),
        "{}",
        lane.comments()[0]
    );
    assert!(audit_actions(&lane).await.contains(&"merge.refused".to_string()));

    let lane = authorized_hotfix(Backend::Sqlite).await;
    lane.fake.repo(REPO, |r| {
        r.merge_answers.push_back((405, "Base branch was modified. Review and try the merge again.".into()))
    });
    lane.fake.post_check_run(REPO, HEAD, "smoke", "success", "github-actions");
    let delivery = Delivery::new(
        "check_run",
        "moved-base",
        serde_json::to_vec(&gh::check_event(HEAD, "smoke", "success")).unwrap(),
    );
    assert_eq!(delivery.send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the merge is deferred", || async {
        store
            .jobs_in_state("queued")
            .await
            .unwrap()
            .iter()
            .any(|j| j.last_error.as_deref() == Some("the base branch moved during the merge"))
    })
    .await;
    lane.clock.advance(6_000);
    eventually("the retry merges", || async { !merges(&lane).is_empty() }).await;
    assert_eq!(merges(&lane).len(), 1);
}

/// GitHub Enterprise Server serves REST under `/api/v3` and GraphQL beside it, at
/// `/api/graphql`: the queue jump must go there, with the lane's token, not under the REST base.
async fn on_github_enterprise_the_queue_jump_goes_to_its_graphql_endpoint(backend: Backend) {
    let fake = common::fake_github::FakeGitHub::start_enterprise().await;
    assert!(fake.url.ends_with("/api/v3"), "{}", fake.url);
    let lane = Lane::start_on(fake, backend, MERGE_POLICY, GitHubAuth::Token("test-token".into())).await;
    let lane = authorized_hotfix_on(lane).await;
    let rule = "Repository rule violations found\n\nChanges must be made through the merge queue";
    lane.fake.repo(REPO, |r| r.merge_answers.push_back((405, rule.into())));
    ci(&lane, "success", HEAD).await;
    assert_eq!(lane.fake.with(|w| w.enqueued.clone()), [("PR_Codertocat_Hello-World_2".into(), HEAD.into(), true)]);
    let calls = lane.fake.with(|w| w.calls.clone());
    assert!(calls.iter().all(|c| c.contains(" /api/v3/") || c == "POST /api/graphql"), "{calls:#?}");
    assert_eq!(calls.iter().filter(|c| *c == "POST /api/graphql").count(), 2, "node id, then the jump: {calls:#?}");
    let auth = lane
        .fake
        .with(|w| w.auth.iter().filter(|(p, _)| p == "/api/graphql").map(|(_, a)| a.clone()).collect::<Vec<_>>());
    assert!(auth.iter().all(|a| a == "Bearer test-token"), "{auth:?}");
    assert!(lane.comments()[0].contains("`ec26c3e` is at the front of the merge queue"), "{}", lane.comments()[0]);
}

/// Stored facts that no longer read stop the change's jobs with the reason, instead of being
/// taken for a change never seen (which would forget its grant's lapse or its merge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_state_that_does_not_read_fails_its_job_loudly() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).await;
    let db = sqlx::SqlitePool::connect(&lane._db.url).await.unwrap();
    sqlx::query("UPDATE lane_state SET state = '{\"number\": \"two\"}'").execute(&db).await.unwrap();
    let body = serde_json::to_vec(&pr_event("edited", None, &["hotfix"], "", "Codertocat")).unwrap();
    assert_eq!(Delivery::new("pull_request", "unreadable", body).send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the job fails with the reason", || async {
        store
            .jobs_in_state("queued")
            .await
            .unwrap()
            .iter()
            .any(|j| j.last_error.as_deref().is_some_and(|e| e.contains("the stored lane state of #2 does not read")))
    })
    .await;
}

/// A secondary rate limit answers `Retry-After: 1`: the job waits a second, not until the end
/// of the hourly window that `x-ratelimit-reset` names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_rate_limit_waits_for_retry_after_not_the_hourly_reset() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    lane.fake.with(|w| w.throttled.push(("/statuses/".into(), 1)));
    let body = serde_json::to_vec(&pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).unwrap();
    assert_eq!(Delivery::new("pull_request", "throttled", body).send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the job is deferred", || async {
        store.jobs_in_state("queued").await.unwrap().iter().any(|j| j.last_error.is_some())
    })
    .await;
    lane.clock.advance(2_000);
    eventually("the retry reports", || async { lane.fake.status(REPO, HEAD, "hotfix-lane/lane").is_some() }).await;
}

/// A job posts its reports, then fails (the comment's POST answers 502) and is retried: the
/// retry posts the comment, not the same reports a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_does_not_post_its_reports_again() {
    let lane = Lane::start(Backend::Sqlite, RESPONDERS).await;
    lane.fake.with(|w| w.failures.push(("POST /repos/Codertocat/Hello-World/issues/2/comments".into(), 502)));
    let body = serde_json::to_vec(&pr_event("labeled", Some("hotfix"), &["hotfix"], "", "Codertocat")).unwrap();
    assert_eq!(Delivery::new("pull_request", "retried", body).send(&lane.client, &lane.base).await.0, 202);
    let store = lane.store().clone();
    eventually("the first attempt fails", || async {
        store.jobs_in_state("queued").await.unwrap().iter().any(|j| j.last_error.is_some())
    })
    .await;
    lane.clock.advance(10 * 60 * 1000);
    eventually("the retry comments", || async { !lane.comments().is_empty() }).await;
    lane.settle().await;
    let posted =
        lane.fake.take_calls().into_iter().filter(|c| c.starts_with("POST") && c.contains("/statuses/")).count();
    assert_eq!(posted, 2, "hotfix-lane/lane and hotfix-lane/postmortem, once each");
}

/// Two `serve` replicas on one PostgreSQL, each receiving its own copy of the green smoke check
/// at the same moment: the change is merged exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_racing_merge_once() {
    let lane = authorized_hotfix(Backend::Postgres).await;
    let mut settings = common::settings(&lane._db);
    settings.github_api_url = lane.fake.url.clone();
    settings.github_auth = Some(GitHubAuth::Token("test-token".into()));
    let second = common::start_server_with(settings, lane.clock.clone()).await;
    let second_base = base_url(&second);
    lane.fake.post_check_run(REPO, HEAD, "smoke", "success", "github-actions");
    let body = serde_json::to_vec(&gh::check_event(HEAD, "smoke", "success")).unwrap();
    let (a, b) = (Delivery::new("check_run", "race-a", body.clone()), Delivery::new("check_run", "race-b", body));
    let (ra, rb) = tokio::join!(a.send(&lane.client, &lane.base), b.send(&lane.client, &second_base));
    assert_eq!((ra.0, rb.0), (202, 202));
    lane.settle().await;
    assert_eq!(merges(&lane).len(), 1, "merged exactly once");
    let actions = audit_actions(&lane).await;
    assert_eq!(actions.iter().filter(|a| *a == "merge.merged").count(), 1, "{actions:?}");
    second.shutdown().await.unwrap();
}

on_both_backends!(
    on_github_enterprise_the_queue_jump_goes_to_its_graphql_endpoint,
    a_retried_postmortem_command_finds_the_issue_it_opened,
    each_bad_reference_has_its_own_message,
    a_team_member_is_a_responder,
    the_reconcile_sweep_reports_on_merge_groups_whose_webhook_was_missed,
    redelivered_events_never_double_comment,
    one_hotfix_lifecycle_costs_few_api_calls,
    a_label_applied_while_not_listening_is_attributed_by_the_forge,
    the_reconcile_sweep_catches_what_webhooks_missed,
    a_change_to_the_policy_file_is_validated_on_the_change,
    as_a_github_app_it_acts_per_installation_and_reports_check_runs,
    the_audit_api_needs_its_token,
    forks_need_the_policy_to_opt_in,
    a_moved_base_is_retried_and_a_refusal_explained,
);
