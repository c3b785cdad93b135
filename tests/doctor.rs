//! `hotfix-lane doctor` against the fake GitHub: what it finds in a working set-up, and the
//! words it has for each thing that would stop the lane.

mod common;

use std::path::Path;
use std::process::Command;

use common::fake_github::FakeGitHub;
use common::lane::{POLICY, REPO};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");
const SECRET: &str = "a-webhook-secret-of-some-length";

const GOOD_POLICY: &str =
    "[responders]\nusers = [\"alice\"]\n[merge]\nsmoke_checks = [{ name = \"smoke\", app = \"github-actions\" }]\n";

/// Runs `doctor` in `dir` with `args` and no HOTFIX_LANE_* settings from the caller; its output
/// with the fake's address, the temp dir and the local git version made stable.
async fn doctor(dir: &Path, fake: &FakeGitHub, args: &[&str]) -> (i32, String) {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("HOTFIX_LANE_") {
            command.env_remove(name);
        }
    }
    command.arg("doctor").args(["--github-api-url", &fake.url]).args(args).current_dir(dir);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout)
        .replace(&fake.url, "[FAKE]")
        .replace(&dir.display().to_string(), "[DIR]")
        .lines()
        .map(|l| if l.starts_with("ok    git: ") { "ok    git: [version]" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), stdout)
}

fn files(dir: &Path) {
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    std::fs::write(dir.join("token"), "test-token").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_token_set_up_is_in_order() {
    let fake = FakeGitHub::start().await;
    fake.repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), GOOD_POLICY.into()));
    fake.with(|w| {
        w.repo_info.insert(REPO.into(), json!({ "default_branch": "master", "permissions": { "push": true } }));
        w.rules.insert(
            (REPO.into(), "master".into()),
            json!([
                { "type": "required_status_checks", "parameters": { "required_status_checks": [{ "context": "hotfix-lane/postmortem" }] } },
                { "type": "pull_request", "parameters": { "required_approving_review_count": 1 } },
            ]),
        );
    });
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let body = br#"{"zen":"Design for failure."}"#;
    std::fs::write(dir.path().join("delivery.json"), body).unwrap();
    let signature = hotfix_lane::ingress::signature::sign(SECRET.as_bytes(), body);
    let (code, out) = doctor(
        dir.path(),
        &fake,
        &[
            "--github-webhook-secret-file",
            "secret",
            "--github-token-file",
            "token",
            "--listen",
            "0.0.0.0:8080",
            "--repo",
            REPO,
            "--delivery-body",
            "delivery.json",
            "--delivery-signature",
            &signature,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!("doctor_token_in_order", out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_token_set_up_is_explained() {
    let fake = FakeGitHub::start().await;
    fake.repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), "[lane]\nlabel = \"\"\ncolor = 1\n".into()));
    fake.with(|w| {
        w.repo_info.insert(REPO.into(), json!({ "default_branch": "master", "permissions": { "push": false } }));
        w.token_scopes = Some("public_repo, workflow".into());
    });
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    std::fs::write(dir.path().join("short"), "s3cret").unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    std::fs::write(dir.path().join("delivery.json"), "{}").unwrap();
    let (code, out) = doctor(
        dir.path(),
        &fake,
        &[
            "--github-webhook-secret-file",
            "short",
            "--github-token-file",
            "token",
            "--mirror-dir",
            "a-file/mirrors",
            "--repo",
            REPO,
            "--delivery-body",
            "delivery.json",
            "--delivery-signature",
            &format!("sha256={}", "0".repeat(64)),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    insta::assert_snapshot!("doctor_token_broken", out);
}

fn app_private_key() -> String {
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("the openssl command (CI installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_missing_permissions_events_or_its_installation_is_explained() {
    let fake = FakeGitHub::start().await;
    let all = json!({ "checks": "write", "statuses": "write", "issues": "write", "pull_requests": "write",
                      "contents": "write", "metadata": "read", "members": "read", "merge_queues": "write",
                      "workflows": "write" });
    let events = [
        "pull_request",
        "pull_request_review",
        "issues",
        "issue_comment",
        "check_run",
        "check_suite",
        "status",
        "push",
    ];
    fake.with(|w| {
        w.app_info = Some(json!({ "id": 4242, "slug": "hotfix-lane", "permissions": all, "events": events }))
    });
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    std::fs::write(dir.path().join("key.pem"), app_private_key()).unwrap();
    let app = [
        "--github-webhook-secret-file",
        "secret",
        "--github-app-id",
        "4242",
        "--github-app-private-key-file",
        "key.pem",
    ];
    let (code, not_installed) = doctor(dir.path(), &fake, &[&app[..], &["--repo", REPO]].concat()).await;
    assert_eq!(code, 1, "{not_installed}");

    fake.repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), GOOD_POLICY.into()));
    fake.with(|w| {
        w.installations.insert(
            REPO.into(),
            json!({ "id": 77, "permissions": { "checks": "read", "statuses": "write", "issues": "write",
                    "pull_requests": "write", "contents": "write", "metadata": "read" } }),
        );
        w.repo_info.insert(REPO.into(), json!({ "default_branch": "master" }));
    });
    let (code, installed) = doctor(dir.path(), &fake, &[&app[..], &["--repo", REPO]].concat()).await;
    assert_eq!(code, 1, "{installed}");
    assert!(
        fake.with(|w| w.calls.contains(&"POST /app/installations/77/access_tokens".to_string())),
        "acted as the installation"
    );
    insta::assert_snapshot!("doctor_app", format!("$ not installed\n{not_installed}\n$ installed\n{installed}"));
}
