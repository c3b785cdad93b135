//! Shared test harness: fresh databases on both backends, an in-process server on loopback,
//! signed deliveries built from the real fixtures.
#![allow(dead_code)]

pub mod fake_github;
pub mod fake_gitlab;
pub mod faults;
pub mod git;
pub mod github;
pub mod gitlab;
pub mod gitlab_hook;
pub mod hotfixes;
pub mod lane;
pub mod scenario;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hotfix_lane::clock::{Clock, SystemClock};
use hotfix_lane::ingress::signature::sign;
use hotfix_lane::ingress::Limits;
use hotfix_lane::jobs::RunnerOptions;
use hotfix_lane::server::{self, Running, ServeSettings};
use hotfix_lane::store::{Store, StoreOptions};

pub const SECRET: &str = "test-webhook-secret";

/// The PostgreSQL server every development machine and CI run has; tests that need it fail
/// (never skip) when it is unreachable.
pub fn postgres_url() -> String {
    std::env::var("HOTFIX_LANE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test: a temp SQLite file, or a fresh PostgreSQL schema that
/// is dropped again when the test is done.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else { return };
        // Drop runs inside the test's runtime, which cannot block: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&postgres_url()).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("lane.db").display());
                TestDb { url, _dir: Some(dir), schema: None }
            }
            Backend::Postgres => {
                let base = postgres_url();
                let schema = format!("hl_test_{:016x}", fastrand::u64(..));
                let admin = sqlx::PgPool::connect(&base)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {base} is required for these tests: {e}"));
                sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.expect("create schema");
                admin.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                TestDb { url: format!("{base}{sep}options[search_path]={schema}"), _dir: None, schema: Some(schema) }
            }
        }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.url, &StoreOptions::default()).await.expect("open store")
    }
}

/// Defines `#[tokio::test]`s that run one async test body against SQLite and PostgreSQL.
///
/// With `forge NAME = DRIVER:` first, the bodies are scenarios generic over the forge
/// (`async fn name<D: ForgeDriver>(backend: Backend)`), run with `DRIVER` (a `crate::` path) in
/// a module `NAME`: `NAME::sqlite::name`, `NAME::postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    (forge $forge:ident = $driver:ty: $($name:ident),+ $(,)?) => {
        mod $forge {
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::super::$name::<$driver>($crate::common::Backend::Sqlite).await
                    }
                )+
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::super::$name::<$driver>($crate::common::Backend::Postgres).await
                    }
                )+
            }
        }
    };
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )+
        }
    };
}

pub fn settings(db: &TestDb) -> ServeSettings {
    ServeSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.url.clone(),
        github_webhook_secrets: vec![SECRET.to_string()],
        github_api_url: "http://127.0.0.1:9".into(),
        github_auth: None,
        gitlab: None,
        admin_token: None,
        dashboard_token: None,
        dashboard_plain_http: false,
        // Tests run the sweep themselves, when they mean to.
        reconcile_every: None,
        limits: Limits { body_timeout: Duration::from_secs(2), ..Limits::default() },
        runner: RunnerOptions { poll: Duration::from_millis(50), ..RunnerOptions::default() },
        max_attempts: 3,
        durable: true,
        mirrors: hotfix_lane::backport::mirror::Mirrors::new(
            std::env::temp_dir().join(format!("hl-test-mirrors-{:016x}", fastrand::u64(..))),
            1 << 30,
        ),
        forge_timeouts: Default::default(),
    }
}

pub async fn start_server(db: &TestDb) -> Running {
    start_server_with(settings(db), Arc::new(SystemClock)).await
}

pub async fn start_server_with(settings: ServeSettings, clock: Arc<dyn Clock>) -> Running {
    server::start_with_clock(settings, clock).await.expect("server starts")
}

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// A fixture parsed as JSON, to edit into the event a test needs.
pub fn json_fixture(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// A signed GitHub delivery, ready to send.
pub struct Delivery {
    pub event: String,
    pub id: String,
    pub body: Vec<u8>,
}

impl Delivery {
    pub fn new(event: &str, id: &str, body: Vec<u8>) -> Delivery {
        Delivery { event: event.into(), id: id.into(), body }
    }

    pub fn fixture(event: &str, file: &str, id: &str) -> Delivery {
        Delivery::new(event, id, fixture(&format!("github/{event}/{file}")))
    }

    pub fn request(&self, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        client
            .post(format!("{base}/webhooks/github"))
            .header("X-GitHub-Event", &self.event)
            .header("X-GitHub-Delivery", &self.id)
            .header("X-Hub-Signature-256", sign(SECRET.as_bytes(), &self.body))
            .header("Content-Type", "application/json")
            .body(self.body.clone())
    }

    pub async fn send(&self, client: &reqwest::Client, base: &str) -> (u16, serde_json::Value) {
        let resp = self.request(client, base).send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }
}

pub fn base_url(running: &Running) -> String {
    format!("http://{}", running.addr)
}

/// Polls until `check` holds or the deadline passes (for work done by background workers).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the lane's queue is drained, failing fast on a failed or dead job (the tests'
/// clocks are fixed, so a retry would wait forever).
pub async fn settle(store: &Store) {
    eventually("the queue to drain", || async {
        let failed: Vec<_> =
            store.jobs_in_state("queued").await.unwrap().into_iter().filter_map(|j| j.last_error).collect();
        assert!(failed.is_empty(), "a job failed: {failed:?}");
        let c = store.job_counts().await.unwrap();
        c.queued == 0 && c.running == 0
    })
    .await;
    assert_eq!(store.job_counts().await.unwrap().dead, 0, "a job died: {:?}", store.jobs_in_state("dead").await);
}

/// Reads a `serve` process's JSON log (its stderr, piped) until it says where it listens;
/// returns that address and the rest of the log, which the caller must keep draining so the
/// child never blocks on a full pipe.
#[allow(dead_code)]
pub fn listening(
    child: &mut std::process::Child,
) -> (String, std::io::Lines<std::io::BufReader<std::process::ChildStderr>>) {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr piped")).lines();
    loop {
        let line = lines.next().expect("the server exited before listening").expect("a log line");
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if entry["message"] == "listening" {
            return (entry["addr"].as_str().expect("the address").to_string(), lines);
        }
    }
}
