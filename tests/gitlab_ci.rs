//! `hotfix-lane gitlab-ci <mode>` run exactly as a GitLab runner would: a cleared environment
//! holding the predefined CI_* variables of the pipeline, the job's directory as the working
//! directory (where the dotenv report goes), the GitLab API at the fake GitLab on loopback.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::fake_gitlab::{FakeGitLab, OpenMr, BOT};
use common::git::GitWorld;
use common::gitlab::{DEFAULT_BRANCH, POLICY, PROJECT, PROJECT_PATH};

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");
const TOKEN: &str = "glpat-lane-secret-0123456789";
const JOB_TOKEN: &str = "glcbt-64_job-token-of-this-job";
/// alice and bob are responders; `smoke` must be a GitLab CI job.
const RESPONDERS: &str =
    "[responders]\nusers = [\"alice\", \"bob\"]\n[merge]\nsmoke_checks = [{ name = \"smoke\", app = \"gitlab-ci\" }]\n";

struct Run {
    code: i32,
    log: String,
    dotenv: HashMap<String, String>,
    dotenv_text: String,
    took: Duration,
}

async fn fake() -> FakeGitLab {
    let fake = FakeGitLab::start().await;
    fake.add_project(PROJECT, PROJECT_PATH, DEFAULT_BRANCH);
    fake.set_file(PROJECT, DEFAULT_BRANCH, POLICY, RESPONDERS);
    fake.add_token(TOKEN, BOT);
    fake.clock_at_real_time();
    fake
}

/// The names of the log sections the log opens and closes, as GitLab reads them.
fn sections(log: &str) -> Vec<&str> {
    log.split("\x1b[0Ksection_")
        .skip(1)
        .map(|rest| rest.split(['\r', '[']).next().unwrap().splitn(3, ':').nth(2).unwrap_or_default())
        .collect()
}

fn open(fake: &FakeGitLab, title: &str, description: &str) -> u64 {
    let mr = OpenMr {
        title: title.into(),
        description: description.into(),
        author: "codertocat".into(),
        source_branch: "fix-checkout".into(),
        ..OpenMr::default()
    };
    fake.open_mr(PROJECT, mr)
}

/// The variables GitLab sets for a job of a merge request pipeline (detached), as far as the
/// lane reads them, and those it reads and must ignore.
fn mr_pipeline(fake: &FakeGitLab, iid: u64) -> Vec<(String, String)> {
    let mr = fake.mr(PROJECT, iid);
    let labels = mr.labels.join(",");
    [
        ("CI", "true"),
        ("GITLAB_CI", "true"),
        ("CI_SERVER_URL", fake.url.as_str()),
        ("CI_API_V4_URL", &fake.api()),
        ("CI_PROJECT_ID", &PROJECT.to_string()),
        ("CI_PROJECT_PATH", PROJECT_PATH),
        ("CI_DEFAULT_BRANCH", DEFAULT_BRANCH),
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
        ("CI_PIPELINE_ID", "9001"),
        ("CI_JOB_ID", "77001"),
        ("CI_JOB_NAME", "hotfix-lane"),
        ("CI_COMMIT_SHA", &mr.sha),
        ("CI_COMMIT_REF_NAME", &mr.source_branch),
        ("CI_MERGE_REQUEST_IID", &iid.to_string()),
        ("CI_MERGE_REQUEST_PROJECT_ID", &PROJECT.to_string()),
        ("CI_MERGE_REQUEST_PROJECT_PATH", PROJECT_PATH),
        ("CI_MERGE_REQUEST_EVENT_TYPE", "detached"),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", &mr.source_branch),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", &mr.sha),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", &mr.target_branch),
        ("CI_MERGE_REQUEST_TITLE", &mr.title),
        ("CI_MERGE_REQUEST_DESCRIPTION", &mr.description),
        ("CI_MERGE_REQUEST_LABELS", &labels),
        ("CI_JOB_TOKEN", JOB_TOKEN),
        ("GITLAB_USER_LOGIN", "codertocat"),
        ("HOTFIX_LANE_TOKEN", TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `vars` with `changes` applied: `(name, Some(value))` sets, `(name, None)` unsets.
fn with(mut vars: Vec<(String, String)>, changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    for (name, value) in changes {
        vars.retain(|(k, _)| k != name);
        if let Some(value) = value {
            vars.push((name.to_string(), value.to_string()));
        }
    }
    vars
}

async fn ci_job(mode: &str, vars: Vec<(String, String)>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    // What an earlier job of a shell executor left behind.
    std::fs::write(dir.path().join("hotfix-lane.env"), "HOTFIX_LANE=hotfix\nHOTFIX_SUITE=smoke\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["gitlab-ci", mode])
        .env_clear()
        .current_dir(dir.path())
        .env("CI_PROJECT_DIR", dir.path())
        .env("CI_BUILDS_DIR", dir.path())
        .env("HOME", dir.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let took = started.elapsed();
    let dotenv_text = std::fs::read_to_string(dir.path().join("hotfix-lane.env")).unwrap_or_default();
    let dotenv = dotenv_text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Run { code: out.status.code().unwrap_or(-1), log, dotenv, dotenv_text, took }
}

/// A fix naming postmortem #50 (which exists), labelled by alice: all a merge waits for is smoke.
fn hotfix_with_postmortem(fake: &FakeGitLab) -> u64 {
    fake.create_issue(PROJECT, Some(50), "Checkout outage", &["postmortem"], "alice");
    let mr = open(fake, "Fix checkout", "Fix.\n\nPostmortem: #50");
    fake.add_label(PROJECT, mr, "hotfix", "alice");
    mr
}

fn smoke_pipeline(fake: &FakeGitLab, iid: u64, status: &str) -> (u64, u64) {
    let sha = fake.mr(PROJECT, iid).sha;
    let pipeline = fake.create_pipeline(
        PROJECT,
        &sha,
        &format!("refs/merge-requests/{iid}/head"),
        "merge_request_event",
        "running",
        &[],
    );
    let job = fake.add_job(PROJECT, pipeline, "smoke", status, false, "codertocat");
    (pipeline, job)
}

#[tokio::test]
async fn a_label_applied_by_a_responder_puts_the_merge_request_in_the_smoke_lane() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    fake.add_label(PROJECT, mr, "hotfix", "alice");
    let run = ci_job("lane", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.code, 0, "{}", run.log);
    assert_eq!(run.dotenv["HOTFIX_LANE"], "hotfix", "{}", run.log);
    assert_eq!(run.dotenv["HOTFIX_SUITE"], "smoke");
    assert_eq!(run.dotenv["HOTFIX_LANE_MR_IID"], mr.to_string());
    assert_eq!(run.dotenv["HOTFIX_LANE_POSTMORTEM"], "failure");
    assert!(run.log.contains("hotfix-lane/lane: hotfix: smoke-only"), "{}", run.log);
    assert!(run.log.contains("\x1b[0Ksection_start:"), "the job's output is a log section: {}", run.log);
    assert!(run.log.contains("\x1b[0Ksection_end:"), "{}", run.log);
    // Reads only, and only with the lane's token.
    let calls = fake.take_calls();
    assert!(calls.iter().all(|c| c.method == "GET" || c.method == "HEAD"), "{calls:?}");
    assert!(calls.iter().all(|c| c.token == TOKEN), "{calls:?}");
    eprintln!("lane mode, start to decision: {:?}, {} API calls", run.took, calls.len());
}

#[tokio::test]
async fn a_label_applied_by_a_non_responder_gets_the_full_suite() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    fake.add_label(PROJECT, mr, "hotfix", "mallory");
    // The pipeline's own variables say `hotfix`: they do not say who applied it.
    let run = ci_job("lane", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.code, 0, "{}", run.log);
    assert_eq!((run.dotenv["HOTFIX_LANE"].as_str(), run.dotenv["HOTFIX_SUITE"].as_str()), ("normal", "full"));
    assert!(run.log.contains("hotfix label not authorized"), "{}", run.log);
}

#[tokio::test]
async fn a_responders_label_taken_off_and_put_back_by_a_non_responder_gets_the_full_suite() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    fake.add_label(PROJECT, mr, "hotfix", "alice");
    fake.remove_label(PROJECT, mr, "hotfix", "mallory");
    fake.add_label(PROJECT, mr, "hotfix", "mallory");
    let run = ci_job("lane", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.dotenv["HOTFIX_SUITE"], "full", "the label's last adder counts: {}", run.log);
}

#[tokio::test]
async fn a_merge_request_title_with_shell_metacharacters_is_never_run() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let m = marker.display();
    let title = format!("Fix $(touch {m}) `touch {m}`; touch {m} && echo \"$HOTFIX_LANE_TOKEN\"");
    let description =
        format!("Fix.\n\x1b[0Ksection_end:1:hotfix_lane\r\x1b[0K\nhotfix-lane/lane: hotfix: smoke-only\n$(touch {m})");
    let mr = open(&fake, &title, &description);
    fake.add_label(PROJECT, mr, "hotfix", "mallory");
    fake.add_label(PROJECT, mr, "$(touch x);\nHOTFIX_SUITE=smoke", "mallory");
    let run = ci_job("lane", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.code, 0, "{}", run.log);
    assert!(!marker.exists(), "something ran the title");
    assert!(!run.log.contains(TOKEN));
    // Only the lane's own section markers, and only its own variables in the report.
    let ours = ["hotfix_lane", "hotfix_lane_summary", "hotfix_lane_summary", "hotfix_lane"];
    assert_eq!(sections(&run.log), ours, "{}", run.log);
    assert_eq!(run.dotenv_text.lines().filter(|l| l.starts_with("HOTFIX_SUITE=")).count(), 1, "{}", run.dotenv_text);
    assert_eq!(run.dotenv["HOTFIX_SUITE"], "full");
    assert!(run.dotenv_text.lines().all(|l| l.starts_with("HOTFIX_")), "{}", run.dotenv_text);
}

#[tokio::test]
async fn the_token_never_appears_in_the_job_log() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    fake.add_label(PROJECT, mr, "hotfix", "alice");
    fake.add_note(PROJECT, mr, "bob", "/hotfix authorize 1h");
    smoke_pipeline(&fake, mr, "failed");
    let base = || mr_pipeline(&fake, mr);
    let runs = [
        ci_job("lane", base()).await,
        ci_job("postmortem", base()).await,
        ci_job("merge", with(base(), &[("HOTFIX_LANE_WAIT", Some("0s"))])).await,
        ci_job("backport", base()).await,
        ci_job("lane", with(base(), &[("CI_PIPELINE_SOURCE", Some("push"))])).await,
        ci_job("lane", with(base(), &[("CI_API_V4_URL", Some("http://127.0.0.1:9/api/v4"))])).await,
        ci_job("lane", with(base(), &[("CI_MERGE_REQUEST_IID", Some("404"))])).await,
    ];
    for run in runs {
        assert!(!run.log.contains(TOKEN), "{}", run.log);
        assert!(!run.log.contains(JOB_TOKEN), "{}", run.log);
        assert!(!run.dotenv_text.contains(TOKEN));
    }
}

#[tokio::test]
async fn ci_job_token_alone_is_refused_with_why() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    let run = ci_job("lane", with(mr_pipeline(&fake, mr), &[("HOTFIX_LANE_TOKEN", None)])).await;
    assert_eq!(run.code, 3, "{}", run.log);
    assert!(run.log.contains("HOTFIX_LANE_TOKEN is not set"), "{}", run.log);
    assert!(run.log.contains("CI_JOB_TOKEN, the job's own token, cannot"), "{}", run.log);
    assert!(run.log.contains("masked"), "{}", run.log);
    assert!(run.dotenv.is_empty(), "no decision without a token");
    // Handing the job token over under the lane's name is refused the same way.
    let run = ci_job("lane", with(mr_pipeline(&fake, mr), &[("HOTFIX_LANE_TOKEN", Some(JOB_TOKEN))])).await;
    assert_eq!(run.code, 3, "{}", run.log);
    assert!(run.log.contains("HOTFIX_LANE_TOKEN holds the job's CI_JOB_TOKEN"), "{}", run.log);
    assert_eq!(fake.call_count(), 0, "nothing is asked of GitLab");
}

#[tokio::test]
async fn not_a_merge_request_pipeline_is_a_clear_error() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    let branch = with(mr_pipeline(&fake, mr), &[("CI_PIPELINE_SOURCE", Some("push")), ("CI_MERGE_REQUEST_IID", None)]);
    for mode in ["lane", "postmortem", "merge"] {
        let run = ci_job(mode, branch.clone()).await;
        assert_eq!(run.code, 3, "{mode}: {}", run.log);
        assert!(run.log.contains("not a merge request pipeline (CI_PIPELINE_SOURCE is `push`)"), "{}", run.log);
        assert!(run.log.contains("$CI_PIPELINE_SOURCE == \"merge_request_event\""), "{}", run.log);
    }
    // Backports run after the merge, not in the merge request's pipeline.
    let run = ci_job("backport", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.code, 3, "{}", run.log);
    assert!(run.log.contains("mode backport runs after the merge"), "{}", run.log);
    // Outside GitLab CI altogether.
    let run = ci_job("lane", with(mr_pipeline(&fake, mr), &[("GITLAB_CI", None)])).await;
    assert_eq!(run.code, 3, "{}", run.log);
    assert!(run.log.contains("inside a GitLab CI job"), "{}", run.log);
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn an_unknown_mode_is_a_usage_error() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    let run = ci_job("deploy", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.code, 2, "{}", run.log);
    assert!(run.log.contains("possible values: lane, postmortem, backport, merge"), "{}", run.log);
}

#[tokio::test]
async fn a_token_gitlab_refuses_is_a_setup_error_naming_the_token() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    let run = ci_job("lane", with(mr_pipeline(&fake, mr), &[("CI_MERGE_REQUEST_IID", Some("404"))])).await;
    assert_eq!(run.code, 3, "{}", run.log);
    assert!(run.log.contains("merge request !404 of acme/platform/payments is not there"), "{}", run.log);
}

#[tokio::test]
async fn postmortem_mode_fails_the_job_with_the_servers_message_until_a_postmortem_is_named() {
    let fake = fake().await;
    let mr = open(&fake, "Fix checkout", "Fix.");
    fake.add_label(PROJECT, mr, "hotfix", "alice");
    let run = ci_job("postmortem", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.code, 1, "{}", run.log);
    assert!(run.log.contains("ERROR: hotfix-lane/postmortem: no postmortem referenced"), "{}", run.log);
    let issue = fake.create_issue(PROJECT, Some(50), "Checkout outage", &["postmortem"], "alice");
    fake.edit_mr(PROJECT, mr, |m| m.description = format!("Fix.\n\nPostmortem: #{issue}"));
    let run = ci_job("postmortem", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.code, 0, "{}", run.log);
    assert_eq!(run.dotenv["HOTFIX_LANE_POSTMORTEM"], "success");
}

#[tokio::test]
async fn a_train_pipeline_is_smoke_only_only_if_every_merge_request_ahead_is_a_hotfix() {
    let fake = fake().await;
    fake.project(PROJECT, |p| p.merge_trains_enabled = true);
    let ahead = open(&fake, "Feature", "A feature.");
    let hotfix = open(&fake, "Fix checkout", "Fix.");
    fake.add_label(PROJECT, hotfix, "hotfix", "alice");
    fake.add_train_car(PROJECT, ahead, "dev", "running");
    let (_, train_sha) = fake.add_train_car(PROJECT, hotfix, "alice", "running");
    let train = |sha: &str| {
        with(
            mr_pipeline(&fake, hotfix),
            &[("CI_MERGE_REQUEST_EVENT_TYPE", Some("merge_train")), ("CI_COMMIT_SHA", Some(sha))],
        )
    };
    let run1 = ci_job("lane", train(&train_sha)).await;
    assert_eq!(run1.code, 0, "{}", run1.log);
    assert_eq!(run1.dotenv["HOTFIX_SUITE"], "full", "!{ahead} ahead is no hotfix: {}", run1.log);
    assert!(run1.log.contains(&format!("!{ahead} ahead of it in the merge train is not in the hotfix lane")));
    // With the car ahead a hotfix too, the train pipeline is smoke-only.
    fake.add_label(PROJECT, ahead, "hotfix", "bob");
    let run2 = ci_job("lane", train(&train_sha)).await;
    assert_eq!(run2.dotenv["HOTFIX_SUITE"], "smoke", "{}", run2.log);
    // A commit the train does not list is no train pipeline of this merge request.
    let run3 = ci_job("lane", train("0000000000000000000000000000000000000000")).await;
    assert_eq!(run3.dotenv["HOTFIX_SUITE"], "full", "{}", run3.log);
}

#[tokio::test]
async fn merge_mode_merges_pinned_to_the_head_once_the_smoke_jobs_are_green() {
    let fake = fake().await;
    let mr = hotfix_with_postmortem(&fake);
    fake.add_note(PROJECT, mr, "bob", "/hotfix authorize 1h checkout is down");
    let (pipeline, smoke) = smoke_pipeline(&fake, mr, "running");
    let head = fake.mr(PROJECT, mr).sha;
    let vars =
        with(mr_pipeline(&fake, mr), &[("HOTFIX_LANE_WAIT", Some("60s")), ("HOTFIX_LANE_POLL_INTERVAL", Some("1s"))]);
    let job = tokio::spawn(ci_job("merge", vars));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(fake.merges().is_empty(), "not while the smoke job runs");
    fake.set_job_status(PROJECT, pipeline, smoke, "success");
    let run = job.await.unwrap();
    assert_eq!(run.code, 0, "{}", run.log);
    assert_eq!(run.dotenv["HOTFIX_LANE_MERGED"], "merged", "{}", run.log);
    let merges = fake.merges();
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert_eq!(merges[0].sha.as_deref(), Some(head.as_str()), "pinned to the authorized head");
    assert_eq!(merges[0].by, BOT);
    assert!(run.log.contains("authorized by @bob for"), "{}", run.log);
    assert!(run.log.contains("smoke"), "it said what it waited for: {}", run.log);
}

#[tokio::test]
async fn an_authorization_from_before_the_last_push_merges_nothing() {
    let fake = fake().await;
    let mr = hotfix_with_postmortem(&fake);
    fake.add_note(PROJECT, mr, "bob", "/hotfix authorize");
    // Pushed after both the label and the note: neither covers the new head.
    fake.push_head(PROJECT, mr, "codertocat", None);
    smoke_pipeline(&fake, mr, "success");
    let run = ci_job("merge", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.code, 0, "{}", run.log);
    assert_eq!(run.dotenv["HOTFIX_LANE_MERGED"], "none");
    assert!(run.log.contains("no responder has authorized"), "{}", run.log);
    assert!(fake.merges().is_empty());
}

#[tokio::test]
async fn an_authorize_note_by_a_non_responder_or_edited_into_one_merges_nothing() {
    let fake = fake().await;
    let mr = hotfix_with_postmortem(&fake);
    fake.push_head(PROJECT, mr, "codertocat", None);
    smoke_pipeline(&fake, mr, "success");
    fake.add_note(PROJECT, mr, "mallory", "/hotfix authorize");
    let note = fake.add_note(PROJECT, mr, "bob", "LGTM");
    fake.edit_note(PROJECT, mr, note, "/hotfix authorize");
    let run = ci_job("merge", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.dotenv["HOTFIX_LANE_MERGED"], "none", "{}", run.log);
    assert!(run.log.contains("@mallory is not a responder"), "{}", run.log);
    assert!(fake.merges().is_empty());
}

#[tokio::test]
async fn a_revoke_after_the_authorization_merges_nothing() {
    let fake = fake().await;
    let mr = hotfix_with_postmortem(&fake);
    smoke_pipeline(&fake, mr, "success");
    fake.add_note(PROJECT, mr, "bob", "/hotfix authorize");
    fake.add_note(PROJECT, mr, "alice", "/hotfix revoke");
    let run = ci_job("merge", mr_pipeline(&fake, mr)).await;
    assert_eq!(run.dotenv["HOTFIX_LANE_MERGED"], "none", "{}", run.log);
    assert!(run.log.contains("@alice revoked the authorization"), "{}", run.log);
    assert!(fake.merges().is_empty());
}

#[tokio::test]
async fn a_revoke_note_posted_while_the_merge_job_waits_stops_the_merge() {
    let fake = fake().await;
    let mr = hotfix_with_postmortem(&fake);
    fake.add_note(PROJECT, mr, "bob", "/hotfix authorize 1h checkout is down");
    let (pipeline, smoke) = smoke_pipeline(&fake, mr, "running");
    let vars =
        with(mr_pipeline(&fake, mr), &[("HOTFIX_LANE_WAIT", Some("60s")), ("HOTFIX_LANE_POLL_INTERVAL", Some("1s"))]);
    let job = tokio::spawn(ci_job("merge", vars));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // alice spots a problem while the job waits for smoke, and revokes; then smoke goes green.
    fake.add_note(PROJECT, mr, "alice", "/hotfix revoke");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fake.set_job_status(PROJECT, pipeline, smoke, "success");
    let run = job.await.unwrap();
    assert_eq!(run.code, 1, "{}", run.log);
    assert_eq!(run.dotenv["HOTFIX_LANE_MERGED"], "none", "{}", run.log);
    assert!(run.log.contains("ERROR: not merged: @bob's authorization no longer stands"), "{}", run.log);
    assert!(fake.merges().is_empty(), "the revoke holds even though the job had already started");
}

#[tokio::test]
async fn merge_mode_gives_up_when_the_smoke_jobs_are_not_green_in_time() {
    let fake = fake().await;
    let mr = hotfix_with_postmortem(&fake);
    fake.add_note(PROJECT, mr, "bob", "/hotfix authorize");
    smoke_pipeline(&fake, mr, "running");
    let run = ci_job("merge", with(mr_pipeline(&fake, mr), &[("HOTFIX_LANE_WAIT", Some("0s"))])).await;
    assert_eq!(run.code, 1, "{}", run.log);
    assert_eq!(run.dotenv["HOTFIX_LANE_MERGED"], "none");
    assert!(run.log.contains("ERROR: not merged: waiting for smoke checks: `smoke`"), "{}", run.log);
    assert!(fake.merges().is_empty());
}

/// The variables of a push pipeline on `branch` at `sha`: no merge request.
fn push_pipeline(fake: &FakeGitLab, iid: u64, branch: &str, sha: &str) -> Vec<(String, String)> {
    with(
        mr_pipeline(fake, iid),
        &[
            ("CI_PIPELINE_SOURCE", Some("push")),
            ("CI_COMMIT_SHA", Some(sha)),
            ("CI_COMMIT_REF_NAME", Some(branch)),
            ("CI_COMMIT_BRANCH", Some(branch)),
            ("CI_MERGE_REQUEST_IID", None),
            ("CI_MERGE_REQUEST_PROJECT_ID", None),
            ("CI_MERGE_REQUEST_PROJECT_PATH", None),
            ("CI_MERGE_REQUEST_TITLE", None),
            ("CI_MERGE_REQUEST_LABELS", None),
        ],
    )
}

#[tokio::test]
async fn backport_mode_opens_the_merged_hotfixs_backport_from_the_push_pipeline_and_a_rerun_finds_it() {
    let world = GitWorld::new();
    world.git(&["switch", "-q", "-c", "fix", "release-1"]);
    let lines: String =
        (1..=40).map(|i| if i == 5 { "line 5 (fixed)\n".to_string() } else { format!("line {i}\n") }).collect();
    world.write("app/server.rs", &lines);
    let fix = world.commit("Fix the crash", "Octo Cat <octocat@example.com>");
    world.git(&["switch", "-q", "release-1"]);
    world.git(&["merge", "-q", "--no-ff", "fix", "-m", "Merge branch 'fix' into 'release-1'"]);
    let merge = world.head();
    world.push(&["release-1", "fix"]);
    let fake = fake().await;
    fake.project(PROJECT, |p| {
        p.git_dir = Some(world.remote.clone());
        p.default_branch = "master".into();
    });
    fake.set_file(PROJECT, "master", POLICY, RESPONDERS);
    let open = OpenMr {
        iid: Some(2),
        title: "Fix the crash".into(),
        author: "codertocat".into(),
        source_branch: "fix".into(),
        target_branch: "release-1".into(),
        sha: Some(fix),
        ..OpenMr::default()
    };
    let mr = fake.open_mr(PROJECT, open);
    fake.add_label(PROJECT, mr, "hotfix", "alice");
    let bob = fake.user("bob");
    fake.edit_mr(PROJECT, mr, |m| {
        m.state = "merged".into();
        m.merge_commit_sha = Some(merge.clone());
        m.merged_by = Some(bob);
    });
    let push = with(
        push_pipeline(&fake, mr, "release-1", &merge),
        &[("CI_DEFAULT_BRANCH", Some("master")), ("GITLAB_USER_LOGIN", Some("bob"))],
    );
    let run = ci_job("backport", push.clone()).await;
    assert_eq!(run.code, 0, "{}", run.log);
    assert!(run.dotenv["HOTFIX_LANE_BACKPORTS"].contains("\"target\":\"master\""), "{}", run.dotenv_text);
    let branch = "hotfix-lane/backport/2-to-master";
    assert!(world.remote_tip(branch).is_some(), "the backport branch is pushed: {}", run.log);
    let opened = || {
        fake.project(PROJECT, |p| {
            p.merge_requests.values().filter(|m| m.source_branch == branch).map(|m| m.iid).collect::<Vec<_>>()
        })
    };
    assert_eq!(opened().len(), 1, "{}", run.log);
    assert!(!run.log.contains(TOKEN));
    // A retried job finds what the first one made.
    let again = ci_job("backport", push).await;
    assert_eq!(again.code, 0, "{}", again.log);
    assert_eq!(opened().len(), 1, "{}", again.log);
}

#[tokio::test]
async fn backport_mode_finds_the_merged_merge_request_of_the_pushed_commit() {
    let fake = fake().await;
    let mr = open(&fake, "Feature", "A feature.");
    let sha = fake.mr(PROJECT, mr).sha;
    fake.edit_mr(PROJECT, mr, |m| m.state = "merged".into());
    let push = |sha: &str| push_pipeline(&fake, mr, DEFAULT_BRANCH, sha);
    let run1 = ci_job("backport", push(&sha)).await;
    assert_eq!(run1.code, 0, "{}", run1.log);
    assert!(run1.log.contains(&format!("!{mr} is not in the hotfix lane")), "{}", run1.log);
    assert_eq!(run1.dotenv["HOTFIX_LANE_BACKPORTS"], "[]");
    let other = fake.branch_head(PROJECT, DEFAULT_BRANCH).unwrap();
    let run2 = ci_job("backport", push(&other)).await;
    assert_eq!(run2.code, 0, "{}", run2.log);
    assert!(run2.log.contains("is the merge of no merge request: nothing to backport"), "{}", run2.log);
}

/// The shell of `key` (`before_script`, `script`) of `job` in the component, as its `- |` block.
fn component_block(job: &str, key: &str) -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/hotfix-lane/template.yml")).unwrap();
    let jobs = format!("\n{}", text.split_once("\n---\n").unwrap().1);
    let body = jobs.split(&format!("\n{job}:\n")).nth(1).unwrap_or_else(|| panic!("no job {job}"));
    let body = body.split("\n\n").next().unwrap();
    let block = body.split(&format!("  {key}:\n    - |\n")).nth(1).unwrap_or_else(|| panic!("no {key} in {job}"));
    block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("      "))
        .map(|l| l.strip_prefix("      ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs shell `script` as the runner does (one `sh -e` for before_script and script) in `dir`,
/// with the binary on PATH; returns its exit code and output.
fn runner_shell(script: &str, dir: &std::path::Path, vars: Vec<(String, String)>) -> (i32, String) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let _ = std::os::unix::fs::symlink(BIN, bin.join("hotfix-lane"));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .args(["-e", "-c", script])
        .env_clear()
        .current_dir(dir)
        .env("CI_PROJECT_DIR", dir)
        .env("CI_BUILDS_DIR", dir)
        .env("PATH", path)
        .env("HOTFIX_LANE_LABEL", "hotfix")
        .env("HOTFIX_LANE_BINARY_URL", "")
        .env("HOTFIX_LANE_BINARY_SHA256", "")
        .envs(vars)
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), log)
}

#[tokio::test]
async fn the_components_jobs_run_the_binary_and_its_decision_alone_skips_the_full_suite() {
    let fake = fake().await;
    let by_responder = open(&fake, "Fix checkout $(touch pwned)", "Fix.");
    fake.add_label(PROJECT, by_responder, "hotfix", "alice");
    let by_mallory = open(&fake, "Fix checkout", "Fix.");
    fake.add_label(PROJECT, by_mallory, "hotfix", "mallory");
    let lane = format!(
        "{}\n{}",
        component_block(".hotfix-lane-binary", "before_script"),
        component_block("hotfix-lane", "script")
    );
    let full = format!("{}\necho FULL-SUITE-RAN", component_block("hotfix-lane-full", "before_script"));
    for (mr, suite) in [(by_responder, "smoke"), (by_mallory, "full")] {
        let dir = tempfile::tempdir().unwrap();
        let vars = mr_pipeline(&fake, mr);
        let (code, log) = tokio::task::spawn_blocking({
            let (lane, path, vars) = (lane.clone(), dir.path().to_path_buf(), vars.clone());
            move || runner_shell(&lane, &path, vars)
        })
        .await
        .unwrap();
        assert_eq!(code, 0, "{log}");
        assert!(!log.contains("WARNING"), "with a token there is no fallback: {log}");
        assert!(!dir.path().join("pwned").exists());
        let report = std::fs::read_to_string(dir.path().join("hotfix-lane.env")).unwrap();
        assert!(report.contains(&format!("HOTFIX_SUITE={suite}\n")), "!{mr}: {report}");
        // The runner hands the report to the full job as variables.
        let report: Vec<(String, String)> =
            report.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
        let (code, log) = runner_shell(&full, dir.path(), [vars, report].concat());
        assert_eq!(code, 0, "{log}");
        assert_eq!(log.contains("FULL-SUITE-RAN"), suite == "full", "!{mr}: {log}");
    }
    // Without a token: the label alone, and the warning that says what that means.
    let dir = tempfile::tempdir().unwrap();
    let vars = with(mr_pipeline(&fake, by_mallory), &[("HOTFIX_LANE_TOKEN", None)]);
    let (code, log) = runner_shell(&lane, dir.path(), vars);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("anyone who can label merge requests gets smoke-only CI"), "{log}");
    assert!(std::fs::read_to_string(dir.path().join("hotfix-lane.env")).unwrap().contains("HOTFIX_SUITE=smoke"));
}
