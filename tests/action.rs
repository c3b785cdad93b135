//! `hotfix-lane action` run exactly as the Actions runner would: environment, event file,
//! output and summary files, the GitHub API at the fake GitHub on loopback.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::fake_github::FakeGitHub;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");
const REPO: &str = "Codertocat/Hello-World";
const TOKEN: &str = "ghs_secret_token_value";

struct Run {
    code: i32,
    stdout: String,
    outputs: HashMap<String, String>,
    summary: String,
}

fn fixture(path: &str) -> Value {
    serde_json::from_slice(&common::fixture(path)).unwrap()
}

fn pr_event(labels: &[&str], body: &str, title: &str) -> Value {
    let mut event = fixture("github/pull_request/labeled.json");
    event["pull_request"]["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    event["pull_request"]["body"] = body.into();
    event["pull_request"]["title"] = title.into();
    event
}

/// Reads `name<<DELIM\nvalue\nDELIM` records the way the runner does.
fn parse_outputs(text: &str) -> HashMap<String, String> {
    let mut outputs = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").expect("name<<delimiter");
        let mut value = Vec::new();
        for l in lines.by_ref() {
            if l == delimiter {
                break;
            }
            value.push(l);
        }
        outputs.insert(name.to_string(), value.join("\n"));
    }
    outputs
}

async fn run_action(fake: &FakeGitHub, event_name: &str, event: &[u8], inputs: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (event_path, output, summary) = (dir.path().join("event.json"), dir.path().join("out"), dir.path().join("sum"));
    std::fs::write(&event_path, event).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("action")
        .env_clear()
        .env("GITHUB_EVENT_NAME", event_name)
        .env("GITHUB_EVENT_PATH", &event_path)
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary);
    for (name, value) in inputs {
        cmd.env(format!("INPUT_{}", name.to_uppercase()), value);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        outputs: parse_outputs(&std::fs::read_to_string(&output).unwrap_or_default()),
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
    }
}

async fn fake_with_responder() -> FakeGitHub {
    let fake = FakeGitHub::start().await;
    fake.repo(REPO, |r| {
        r.files
            .insert(("master".into(), ".github/hotfix-lane.toml".into()), "[responders]\nusers = [\"alice\"]\n".into());
        r.label_events.push((2, "hotfix".into(), "alice".into(), "2026-11-26T13:00:00Z".into()));
    });
    fake
}

#[tokio::test]
async fn lane_mode_publishes_the_decision_for_a_hotfix() {
    let fake = fake_with_responder().await;
    let event = serde_json::to_vec(&pr_event(&["hotfix"], "Fix.", "Fix checkout")).unwrap();
    let run = run_action(&fake, "pull_request", &event, &[("token", TOKEN)]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.starts_with(&format!("::add-mask::{TOKEN}\n")), "the token is masked first: {}", run.stdout);
    assert_eq!(run.outputs["lane"], "hotfix");
    assert_eq!(run.outputs["suite"], "smoke");
    assert_eq!(run.outputs["pr"], "2");
    assert_eq!(run.outputs["postmortem"], "failure");
    assert!(run.summary.contains("no postmortem referenced"), "{}", run.summary);
    // Reads only: the Action posts nothing.
    assert!(fake.take_calls().iter().all(|c| c.starts_with("GET ")));
}

#[tokio::test]
async fn lane_mode_on_a_normal_pull_request_runs_the_full_suite() {
    let fake = fake_with_responder().await;
    let event = serde_json::to_vec(&pr_event(&[], "", "Docs")).unwrap();
    let run = run_action(&fake, "pull_request_target", &event, &[("token", TOKEN), ("mode", "lane")]).await;
    assert_eq!((run.code, run.outputs["lane"].as_str(), run.outputs["suite"].as_str()), (0, "normal", "full"));
    assert_eq!(run.outputs["postmortem"], "success");
}

#[tokio::test]
async fn postmortem_mode_blocks_with_the_servers_message_and_passes_when_linked() {
    let fake = fake_with_responder().await;
    let event = serde_json::to_vec(&pr_event(&["hotfix"], "Postmortem: #50", "Fix")).unwrap();
    let run = run_action(&fake, "pull_request", &event, &[("token", TOKEN), ("mode", "postmortem")]).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("::error::hotfix-lane/postmortem: #50 does not exist"), "{}", run.stdout);

    fake.repo(REPO, |r| r.issues.insert(50, (vec!["postmortem".into()], false)));
    let run = run_action(&fake, "pull_request", &event, &[("token", TOKEN), ("mode", "postmortem")]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.outputs["postmortem"], "success");
}

#[tokio::test]
async fn merge_group_runs_find_their_pull_request() {
    let fake = fake_with_responder().await;
    let group = fixture("github/merge_group/checks_requested.json");
    let mut pull = fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["number"] = 104.into();
    pull["labels"] = json!([{ "name": "hotfix" }]);
    pull["body"] = "".into();
    fake.repo("octo-org/octo-repo", |r| {
        r.pulls.insert(104, pull);
        r.files
            .insert(("main".into(), ".github/hotfix-lane.toml".into()), "[responders]\nusers = [\"alice\"]\n".into());
        r.label_events.push((104, "hotfix".into(), "alice".into(), "2026-11-26T13:00:00Z".into()));
    });
    let run = run_action(
        &fake,
        "merge_group",
        &serde_json::to_vec(&group).unwrap(),
        &[("token", TOKEN), ("mode", "postmortem")],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!((run.outputs["pr"].as_str(), run.outputs["lane"].as_str()), ("104", "hotfix"));
}

#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let fake = fake_with_responder().await;
    let event = serde_json::to_vec(&pr_event(&[], "", "x")).unwrap();
    let run = run_action(&fake, "pull_request", &event, &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("::error::input `token` is required"), "{}", run.stdout);

    let run = run_action(&fake, "push", &event, &[("token", TOKEN)]).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("::error::unsupported event `push`"), "{}", run.stdout);

    let run = run_action(&fake, "pull_request", b"{not json", &[("token", TOKEN)]).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("::error::malformed event file: body is not valid JSON"), "{}", run.stdout);

    let run = run_action(&fake, "pull_request", &event, &[("token", TOKEN), ("mode", "deploy")]).await;
    assert!(run.stdout.contains("::error::unknown mode `deploy`"), "{}", run.stdout);
}

#[tokio::test]
async fn pull_request_text_cannot_inject_workflow_commands() {
    let fake = fake_with_responder().await;
    let hostile = "x\n::set-output name=lane::normal\n::add-mask::oops%0A::error::forged";
    let event = serde_json::to_vec(&pr_event(&["hotfix"], &format!("Postmortem: {hostile}"), hostile)).unwrap();
    let run = run_action(&fake, "pull_request", &event, &[("token", TOKEN), ("mode", "postmortem")]).await;
    assert_eq!(run.code, 1);
    for line in run.stdout.lines().filter(|l| l.starts_with("::")) {
        assert!(!line.contains("forged") && !line.contains("::set-output"), "injected: {line}");
    }
    assert_eq!(run.outputs.len(), 4, "no output but the Action's own: {:?}", run.outputs);
    assert_eq!(run.outputs["lane"], "hotfix");
    assert!(!run.summary.contains("::set-output"), "{}", run.summary);
}
