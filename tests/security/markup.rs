//! Commands run only where people see them; text from a change never becomes markup.
//!
//! Through the real router against the fake GitHub: a responder's comment that hides a command
//! (in code, an HTML comment, a collapsed `<details>`) grants nothing, and a `Postmortem:` line
//! the description only quotes or hides does not count.

use serde_json::{json, Value};

use crate::common::lane::{Lane, REPO};
use crate::common::{self, Backend};

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const POLICY: &str = "[responders]\nusers = [\"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n";

/// A `pull_request` delivery for PR #2, with `body`, sent by `sender`.
fn pr_event(action: &str, label: Option<&str>, body: &str, sender: &str) -> Value {
    let mut event = common::json_fixture("github/pull_request/labeled.json");
    event["action"] = action.into();
    event["label"] = label.map_or(Value::Null, |l| json!({ "name": l }));
    event["pull_request"]["labels"] = json!([{ "name": "hotfix" }]);
    event["pull_request"]["body"] = body.into();
    event["sender"]["login"] = sender.into();
    event
}

/// A new comment on PR #2 by `author`.
fn comment_event(body: &str, author: &str) -> Value {
    let mut event = common::json_fixture("github/issue_comment/created.json");
    event["issue"]["number"] = 2.into();
    event["issue"]["pull_request"] = json!({ "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/2" });
    event["comment"]["body"] = body.into();
    event["comment"]["user"]["login"] = author.into();
    event["sender"]["login"] = author.into();
    event
}

/// PR #2 as the fake serves it: labelled `hotfix`, with `title` and `body`.
fn serve_pull(lane: &Lane, title: &str, body: &str) {
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["labels"] = json!([{ "name": "hotfix" }]);
    pull["title"] = title.into();
    pull["body"] = body.into();
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull));
}

async fn audit_actions(lane: &Lane) -> Vec<String> {
    lane.store().audit(Some(REPO), None).await.unwrap().into_iter().map(|e| e.action).collect()
}

/// A hotfix in the lane, waiting for a smoke check, whose grant alice has revoked: any new
/// `grant.created` comes from the comment under test.
async fn revoked_hotfix() -> Lane {
    let lane = Lane::start(Backend::Sqlite, POLICY).await;
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    serve_pull(&lane, "Fix checkout", "Postmortem: #50");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), "Postmortem: #50", "alice")).await;
    lane.send("issue_comment", comment_event("/hotfix revoke", "alice")).await;
    let actions = audit_actions(&lane).await;
    assert!(actions.contains(&"grant.revoked".into()), "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "grant.created").count(), 1, "{actions:?}");
    lane
}

/// Sends alice's `comment` to a hotfix whose grant she revoked; whether it granted again.
async fn grants(comment: &str) -> bool {
    let lane = revoked_hotfix().await;
    lane.send("issue_comment", comment_event(comment, "alice")).await;
    audit_actions(&lane).await.iter().filter(|a| *a == "grant.created").count() == 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_authorize_line_by_a_responder_still_creates_a_grant() {
    assert!(grants("Smoke is green on staging.\n/hotfix authorize 1h checkout is down").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_hidden_in_an_indented_code_block_does_not_run() {
    assert!(!grants("The bot printed:\n\n    /hotfix authorize\n\nso I will look first.").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_after_a_mismatched_fence_does_not_run() {
    // `~~~` does not close a backtick fence: all of it is one code block.
    assert!(!grants("```\n~~~\n/hotfix authorize\n```").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_inside_an_html_comment_does_not_run() {
    assert!(!grants("Looking into it.\n<!--\n/hotfix authorize\n-->").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_inside_a_collapsed_details_block_does_not_run() {
    assert!(!grants("<details><summary>build log</summary>\n\n/hotfix authorize\n\n</details>").await);
}

/// The postmortem check on the head once the description reads `body`: #50 exists and is
/// labelled, so only where the lane looks for the line decides.
async fn postmortem_check(body: &str) -> (String, String) {
    let lane = Lane::start(Backend::Sqlite, POLICY).await;
    lane.fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    serve_pull(&lane, "Fix checkout", body);
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), body, "alice")).await;
    lane.status(HEAD, "hotfix-lane/postmortem")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postmortem_line_in_a_block_quote_does_not_count() {
    let quoted = "Same fix as last time:\n\n> Postmortem: #50\n";
    assert_eq!(postmortem_check(quoted).await, ("failure".into(), "no postmortem referenced".into()));
    assert_eq!(postmortem_check("Postmortem: #50").await, ("success".into(), "postmortem #50".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postmortem_line_in_a_code_block_does_not_count() {
    let fenced = "The template says:\n\n```\nPostmortem: #50\n```\n";
    assert_eq!(postmortem_check(fenced).await, ("failure".into(), "no postmortem referenced".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postmortem_line_in_an_html_comment_does_not_count() {
    let hidden = "Fix.\n\n<!--\nPostmortem: #50\n-->\n";
    assert_eq!(postmortem_check(hidden).await, ("failure".into(), "no postmortem referenced".into()));
}
