//! Who may put a change in the lane, authorize and merge it, and on which facts.
//!
//! The setting: `Codertocat/Hello-World`, whose default branch (`master`) names the responders
//! alice and bob. Codertocat opens hotfix #2 and is not a responder; mallory can push branches,
//! edit descriptions and post statuses. Every test drives the real server through signed
//! webhooks against the fake GitHub, and looks at what GitHub saw: merges, reads, comments.

use serde_json::Value;

use crate::common::github::{
    check_event, comment_event, issue_event, pr_event, pull, push_event, status_event, GitHubDriver,
};
use crate::common::lane::{Lane, POLICY, REPO};
use crate::common::scenario::{ForgeDriver, NewChange, Scenario, Source, State};
use crate::common::{self, eventually, Backend};
use hotfix_lane::store::AuditEntry;

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const OTHER: &str = "1234567890123456789012345678901234567890";

const PINNED: &str = "[responders]\nusers = [\"alice\", \"bob\"]\n\
                      [merge]\nsmoke_checks = [{ name = \"smoke\", app = \"github-actions\" }]\n";

/// Serves `pull` from the fake, as GitHub would after the event that changed it.
fn serve(lane: &Lane, pull: &Value) {
    let number = pull["number"].as_u64().unwrap();
    lane.fake.repo(REPO, |r| r.pulls.insert(number, pull.clone()));
}

/// Codertocat's hotfix #2 (postmortem #50 in place), labelled by alice: authorized, waiting
/// for its smoke check.
async fn authorized(policy: &str) -> (Lane, Value) {
    let lane = Lane::start(Backend::Sqlite, policy).await;
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    let pr = pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
    serve(&lane, &pr);
    lane.send("pull_request", pr_event("labeled", &pr, Some("hotfix"), "alice")).await;
    assert_eq!(actions(&lane, 2).await, ["lane.hotfix", "grant.created", "postmortem.success"]);
    assert!(merges(&lane).is_empty());
    (lane, pr)
}

/// GitHub Actions reports `smoke` on `sha`: the check run GitHub lists, and its webhook.
async fn ci_green(lane: &Lane, sha: &str) {
    lane.fake.post_check_run(REPO, sha, "smoke", "success", "github-actions");
    lane.send("check_run", check_event(sha, "smoke", "success")).await;
}

fn merges(lane: &Lane) -> Vec<(u64, String, String)> {
    lane.fake.repo(REPO, |r| r.merges.clone())
}

async fn actions(lane: &Lane, number: i64) -> Vec<String> {
    let audit = lane.store().audit(Some(REPO), None).await.unwrap();
    audit.into_iter().filter(|e| e.number == Some(number)).map(|e| e.action).collect()
}

async fn details(lane: &Lane, action: &str) -> Vec<String> {
    let audit = lane.store().audit(Some(REPO), None).await.unwrap();
    audit.into_iter().filter(|e| e.action == action).map(|e| e.detail).collect()
}

async fn stored_grant(lane: &Lane, number: i64) -> Value {
    let state = lane.store().lane_state("github", 186853002, number).await.unwrap().expect("the change is known");
    state["lane"]["grant"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retargeting_an_authorized_change_onto_a_branch_with_its_own_policy_makes_nobody_a_responder() {
    let (lane, _) = authorized(&format!("{PINNED}[postmortem]\nallowed_repos = []\n")).await;
    lane.fake.repo(REPO, |r| {
        r.files.insert(("evil".into(), POLICY.into()), "[responders]\nusers = [\"mallory\"]\n".into());
        r.issues.insert(12, (vec!["postmortem".into()], false));
    });
    // mallory's own #7, authorized by alice, retargeted onto mallory's branch `evil`.
    let seven = pull(7, "mallory", "master", &["hotfix"], "Postmortem: #12");
    serve(&lane, &seven);
    lane.send("pull_request", pr_event("labeled", &seven, Some("hotfix"), "alice")).await;
    let seven = pull(7, "mallory", "evil", &["hotfix"], "Postmortem: #12");
    serve(&lane, &seven);
    lane.send("pull_request", pr_event("edited", &seven, None, "mallory")).await;
    // A push to the default branch, then an edit of the postmortem issue: the recheck.
    lane.send("push", push_event("master", HEAD, OTHER, "alice")).await;
    lane.send("issues", issue_event("edited", 12, &["postmortem"], "mallory")).await;
    // mallory now labels her own #9.
    let nine = pull(9, "mallory", "master", &["hotfix"], "Postmortem: #12");
    serve(&lane, &nine);
    lane.send("pull_request", pr_event("labeled", &nine, Some("hotfix"), "mallory")).await;
    lane.fake.post_check_run(REPO, HEAD, "smoke", "success", "github-actions");
    lane.send("check_run", check_event(HEAD, "smoke", "success")).await;

    let reads: Vec<String> =
        lane.fake.with(|w| w.uris.iter().filter(|u| u.contains("/contents/.github")).cloned().collect());
    assert!(!reads.is_empty());
    assert!(reads.iter().all(|u| !u.contains("ref=")), "the policy is read where GitHub says: {reads:#?}");
    assert_eq!(actions(&lane, 9).await[0], "lane.not_authorized", "mallory is no responder anywhere");
    assert_eq!(stored_grant(&lane, 7).await, Value::Null, "retargeting voided #7's grant");
    let merged: Vec<u64> = merges(&lane).into_iter().map(|m| m.0).filter(|n| *n != 2).collect();
    assert!(merged.is_empty(), "neither #7 nor #9 merged: {merged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_dropped_from_the_policy_cannot_authorize_when_the_push_webhook_was_missed() {
    let lane = Lane::start(Backend::Sqlite, PINNED).await;
    let pr = pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
    serve(&lane, &pr);
    lane.send("pull_request", pr_event("labeled", &pr, Some("hotfix"), "bob")).await;
    lane.send("issue_comment", comment_event(2, "/hotfix revoke", "bob")).await;
    // alice is taken off the policy; the push webhook never arrives.
    lane.fake
        .repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), "[responders]\nusers = [\"bob\"]\n".into()));
    lane.send("issue_comment", comment_event(2, "/hotfix authorize", "alice")).await;
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
    assert_eq!(details(&lane, "grant.refused").await, ["@alice is not a responder"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_dies_with_its_authorizer_removed_from_the_policy_before_the_merge() {
    let (lane, _) = authorized(PINNED).await;
    lane.fake.repo(REPO, |r| {
        let policy = PINNED.replace("\"alice\", ", "");
        r.files.insert(("master".into(), POLICY.into()), policy);
    });
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty());
    assert_eq!(details(&lane, "grant.cleared").await, ["@alice is no longer a responder"]);
}

/// The review's poisoned queue: mallory names an issue GitHub answers with `code` for, then
/// alice revokes, then a green smoke check arrives.
async fn naming_a_vanished_issue_then_revoking(code: u16, verdict: &str) {
    let (lane, _) = authorized(PINNED).await;
    lane.fake.repo(REPO, |r| r.gone_issues.insert(13, code));
    let poisoned = pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #13");
    serve(&lane, &poisoned);
    lane.send("pull_request", pr_event("edited", &poisoned, None, "mallory")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem"), ("failure".into(), verdict.into()));
    lane.send("issue_comment", comment_event(2, "/hotfix revoke", "alice")).await;
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty());
    assert!(actions(&lane, 2).await.contains(&"grant.revoked".to_string()));
    assert_eq!(lane.store().job_counts().await.unwrap().dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_a_deleted_postmortem_issue_neither_holds_up_a_revoke_nor_lets_a_merge_through() {
    naming_a_vanished_issue_then_revoking(410, "#13 was deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_a_transferred_postmortem_issue_neither_holds_up_a_revoke_nor_lets_a_merge_through() {
    naming_a_vanished_issue_then_revoking(301, "#13 was transferred").await;
}

/// Sends a delivery and waits for `what` in the audit log, without requiring the queue to
/// drain (a re-evaluation is queued for later).
async fn send_until_audited(lane: &Lane, event: &str, body: Value, what: &str) {
    let delivery = common::Delivery::new(event, &format!("until-{what}"), serde_json::to_vec(&body).unwrap());
    let (status, answer) = delivery.send(&lane.client, &lane.base).await;
    assert_eq!(status, 202, "{answer}");
    eventually(what, || async { actions(lane, 2).await.iter().any(|a| a == what) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_the_evaluation_after_a_revoke_fail_does_not_undo_the_revoke() {
    let (lane, _) = authorized(PINNED).await;
    // The postmortem lookup fails from now on (GitHub degraded, or an issue made to fail).
    lane.fake.with(|w| w.failing.push("/issues/50".into()));
    send_until_audited(&lane, "issue_comment", comment_event(2, "/hotfix revoke", "alice"), "grant.revoked").await;
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
    // Once GitHub answers again, the change is looked at again, and stays unmerged.
    lane.fake.with(|w| w.failing.clear());
    lane.clock.advance(31_000);
    lane.settle().await;
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_the_evaluation_after_a_push_fail_does_not_keep_the_grant() {
    let (lane, _) = authorized(PINNED).await;
    lane.fake.with(|w| w.failing.push("/issues/50".into()));
    let pushed = {
        let mut p = pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
        p["head"]["sha"] = OTHER.into();
        p
    };
    serve(&lane, &pushed);
    send_until_audited(&lane, "pull_request", pr_event("synchronize", &pushed, None, "mallory"), "grant.voided").await;
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retargeting_an_authorized_change_onto_another_base_voids_its_grant() {
    let (lane, _) = authorized(PINNED).await;
    let retargeted = pull(2, "Codertocat", "release-1", &["hotfix"], "Postmortem: #50");
    serve(&lane, &retargeted);
    lane.send("pull_request", pr_event("edited", &retargeted, None, "mallory")).await;
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty());
    assert_eq!(details(&lane, "grant.voided").await, ["the base changed from master to release-1"]);
    assert!(lane.comments()[0].contains("the base changed from master to release-1"), "{}", lane.comments()[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_pushing_back_to_the_authorized_commit_does_not_revive_the_grant() {
    let (lane, pr) = authorized(PINNED).await;
    let mut pushed = pr.clone();
    pushed["head"]["sha"] = OTHER.into();
    serve(&lane, &pushed);
    lane.send("pull_request", pr_event("synchronize", &pushed, None, "mallory")).await;
    serve(&lane, &pr);
    lane.send("pull_request", pr_event("synchronize", &pr, None, "mallory")).await;
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty());
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_a_green_smoke_status_as_a_writer_does_not_count_for_a_pinned_check() {
    let (lane, _) = authorized(PINNED).await;
    lane.fake.post_status(REPO, HEAD, "smoke", "success", "mallory");
    lane.send("status", status_event(HEAD, "smoke", "success", "mallory")).await;
    assert!(merges(&lane).is_empty(), "a status from mallory is not the App's check run");
    // Another App's check run of the same name does not count either.
    lane.fake.post_check_run(REPO, HEAD, "smoke", "success", "mallorys-app");
    lane.send("check_run", check_event(HEAD, "smoke", "success")).await;
    assert!(merges(&lane).is_empty(), "only github-actions' check run counts");
    ci_green(&lane, HEAD).await;
    assert_eq!(merges(&lane), [(2, HEAD.to_string(), "squash".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_claiming_green_smoke_is_not_believed_without_the_result_on_the_commit() {
    let (lane, _) = authorized(PINNED).await;
    lane.send("check_run", check_event(HEAD, "smoke", "success")).await;
    assert!(merges(&lane).is_empty(), "GitHub lists no such result on the commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_job_that_skips_itself_does_not_pass_unless_the_policy_says_so() {
    for conclusion in ["neutral", "skipped"] {
        let (lane, _) = authorized(PINNED).await;
        lane.fake.post_check_run(REPO, HEAD, "smoke", conclusion, "github-actions");
        lane.send("check_run", check_event(HEAD, "smoke", conclusion)).await;
        assert!(merges(&lane).is_empty(), "{conclusion}");
        assert!(lane.comments()[0].contains("smoke checks failed: `smoke`"), "{}", lane.comments()[0]);
    }
    let (lane, _) = authorized(&format!("{PINNED}skipped_passes = true\n")).await;
    lane.fake.post_check_run(REPO, HEAD, "smoke", "skipped", "github-actions");
    lane.send("check_run", check_event(HEAD, "smoke", "skipped")).await;
    assert_eq!(merges(&lane).len(), 1, "the policy opted in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_authorizing_their_own_change_is_refused() {
    let policy = PINNED.replace("\"alice\", \"bob\"", "\"alice\", \"Codertocat\"");
    let lane = Lane::start(Backend::Sqlite, &policy).await;
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    let pr = pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
    serve(&lane, &pr);
    lane.send("pull_request", pr_event("labeled", &pr, Some("hotfix"), "Codertocat")).await;
    lane.send("issue_comment", comment_event(2, "/hotfix authorize", "Codertocat")).await;
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty());
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
    let refused = details(&lane, "grant.refused").await;
    assert_eq!(refused.len(), 2, "the label and the command: {refused:?}");
    assert!(refused.iter().all(|d| d.contains("@Codertocat wrote this change")), "{refused:?}");
    assert_eq!(lane.status(HEAD, "hotfix-lane/lane").1, "hotfix: smoke-only", "still in the lane");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_authorizing_a_change_whose_head_commit_they_wrote_is_refused() {
    let lane = Lane::start(Backend::Sqlite, PINNED).await;
    lane.fake.repo(REPO, |r| r.commit_authors.insert(HEAD.into(), "alice".into()));
    let pr = pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: #50");
    serve(&lane, &pr);
    lane.send("pull_request", pr_event("labeled", &pr, Some("hotfix"), "alice")).await;
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
    assert!(details(&lane, "grant.refused").await[0].contains("@alice wrote this change"));
    lane.send("issue_comment", comment_event(2, "/hotfix authorize", "bob")).await;
    assert_eq!(stored_grant(&lane, 2).await["by"], "bob", "a second person may");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_authorized_merge_is_marked_in_the_audit_log_the_comment_and_the_postmortem() {
    self_authorized_merge::<GitHubDriver>(Backend::Sqlite).await
}

/// The on-call responder Codertocat, alone at night, labels their own fix; the policy lets
/// them. Written as a scenario, so every text the lane writes about it is read.
async fn self_authorized_merge<D: ForgeDriver>(backend: Backend) {
    let policy = format!("{}allow_self_authorize = true\n", PINNED.replace("\"bob\"", "\"Codertocat\""));
    let mut s = Scenario::<D>::start(backend, &policy).await;
    let postmortem = s.open_issue(50, &["postmortem"], "Codertocat").await;
    let pr = s.open(NewChange::by("Codertocat").body("Postmortem: #50")).await;
    s.label(pr, "hotfix", "Codertocat").await;
    insta::assert_snapshot!("self_authorized_waiting_for_smoke", s.next_comment(pr));
    s.report(pr, "smoke", State::Success, Source::App("github-actions")).await;
    assert_eq!(s.landed().len(), 1);
    let details = |action: &str, log: &[AuditEntry]| -> Vec<String> {
        log.iter().filter(|e| e.action == action).map(|e| e.detail.clone()).collect()
    };
    let log = s.audit_log().await;
    assert!(details("grant.created", &log)[0].contains("self-authorized"), "{log:?}");
    assert!(details("merge.merged", &log)[0].contains("self-authorized"), "{log:?}");
    insta::assert_snapshot!("self_authorized_merged", s.next_comment(pr));
    insta::assert_snapshot!("self_authorized_note_on_the_postmortem", s.next_comment(postmortem));
    s.expect_no_new_comment(postmortem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_just_before_the_merge_stops_it_though_the_push_webhook_is_late() {
    let (lane, pr) = authorized(PINNED).await;
    let mut pushed = pr.clone();
    pushed["head"]["sha"] = OTHER.into();
    serve(&lane, &pushed);
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty(), "GitHub says the head moved");
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_label_or_the_postmortem_just_before_the_merge_stops_it() {
    let (lane, _) = authorized(PINNED).await;
    serve(&lane, &pull(2, "Codertocat", "master", &[], "Postmortem: #50"));
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty(), "the label is gone");

    let (lane, _) = authorized(PINNED).await;
    serve(&lane, &pull(2, "Codertocat", "master", &["hotfix"], "Postmortem: none yet"));
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty(), "the postmortem reference is gone");
    assert!(stored_grant(&lane, 2).await.is_object(), "a postmortem edit stops the merge, not the grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_a_change_with_authorize_commands_costs_one_api_call_each_and_one_answer() {
    let (lane, _) = authorized(PINNED).await;
    lane.send("issue_comment", comment_event(2, "/hotfix authorize", "mallory")).await;
    let refusals = || lane.comments().into_iter().filter(|c| c.contains("hotfix-lane:refused")).count();
    assert_eq!(refusals(), 1);
    lane.fake.take_calls();
    for _ in 0..5 {
        lane.send("issue_comment", comment_event(2, "/hotfix authorize\n/hotfix revoke", "mallory")).await;
        let calls = lane.fake.take_calls();
        assert!(calls.len() <= 1, "{calls:#?}");
    }
    assert_eq!(refusals(), 1, "answered once");
    assert_eq!(details(&lane, "grant.refused").await.len(), 11, "every refused command is audited");
    assert!(stored_grant(&lane, 2).await.is_object(), "alice's grant stands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_letting_readers_or_triagers_merge_is_refused() {
    for low in ["read", "triage"] {
        let text = format!("[responders]\nmin_permission = \"{low}\"\n");
        let err = hotfix_lane::lane::policy::Policy::parse(&text).unwrap_err();
        assert!(err.message.contains("cannot even push"), "{err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotfix-lane"))
        .args(["config", "check", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"[responders]\nmin_permission = \"read\"\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot even push"));
}

/// The merge happened but its answer was a 5xx: the lane reads the change back at once and
/// records the merge — audit and comment — instead of retrying into a merged change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_answer_lost_in_a_5xx_is_recorded_from_what_github_says() {
    let (lane, _) = authorized(PINNED).await;
    lane.fake.repo(REPO, |r| r.lost_merge_answers = 1);
    lane.fake.post_check_run(REPO, HEAD, "smoke", "success", "github-actions");
    let body = serde_json::to_vec(&check_event(HEAD, "smoke", "success")).unwrap();
    assert_eq!(common::Delivery::new("check_run", "lost", body).send(&lane.client, &lane.base).await.0, 202);
    lane.settle().await;
    assert_eq!(merges(&lane).len(), 1, "merged once");
    let recorded = details(&lane, "merge.merged").await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(recorded[0].ends_with("; the answer was lost, read back from the forge"), "{recorded:?}");
    assert!(lane.comments()[0].contains("✅ **Merge:** merged `ec26c3e`"), "{}", lane.comments()[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_while_a_responders_authorize_comment_waits_does_not_get_the_push_authorized() {
    let (lane, pr) = authorized(PINNED).await;
    lane.send("issue_comment", comment_event(2, "/hotfix revoke", "alice")).await;
    // mallory pushes; GitHub already serves the new head when alice's comment is handled, and
    // the push's webhook comes after the comment's.
    let mut pushed = pr.clone();
    pushed["head"]["sha"] = OTHER.into();
    serve(&lane, &pushed);
    lane.send("issue_comment", comment_event(2, "/hotfix authorize", "alice")).await;
    // alice authorized the commit she saw, which GitHub already shows superseded: voided at once.
    assert_ne!(stored_grant(&lane, 2).await["sha"], OTHER);
    assert_eq!(details(&lane, "grant.voided").await, ["new commits since the authorization of `ec26c3e`"]);
    lane.send("pull_request", pr_event("synchronize", &pushed, None, "mallory")).await;
    ci_green(&lane, OTHER).await;
    assert!(merges(&lane).is_empty());
    assert_eq!(stored_grant(&lane, 2).await, Value::Null, "the push voided it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixing_other_commands_into_a_refused_authorize_does_not_make_it_expensive() {
    let (lane, _) = authorized(PINNED).await;
    lane.send("issue_comment", comment_event(2, "/hotfix authorize", "mallory")).await;
    lane.fake.take_calls();
    for body in ["/hotfix authorize\n/hotfix backport release-1", "/hotfix postmortem\n/hotfix revoke"] {
        lane.send("issue_comment", comment_event(2, body, "mallory")).await;
        let calls = lane.fake.take_calls();
        assert!(calls.len() <= 1, "{body}: {calls:#?}");
    }
    assert!(stored_grant(&lane, 2).await.is_object(), "alice's grant stands");
    assert_eq!(details(&lane, "backport.command_refused").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_on_another_branch_reporting_green_smoke_does_not_hide_the_red_run() {
    let (lane, _) = authorized(PINNED).await;
    lane.fake.post_check_run(REPO, HEAD, "smoke", "failure", "github-actions");
    lane.send("check_run", check_event(HEAD, "smoke", "failure")).await;
    // mallory's workflow, on a branch of hers, posts a green `smoke` as GitHub Actions.
    lane.fake.post_check_run_in(REPO, HEAD, "smoke", "success", "github-actions", 2);
    lane.send("check_run", check_event(HEAD, "smoke", "success")).await;
    assert!(merges(&lane).is_empty(), "the real run failed");
    // A re-run of the real workflow run that passes does count.
    ci_green(&lane, HEAD).await;
    assert_eq!(merges(&lane).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivering_a_responders_label_after_a_revoke_does_not_grant_again() {
    let (lane, pr) = authorized(PINNED).await;
    lane.send("issue_comment", comment_event(2, "/hotfix revoke", "alice")).await;
    // The same `labeled` body again, under a new delivery id (late, or replayed).
    lane.send("pull_request", pr_event("labeled", &pr, Some("hotfix"), "alice")).await;
    ci_green(&lane, HEAD).await;
    assert!(merges(&lane).is_empty());
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
    assert_eq!(details(&lane, "grant.created").await.len(), 1, "granted once, by the first label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivering_an_old_authorize_comment_after_a_push_does_not_authorize_the_push() {
    let (lane, pr) = authorized(PINNED).await;
    lane.send("issue_comment", comment_event(2, "/hotfix revoke", "alice")).await;
    let authorize = comment_event(2, "/hotfix authorize", "alice");
    lane.send("issue_comment", authorize.clone()).await;
    let mut pushed = pr.clone();
    pushed["head"]["sha"] = OTHER.into();
    serve(&lane, &pushed);
    lane.send("pull_request", pr_event("synchronize", &pushed, None, "mallory")).await;
    // alice's authorize comes again, with a new delivery id but its own comment id.
    lane.send("issue_comment", authorize).await;
    ci_green(&lane, OTHER).await;
    assert!(merges(&lane).is_empty());
    assert_eq!(stored_grant(&lane, 2).await, Value::Null);
}
