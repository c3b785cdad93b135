//! The `hotfix-lane` binary as a process: crash safety under `kill -9`, graceful SIGTERM, CLI.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Backend, Delivery, TestDb, SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");

/// A `serve` child process and the address it listens on.
struct Server {
    child: Child,
    addr: SocketAddr,
}

fn spawn_server(db: &TestDb) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--job-lease", "2s"])
        .args(["--database-url", &db.url])
        .env("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hotfix-lane serve");
    let (addr, lines) = common::listening(&mut child);
    let addr = addr.parse().unwrap();
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// Pull request deliveries for many pull requests, each with its own delivery id.
fn deliveries(n: usize) -> Vec<Delivery> {
    let files = ["opened.json", "labeled.json", "synchronize.json", "unlabeled.json", "reopened.json"];
    (0..n)
        .map(|i| {
            let mut body: serde_json::Value =
                serde_json::from_slice(&common::fixture(&format!("github/pull_request/{}", files[i % files.len()])))
                    .unwrap();
            let number = 1000 + (i % 37) as u64;
            body["number"] = number.into();
            body["pull_request"]["number"] = number.into();
            Delivery::new("pull_request", &format!("crash-{i:04}"), serde_json::to_vec(&body).unwrap())
        })
        .collect()
}

async fn deliveries_acknowledged_before_a_kill_9_survive_it_and_run_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = spawn_server(&db);
    let base = Arc::new(std::sync::Mutex::new(format!("http://{}", server.addr)));
    let all = Arc::new(deliveries(300));
    let acked_before_kill = Arc::new(std::sync::Mutex::new(Vec::new()));
    let acks = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    // 16 concurrent senders; each retries a delivery until it is acknowledged, as GitHub's
    // "redeliver" would.
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (all, next, acks, killed, acked_before_kill, client, base) = (
            all.clone(),
            next.clone(),
            acks.clone(),
            killed.clone(),
            acked_before_kill.clone(),
            client.clone(),
            base.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(d) = all.get(i) else { return };
                loop {
                    let url = base.lock().unwrap().clone();
                    let was_killed = killed.load(Ordering::SeqCst);
                    match d.request(&client, &url).send().await {
                        Ok(resp) if resp.status().is_success() => {
                            if !was_killed && !killed.load(Ordering::SeqCst) {
                                acked_before_kill.lock().unwrap().push(d.id.clone());
                            }
                            acks.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }));
    }

    common::eventually("100 acknowledgements", || async { acks.load(Ordering::SeqCst) >= 100 }).await;
    killed.store(true, Ordering::SeqCst);
    server.child.kill().expect("kill -9");
    server.child.wait().unwrap();
    let survivors = acked_before_kill.lock().unwrap().clone();
    assert!(survivors.len() >= 100, "{} acknowledged before the kill", survivors.len());

    let store = db.store().await;
    for id in &survivors {
        assert!(
            store.delivery_by_forge_id("github", id).await.unwrap().is_some(),
            "delivery {id} was acknowledged but lost in the crash"
        );
    }

    let mut server = spawn_server(&db);
    *base.lock().unwrap() = format!("http://{}", server.addr);
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(store.delivery_count().await.unwrap(), 300);
    common::eventually("every job done", || async { store.job_counts().await.unwrap().done == 300 }).await;
    let counts = store.job_counts().await.unwrap();
    assert_eq!((counts.queued, counts.running, counts.dead), (0, 0, 0));

    // Each job's effect landed exactly once: the lane counted every delivery once per PR.
    let mut applied = 0;
    for number in 1000..1037 {
        let state = store.lane_state("github", 186853002, number).await.unwrap().expect("lane state");
        applied += state["events"].as_u64().unwrap();
    }
    assert_eq!(applied, 300, "every delivery applied exactly once");

    // Re-sending everything yields only duplicates.
    let base_now = base.lock().unwrap().clone();
    for d in all.iter() {
        let (status, body) = d.send(&client, &base_now).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")), "{}", d.id);
    }
    assert_eq!(store.delivery_count().await.unwrap(), 300);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

async fn sigterm_finishes_in_flight_work_and_exits_zero(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = spawn_server(&db);
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    for d in deliveries(20) {
        assert_eq!(d.send(&client, &base).await.0, 202);
    }
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let store = db.store().await;
    assert_eq!(store.delivery_count().await.unwrap(), 20);
    let counts = store.job_counts().await.unwrap();
    assert_eq!(counts.running, 0, "no lease is left behind");
    assert_eq!(counts.queued + counts.done, 20);
}

on_both_backends!(
    deliveries_acknowledged_before_a_kill_9_survive_it_and_run_once,
    sigterm_finishes_in_flight_work_and_exits_zero,
);

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env_remove("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_reports_problems_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[lane]\nlabel = \"hotfix\"\n[merge]\nmax_grant = \"2h\"\n").unwrap();
    let (code, out, err) = run(&["config", "check", good.to_str().unwrap()]);
    assert_eq!((code, out.trim().ends_with(": ok")), (0, true), "{out}");
    assert!(err.contains("warning: no responders are listed"), "{err}");

    let weak = dir.path().join("weak.toml");
    std::fs::write(&weak, "[responders]\nusers = [\"alice\"]\n[merge]\nsmoke_checks = [\"smoke\"]\n").unwrap();
    let (code, _, err) = run(&["config", "check", weak.to_str().unwrap()]);
    assert_eq!(code, 0, "a warning is not a failure");
    assert!(err.contains("weak.toml: warning: merge.smoke_checks: `smoke` counts from anyone"), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[lane]\nlabel = \"hotfix\"\ncolour = \"red\"\n").unwrap();
    let (code, _, err) = run(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.toml:3:1: unknown field `colour`"), "{err}");

    let (code, _, err) = run(&["config", "check", "/nonexistent/policy.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read /nonexistent/policy.toml"), "{err}");
}

#[test]
fn serve_refuses_to_start_without_a_usable_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let (code, _, err) = run(&["serve", "--listen", "127.0.0.1:0", "--database-url", &db]);
    assert_eq!(code, 1);
    assert!(err.contains("no forge is configured"), "{err}");
    let (code, _, err) =
        run(&["serve", "--listen", "127.0.0.1:0", "--database-url", &db, "--github-webhook-secret", ""]);
    assert_eq!(code, 1);
    assert!(err.contains("must not be empty"), "{err}");
}

#[test]
fn bad_serve_config_files_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "listen = \"not an address\"\n").unwrap();
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("serve.toml"), "{err}");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nsurprise = 1\n").unwrap();
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown field `surprise`"), "{err}");
}

#[test]
fn help_explains_each_command() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for cmd in ["serve", "config", "jobs"] {
        assert!(out.contains(cmd), "{out}");
    }
    let (code, out, _) = run(&["serve", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("HOTFIX_LANE_DATABASE_URL"), "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!((code, out.starts_with("hotfix-lane ")), (0, true));
}

#[tokio::test]
async fn the_audit_log_is_read_from_the_cli() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let job = hotfix_lane::store::NewJob {
        kind: "delivery".into(),
        ordering_key: "k".into(),
        payload: serde_json::Value::Null,
        delivery_id: None,
        max_attempts: 1,
        run_at: 0,
    };
    store.enqueue(&job, 0).await.unwrap();
    let claimed = store.claim("t", 1, 1_000).await.unwrap().unwrap();
    let entry = |repo: &str, at| {
        hotfix_lane::store::Write::Audit(hotfix_lane::store::AuditEntry {
            at,
            forge: "github".into(),
            repo: repo.into(),
            number: Some(2),
            actor: "alice".into(),
            action: "lane.hotfix".into(),
            sha: Some("ec26c3e57ca3a959".into()),
            detail: "applied by a responder".into(),
        })
    };
    // 2026-11-26 13:24 UTC and a day earlier.
    let writes = [entry("acme/shop", 1_795_699_440_000), entry("acme/other", 1_795_613_040_000)];
    assert!(store.complete(&claimed, &writes, 2).await.unwrap());

    let (code, out, err) = run(&["audit", "--database-url", &db.url, "--repo", "acme/shop"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "when                  change       actor  action       commit      why\n\
         2026-11-26 13:24 UTC  acme/shop#2  alice  lane.hotfix  ec26c3e57c  applied by a responder"
    );
    let (code, out, _) = run(&["audit", "--database-url", &db.url, "--since", "2026-11-26", "--format", "json"]);
    assert_eq!(code, 0);
    let entries: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert_eq!(entries[0]["repo"], "acme/shop");
    let (code, _, err) = run(&["audit", "--database-url", &db.url, "--since", "last week"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a time"), "{err}");
}

#[tokio::test]
async fn dead_jobs_are_listed_and_requeued_from_the_cli() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let job = hotfix_lane::store::NewJob {
        kind: "delivery".into(),
        ordering_key: "github:1:pr:7".into(),
        payload: serde_json::Value::Null,
        delivery_id: Some(7),
        max_attempts: 1,
        run_at: 0,
    };
    store.enqueue(&job, 0).await.unwrap();
    let claimed = store.claim("t", 1, 1_000).await.unwrap().unwrap();
    assert!(store.fail(&claimed, "forge said no", 2, 2).await.unwrap(), "dead after its only attempt");

    let (code, out, err) = run(&["jobs", "--database-url", &db.url, "dead"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{}\tdelivery\tgithub:1:pr:7\tattempts=1\tforge said no", claimed.id)), "{out}");
    let (code, out, err) = run(&["jobs", "--database-url", &db.url, "requeue", &claimed.id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("queued again"), "{out}");
    assert_eq!(store.job_counts().await.unwrap().queued, 1);
    let (code, _, err) = run(&["jobs", "--database-url", &db.url, "requeue", &claimed.id.to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("no dead job with id"), "{err}");
}
