//! Commands run only where people see them; text from a change never becomes markup.
//!
//! Through the real router against the fake GitHub: a responder's comment that hides a command
//! (in code, an HTML comment, a collapsed `<details>`) grants nothing, a `Postmortem:` line
//! the description only quotes or hides does not count, and what the lane then writes under
//! its name (its comment, the postmortem issue, the backport comment and pull request, the
//! Action's step summary) shows the change's text as text: no image, link, HTML or live
//! mention gets through.

use pulldown_cmark::{Event, Options, Parser, Tag};
use serde_json::{json, Value};

use crate::common::git::GitWorld;
use crate::common::lane::{Lane, REPO};
use crate::common::{self, fake_github::FakeGitHub, Backend};

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const POLICY: &str = "[responders]\nusers = [\"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n";
/// A postmortem value that closes the lane's old single-backtick quote and goes on as markup.
const BREAKOUT: &str = "Postmortem: soon` <img src=https://attacker.example/p.png> @acme/everyone";

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
    common::github::comment_event(2, body, author)
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

/// Whatever in `markdown` would render as more than text: images, links, raw HTML (the lane's
/// own `<!-- hotfix-lane… -->` markers aside) and `@` mentions outside code, but for the
/// lane's own mentions of `responder`.
fn live_markup(markdown: &str, responder: &str) -> Vec<String> {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut found = Vec::new();
    let mut text = String::new();
    for event in Parser::new_ext(markdown, options).chain([Event::Rule]) {
        if let Event::Text(t) = &event {
            text.push_str(t);
            continue;
        }
        // A run of text is whole: look for mentions in it.
        let names = mentions(&std::mem::take(&mut text));
        found.extend(names.into_iter().filter(|m| m != responder).map(|m| format!("mention of @{m}")));
        match event {
            Event::Start(tag @ (Tag::Image { .. } | Tag::Link { .. })) => found.push(format!("{tag:?}")),
            Event::Html(html) | Event::InlineHtml(html) if !html.trim_start().starts_with("<!-- hotfix-lane") => {
                found.push(format!("html {html:?}"))
            }
            _ => {}
        }
    }
    found
}

/// The names GitHub would mention in rendered `text`: each `@` followed directly by a name.
fn mentions(text: &str) -> Vec<String> {
    let name = |rest: &str| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/')).collect();
    text.split('@').skip(1).map(name).filter(|m: &String| !m.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtick_in_a_postmortem_value_does_not_break_out_into_markup() {
    let lane = Lane::start(Backend::Sqlite, POLICY).await;
    serve_pull(&lane, "Fix checkout", BREAKOUT);
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), BREAKOUT, "alice")).await;
    assert_eq!(lane.status(HEAD, "hotfix-lane/postmortem").1, "postmortem reference unreadable");
    let comments = lane.comments();
    let comment = comments.iter().find(|c| c.contains("is not an issue reference")).expect("the lane's hint");
    assert!(!comment.contains("<img"), "{comment}");
    assert_eq!(live_markup(comment, "alice"), Vec::<String>::new(), "{comment}");
    assert!(comment.contains("``Postmortem: soon`  @acme/everyone``"), "the value is shown, as code: {comment}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtick_in_a_postmortem_value_does_not_break_out_of_the_action_summary() {
    let fake = FakeGitHub::start().await;
    fake.repo(REPO, |r| {
        r.files.insert(("master".into(), ".github/hotfix-lane.toml".into()), POLICY.into());
        r.label_events.push((2, "hotfix".into(), "alice".into(), "2026-11-26T13:00:00Z".into()));
    });
    let event = pr_event("labeled", Some("hotfix"), BREAKOUT, "alice");
    // The Action reads the pull request as GitHub serves it.
    fake.repo(REPO, |r| r.pulls.insert(2, event["pull_request"].clone()));
    let event = serde_json::to_vec(&event).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (event_path, summary) = (dir.path().join("event.json"), dir.path().join("summary.md"));
    std::fs::write(&event_path, event).unwrap();
    let mut action = std::process::Command::new(env!("CARGO_BIN_EXE_hotfix-lane"));
    action
        .arg("action")
        .env_clear()
        .env("INPUT_TOKEN", "ghs_token")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event_path)
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("RUNNER_TEMP", dir.path());
    let out = tokio::task::spawn_blocking(move || action.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("is not an issue reference"), "{summary}");
    assert!(!summary.contains("<img"), "{summary}");
    assert_eq!(live_markup(&summary, "alice"), Vec::<String>::new(), "{summary}");
}

/// Asks for the postmortem issue of a hotfix titled `title`; returns the issue's body.
async fn postmortem_issue_body(title: &str) -> String {
    let lane = Lane::start(Backend::Sqlite, POLICY).await;
    serve_pull(&lane, title, "Fix.");
    lane.send("pull_request", pr_event("labeled", Some("hotfix"), "Fix.", "alice")).await;
    lane.send("issue_comment", comment_event("/hotfix postmortem", "alice")).await;
    let issues = lane.fake.repo(REPO, |r| r.issue_texts.clone());
    assert_eq!(issues.len(), 1, "one postmortem issue");
    issues.into_values().next().unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pr_title_with_a_placeholder_is_not_expanded_in_the_postmortem_issue() {
    let body = postmortem_issue_body("Fix {{pr}} and {{labeled}}").await;
    assert!(body.starts_with("## Postmortem: Fix {{pr}} and {{labeled}}\n"), "{body}");
    assert!(body.contains("\nHotfix: #2\n"), "the template's own placeholder is: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pr_title_with_markup_is_escaped_in_the_postmortem_issue() {
    let title = "Fix **checkout** for @acme/everyone <img src=https://attacker.example/p.png> [docs](https://x)";
    let body = postmortem_issue_body(title).await;
    assert!(!body.contains("<img"), "{body}");
    assert_eq!(live_markup(&body, "alice"), Vec::<String>::new(), "{body}");
    let heading = Parser::new(&body).skip(1).map_while(|e| match e {
        Event::Text(t) => Some(t.to_string()),
        _ => None,
    });
    assert_eq!(heading.collect::<String>(), title.replace('@', "@\u{200B}").replace("Fix", "Postmortem: Fix"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_path_with_backticks_and_pipes_is_escaped_in_the_backport_comment() {
    // A path both sides add: the backport conflicts on it. (A `/` in it only makes directories.)
    let path = "docs/``x`` | y <img src=x onerror=alert(1)> @acme/everyone.md";
    let world = GitWorld::new();
    world.git(&["switch", "-q", "master"]);
    world.write(path, "master's version\n");
    world.commit("Add the page on master", "Mona <mona@example.com>");
    world.git(&["switch", "-q", "-c", "fix", "release-1"]);
    world.write(path, "the hotfix's version\n");
    world.commit("Fix the page", "Octo Cat <octocat@example.com>");
    world.git(&["switch", "-q", "release-1"]);
    world.git(&["merge", "-q", "--squash", "fix"]);
    let merged = world.commit("Fix the page (#2)", "Octo Cat <octocat@example.com>");
    world.push(&["master", "release-1", "fix:refs/pull/2/head"]);

    let lane = Lane::start(Backend::Sqlite, POLICY).await;
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["state"] = "closed".into();
    pull["merged"] = true.into();
    pull["merge_commit_sha"] = merged.as_str().into();
    pull["base"]["ref"] = "release-1".into();
    pull["labels"] = json!([{ "name": "hotfix" }]);
    lane.fake.repo(REPO, |r| {
        r.git_dir = Some(world.remote.clone());
        r.label_events.push((2, "hotfix".into(), "alice".into(), "2026-11-26T13:00:00Z".into()));
        r.pulls.insert(2, pull.clone());
    });
    let mut closed = pr_event("closed", None, "", "alice");
    closed["pull_request"] = pull;
    lane.send("pull_request", closed).await;

    let comment = lane.comments().into_iter().find(|c| c.contains("hotfix-lane:backport")).expect("backport comment");
    assert_eq!(live_markup(&comment, "alice"), Vec::<String>::new(), "{comment}");
    let cells: Vec<String> = Parser::new_ext(&comment, Options::ENABLE_TABLES)
        .filter_map(|e| match e {
            Event::Code(c) => Some(c.to_string()),
            Event::End(pulldown_cmark::TagEnd::TableCell) => Some("|".into()),
            _ => None,
        })
        .collect();
    assert_eq!(cells, ["|", "|", "|", "master", "|", path, "|", "|"], "{comment}");
    let backport = lane
        .fake
        .repo(REPO, |r| r.pulls.values().find(|p| p["head"]["ref"] == "hotfix-lane/backport/2-to-master").cloned());
    let body = backport.expect("the backport pull request")["body"].as_str().unwrap().to_string();
    assert_eq!(live_markup(&body, "alice"), Vec::<String>::new(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsiders_authorize_does_not_make_the_lane_ping_the_responders() {
    let lane = Lane::start(Backend::Sqlite, "[responders]\nusers = [\"alice\"]\nteams = [\"@acme/oncall\"]\n").await;
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["labels"] = json!([]);
    lane.fake.repo(REPO, |r| r.pulls.insert(2, pull));
    lane.send("issue_comment", comment_event("/hotfix authorize", "mallory")).await;
    let refusal = lane.comments().into_iter().find(|c| c.contains("is not a responder")).expect("a refusal");
    assert_eq!(live_markup(&refusal, "mallory"), Vec::<String>::new(), "{refusal}");
}
