//! Ingress benchmark: acknowledged deliveries per second and ack latency (p50/p99) for a real
//! ~28 KB `pull_request` payload from 64 concurrent senders on loopback, against the release
//! `hotfix-lane serve` process on SQLite and on PostgreSQL, each durable and with the fsync
//! switched off (to show what durability costs). Ratios are against SQLite-durable, measured in
//! the same run.
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
    (child, format!("http://{addr}/webhooks/github"))
}

/// Sends for `seconds` from `senders` concurrent connections. Closed loop (`rate: None`): each
/// sender sends its next delivery as soon as the last is answered, which finds the saturation
/// throughput. Open loop (`Some(total per second)`): each sender keeps a fixed schedule, and
/// latency counts from the scheduled time, so a stall shows up in full instead of slowing the
/// senders down (no coordinated omission).
async fn load(
    url: String,
    body: Arc<Vec<u8>>,
    senders: usize,
    seconds: f64,
    rate: Option<f64>,
    tag: &str,
) -> (Vec<Duration>, usize, f64) {
    let signature = sign(SECRET.as_bytes(), &body);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (url, body, signature, tag) = (url.clone(), body.clone(), signature.clone(), tag.to_string());
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
                let resp = client
                    .post(&url)
                    .header("X-GitHub-Event", "pull_request")
                    .header("X-GitHub-Delivery", format!("{tag}-{s}-{i}"))
                    .header("X-Hub-Signature-256", &signature)
                    .header("Content-Type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await;
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

async fn measure(url: &str, body: &Arc<Vec<u8>>, senders: usize, seconds: f64, rate: Option<f64>, tag: &str) -> Run {
    let (mut latencies, failed, elapsed) = load(url.to_string(), body.clone(), senders, seconds, rate, tag).await;
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
    let body = Arc::new(
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github/pull_request/opened.json")).unwrap(),
    );
    if let Ok(target) = std::env::var("BENCH_TARGET") {
        let url = format!("{target}/webhooks/github");
        let tag = format!("t{}", fastrand::u32(..));
        for (what, rate) in [("saturation", None), ("fixed rate", Some(offered))] {
            let r = measure(&url, &body, senders, seconds, rate, &format!("{tag}{what}")).await;
            println!(
                "{target} {what}: {:.0} acked/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
                r.rate, r.p50_ms, r.p99_ms, r.failed
            );
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    let setups: [(&'static str, bool, bool); 4] = [
        ("sqlite, durable", false, true),
        ("sqlite, fsync off", false, false),
        ("postgres, durable", true, true),
        ("postgres, fsync off", true, false),
    ];
    for (i, (name, postgres, durable)) in setups.into_iter().enumerate() {
        let url = if postgres {
            fresh_postgres_schema(&pg).await
        } else {
            format!("sqlite://{}", dir.path().join(format!("bench-{i}.db")).display())
        };
        let (mut child, endpoint) = start(&url, durable);
        // Warm up connections and caches, then measure.
        measure(&endpoint, &body, senders, 1.0, None, &format!("warm{i}")).await;
        // The fixed rate first: the saturation run leaves a backlog of jobs that the runner
        // then drains, which is not the steady state a fixed rate is meant to show.
        let fixed = measure(&endpoint, &body, senders, seconds, Some(offered), &format!("fix{i}")).await;
        let saturation = measure(&endpoint, &body, senders, seconds, None, &format!("sat{i}")).await;
        child.kill().ok();
        child.wait().ok();
        results.push((name, saturation, fixed));
    }
    drop_postgres_schemas(&pg).await;

    println!(
        "\ningress: {} B pull_request payload, {senders} concurrent senders, {seconds} s per run{}",
        body.len(),
        if smoke { " (smoke run)" } else { "" }
    );
    println!(
        "{:<20} | {:>25} {:>9} | {:>26}",
        "",
        "saturation (closed loop)",
        "",
        format!("offered {offered:.0}/s (open loop)")
    );
    println!(
        "{:<20} | {:>9} {:>7} {:>7} {:>9} | {:>9} {:>7} {:>8}",
        "setup", "acked/s", "p50 ms", "p99 ms", "vs base", "acked/s", "p50 ms", "p99 ms"
    );
    let baseline = results[0].1.rate;
    for (name, sat, fixed) in &results {
        println!(
            "{:<20} | {:>9.0} {:>7.2} {:>7.2} {:>8.2}x | {:>9.0} {:>7.2} {:>8.2}",
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
