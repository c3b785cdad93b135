//! GitHub's side of the tests: the webhook payloads the lane receives, built from the real
//! fixtures.

use serde_json::{json, Value};

use super::json_fixture;
use super::lane::REPO;

/// Pull request `number` as GitHub serves it and sends it in webhooks: the fixture's #2, by
/// `author`, onto `base`, with `labels` and `body`.
pub fn pull(number: u64, author: &str, base: &str, labels: &[&str], body: &str) -> Value {
    let mut pull = json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["number"] = number.into();
    pull["user"]["login"] = author.into();
    pull["base"]["ref"] = base.into();
    pull["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    pull["body"] = body.into();
    pull
}

/// A `pull_request` delivery about `pull`, for `label` if the action is about one, by `sender`.
pub fn pr_event(action: &str, pull: &Value, label: Option<&str>, sender: &str) -> Value {
    let mut event = json_fixture("github/pull_request/labeled.json");
    event["action"] = action.into();
    event["number"] = pull["number"].clone();
    event["pull_request"] = pull.clone();
    event["label"] = label.map_or(Value::Null, |l| json!({ "name": l }));
    event["sender"]["login"] = sender.into();
    event
}

/// A fresh comment id: GitHub's only grow, and the lane acts on a comment id once.
pub fn next_comment_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2_000_000_000);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// A new comment by `author` on pull request `number` of the fixture repository.
pub fn comment_event(number: u64, body: &str, author: &str) -> Value {
    let mut event = json_fixture("github/issue_comment/created.json");
    event["comment"]["id"] = next_comment_id().into();
    event["issue"]["number"] = number.into();
    event["issue"]["pull_request"] = json!({ "url": format!("https://api.github.com/repos/{REPO}/pulls/{number}") });
    event["comment"]["body"] = body.into();
    event["comment"]["user"]["login"] = author.into();
    event["sender"]["login"] = author.into();
    event
}

/// An `issues` delivery about issue `number`, now carrying `labels`.
pub fn issue_event(action: &str, number: u64, labels: &[&str], sender: &str) -> Value {
    let mut event = json_fixture("github/issues/labeled.json");
    event["action"] = action.into();
    event["issue"]["number"] = number.into();
    event["issue"]["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    event["sender"]["login"] = sender.into();
    event
}

/// A completed `check_run` delivery: `name` concluded `conclusion` on `sha`.
pub fn check_event(sha: &str, name: &str, conclusion: &str) -> Value {
    let mut event = json_fixture("github/check_run/completed.json");
    event["check_run"]["name"] = name.into();
    event["check_run"]["head_sha"] = sha.into();
    event["check_run"]["conclusion"] = conclusion.into();
    event
}

/// A `status` delivery: `sender` set `context` to `state` on `sha`.
pub fn status_event(sha: &str, context: &str, state: &str, sender: &str) -> Value {
    let mut event = json_fixture("github/status/payload.json");
    event["sha"] = sha.into();
    event["context"] = context.into();
    event["state"] = state.into();
    event["sender"]["login"] = sender.into();
    event
}

/// A `push` delivery to `branch` of the fixture repository.
pub fn push_event(branch: &str, before: &str, after: &str, sender: &str) -> Value {
    let mut event = json_fixture("github/push/payload.json");
    event["ref"] = format!("refs/heads/{branch}").into();
    (event["before"], event["after"]) = (before.into(), after.into());
    // The fixture deletes a tag; this one moves a branch on.
    (event["created"], event["deleted"], event["forced"]) = (false.into(), false.into(), false.into());
    event["sender"]["login"] = sender.into();
    event["pusher"]["name"] = sender.into();
    event
}

/// `2026-11-26T13:24:00Z`, as GitHub writes times in issue events.
pub fn rfc3339(ms: i64) -> String {
    let text = hotfix_lane::lane::incident::format_utc(ms);
    format!("{}T{}:00Z", &text[..10], &text[11..16])
}
