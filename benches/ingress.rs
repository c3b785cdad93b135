//! Ingress benchmark: acknowledged deliveries per second and ack latency (p50/p99) for a real
//! ~28 KB `pull_request` payload from 64 concurrent senders on loopback, against the release
//! `hotfix-lane serve` process on SQLite and on PostgreSQL, each durable and with the fsync
//! switched off (to show what durability costs). Ratios are against SQLite-durable, measured in
//! the same run.
//!
//! `cargo bench --bench ingress` — environment: `BENCH_SECONDS` (default 10), `BENCH_SENDERS`
//! (64), `HOTFIX_LANE_TEST_POSTGRES_URL` (default the local test database).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotfix_lane::ingress::signature::sign;

const BIN: &str = env!("CARGO_BIN_EXE_hotfix-lane");
const SECRET: &str = "bench-secret";

struct Result {
    name: &'static str,
    acked: usize,
    failed: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start(database_url: &str, durable: bool) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--database-url",
        database_url,
    ])
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

async fn load(
    url: String,
    body: Arc<Vec<u8>>,
    senders: usize,
    seconds: f64,
    tag: &str,
) -> (Vec<Duration>, usize, f64) {
    let signature = sign(SECRET.as_bytes(), &body);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (url, body, signature, tag) = (
            url.clone(),
            body.clone(),
            signature.clone(),
            tag.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut latencies, mut failed, mut i) = (Vec::new(), 0usize, 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
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
    let pool = sqlx::PgPool::connect(base)
        .await
        .expect("PostgreSQL for the benchmark");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
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
        sqlx::query(&format!("DROP SCHEMA {s} CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a short smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let seconds: f64 = if smoke {
        1.0
    } else {
        env_or("BENCH_SECONDS", 10.0)
    };
    let senders: usize = env_or("BENCH_SENDERS", 64);
    let pg = std::env::var("HOTFIX_LANE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let body = Arc::new(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github/pull_request/opened.json"
        ))
        .unwrap(),
    );
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
            format!(
                "sqlite://{}",
                dir.path().join(format!("bench-{i}.db")).display()
            )
        };
        let (mut child, endpoint) = start(&url, durable);
        // Warm up connections and caches, then measure.
        load(
            endpoint.clone(),
            body.clone(),
            senders,
            1.0,
            &format!("warm{i}"),
        )
        .await;
        let (mut latencies, failed, elapsed) =
            load(endpoint, body.clone(), senders, seconds, &format!("run{i}")).await;
        child.kill().ok();
        child.wait().ok();
        latencies.sort();
        results.push(Result {
            name,
            acked: latencies.len(),
            failed,
            seconds: elapsed,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
        });
    }
    drop_postgres_schemas(&pg).await;

    println!(
        "\ningress: {} B pull_request payload, {senders} concurrent senders, {seconds} s per setup{}",
        body.len(),
        if smoke { " (smoke run)" } else { "" }
    );
    println!(
        "{:<22} {:>10} {:>9} {:>9} {:>9} {:>8} {:>16}",
        "setup", "acked/s", "p50 ms", "p99 ms", "acked", "failed", "vs sqlite durable"
    );
    let baseline = results[0].acked as f64 / results[0].seconds;
    for r in &results {
        let rate = r.acked as f64 / r.seconds;
        println!(
            "{:<22} {:>10.0} {:>9.2} {:>9.2} {:>9} {:>8} {:>15.2}x",
            r.name,
            rate,
            r.p50_ms,
            r.p99_ms,
            r.acked,
            r.failed,
            rate / baseline
        );
    }
    assert!(
        results.iter().all(|r| r.failed == 0),
        "some deliveries were not acknowledged"
    );
}
