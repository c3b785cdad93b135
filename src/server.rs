//! `hotfix-lane serve`: wires the store, ingress, job runner and operational endpoints together,
//! and shuts them down in order.

mod http;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{watch, Notify};

use crate::clock::{Clock, SystemClock};
use crate::dispatch::Dispatch;
use crate::forge::both::Clients;
use crate::forge::github::{GitHubAuth, GitHubClients};
use crate::forge::gitlab::GitLab;
use crate::ingress::github::GithubIngress;
use crate::ingress::gitlab::GitlabIngress;
use crate::ingress::signature::Secrets;
use crate::ingress::{self, BodyBudget, Ingress, Limits};
use crate::jobs::{Runner, RunnerOptions};
use crate::metrics::Metrics;
use crate::store::{DeliveryWriter, Store, StoreOptions};

/// Everything `serve` needs, already resolved from flags, environment and config file.
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Current secret first, then any still accepted during a rotation.
    pub github_webhook_secrets: Vec<String>,
    /// REST API base: `https://api.github.com`, a GitHub Enterprise `/api/v3`, or a test fake.
    pub github_api_url: String,
    /// How the lane acts on GitHub (statuses or check runs, comments, reads). Without it
    /// nothing is reported.
    pub github_auth: Option<GitHubAuth>,
    pub limits: Limits,
    pub runner: RunnerOptions,
    pub max_attempts: i64,
    pub durable: bool,
    /// GitLab, when the lane serves it too (or only it).
    pub gitlab: Option<GitLabSettings>,
    /// Bearer token of the admin API; the API is off without one. It also logs in to the page.
    pub admin_token: Option<String>,
    /// Read-only token of the hotfix page. With neither it nor the admin token the page is off.
    pub dashboard_token: Option<String>,
    /// The page is served over plain HTTP (local use, no TLS proxy in front): its session
    /// cookie is then sent without `Secure`, which browsers would otherwise drop.
    pub dashboard_plain_http: bool,
    /// How often open changes are re-read from the forge (and once at start-up); `None` turns
    /// the sweep off.
    pub reconcile_every: Option<Duration>,
    /// Where backports are made.
    pub mirrors: crate::backport::mirror::Mirrors,
    /// How long a call to GitHub or GitLab may take.
    pub forge_timeouts: crate::forge::Timeouts,
}

/// How the lane meets one GitLab instance.
#[derive(Clone)]
pub struct GitLabSettings {
    /// The instance: `https://gitlab.com`, a self-managed one, or a test fake (the API is under
    /// `/api/v4`).
    pub url: String,
    /// What the lane acts with (a project or group access token, or a bot user's personal
    /// token; scope `api`). Without it deliveries are stored and tracked, nothing is reported.
    pub token: Option<String>,
    /// `X-Gitlab-Token` secret tokens accepted, current first.
    pub webhook_tokens: Vec<String>,
    /// Signing tokens (`whsec_…`): once one is set, deliveries must carry a `webhook-signature`
    /// made with one of them.
    pub signing_tokens: Vec<String>,
}

impl std::fmt::Debug for GitLabSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLabSettings").field("url", &self.url).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "no forge is configured: set HOTFIX_LANE_GITHUB_WEBHOOK_SECRET (or --github-webhook-secret) for GitHub, \
         HOTFIX_LANE_GITLAB_WEBHOOK_TOKEN (or --gitlab-webhook-token) for GitLab, or both"
    )]
    NoForge,
    #[error("invalid GitHub webhook secret: {0}")]
    BadSecret(&'static str),
    #[error("invalid GitLab webhook token: {0}")]
    BadGitlabToken(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Forge(crate::forge::ForgeError),
    #[error("cannot listen on {addr}: {source}{}", bind_hint(source))]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(
        "cannot make backports in the mirror directory {}: {cause}; set HOTFIX_LANE_MIRROR_DIR (or --mirror-dir) \
         to a directory this user may write",
        dir.display()
    )]
    MirrorDir { dir: std::path::PathBuf, cause: String },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What to do about a listener that could not be bound.
fn bind_hint(err: &std::io::Error) -> &'static str {
    match err.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another process listens there (another hotfix-lane?): stop it or set HOTFIX_LANE_LISTEN (or --listen)"
        }
        std::io::ErrorKind::PermissionDenied => "; ports below 1024 need privileges: use a port above 1024",
        std::io::ErrorKind::AddrNotAvailable => "; that address is not one of this machine's",
        _ => "",
    }
}

struct Ops {
    store: Store,
    metrics: Metrics,
    budget: Arc<BodyBudget>,
    shutting_down: AtomicBool,
}

/// A server that is up and listening.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Store,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Begins a graceful shutdown and waits for it to finish.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or(Ok(()))
    }

    /// Waits until the server stops (after `stop` or a fatal error).
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task.await.unwrap_or(Ok(()))
    }

    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Opens the store, binds the listener and starts serving in the background.
pub async fn start(settings: ServeSettings) -> Result<Running, ServeError> {
    start_with_clock(settings, Arc::new(SystemClock)).await
}

pub async fn start_with_clock(settings: ServeSettings, clock: Arc<dyn Clock>) -> Result<Running, ServeError> {
    if settings.github_webhook_secrets.is_empty() && settings.gitlab.is_none() {
        return Err(ServeError::NoForge);
    }
    let github_serves = !settings.github_webhook_secrets.is_empty();
    let github_ingress = match settings.github_webhook_secrets.is_empty() {
        true => None,
        false => Some(GithubIngress {
            secrets: Secrets::new(&settings.github_webhook_secrets).map_err(ServeError::BadSecret)?,
        }),
    };
    // Found now rather than at the first backport, in the middle of an incident.
    settings
        .mirrors
        .check_writable()
        .map_err(|e| ServeError::MirrorDir { dir: settings.mirrors.dir().to_path_buf(), cause: e.to_string() })?;
    let store =
        Store::open(&settings.database_url, &StoreOptions { durable: settings.durable, ..Default::default() }).await?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServeError::Bind { addr: settings.listen, source })?;
    let addr = listener.local_addr()?;
    let metrics = Metrics::default();
    let wake = Arc::new(Notify::new());
    let (writer, writer_task) = DeliveryWriter::spawn(store.clone(), settings.max_attempts, wake.clone());
    let budget = Arc::new(BodyBudget::new(&settings.limits));
    let ingress = Arc::new(Ingress {
        writer,
        github: github_ingress,
        gitlab: settings
            .gitlab
            .as_ref()
            .map(|g| GitlabIngress::new(&g.webhook_tokens, &g.signing_tokens))
            .transpose()
            .map_err(ServeError::BadGitlabToken)?,
        metrics: metrics.clone(),
        limits: settings.limits,
        budget: budget.clone(),
        clock: clock.clone(),
    });
    let ops =
        Arc::new(Ops { store: store.clone(), metrics: metrics.clone(), budget, shutting_down: AtomicBool::new(false) });
    let token = settings.admin_token.as_deref().map(crate::api::AdminToken::new);
    let api = Arc::new(crate::api::Api { store: store.clone(), token, clock: clock.clone() });
    let web = Arc::new(crate::web::Web {
        store: store.clone(),
        clock: clock.clone(),
        keys: crate::web::session::Keys::new(
            [settings.admin_token.as_deref(), settings.dashboard_token.as_deref()].into_iter().flatten(),
        ),
        secure_cookie: !settings.dashboard_plain_http,
        links: crate::web::ForgeLinks::new(&settings.github_api_url, settings.gitlab.as_ref().map(|g| g.url.as_str())),
    });
    let app = Router::new()
        .route("/webhooks/github", post(ingress::github::webhook))
        .route("/webhooks/gitlab", post(ingress::gitlab::webhook))
        .with_state(ingress)
        .merge(Router::new().route("/api/audit", get(crate::api::audit)).with_state(api))
        .merge(crate::web::router(web))
        .merge(
            Router::new()
                .route("/healthz", get(|| async { "ok" }))
                .route("/readyz", get(readyz))
                .route("/metrics", get(metrics_text))
                .with_state(ops.clone()),
        );

    let github = match settings.github_auth {
        Some(auth) => Some(
            GitHubClients::with_timeouts(&settings.github_api_url, auth, settings.forge_timeouts)
                .map_err(ServeError::Forge)?,
        ),
        None if github_serves => {
            tracing::warn!("no GitHub token configured: deliveries are stored and tracked, nothing is reported");
            None
        }
        None => None,
    };
    let gitlab = match settings.gitlab.as_ref() {
        Some(GitLabSettings { url, token: Some(token), .. }) => {
            Some(GitLab::with_timeouts(url, token, settings.forge_timeouts).map_err(ServeError::Forge)?)
        }
        Some(_) => {
            tracing::warn!("no GitLab token configured: deliveries are stored and tracked, nothing is reported");
            None
        }
        None => None,
    };
    let reports = github.is_some() || gitlab.is_some();
    let forge = reports.then_some(Clients { github, gitlab });
    let (stop, stopped) = watch::channel(false);
    let limits = settings.limits;
    let owner = settings.runner.owner.clone();
    let runner = Runner {
        store: store.clone(),
        handler: Dispatch::new(store.clone(), forge, clock.clone(), metrics.clone(), settings.mirrors.clone()),
        clock,
        metrics: metrics.clone(),
        options: settings.runner.clone(),
        wake,
    };
    let task_store = store.clone();
    let task_clock = runner.clock.clone();
    let reconcile_wake = runner.wake.clone();
    let reconcile_every = settings.reconcile_every;
    let task = tokio::spawn(async move {
        let mut runner_task = tokio::spawn(runner.run(stopped.clone()));
        tokio::spawn(prune_periodically(task_store.clone(), task_clock.clone(), stopped.clone()));
        if let (true, Some(every)) = (reports, reconcile_every) {
            let sweep = reconcile_periodically(
                task_store.clone(),
                task_clock.clone(),
                reconcile_wake,
                metrics.clone(),
                every,
                stopped.clone(),
            );
            tokio::spawn(sweep);
        }
        tracing::info!(%addr, "listening");
        let serving = tokio::spawn(http::serve(listener, app, limits, metrics, stopped.clone()));
        let _ = stopped.clone().wait_for(|stop| *stop).await;
        ops.shutting_down.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + limits.shutdown_grace;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = serving.await;
        // Every request handler is gone, so the writer's last batch is committed once it ends.
        let _ = writer_task.await;
        // Jobs get what is left of the grace. Any still running then are dropped, as a crash
        // would drop them, and their leases handed back so that another replica runs them now.
        if tokio::time::timeout_at(deadline, &mut runner_task).await.is_err() {
            runner_task.abort();
            let _ = runner_task.await;
            match task_store.release_leases(&owner, task_clock.now_ms()).await {
                Ok(n) => tracing::warn!(released = n, "shutdown grace is over: stopped the jobs still running"),
                Err(err) => tracing::warn!(error = %err, "could not release job leases"),
            }
        }
        task_store.close().await;
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Running { addr, store, stop, task })
}

/// How long finished jobs and their deliveries are kept: well past GitHub's three-day window for
/// redelivering a webhook, so a redelivery is still recognised as a duplicate.
pub const RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// How often open changes the lane watches are re-read from GitHub (and once at start-up).
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5 * 60);

async fn reconcile_periodically(
    store: Store,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    metrics: crate::metrics::Metrics,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        // Unmerged backports, for the dashboard that says which ones went stale.
        match crate::dispatch::pending_backports(&store, clock.now_ms()).await {
            Ok(pending) => {
                let stale = pending.iter().filter(|p| p.backport.stale).count();
                metrics.backports_unmerged(pending.len() - stale, stale);
            }
            Err(err) => tracing::warn!(error = %err, "counting unmerged backports failed"),
        }
        match crate::report::gauges(&store, clock.now_ms()).await {
            Ok(g) => {
                metrics.postmortems(g.pending, g.overdue);
                metrics.lanes_waiting(&g.waiting, g.oldest);
            }
            Err(err) => tracing::warn!(error = %err, "counting postmortems and waiting hotfixes failed"),
        }
        for forge in crate::lane::event::Forge::ALL {
            match crate::dispatch::reconcile(&store, forge, clock.now_ms()).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(changes = n, forge = forge.as_str(), "reconciling open changes with the forge");
                    wake.notify_one();
                }
                Err(err) => tracing::warn!(error = %err, forge = forge.as_str(), "reconcile sweep failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

async fn prune_periodically(store: Store, clock: Arc<dyn Clock>, mut stop: watch::Receiver<bool>) {
    loop {
        let before = clock.now_ms() - RETENTION.as_millis() as i64;
        match store.prune(before).await {
            Ok((0, 0)) => {}
            Ok((jobs, deliveries)) => tracing::info!(jobs, deliveries, "pruned finished work"),
            Err(err) => tracing::warn!(error = %err, "pruning failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

async fn readyz(State(ops): State<Arc<Ops>>) -> impl IntoResponse {
    if ops.shutting_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match tokio::time::timeout(Duration::from_secs(2), ops.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

async fn metrics_text(State(ops): State<Arc<Ops>>) -> impl IntoResponse {
    let counts = ops.store.job_counts().await.ok();
    let text = ops.metrics.render(counts, ops.budget.in_flight());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
}
