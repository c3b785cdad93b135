//! Ingress benchmark: acknowledged deliveries per second and ack latency (p50/p99) for a real
//! ~28 KB `pull_request` payload from 64 concurrent senders on loopback, against the release
//! `hotfix-lane serve` process on SQLite and on PostgreSQL, each durable and with the fsync
//! switched off (to show what durability costs); and GitLab's real Merge Request Hook
//! (`X-Gitlab-Token`, `Idempotency-Key`) on both databases, durable. Ratios are against
//! SQLite-durable GitHub deliveries, measured in the same run.
//!
//! `cargo bench --bench ingress` — environment: `BENCH_SECONDS` (default 10), `BENCH_SENDERS`
//! (64), `HOTFIX_LANE_TEST_POSTGRES_URL` (default the local test database), and
//! `BENCH_TARGET=http://HOST:PORT` to load an already running server (secret `bench-secret`)
//! instead, e.g. one under a profiler.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotfix_lane::ingress::signature::sign;

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");
const SECRET: &str = "bench-secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn start(database_url: &str, durable: bool) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--database-url", database_url])
        .env("HOTFIX_LANE_GITHUB_WEBHOOK_SECRET", SECRET)
        // Never reached: intake reads nothing from the forge.
        .env("HOTFIX_LANE_GITLAB_URL", "http://127.0.0.1:9")
        .env("HOTFIX_LANE_GITLAB_TOKEN", "glpat-bench")
        .env("HOTFIX_LANE_GITLAB_WEBHOOK_TOKEN", SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !durable {
        cmd.arg("--unsafe-skip-fsync");
    }
    let mut child = cmd.spawn().expect("start hotfix-lane serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited early").unwrap();
        let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if log["message"] == "listening" {
            break log["addr"].as_str().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

/// How a forge delivers: its endpoint, the headers every delivery carries, and the header that
/// names each one.
#[derive(Clone)]
struct Hook {
    forge: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    id_header: &'static str,
    body: Arc<Vec<u8>>,
}

impl Hook {
    fn github() -> Hook {
        let body = fixture("github/pull_request/opened.json");
        let headers = vec![
            ("X-GitHub-Event", "pull_request".to_string()),
            ("X-Hub-Signature-256", sign(SECRET.as_bytes(), &body)),
            ("Content-Type", "application/json".to_string()),
        ];
        Hook { forge: "GitHub", path: "/webhooks/github", headers, id_header: "X-GitHub-Delivery", body }
    }

    fn gitlab() -> Hook {
        let headers = vec![
            ("X-Gitlab-Event", "Merge Request Hook".to_string()),
            ("X-Gitlab-Token", SECRET.to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        let body = fixture("gitlab/merge_request/update.json");
        Hook { forge: "GitLab", path: "/webhooks/gitlab", headers, id_header: "Idempotency-Key", body }
    }
}

fn fixture(rel: &str) -> Arc<Vec<u8>> {
    Arc::new(std::fs::read(format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap())
}

/// Sends for `seconds` from `senders` concurrent connections. Closed loop (`rate: None`): each
/// sender sends its next delivery as soon as the last is answered, which finds the saturation
/// throughput. Open loop (`Some(total per second)`): each sender keeps a fixed schedule, and
/// latency counts from the scheduled time, so a stall shows up in full instead of slowing the
/// senders down (no coordinated omission).
async fn load(
    server: String,
    hook: Hook,
    senders: usize,
    seconds: f64,
    rate: Option<f64>,
    tag: &str,
) -> (Vec<Duration>, usize, f64) {
    let url = format!("{server}{}", hook.path);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (url, hook, tag) = (url.clone(), hook.clone(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut latencies, mut failed, mut i) = (Vec::new(), 0usize, 0u64);
            let interval = rate.map(|r| Duration::from_secs_f64(senders as f64 / r));
            // Spread the senders' schedules over one interval.
            let start = Instant::now() + interval.map_or(Duration::ZERO, |iv| iv.mul_f64(s as f64 / senders as f64));
            while Instant::now() < deadline {
                let t = match interval {
                    Some(iv) => {
                        let due = start + iv * i as u32;
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let mut request = client.post(&url).header(hook.id_header, format!("{tag}-{s}-{i}"));
                for (name, value) in &hook.headers {
                    request = request.header(*name, value);
                }
                let resp = request.body(hook.body.as_ref().clone()).send().await;
                i += 1;
                match resp {
                    Ok(r) if r.status() == 202 => latencies.push(t.elapsed()),
                    _ => failed += 1,
                }
            }
            (latencies, failed)
        }));
    }
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (l, f) = t.await.unwrap();
        all.extend(l);
        failed += f;
    }
    (all, failed, started.elapsed().as_secs_f64())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn fresh_postgres_schema(base: &str) -> String {
    let schema = format!("hl_bench_{:x}", fastrand::u64(..));
    let pool = sqlx::PgPool::connect(base).await.expect("PostgreSQL for the benchmark");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

async fn drop_postgres_schemas(base: &str) {
    let pool = sqlx::PgPool::connect(base).await.unwrap();
    let schemas: Vec<(String,)> =
        sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'hl_bench_%'")
            .fetch_all(&pool)
            .await
            .unwrap();
    for (s,) in schemas {
        sqlx::query(&format!("DROP SCHEMA {s} CASCADE")).execute(&pool).await.unwrap();
    }
}

/// One measured run.
struct Run {
    acked: usize,
    failed: usize,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn measure(server: &str, hook: &Hook, senders: usize, seconds: f64, rate: Option<f64>, tag: &str) -> Run {
    let (mut latencies, failed, elapsed) = load(server.to_string(), hook.clone(), senders, seconds, rate, tag).await;
    latencies.sort();
    Run {
        acked: latencies.len(),
        failed,
        rate: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a short smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let seconds: f64 = if smoke { 1.0 } else { env_or("BENCH_SECONDS", 10.0) };
    let senders: usize = env_or("BENCH_SENDERS", 64);
    let offered: f64 = env_or("BENCH_RATE", 2000.0);
    let pg = std::env::var("HOTFIX_LANE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (github, gitlab) = (Hook::github(), Hook::gitlab());
    if let Ok(target) = std::env::var("BENCH_TARGET") {
        let tag = format!("t{}", fastrand::u32(..));
        for (what, rate) in [("saturation", None), ("fixed rate", Some(offered))] {
            let r = measure(&target, &github, senders, seconds, rate, &format!("{tag}{what}")).await;
            println!(
                "{target} {what}: {:.0} acked/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
                r.rate, r.p50_ms, r.p99_ms, r.failed
            );
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    let setups: [(&'static str, bool, bool, &Hook); 6] = [
        ("sqlite, durable", false, true, &github),
        ("sqlite, fsync off", false, false, &github),
        ("postgres, durable", true, true, &github),
        ("postgres, fsync off", true, false, &github),
        ("sqlite, durable", false, true, &gitlab),
        ("postgres, durable", true, true, &gitlab),
    ];
    for (i, (name, postgres, durable, hook)) in setups.into_iter().enumerate() {
        let url = if postgres {
            fresh_postgres_schema(&pg).await
        } else {
            format!("sqlite://{}", dir.path().join(format!("bench-{i}.db")).display())
        };
        let (mut child, endpoint) = start(&url, durable);
        // Warm up connections and caches, then measure.
        measure(&endpoint, hook, senders, 1.0, None, &format!("warm{i}")).await;
        // The fixed rate first: the saturation run leaves a backlog of jobs that the runner
        // then drains, which is not the steady state a fixed rate is meant to show.
        let fixed = measure(&endpoint, hook, senders, seconds, Some(offered), &format!("fix{i}")).await;
        let saturation = measure(&endpoint, hook, senders, seconds, None, &format!("sat{i}")).await;
        child.kill().ok();
        child.wait().ok();
        results.push((format!("{}: {name}", hook.forge), saturation, fixed));
    }
    drop_postgres_schemas(&pg).await;

    println!(
        "\ningress: {} B pull_request payload (GitHub), {} B Merge Request Hook (GitLab), {senders} concurrent senders, {seconds} s per run{}",
        github.body.len(),
        gitlab.body.len(),
        if smoke { " (smoke run)" } else { "" }
    );
    println!(
        "{:<28} | {:>25} {:>9} | {:>26}",
        "",
        "saturation (closed loop)",
        "",
        format!("offered {offered:.0}/s (open loop)")
    );
    println!(
        "{:<28} | {:>9} {:>7} {:>7} {:>9} | {:>9} {:>7} {:>8}",
        "setup", "acked/s", "p50 ms", "p99 ms", "vs base", "acked/s", "p50 ms", "p99 ms"
    );
    let baseline = results[0].1.rate;
    for (name, sat, fixed) in &results {
        println!(
            "{:<28} | {:>9.0} {:>7.2} {:>7.2} {:>8.2}x | {:>9.0} {:>7.2} {:>8.2}",
            name,
            sat.rate,
            sat.p50_ms,
            sat.p99_ms,
            sat.rate / baseline,
            fixed.rate,
            fixed.p50_ms,
            fixed.p99_ms
        );
    }
    let failed: usize = results.iter().map(|(_, s, f)| s.failed + f.failed).sum();
    let acked: usize = results.iter().map(|(_, s, f)| s.acked + f.acked).sum();
    println!("{acked} acknowledged, {failed} not acknowledged");
    assert_eq!(failed, 0, "some deliveries were not acknowledged");
}
