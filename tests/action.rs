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
    run_action_with(fake, event_name, event, inputs, &[]).await
}

/// [`run_action`], with more of the runner's environment.
async fn run_action_with(
    fake: &FakeGitHub,
    event_name: &str,
    event: &[u8],
    inputs: &[(&str, &str)],
    runner_env: &[(&str, &str)],
) -> Run {
    // GitHub serves the pull request an event carries, as it is when the job runs.
    let parsed: Value = serde_json::from_slice(event).unwrap_or_default();
    if let (Some(pull), Some(repo)) = (parsed.get("pull_request"), parsed["repository"]["full_name"].as_str()) {
        let number = pull["number"].as_u64().unwrap_or_default();
        fake.repo(repo, |r| r.pulls.entry(number).or_insert_with(|| pull.clone()).clone());
    }
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
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("RUNNER_TEMP", dir.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in inputs {
        cmd.env(format!("INPUT_{}", name.to_uppercase()), value);
    }
    cmd.envs(runner_env.iter().copied());
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
async fn a_rerun_decides_on_the_pull_request_as_it_is_now_not_on_the_replayed_event() {
    let fake = fake_with_responder().await;
    // Labelled after the run's event was recorded: the re-run replays an event without it.
    let mut now = pr_event(&["hotfix"], "Fix.", "Fix checkout")["pull_request"].clone();
    now["state"] = "open".into();
    fake.repo(REPO, |r| r.pulls.insert(2, now));
    let replayed = serde_json::to_vec(&pr_event(&[], "Fix.", "Fix checkout")).unwrap();
    let run = run_action(&fake, "pull_request", &replayed, &[("token", TOKEN)]).await;
    assert_eq!((run.code, run.outputs["lane"].as_str()), (0, "hotfix"), "{}", run.stdout);
    // And a label removed since is gone, whatever the replayed event says.
    fake.repo(REPO, |r| r.pulls.get_mut(&2).unwrap()["labels"] = json!([]));
    let replayed = serde_json::to_vec(&pr_event(&["hotfix"], "Fix.", "Fix checkout")).unwrap();
    let run = run_action(&fake, "pull_request", &replayed, &[("token", TOKEN)]).await;
    assert_eq!(run.outputs["lane"], "normal", "{}", run.stdout);
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
        r.default_branch = Some("main".into());
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

/// A hotfix landed on `release-1` of a real repository the fake serves; returns the event of
/// its merge and the world.
fn merged_hotfix(fake: &FakeGitHub, conflicting: bool) -> (common::git::GitWorld, Vec<u8>) {
    let world = common::git::GitWorld::new();
    if conflicting {
        world.write("app/config.toml", "retries = 5\ntimeout = 10\n");
        world.commit("More retries on master", "Mona <mona@example.com>");
        world.push(&["master"]);
    }
    world.git(&["switch", "-q", "release-1"]);
    world.write("app/config.toml", "retries = 3\ntimeout = 30\n");
    let merged = world.commit("Raise the timeout (#2)", "Octo Cat <octocat@example.com>");
    let conflict_line = if conflicting { "retries = 4\ntimeout = 30\n" } else { "retries = 3\ntimeout = 30\n" };
    if conflicting {
        // The fix touches the line master changed too.
        world.write("app/config.toml", conflict_line);
        world.git(&["commit", "-q", "--amend", "-a", "--no-edit"]);
    }
    let merged = if conflicting { world.head() } else { merged };
    world.push(&["release-1"]);
    fake.repo(REPO, |r| r.git_dir = Some(world.remote.clone()));
    let mut event = pr_event(&["hotfix"], "Fix.", "Raise the timeout");
    event["action"] = "closed".into();
    event["pull_request"]["state"] = "closed".into();
    event["pull_request"]["merged"] = true.into();
    event["pull_request"]["merge_commit_sha"] = merged.into();
    event["pull_request"]["base"]["ref"] = "release-1".into();
    fake.repo(REPO, |r| r.pulls.insert(2, event["pull_request"].clone()));
    (world, serde_json::to_vec(&event).unwrap())
}

#[tokio::test]
async fn backport_mode_opens_the_backport_once_across_reruns() {
    let fake = fake_with_responder().await;
    let (world, event) = merged_hotfix(&fake, false);
    let inputs = [("token", TOKEN), ("mode", "backport")];
    let run = run_action(&fake, "pull_request_target", &event, &inputs).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let listed: Value = serde_json::from_str(&run.outputs["backports"]).unwrap();
    assert_eq!(listed, json!([{ "target": "master", "state": "opened", "pull": 3 }]));
    assert!(world.remote_tip("hotfix-lane/backport/2-to-master").is_some());
    assert!(run.summary.contains("| `master` | ✅ opened | #3 |"), "{}", run.summary);
    assert_eq!(run.stdout.matches(TOKEN).count(), 1, "the token shows only in its mask: {}", run.stdout);

    let again = run_action(&fake, "pull_request_target", &event, &inputs).await;
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(serde_json::from_str::<Value>(&again.outputs["backports"]).unwrap(), listed);
    let pulls = fake.repo(REPO, |r| r.pulls.keys().copied().collect::<Vec<_>>());
    assert_eq!(pulls, vec![2, 3], "no second backport pull request");
    assert_eq!(fake.comments(REPO, 2).len(), 1, "one backport comment, edited");
}

#[tokio::test]
async fn backport_mode_fails_the_step_on_a_conflict() {
    let fake = fake_with_responder().await;
    let (_world, event) = merged_hotfix(&fake, true);
    let run = run_action(&fake, "pull_request_target", &event, &[("token", TOKEN), ("mode", "backport")]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("::error::backports need work by hand: master"), "{}", run.stdout);
    let draft = fake.repo(REPO, |r| r.pulls[&3]["draft"].clone());
    assert_eq!(draft, true);
}

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

/// A hotfix (#2, postmortem #10 in place) whose smoke check `smoke` is in `smoke` state, and the
/// comment event of `author` saying `body` on it.
async fn merge_setup(smoke: Option<&str>, author: &str, body: &str) -> (FakeGitHub, Vec<u8>) {
    let fake = FakeGitHub::start().await;
    let policy = "[responders]\nusers = [\"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n";
    let mut pull = pr_event(&["hotfix"], "Fix.\n\nPostmortem: #10", "Fix checkout")["pull_request"].clone();
    pull["state"] = "open".into();
    fake.repo(REPO, |r| {
        r.files.insert(("master".into(), ".github/hotfix-lane.toml".into()), policy.into());
        r.label_events.push((2, "hotfix".into(), "alice".into(), "2026-11-26T13:00:00Z".into()));
        r.issues.insert(10, (vec!["postmortem".into()], false));
        r.pulls.insert(2, pull);
        if let Some(state) = smoke {
            r.statuses.push(common::fake_github::Status {
                sha: HEAD.into(),
                context: "smoke".into(),
                state: state.into(),
                description: String::new(),
                by: "ci".into(),
                suite: 0,
            });
        }
    });
    (fake, serde_json::to_vec(&common::github::comment_event(2, body, author)).unwrap())
}

const MERGE: [(&str, &str); 4] = [("token", TOKEN), ("mode", "merge"), ("wait", "2s"), ("poll-interval", "1s")];

fn merges(fake: &FakeGitHub) -> Vec<(u64, String, String)> {
    fake.repo(REPO, |r| r.merges.clone())
}

#[tokio::test]
async fn rerunning_a_responders_authorize_run_does_not_merge_what_the_change_is_now() {
    let (fake, event) = merge_setup(Some("success"), "alice", "/hotfix authorize").await;
    let run = run_action_with(&fake, "issue_comment", &event, &MERGE, &[("GITHUB_RUN_ATTEMPT", "2")]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("a re-run replays @alice's authorization"), "{}", run.stdout);
    assert!(merges(&fake).is_empty());
}

#[tokio::test]
async fn merge_mode_merges_a_green_hotfix_on_a_responders_authorization() {
    let (fake, event) = merge_setup(Some("success"), "alice", "/hotfix authorize 1h checkout is down").await;
    let run = run_action(&fake, "issue_comment", &event, &MERGE).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.outputs["merged"], "merged");
    assert_eq!(merges(&fake), vec![(2, HEAD.to_string(), "squash".to_string())], "pinned to the authorized commit");
    assert!(run.stdout.contains("audit: merge.merged squash merge on @alice's authorization"), "{}", run.stdout);
    assert!(run.summary.contains("#2 merged at ec26c3e on @alice's authorization"), "{}", run.summary);
}

#[tokio::test]
async fn merge_mode_refuses_non_responders_and_red_or_missing_checks() {
    let (fake, event) = merge_setup(Some("success"), "mallory", "/hotfix authorize").await;
    let run = run_action(&fake, "issue_comment", &event, &MERGE).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("::error::@mallory is not a responder"), "{}", run.stdout);

    let (fake, event) = merge_setup(Some("failure"), "alice", "/hotfix authorize").await;
    let run = run_action(&fake, "issue_comment", &event, &MERGE).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("not merged: smoke checks failed: `smoke`"), "{}", run.stdout);

    // Never reported: the step waits until `wait`, then gives up, merging nothing.
    let (fake, event) = merge_setup(None, "alice", "/hotfix authorize").await;
    let run = run_action(&fake, "issue_comment", &event, &MERGE).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("not merged: waiting for smoke checks: `smoke`"), "{}", run.stdout);
    assert!(merges(&fake).is_empty());

    // A comment without the command authorizes nothing.
    let (fake, event) = merge_setup(Some("success"), "alice", "looks good").await;
    let run = run_action(&fake, "issue_comment", &event, &MERGE).await;
    assert_eq!((run.code, run.outputs["merged"].as_str()), (0, "none"));
    assert!(merges(&fake).is_empty());
}
