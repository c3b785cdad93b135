//! The lane harness: a server with a fixed clock, acting on a fake GitHub, fed signed
//! deliveries; each delivery is followed until every job it caused has run.

use std::sync::Arc;

use super::fake_github::FakeGitHub;
use super::{base_url, Backend, Delivery, TestDb};
use hotfix_lane::clock::ManualClock;
use hotfix_lane::forge::github::GitHubAuth;
use hotfix_lane::server::Running;
use hotfix_lane::store::Store;
use serde_json::Value;

pub const REPO: &str = "Codertocat/Hello-World";
pub const POLICY: &str = ".github/hotfix-lane.toml";
/// 2026-11-26 13:24 UTC.
pub const NOW: i64 = 1_795_699_440_000;

pub struct Lane {
    pub fake: FakeGitHub,
    pub clock: Arc<ManualClock>,
    pub server: Running,
    pub client: reqwest::Client,
    pub base: String,
    pub next_delivery: std::sync::atomic::AtomicU32,
    /// Whether each delivery waits until every job it caused has run (on by default); a test
    /// driving many changes at once turns it off and waits by itself.
    pub settle_each: bool,
    pub _db: TestDb,
}

impl Lane {
    pub async fn start(backend: Backend, policy: &str) -> Lane {
        Lane::start_as(backend, policy, GitHubAuth::Token("test-token".into())).await
    }

    pub async fn start_as(backend: Backend, policy: &str, auth: GitHubAuth) -> Lane {
        Lane::start_on(FakeGitHub::start().await, backend, policy, auth).await
    }

    /// On a fake GitHub of the caller's choosing, such as [`FakeGitHub::start_enterprise`].
    pub async fn start_on(fake: FakeGitHub, backend: Backend, policy: &str, auth: GitHubAuth) -> Lane {
        Lane::start_configured(fake, backend, policy, auth, |_| {}).await
    }

    /// With settings of the test's own beside the harness's (the page's tokens, say).
    pub async fn start_configured(
        fake: FakeGitHub,
        backend: Backend,
        policy: &str,
        auth: GitHubAuth,
        configure: impl FnOnce(&mut hotfix_lane::server::ServeSettings),
    ) -> Lane {
        fake.repo(REPO, |r| r.files.insert(("master".into(), POLICY.into()), policy.into()));
        let db = TestDb::new(backend).await;
        let mut settings = super::settings(&db);
        settings.github_api_url = fake.url.clone();
        settings.github_auth = Some(auth);
        configure(&mut settings);
        // A fixed clock: timestamps in what the lane writes are part of the snapshots.
        let clock = Arc::new(ManualClock::new(NOW));
        let server = super::start_server_with(settings, clock.clone()).await;
        let base = base_url(&server);
        let client = reqwest::Client::new();
        Lane { fake, clock, server, client, base, next_delivery: 0.into(), settle_each: true, _db: db }
    }

    pub fn store(&self) -> &Store {
        &self.server.store
    }

    /// Sends a delivery and waits until every job it caused has run.
    pub async fn send(&self, event: &str, body: Value) {
        let n = self.next_delivery.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let delivery = Delivery::new(event, &format!("lane-{n}"), serde_json::to_vec(&body).unwrap());
        self.deliver(&delivery).await;
    }

    pub async fn deliver(&self, delivery: &Delivery) {
        let (status, answer) = delivery.send(&self.client, &self.base).await;
        assert!(status == 202 || status == 200, "{status}: {answer}");
        if self.settle_each {
            self.settle().await;
        }
    }

    pub async fn settle(&self) {
        crate::common::settle(self.store()).await
    }

    pub fn status(&self, sha: &str, context: &str) -> (String, String) {
        let s = self.fake.status(REPO, sha, context).unwrap_or_else(|| panic!("no {context} status on {sha}"));
        (s.state, s.description)
    }

    pub fn comments(&self) -> Vec<String> {
        self.fake.comments(REPO, 2).into_iter().map(|c| c.body).collect()
    }
}
