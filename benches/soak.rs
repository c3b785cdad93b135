//! Soak: the release `hotfix-lane serve` as a process for an hour under a steady open-loop
//! load, to see whether anything grows that should stay flat (memory, file descriptors, job
//! latency) and how fast what must grow (the database) grows.
//!
//! The server runs on SQLite (the default; `SOAK_BACKEND=postgres` for the local PostgreSQL
//! server, in a schema of its own) with its GitHub API pointed at the loopback fake GitHub,
//! behind a small proxy that answers every call 30 ms late (`SOAK_API_DELAY_MS`), as a real
//! GitHub would be far away. Deliveries are signed real payloads, sent open loop at
//! `SOAK_RATE` per second (default 200) across 1,000 changes (`SOAK_CHANGES`): each change walks
//! through a hotfix's life, one delivery every `SOAK_CHANGES / SOAK_RATE` seconds — opened,
//! pushed (`synchronize`), an unpinned check green, labelled `hotfix` by a responder (the
//! grant), a commit status from CI, a comment, the smoke check green (the merge), another check
//! and status after the merge — then starts over as a new pull request. A delivery not
//! acknowledged with a 2xx is sent again, as GitHub's redelivery would.
//!
//! Every 10 s (`SOAK_SAMPLE_SECONDS`) it writes one row to `target/soak/soak.csv`: the server's
//! RSS and open fds, the database's size on disk (SQLite: the file, its WAL and shared memory),
//! the jobs finished in the window and their latency from delivery to done (p50, p99: the jobs
//! table's `created_at` → `finished_at`), the deliveries acknowledged in the window and their ack
//! p99 (from the scheduled send, so a stall counts in full), redeliveries, queued / running / dead
//! jobs, merges so far, the server's warnings and errors, the machine's load average (other
//! work on the machine shows there), and whether the load was still being sent (0: the queue
//! draining after it). `bench/soak-plot.py` draws it.
//!
//! `cargo bench --bench soak` — `SOAK_SECONDS` (default 3600), `SOAK_WORKERS` (job workers,
//! default 96: at 30 ms a call, the load keeps about 60 busy), `SOAK_CSV` (default `target/soak/soak.csv`). `cargo test --benches` runs 15 s.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use common::fake_github::FakeGitHub;
use common::github::{check_event, comment_event, pr_event, rfc3339, status_event};
use common::lane::{POLICY, REPO};
use common::{Delivery, SECRET};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");
const AUTHOR: &str = "Codertocat";
const RESPONDER: &str = "alice";
const SMOKE: &str = "Octocoders-linter";
const POSTMORTEM: u64 = 50;
const MERGE_POLICY: &str = "[responders]\nusers = [\"Codertocat\", \"alice\"]\n[merge]\nsmoke_checks = [\"Octocoders-linter\"]\nmethod = \"squash\"\n";
/// Pull request numbers start above the postmortem issue's.
const FIRST_NUMBER: u64 = 1000;
/// The deliveries of one change's life, in order.
const SCRIPT: [Step; 10] = [
    Step::Opened,
    Step::Pushed,
    Step::Check("lint"),
    Step::Labelled,
    Step::Status("ci/build"),
    Step::Comment,
    Step::Check(SMOKE),
    Step::Check("unit"),
    Step::Status("deploy/preview"),
    Step::Comment,
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[derive(Clone, Copy)]
enum Step {
    Opened,
    Pushed,
    Check(&'static str),
    Labelled,
    Status(&'static str),
    Comment,
}

/// One of the changes the load walks through their lives.
struct Slot {
    number: u64,
    pushes: u64,
    step: usize,
}

impl Slot {
    fn head(&self) -> String {
        format!("{:020x}{:020x}", self.number, self.pushes)
    }
}

/// Pull request `number` as the fake serves it: the fixture's, on its own branch and head.
fn pull(number: u64, head: &str, labels: &[&str]) -> Value {
    let mut pull = common::json_fixture("github/pull_request/labeled.json")["pull_request"].clone();
    pull["number"] = number.into();
    pull["id"] = (279_000_000 + number).into();
    pull["head"]["sha"] = head.into();
    pull["head"]["ref"] = format!("fix-{number}").into();
    pull["labels"] = labels.iter().map(|l| json!({ "name": l })).collect();
    pull["body"] = format!("Postmortem: #{POSTMORTEM}").into();
    pull
}

/// A completed, green `check_run` delivery for `name` on the change's head.
fn check_delivery(number: u64, head: &str, name: &str) -> Value {
    let mut event = check_event(head, name, "success");
    let run = &mut event["check_run"];
    run["id"] = (fastrand::u64(1..1 << 40)).into();
    run["check_suite"]["head_sha"] = head.into();
    for path in ["/pull_requests/0", "/check_suite/pull_requests/0"] {
        let pull = run.pointer_mut(path).expect("the fixture names its pull request");
        pull["number"] = number.into();
        pull["head"]["sha"] = head.into();
        pull["head"]["ref"] = format!("fix-{number}").into();
    }
    event
}

/// Plays the slot's next move on the fake and returns the delivery GitHub would send for it.
fn next_delivery(fake: &FakeGitHub, slot: &mut Slot, changes: u64) -> (&'static str, Value) {
    if slot.step == SCRIPT.len() {
        // The change's life is over: the slot starts a new pull request. The fake forgets the
        // old one only generations later (see `forget_before`), once the lane is long done with
        // it even when it fell behind.
        *slot = Slot { number: slot.number + changes, pushes: 0, step: 0 };
    }
    let step = SCRIPT[slot.step];
    slot.step += 1;
    let number = slot.number;
    match step {
        Step::Opened => {
            let pull = pull(number, &slot.head(), &[]);
            fake.repo(REPO, |r| {
                r.pulls.insert(number, pull.clone());
                r.issues.insert(number, (vec![], true));
            });
            ("pull_request", pr_event("opened", &pull, None, AUTHOR))
        }
        Step::Pushed => {
            let before = slot.head();
            slot.pushes += 1;
            let after = slot.head();
            let pull = pull(number, &after, &[]);
            fake.repo(REPO, |r| r.pulls.insert(number, pull.clone()));
            let mut event = pr_event("synchronize", &pull, None, AUTHOR);
            (event["before"], event["after"]) = (before.into(), after.into());
            ("pull_request", event)
        }
        Step::Labelled => {
            let pull = pull(number, &slot.head(), &["hotfix"]);
            let at = rfc3339(now_ms());
            fake.repo(REPO, |r| {
                r.pulls.insert(number, pull.clone());
                r.issues.insert(number, (vec!["hotfix".into()], true));
                r.label_events.push((number, "hotfix".into(), RESPONDER.into(), at));
            });
            ("pull_request", pr_event("labeled", &pull, Some("hotfix"), RESPONDER))
        }
        Step::Check(name) => {
            let head = slot.head();
            fake.post_check_run(REPO, &head, name, "success", "github-actions");
            ("check_run", check_delivery(number, &head, name))
        }
        Step::Status(context) => {
            let head = slot.head();
            fake.post_status(REPO, &head, context, "success", "ci-bot");
            ("status", status_event(&head, context, "success", "ci-bot"))
        }
        Step::Comment => ("issue_comment", comment_event(number, "Thanks, looking at the graphs now.", AUTHOR)),
    }
}

/// Forgets, on the fake, the pull requests numbered below `cutoff` and everything about them, so
/// that the fake's lookups stay as fast in the last minute as in the first. A head names its
/// pull request in its first 20 hex digits.
fn forget_before(fake: &FakeGitHub, cutoff: u64) {
    let old = |number: u64| (FIRST_NUMBER..cutoff).contains(&number);
    let old_sha = |sha: &str| sha.get(..20).and_then(|p| u64::from_str_radix(p, 16).ok()).is_some_and(old);
    fake.repo(REPO, |r| {
        r.pulls.retain(|n, _| !old(*n));
        r.issues.retain(|n, _| !old(*n));
        r.statuses.retain(|s| !old_sha(&s.sha));
        r.check_runs.retain(|s| !old_sha(&s.sha));
        r.comments.retain(|c| !old(c.number));
        r.label_events.retain(|e| !old(e.0));
        r.merges.retain(|m| !old(m.0));
        r.merge_requests.retain(|m| !old(m.0));
        r.pull_labels.retain(|n, _| !old(*n));
    });
    // The fake's request log is for tests that count calls; here it would only grow.
    fake.with(|w| {
        w.calls.clear();
        w.uris.clear();
        w.auth.clear();
        w.written.clear();
    });
}

/// Forwards every request to the fake GitHub, `delay` late.
#[derive(Clone)]
struct Slow {
    upstream: String,
    delay: Duration,
    client: reqwest::Client,
}

async fn slow(State(slow): State<Slow>, request: Request) -> Response {
    tokio::time::sleep(slow.delay).await;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = slow.client.request(parts.method.clone(), format!("{}{path}", slow.upstream));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" && name != "connection" {
            forward = forward.header(name, value);
        }
    }
    match forward.body(body).send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    response = response.header(name, value);
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            response.body(Body::from(bytes)).unwrap()
        }
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn start_slow_proxy(upstream: &str, delay: Duration) -> String {
    let state = Slow { upstream: upstream.to_string(), delay, client: reqwest::Client::new() };
    let app = axum::Router::new().fallback(slow).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// What the server's log said that an operator would look at; the first 10,000 such lines are
/// also kept in `serve-warnings.log` beside the CSV.
struct LogCounts {
    warnings: AtomicU64,
    errors: AtomicU64,
    last: Mutex<VecDeque<String>>,
    file: Mutex<std::fs::File>,
}

/// Starts `serve`; returns the process and its base URL.
fn spawn_server(database_url: &str, api: &str, workers: usize, mirrors: &Path, log: Arc<LogCounts>) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--database-url", database_url])
        .env("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET", SECRET)
        .env("HOTFIX_LANE_GITHUB_API_URL", api)
        .env("HOTFIX_LANE_GITHUB_TOKEN", "test-token")
        .env("HOTFIX_LANE_WORKERS", workers.to_string())
        .env("HOTFIX_LANE_MIRROR_DIR", mirrors)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hotfix-lane serve");
    let (addr, lines) = common::listening(&mut child);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let level = if line.contains("\"level\":\"WARN\"") {
                &log.warnings
            } else if line.contains("\"level\":\"ERROR\"") {
                &log.errors
            } else {
                continue;
            };
            if level.fetch_add(1, Ordering::Relaxed) < 10_000 {
                let _ = writeln!(log.file.lock().unwrap(), "{line}");
            }
            let mut last = log.last.lock().unwrap();
            last.push_back(line);
            if last.len() > 5 {
                last.pop_front();
            }
        }
    });
    (child, format!("http://{addr}"))
}

/// The deliveries acknowledged since the last sample: ack latency each, and redeliveries.
#[derive(Default)]
struct Acks {
    latencies: Mutex<Vec<f64>>,
    redelivered: AtomicU64,
    acked: AtomicU64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("").to_string()
}

/// Where the database lives, to read its size and its jobs table.
enum Db {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

/// Jobs finished in `[from, to)`: their latencies (ms), and the counts by state.
struct JobFigures {
    latencies: Vec<f64>,
    queued: i64,
    running: i64,
    dead: i64,
    bytes: u64,
}

const LATENCY_SQL: &str =
    "SELECT finished_at - created_at FROM jobs WHERE state = 'done' AND finished_at >= $1 AND finished_at < $2";
const COUNTS_SQL: &str = "SELECT COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) FROM jobs";

impl Db {
    async fn figures(&self, from: i64, to: i64) -> JobFigures {
        match self {
            Db::Sqlite(path) => {
                // A connection of its own each time, closed at once: a reader left open would
                // keep the server's checkpoints from resetting the WAL.
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
                let pool =
                    sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
                let latencies: Vec<(i64,)> =
                    sqlx::query_as(LATENCY_SQL).bind(from).bind(to).fetch_all(&pool).await.unwrap();
                let (queued, running, dead): (i64, i64, i64) =
                    sqlx::query_as(COUNTS_SQL).fetch_one(&pool).await.unwrap();
                pool.close().await;
                let bytes = ["", "-wal", "-shm"]
                    .iter()
                    .map(|s| std::fs::metadata(format!("{}{s}", path.display())).map_or(0, |m| m.len()))
                    .sum();
                JobFigures {
                    latencies: latencies.into_iter().map(|(l,)| l as f64).collect(),
                    queued,
                    running,
                    dead,
                    bytes,
                }
            }
            Db::Postgres { url, schema } => {
                let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.unwrap();
                let latencies: Vec<(i64,)> =
                    sqlx::query_as(LATENCY_SQL).bind(from).bind(to).fetch_all(&pool).await.unwrap();
                let (queued, running, dead): (i64, i64, i64) =
                    sqlx::query_as(COUNTS_SQL).fetch_one(&pool).await.unwrap();
                let (bytes,): (i64,) = sqlx::query_as(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
                )
                .bind(schema)
                .fetch_one(&pool)
                .await
                .unwrap();
                pool.close().await;
                JobFigures {
                    latencies: latencies.into_iter().map(|(l,)| l as f64).collect(),
                    queued,
                    running,
                    dead,
                    bytes: bytes as u64,
                }
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a short smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let seconds: u64 = if smoke { 15 } else { env_or("SOAK_SECONDS", 3600) };
    let rate: f64 = env_or("SOAK_RATE", 200.0);
    let changes: u64 = env_or("SOAK_CHANGES", 1000);
    let workers: usize = env_or("SOAK_WORKERS", 96);
    let every = Duration::from_secs(if smoke { 5 } else { env_or("SOAK_SAMPLE_SECONDS", 10) });
    let delay = Duration::from_millis(env_or("SOAK_API_DELAY_MS", 30));
    let csv_path = PathBuf::from(std::env::var("SOAK_CSV").unwrap_or_else(|_| {
        format!("{}/soak/soak.csv", std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
    }));
    std::fs::create_dir_all(csv_path.parent().unwrap()).unwrap();

    let fake = FakeGitHub::start().await;
    fake.repo(REPO, |r| {
        r.files.insert(("master".into(), POLICY.into()), MERGE_POLICY.into());
        r.issues.insert(POSTMORTEM, (vec!["postmortem".into()], false));
    });
    let api = start_slow_proxy(&fake.url, delay).await;

    let dir = tempfile::tempdir().unwrap();
    let (database_url, db) = match std::env::var("SOAK_BACKEND").as_deref() {
        Ok("postgres") => {
            let base = common::postgres_url();
            let schema = format!("hl_soak_{:x}", fastrand::u64(..));
            let admin = sqlx::PgPool::connect(&base).await.expect("PostgreSQL for SOAK_BACKEND=postgres");
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.unwrap();
            admin.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options[search_path]={schema}");
            (url.clone(), Db::Postgres { url, schema })
        }
        Ok("sqlite") | Err(_) => {
            let path = dir.path().join("lane.db");
            (format!("sqlite://{}", path.display()), Db::Sqlite(path))
        }
        Ok(other) => panic!("SOAK_BACKEND={other}: sqlite or postgres"),
    };
    let file = std::fs::File::create(csv_path.with_file_name("serve-warnings.log")).unwrap();
    let log = Arc::new(LogCounts {
        warnings: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        last: Mutex::new(VecDeque::new()),
        file: Mutex::new(file),
    });
    let (mut server, base) = spawn_server(&database_url, &api, workers, &dir.path().join("mirrors"), log.clone());
    let pid = server.id();
    let backend = if matches!(db, Db::Sqlite(_)) { "sqlite" } else { "postgres" };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let header = format!(
        "# soak: {backend}, {rate}/s open loop over {changes} changes, {workers} job workers, API delay {} ms, \
         {seconds} s, {cpus} cores shared with other work (see load1)",
        delay.as_millis()
    );
    println!("{header}");
    let mut csv = std::fs::File::create(&csv_path).unwrap();
    writeln!(csv, "{header}").unwrap();
    writeln!(
        csv,
        "t_s,rss_kib,fds,db_bytes,jobs_done,job_p50_ms,job_p99_ms,acked,ack_p50_ms,ack_p99_ms,redelivered,\
         queued,running,dead,merges,warnings,errors,load1,sending"
    )
    .unwrap();

    // The load: one scheduler walking the changes round robin on a fixed schedule; each send is
    // a task of its own, so a slow answer never delays the next send (open loop).
    let acks = Arc::new(Acks::default());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let load = {
        let (fake, acks, base) = (fake.clone(), acks.clone(), base.clone());
        tokio::spawn(async move {
            let mut slots: Vec<Slot> =
                (0..changes).map(|i| Slot { number: FIRST_NUMBER + i, pushes: 0, step: 0 }).collect();
            let interval = Duration::from_secs_f64(1.0 / rate);
            let mut sends = tokio::task::JoinSet::new();
            for n in 0u64.. {
                let due = started + interval.mul_f64(n as f64);
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let slot = &mut slots[(n % changes) as usize];
                let (event, body) = next_delivery(&fake, slot, changes);
                let delivery = Delivery::new(event, &format!("soak-{n}"), serde_json::to_vec(&body).unwrap());
                let (client, acks, base) = (client.clone(), acks.clone(), base.clone());
                sends.spawn(async move {
                    loop {
                        match delivery.request(&client, &base).send().await {
                            Ok(r) if r.status().is_success() => break,
                            _ => {
                                acks.redelivered.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                    }
                    acks.acked.fetch_add(1, Ordering::Relaxed);
                    acks.latencies.lock().unwrap().push(due.elapsed().as_secs_f64() * 1000.0);
                });
                while sends.try_join_next().is_some() {}
            }
            while sends.join_next().await.is_some() {}
        })
    };

    let mut window_start = now_ms();
    let mut next_sample = started + every;
    let mut last_redelivered = 0;
    loop {
        tokio::time::sleep_until(next_sample.into()).await;
        next_sample += every;
        let window_end = now_ms();
        let jobs = db.figures(window_start, window_end).await;
        window_start = window_end;
        let mut latencies = jobs.latencies;
        latencies.sort_by(f64::total_cmp);
        let mut ack = std::mem::take(&mut *acks.latencies.lock().unwrap());
        ack.sort_by(f64::total_cmp);
        let redelivered = acks.redelivered.load(Ordering::Relaxed);
        let merges = fake.repo(REPO, |r| r.history.len());
        // Two generations back (100 s at the defaults): the fake lists every pull request it
        // holds, open or closed, to the lane's reconcile sweeps.
        let generation = (started.elapsed().as_secs_f64() * rate / (changes as f64 * SCRIPT.len() as f64)) as u64;
        forget_before(&fake, FIRST_NUMBER + generation.saturating_sub(2) * changes);
        let (rss, fds) = (proc_status_kib(pid, "VmRSS:"), open_fds(pid));
        let t = started.elapsed().as_secs();
        let sending = u8::from(!load.is_finished());
        let row = format!(
            "{t},{rss},{fds},{},{},{:.1},{:.1},{},{:.2},{:.2},{},{},{},{},{merges},{},{},{},{sending}",
            jobs.bytes,
            latencies.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            ack.len(),
            percentile(&ack, 0.50),
            percentile(&ack, 0.99),
            redelivered - last_redelivered,
            jobs.queued,
            jobs.running,
            jobs.dead,
            log.warnings.load(Ordering::Relaxed),
            log.errors.load(Ordering::Relaxed),
            load_average(),
        );
        last_redelivered = redelivered;
        writeln!(csv, "{row}").unwrap();
        csv.flush().unwrap();
        println!("{row}");
        if let Some(status) = server.try_wait().unwrap() {
            panic!("the server exited during the soak: {status}; last log lines: {:?}", log.last.lock().unwrap());
        }
        if load.is_finished() && jobs.queued == 0 && jobs.running == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(seconds + 300) {
            println!("the queue did not drain within 5 minutes of the load's end: {} queued", jobs.queued);
            break;
        }
    }
    load.abort();

    let figures = db.figures(0, now_ms() + 1).await;
    let merges = fake.repo(REPO, |r| r.history.len());
    let acked = acks.acked.load(Ordering::Relaxed);
    println!(
        "\nsoak done in {:.0} s: {acked} deliveries acknowledged, {} redeliveries, {} jobs done, {} dead, {merges} merges, \
         {} warnings and {} errors logged; CSV at {}",
        started.elapsed().as_secs_f64(),
        acks.redelivered.load(Ordering::Relaxed),
        figures.latencies.len(),
        figures.dead,
        log.warnings.load(Ordering::Relaxed),
        log.errors.load(Ordering::Relaxed),
        csv_path.display()
    );
    for line in log.last.lock().unwrap().iter() {
        println!("last logged: {line}");
    }
    server.kill().ok();
    server.wait().ok();
    if let Db::Postgres { schema, .. } = &db {
        let admin = sqlx::PgPool::connect(&common::postgres_url()).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await.unwrap();
        admin.close().await;
    }
    assert_eq!(figures.dead, 0, "jobs died during the soak");
    assert_eq!(figures.queued, 0, "the queue never drained");
    assert!(merges > 0, "the soak merged nothing: the load did not reach the lane");
}
