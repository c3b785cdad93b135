//! Small doors: bounded before authenticated, timeouts, secrets and the admin API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotfix_lane::api::AdminToken;
use hotfix_lane::backport::mirror::{Credentials, Mirrors};
use hotfix_lane::clock::SystemClock;
use hotfix_lane::forge::github::GitHubAuth;
use hotfix_lane::jobs::Backoff;
use hotfix_lane::server::{Running, ServeSettings};
use hotfix_lane::store::{AuditEntry, NewJob, Store, Write};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{self, base_url, eventually, Backend, Delivery, TestDb, SECRET};

/// A signature of the right form that matches no body: it gets a request past the header checks.
const FORGED: &str = "sha256=0000000000000000000000000000000000000000000000000000000000000000";

async fn server_with(db: &TestDb, tune: impl FnOnce(&mut ServeSettings)) -> Running {
    let mut settings = common::settings(db);
    tune(&mut settings);
    common::start_server_with(settings, Arc::new(SystemClock)).await
}

/// What the server sends back on a raw connection before closing it (or before `wait` passes).
async fn answer(conn: &mut TcpStream, wait: Duration) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, conn.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// True once the server has closed `conn` (end of stream or reset), false if it is still open
/// after `wait`.
async fn closed_within(conn: &mut TcpStream, wait: Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(wait, conn.read_to_end(&mut sink)).await.is_ok()
}

/// A gauge or counter's value in the `/metrics` text (`None` when the series is absent).
async fn metric(base: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics")).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn request_head(headers: &[(&str, &str)], content_length: usize) -> Vec<u8> {
    let mut head = String::from("POST /webhooks/github HTTP/1.1\r\nHost: lane\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {content_length}\r\n\r\n"));
    head.into_bytes()
}

#[tokio::test]
async fn an_unsigned_body_declaring_25_mib_is_refused_before_it_is_read() {
    let db = TestDb::new(Backend::Sqlite).await;
    // A body timeout far beyond the wait below: an answer can only come from the headers.
    let server = server_with(&db, |s| s.limits.body_timeout = Duration::from_secs(60)).await;
    let base = base_url(&server);
    let event = ("X-GitHub-Event", "pull_request");
    let delivery = ("X-GitHub-Delivery", "d-1");
    let cases = [
        ("no signature", vec![event, delivery], "HTTP/1.1 401"),
        ("a sha1 signature", vec![event, delivery, ("X-Hub-Signature", "sha1=00")], "HTTP/1.1 401"),
        ("a short signature", vec![event, delivery, ("X-Hub-Signature-256", "sha256=00")], "HTTP/1.1 401"),
        ("no event", vec![delivery, ("X-Hub-Signature-256", FORGED)], "HTTP/1.1 400"),
        ("no delivery id", vec![event, ("X-Hub-Signature-256", FORGED)], "HTTP/1.1 400"),
    ];
    for (what, headers, expected) in cases {
        let mut conn = TcpStream::connect(server.addr).await.unwrap();
        conn.write_all(&request_head(&headers, 25 * 1024 * 1024)).await.unwrap();
        // Not one byte of the 25 MiB is sent: the answer must come anyway.
        let answer = answer(&mut conn, Duration::from_secs(10)).await;
        assert!(answer.starts_with(expected), "{what}: {answer:?}");
    }
    assert_eq!(metric(&base, "hotfix_lane_ingress_body_bytes").await, Some(0.0), "no body buffer was taken");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bodies_held_open_under_a_forged_signature_cannot_take_more_than_the_body_budget() {
    const MAX_BODY: usize = 256 * 1024;
    const BUDGET: usize = 2 * MAX_BODY;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = server_with(&db, |s| {
        s.limits.max_body = MAX_BODY;
        s.limits.body_budget = BUDGET;
        s.limits.body_timeout = Duration::from_secs(4);
    })
    .await;
    let base = base_url(&server);
    // Four connections each send all but the last byte of a largest body, and stall.
    let mut stalled = Vec::new();
    for i in 0..4 {
        let addr = server.addr;
        stalled.push(tokio::spawn(async move {
            let id = format!("stall-{i}");
            let headers =
                [("X-GitHub-Event", "push"), ("X-GitHub-Delivery", id.as_str()), ("X-Hub-Signature-256", FORGED)];
            let mut conn = TcpStream::connect(addr).await.unwrap();
            conn.write_all(&request_head(&headers, MAX_BODY)).await.unwrap();
            conn.write_all(&vec![b' '; MAX_BODY - 1]).await.unwrap();
            answer(&mut conn, Duration::from_secs(15)).await
        }));
    }
    // Together they need twice the budget: once their bytes are in, some of them wait for it.
    let held = || metric(&base, "hotfix_lane_ingress_body_bytes");
    eventually("the stalled bodies fill the budget", || async {
        let before = held().await.unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(300)).await;
        before >= MAX_BODY as f64 && held().await == Some(before)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = reqwest::Client::new();
    let delivery = Delivery::fixture("pull_request", "opened.json", "honest");
    let sent = Instant::now();
    let honest = tokio::spawn(async move { delivery.send(&client, &format!("http://{}", server.addr)).await });
    for _ in 0..10 {
        let held = held().await.unwrap();
        assert!(held <= BUDGET as f64, "{held} bytes of bodies held, over the budget of {BUDGET}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!honest.is_finished(), "the honest delivery waits for the budget");
    for staller in stalled {
        let answer = staller.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408") || answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    }
    let (status, body) = honest.await.unwrap();
    assert_eq!(status, 202, "once the stalled bodies are cut off: {body}");
    assert!(sent.elapsed() >= Duration::from_secs(1), "it was not answered before the budget freed up");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slowloris_header_is_cut_off() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = server_with(&db, |s| s.limits.header_timeout = Duration::from_secs(1)).await;
    let conn = TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = conn.into_split();
    // One byte of a never-ending header every 100 ms, for as long as the server listens.
    let trickle = tokio::spawn(async move {
        write.write_all(b"POST /webhooks/github HTTP/1.1\r\nHost: lane\r\nX-Slow: ").await.unwrap();
        let started = Instant::now();
        while write.write_all(b"a").await.is_ok() && started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut sink = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut sink)).await;
    assert!(cut.is_ok(), "a header still arriving after 10 s is not cut off (header timeout 1 s)");
    trickle.abort();

    // A connection that says nothing at all goes the same way.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await, "a silent connection stays open");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = server_with(&db, |s| s.limits.header_timeout = Duration::from_secs(1)).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: lane\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    conn.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Kept alive after its answer, then silent.
    assert!(closed_within(&mut conn, Duration::from_secs(10)).await, "an idle kept-alive connection stays open");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_connections_beyond_the_cap_are_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = server_with(&db, |s| s.limits.max_connections = 4).await;
    let base = base_url(&server);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut over = TcpStream::connect(server.addr).await.unwrap();
    let refused = answer(&mut over, Duration::from_secs(5)).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "the fifth connection is served: {refused:?}");
    // A slot freed is a slot served.
    drop(idle.pop());
    eventually("a connection is served again", || async {
        reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    drop(idle);
    eventually("the refusal is counted", || async {
        metric(&base, "hotfix_lane_connections_refused_total").await.is_some_and(|n| n >= 1.0)
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_despite_a_held_partial_request() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = server_with(&db, |s| {
        // Neither timeout cuts these clients off: only the shutdown grace can.
        s.limits.header_timeout = Duration::from_secs(120);
        s.limits.body_timeout = Duration::from_secs(120);
        s.limits.shutdown_grace = Duration::from_secs(1);
    })
    .await;
    let mut partial_head = TcpStream::connect(server.addr).await.unwrap();
    partial_head.write_all(b"POST /webhooks/github HTTP/1.1\r\nHost: lane\r\nX-GitHub-").await.unwrap();
    let mut partial_body = TcpStream::connect(server.addr).await.unwrap();
    let headers = [("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "held"), ("X-Hub-Signature-256", FORGED)];
    partial_body.write_all(&request_head(&headers, 1000)).await.unwrap();
    partial_body.write_all(b"{\"ref\":").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(15), server.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown still waits for the held requests after 15 s (grace 1 s)");
    assert!(started.elapsed() >= Duration::from_millis(900), "the held requests were given their grace");
    drop((partial_head, partial_body));
}

#[tokio::test]
async fn a_made_up_event_name_does_not_become_a_metric_label() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = common::start_server(&db).await;
    let base = base_url(&server);
    let client = reqwest::Client::new();
    let body = br#"{"zen":"x"}"#.to_vec();
    for i in 0..20 {
        // Unsigned, under a known and an invented name; then signed, under an invented name.
        for event in ["pull_request".to_string(), format!("made-up-{i}")] {
            let resp = client
                .post(format!("{base}/webhooks/github"))
                .header("X-GitHub-Event", &event)
                .header("X-GitHub-Delivery", format!("d-{i}"))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401);
        }
        let (status, _) =
            Delivery::new(&format!("signed-made-up-{i}"), &format!("s-{i}"), body.clone()).send(&client, &base).await;
        assert_eq!(status, 200, "an event the lane ignores");
    }
    let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("made-up"), "{text}");
    let mut series: Vec<&str> = text.lines().filter(|l| l.starts_with("hotfix_lane_deliveries_total")).collect();
    series.sort();
    assert_eq!(
        series,
        vec![
            r#"hotfix_lane_deliveries_total{forge="github",event="other",outcome="ignored"} 20"#,
            r#"hotfix_lane_deliveries_total{forge="github",event="other",outcome="unauthorized"} 40"#,
        ],
        "refused requests are counted without the name they claim"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pull_request_number_above_i64_max_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = common::start_server(&db).await;
    let base = base_url(&server);
    let client = reqwest::Client::new();
    let above: u64 = i64::MAX as u64 + 1;
    // Every id or number the lane stores, in the payloads that carry them.
    let paths: [(&str, &str, &[&str]); 5] = [
        ("pull_request", "labeled.json", &["pull_request", "number"]),
        ("pull_request", "labeled.json", &["repository", "id"]),
        ("pull_request", "labeled.json", &["sender", "id"]),
        ("issue_comment", "created.with-installation.json", &["installation", "id"]),
        ("issue_comment", "created.json", &["comment", "id"]),
    ];
    for (i, (event, file, path)) in paths.into_iter().enumerate() {
        for (n, value) in [above, u64::MAX].into_iter().enumerate() {
            let mut body = common::json_fixture(&format!("github/{event}/{file}"));
            let (last, parents) = path.split_last().unwrap();
            parents.iter().fold(&mut body, |v, key| &mut v[*key])[*last] = value.into();
            let delivery = Delivery::new(event, &format!("big-{i}-{n}"), serde_json::to_vec(&body).unwrap());
            let (status, answer) = delivery.send(&client, &base).await;
            assert_eq!(status, 400, "{event} {path:?} = {value}: {answer}");
            assert!(answer["detail"].as_str().unwrap().contains("above the largest id"), "{answer}");
        }
    }
    assert_eq!(server.store.delivery_count().await.unwrap(), 0);
    // The largest number a BIGINT holds is still a number.
    let mut body = common::json_fixture("github/pull_request/labeled.json");
    body["pull_request"]["number"] = i64::MAX.into();
    let (status, answer) =
        Delivery::new("pull_request", "max", serde_json::to_vec(&body).unwrap()).send(&client, &base).await;
    assert_eq!(status, 202, "{answer}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn guessing_the_admin_token_length_learns_nothing() {
    const TOKEN: &str = "s3cret-admin-token-of-32-bytes!!";
    let db = TestDb::new(Backend::Sqlite).await;
    let server = server_with(&db, |s| s.admin_token = Some(TOKEN.into())).await;
    let base = base_url(&server);
    let client = reqwest::Client::new();
    // Wrong tokens of every length, prefixes of the real one among them: one and the same answer.
    let mut answers = std::collections::BTreeSet::new();
    for len in 0..=2 * TOKEN.len() {
        for guess in [TOKEN.chars().cycle().take(len).collect::<String>(), "x".repeat(len)] {
            if guess == TOKEN {
                continue;
            }
            let resp = client.get(format!("{base}/api/audit")).bearer_auth(&guess).send().await.unwrap();
            answers.insert((resp.status().as_u16(), resp.text().await.unwrap()));
        }
    }
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers.first().unwrap().0, 401);
    let ok = client.get(format!("{base}/api/audit")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    server.shutdown().await.unwrap();

    // Nor does the time a refusal takes: a wrong token of the right length and one of another
    // length cost the same (comparing the tokens themselves returns at once on unequal lengths).
    let token = AdminToken::new(TOKEN);
    let same_length = "x".repeat(TOKEN.len());
    let fastest = |guess: &str| {
        (0..20)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..2_000 {
                    assert!(!token.matches(std::hint::black_box(guess)));
                }
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let (right, short) = (fastest(&same_length), fastest("x"));
    let ratio = right.as_secs_f64() / short.as_secs_f64();
    assert!((1.0 / 3.0..3.0).contains(&ratio), "right length {right:?}, one byte {short:?}");
}

async fn audit_pages_with_limit_and_before(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    write_audit(&store, 250).await;
    drop(store);
    let server = server_with(&db, |s| s.admin_token = Some("admin".into())).await;
    let base = base_url(&server);
    let client = reqwest::Client::new();
    let get = |query: String| {
        let client = client.clone();
        let url = format!("{base}/api/audit{query}");
        async move {
            let resp = client.get(url).bearer_auth("admin").send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let details = |page: &Value| -> Vec<String> {
        page.as_array().unwrap().iter().map(|e| e["detail"].as_str().unwrap().to_string()).collect()
    };
    // Asking for everything gets the newest page of the default size, oldest first.
    let (status, newest) = get(String::new()).await;
    assert_eq!(status, 200);
    assert_eq!(details(&newest), (150..250).map(|i| format!("entry {i}")).collect::<Vec<_>>());
    // `before` walks back from the smallest id of a page.
    let mut seen = details(&newest);
    let mut before = newest[0]["id"].as_i64().unwrap();
    loop {
        let (status, page) = get(format!("?limit=60&before={before}")).await;
        assert_eq!(status, 200);
        let Some(first) = page.as_array().unwrap().first() else { break };
        assert!(page.as_array().unwrap().len() <= 60);
        before = first["id"].as_i64().unwrap();
        seen.splice(0..0, details(&page));
    }
    assert_eq!(seen, (0..250).map(|i| format!("entry {i}")).collect::<Vec<_>>(), "every entry once, in order");
    for bad in ["?limit=0", "?limit=1001", "?limit=all", "?before=-3", "?before=x"] {
        assert_eq!(get(bad.to_string()).await.0, 400, "{bad}");
    }
    assert_eq!(details(&get("?limit=1000".into()).await.1).len(), 250);
    server.shutdown().await.unwrap();
}

/// `n` audit entries, written as one job's completion (the way the lane writes them).
async fn write_audit(store: &Store, n: usize) {
    let job = NewJob {
        kind: "test".into(),
        ordering_key: "k".into(),
        payload: serde_json::json!({}),
        delivery_id: None,
        max_attempts: 1,
        run_at: 0,
    };
    store.enqueue(&job, 0).await.unwrap();
    let claimed = store.claim("test", 0, 60_000).await.unwrap().unwrap();
    let writes: Vec<Write> = (0..n)
        .map(|i| {
            Write::Audit(AuditEntry {
                at: i as i64,
                forge: "github".into(),
                repo: "o/r".into(),
                number: Some(1),
                actor: "alice".into(),
                action: "test".into(),
                sha: None,
                detail: format!("entry {i}"),
            })
        })
        .collect();
    assert!(store.complete(&claimed, &writes, 1).await.unwrap());
}

async fn a_flood_of_tracked_changes_is_swept_a_page_at_a_time(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let job = NewJob {
        kind: "test".into(),
        ordering_key: "k".into(),
        payload: serde_json::json!({}),
        delivery_id: None,
        max_attempts: 1,
        run_at: 0,
    };
    store.enqueue(&job, 0).await.unwrap();
    let claimed = store.claim("test", 0, 60_000).await.unwrap().unwrap();
    // More changes than a page holds, over several repositories.
    let writes: Vec<Write> = (0..1_234)
        .map(|i| Write::LaneState {
            forge: "github".into(),
            repo_id: i % 3,
            number: i,
            state: serde_json::json!({ "n": i }),
            read: None,
        })
        .collect();
    assert!(store.complete(&claimed, &writes, 10).await.unwrap());
    let mut states = store.lane_states_since("github", 0);
    let mut seen = Vec::new();
    while let Some(state) = states.next().await.unwrap() {
        seen.push(state["n"].as_i64().unwrap());
    }
    seen.sort();
    assert_eq!(seen, (0..1_234).collect::<Vec<_>>(), "each change once");
    assert!(store.lane_states_since("github", 11).next().await.unwrap().is_none(), "the age bound holds");
}

crate::on_both_backends!(audit_pages_with_limit_and_before, a_flood_of_tracked_changes_is_swept_a_page_at_a_time);

/// A TCP port that accepts connections and never answers on them.
fn black_hole() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let keeper = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(64).collect();
        drop(held);
    });
    (addr, keeper)
}

#[tokio::test]
async fn a_hung_github_api_does_not_pin_workers_forever() {
    let (api, _keeper) = black_hole();
    let db = TestDb::new(Backend::Sqlite).await;
    let server = server_with(&db, |s| {
        s.github_api_url = format!("http://{api}");
        s.github_auth = Some(GitHubAuth::Token("t".into()));
        s.runner.job_timeout = Duration::from_secs(1);
        // No retry within the test: the one stopped attempt is what it looks at.
        s.runner.backoff = Backoff { base: Duration::from_secs(600), cap: Duration::from_secs(600) };
    })
    .await;
    let base = base_url(&server);
    let client = reqwest::Client::new();
    let delivery = Delivery::fixture("pull_request", "labeled.json", "hangs");
    assert_eq!(delivery.send(&client, &base).await.0, 202);
    let store = server.store.clone();
    eventually("the hung attempt is stopped at the job deadline", || async {
        store
            .jobs_in_state("queued")
            .await
            .unwrap()
            .iter()
            .any(|j| j.attempts == 1 && j.last_error.as_deref().is_some_and(|e| e.contains("job deadline")))
    })
    .await;
    assert!(metric(&base, r#"hotfix_lane_job_timeouts_total{kind="delivery"}"#).await.is_some_and(|n| n >= 1.0));
    assert_eq!(metric(&base, "hotfix_lane_workers_busy").await, Some(0.0), "no worker is left pinned");
    let stopped = tokio::time::timeout(Duration::from_secs(15), server.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown waits for the hung API");
}

#[test]
fn a_git_remote_that_never_answers_is_killed() {
    let (remote, _keeper) = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let mirrors = Mirrors::new(dir.path().to_path_buf(), u64::MAX).with_git_timeout(Duration::from_secs(1));
    let (done, fetched) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mirror = mirrors.open("repo").unwrap();
        let url = format!("http://{remote}/o/r.git");
        let _ = done.send(mirror.fetch(&url, &Credentials::default(), &["+refs/heads/*:refs/heads/*".into()]));
    });
    let fetched = fetched.recv_timeout(Duration::from_secs(20)).expect("git still runs after 20 s (limit 1 s)");
    let err = fetched.expect_err("nothing was fetched").to_string();
    assert!(err.contains("killed after"), "{err}");
}

#[tokio::test]
async fn reading_process_arguments_finds_no_secret_given_by_file_and_a_flag_secret_draws_a_warning() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const FLAG_SECRET: &str = "flag-secret-hunter2";
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    // Lines of the log up to "listening", and the address.
    let start = |args: &[&str], env: &[(&str, &std::path::Path)]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotfix-lane"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--database-url", &db.url])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = Vec::new();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the server exited before listening").unwrap();
            let entry: Value = serde_json::from_str(&line).unwrap_or_default();
            log.push(line);
            if entry["message"] == "listening" {
                break entry["addr"].as_str().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        (child, addr, log.join("\n"))
    };

    let (mut child, _, log) = start(&["--github-webhook-secret", FLAG_SECRET], &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(log.contains("--github-webhook-secret was given on the command line"), "{log}");
    assert!(log.contains("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET_FILE"), "{log}");
    assert!(!log.contains(FLAG_SECRET), "the secret itself is logged: {log}");

    let (mut child, addr, log) = start(&[], &[("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET_FILE", &secret_file)]);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    let delivery = Delivery::fixture("pull_request", "opened.json", "from-file");
    let (status, _) = delivery.send(&reqwest::Client::new(), &format!("http://{addr}")).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 202, "deliveries signed with the file's secret are accepted");
    assert!(!String::from_utf8_lossy(&cmdline).contains(SECRET), "the secret is in the process arguments");
    assert!(!log.contains("command line"), "no warning without a secret flag: {log}");
}
