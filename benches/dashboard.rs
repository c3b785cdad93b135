//! The hotfix page's server time per view: 10,000 hotfixes' milestones in the store (90 days of
//! them), then each view fetched over loopback HTTP with a valid session cookie, one request at
//! a time — the on-call view, the executive view over 30 and 90 days, one timeline — p50 and
//! p90 over `BENCH_REQUESTS` requests each (after one to warm up), as ratios against
//! `GET /healthz` measured in the same run. On SQLite, and on PostgreSQL when
//! `HOTFIX_LANE_TEST_POSTGRES_URL` is set.
//!
//! `cargo bench --bench dashboard` — environment: `BENCH_HOTFIXES` (default 10000),
//! `BENCH_REQUESTS` (30).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, TestDb};
use hotfix_lane::clock::{Clock, SystemClock};
use hotfix_lane::lane::lifecycle::{Detail, LifecycleEvent, Milestone};

const TOKEN: &str = "bench-dashboard-token";
const MIN: i64 = 60_000;
const DAY: i64 = 24 * 60 * MIN;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn event(i: u64, milestone: Milestone, at: i64, key: &str, detail: Detail) -> LifecycleEvent {
    LifecycleEvent {
        forge: "github".into(),
        repo: format!("acme/service-{}", i % 20),
        number: i,
        milestone,
        key: key.into(),
        at,
        actor: format!("responder-{}", i % 7),
        detail,
    }
}

/// One hotfix's life: entered, authorized, green, merged; most deployed, some backported,
/// most postmortems closed, a few reverted.
fn hotfix(i: u64, entered: i64) -> Vec<LifecycleEvent> {
    let title = Some(format!("Fix incident {i}"));
    let merged_at = entered + (20 + (i % 90) as i64) * MIN;
    let mut out = vec![
        event(
            i,
            Milestone::Entered,
            entered,
            "",
            Detail { title: title.clone(), severity: Some(format!("{}", 1 + i % 3)), ..Detail::default() },
        ),
        event(i, Milestone::Granted, entered + 5 * MIN, "sha", Detail::default()),
        event(i, Milestone::SmokeGreen, entered + (10 + (i % 30) as i64) * MIN, "sha", Detail::default()),
        event(
            i,
            Milestone::Merged,
            merged_at,
            "",
            Detail {
                title,
                hotfix: true,
                self_authorized: i.is_multiple_of(11),
                due_at: Some(merged_at + 7 * DAY),
                files: vec![format!("src/mod{}.rs", i % 50)],
                ..Detail::default()
            },
        ),
    ];
    if !i.is_multiple_of(5) {
        out.push(event(i, Milestone::Deployed, merged_at + 40 * MIN, "production", Detail::default()));
    }
    if i.is_multiple_of(4) {
        let d =
            Detail { reference: Some(format!("{}", 100_000 + i)), due_at: Some(merged_at + DAY), ..Detail::default() };
        out.push(event(i, Milestone::BackportOpened, merged_at + 10 * MIN, "release-1", d));
    }
    if !i.is_multiple_of(3) {
        out.push(event(i, Milestone::PostmortemClosed, merged_at + 3 * DAY, "", Detail::default()));
    }
    if i.is_multiple_of(17) {
        let d = Detail { by: Some(i + 1_000_000), ..Detail::default() };
        out.push(event(i, Milestone::Reverted, merged_at + DAY, "", d));
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

struct Timing {
    p50_ms: f64,
    p90_ms: f64,
}

async fn measure(client: &reqwest::Client, url: &str, cookie: &str, requests: usize) -> Timing {
    let mut times = Vec::with_capacity(requests);
    for i in 0..requests + 1 {
        let start = Instant::now();
        let res = client.get(url).header("Cookie", cookie).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        res.bytes().await.unwrap();
        if i >= 1 {
            times.push(start.elapsed());
        }
    }
    times.sort();
    Timing { p50_ms: percentile(&times, 0.5), p90_ms: percentile(&times, 0.9) }
}

async fn run(backend: Backend, hotfixes: u64, requests: usize) {
    let db = TestDb::new(backend).await;
    let now = SystemClock.now_ms();
    {
        let store = db.store().await;
        let started = Instant::now();
        let span = 90 * DAY - DAY;
        let events: Vec<LifecycleEvent> =
            (1..=hotfixes).flat_map(|i| hotfix(i, now - 90 * DAY + (i as i64 * span) / hotfixes as i64)).collect();
        for chunk in events.chunks(2000) {
            store.record_lifecycle(chunk).await.unwrap();
        }
        println!("{backend:?}: stored {} milestones of {hotfixes} hotfixes in {:.1?}", events.len(), started.elapsed());
        store.close().await;
    }
    let mut settings = common::settings(&db);
    settings.dashboard_token = Some(TOKEN.into());
    settings.dashboard_plain_http = true;
    let server = common::start_server_with(settings, Arc::new(SystemClock)).await;
    let base = common::base_url(&server);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = client
        .post(format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "login");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();

    let health = measure(&client, &format!("{base}/healthz"), &cookie, requests.max(100)).await;
    let views = [
        ("on-call /", "/".to_string()),
        ("executive 30 d", "/executive?days=30".to_string()),
        ("executive 90 d", "/executive?days=90".to_string()),
        (
            "timeline",
            format!("/timeline?forge=github&repo=acme%2Fservice-{}&number={}", (hotfixes / 2) % 20, hotfixes / 2),
        ),
    ];
    println!("{backend:?}, {hotfixes} hotfixes, {requests} requests per view:");
    println!("  {:<16} {:>9} {:>9} {:>12} {:>12}", "view", "p50 ms", "p90 ms", "p50/healthz", "p90/healthz");
    println!("  {:<16} {:>9.2} {:>9.2} {:>12} {:>12}", "GET /healthz", health.p50_ms, health.p90_ms, "1", "1");
    for (name, path) in views {
        let t = measure(&client, &format!("{base}{path}"), &cookie, requests).await;
        println!(
            "  {:<16} {:>9.2} {:>9.2} {:>12.0} {:>12.0}",
            name,
            t.p50_ms,
            t.p90_ms,
            t.p50_ms / health.p50_ms,
            t.p90_ms / health.p90_ms
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::main]
async fn main() {
    let hotfixes = env_or("BENCH_HOTFIXES", 10_000u64);
    let requests = env_or("BENCH_REQUESTS", 30usize);
    run(Backend::Sqlite, hotfixes, requests).await;
    if std::env::var("HOTFIX_LANE_TEST_POSTGRES_URL").is_ok() {
        run(Backend::Postgres, hotfixes, requests).await;
    } else {
        println!("PostgreSQL: skipped, HOTFIX_LANE_TEST_POSTGRES_URL is not set");
    }
}
