//! Persistence: deliveries, jobs, lane state and the audit log, on SQLite (default) or PostgreSQL.
//!
//! Both backends run the same query text through sqlx's `Any` driver; the dialects differ only in
//! some migrations (`migrations/<dialect>/`; portable ones live in `migrations/common/`) and in
//! the job-claim lock clause. The test suite runs
//! against both, which is what keeps them from drifting.
//!
//! Durability: the delivery inbox is the one thing that must survive a power failure the moment
//! it is acknowledged, so its commits wait for the disk. Everything else (job claims and
//! completions, lane state, audit entries) is derived from stored deliveries by replayable,
//! idempotent jobs, and commits without its own flush: the next inbox commit (or checkpoint)
//! flushes it. A crash of hotfix-lane itself loses nothing either way.

mod deliveries;
mod jobs;
mod lifecycle;
mod records;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, ConnectOptions, Executor};
use tokio::sync::Notify;

pub use deliveries::{DeliveryWriter, NewDelivery, StoreOutcome, DELIVERY_JOB};
pub use jobs::{ClaimedJob, JobCounts, JobSummary, NewJob, MAX_LEASE_EXPIRIES};
pub use lifecycle::Undeployed;
pub use records::{AuditEntry, LaneStates, LinkedChange, NumberedEntry, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL `{0}`: use `postgres://…`, `sqlite://FILE` or a file path")]
    BadUrl(String),
    /// The database could not be reached or opened; `target` is the file, or the URL without
    /// its password.
    #[error("cannot open the database {target}: {cause}")]
    Open { target: String, cause: String },
    /// A command that only reads found no database where it was pointed.
    #[error(
        "no database at {0}: nothing has been stored there (`hotfix-lane serve` creates it on its first start); \
         point --database-url or HOTFIX_LANE_DATABASE_URL at the database the server uses"
    )]
    Missing(String),
    #[error("storing the batch failed: {0}")]
    BatchFailed(String),
    #[error("the delivery writer has stopped")]
    WriterGone,
    /// A stored row that no longer reads: never taken for "nothing stored".
    #[error("{0}")]
    Corrupt(String),
    /// A lane state changed since the job read it: the job's writes are refused whole, and
    /// the job runs again on the newer facts.
    #[error("{0}")]
    Stale(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How a database is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Acknowledge deliveries only once they are on disk (fsync / synchronous_commit). Only
    /// benchmarks that measure the cost of durability turn this off.
    pub durable: bool,
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { durable: true, max_connections: 8 }
    }
}

#[derive(Clone)]
pub struct Store {
    /// Reads. On PostgreSQL also writes: `writer` is the same pool there.
    pool: AnyPool,
    /// Writes. SQLite admits one writer at a time, and a connection that finds the database
    /// locked sleeps in SQLite's busy handler (milliseconds at a time); funnelling this
    /// process's writes through one connection makes them queue in order instead.
    writer: AnyPool,
    dialect: Dialect,
    durable: bool,
    inbox: Arc<InboxTurn>,
}

/// Gives the delivery inbox priority over background writes on SQLite's one writer connection:
/// acknowledging a webhook waits for at most one background statement, never for a run of them.
#[derive(Default)]
struct InboxTurn {
    waiting: AtomicUsize,
    done: Notify,
}

/// Held while an inbox batch waits for or uses the writer.
struct InboxGuard<'a>(&'a InboxTurn);

impl Drop for InboxGuard<'_> {
    fn drop(&mut self) {
        if self.0.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://hotfix-lane.db";

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store> {
        Store::open_with(url, options, true).await
    }

    /// Opens the database at `url` only if it exists: the operator commands read what the
    /// server stored, and an empty database made by a typo would answer "nothing" instead.
    pub async fn open_existing(url: &str, options: &StoreOptions) -> Result<Store> {
        Store::open_with(url, options, false).await
    }

    async fn open_with(url: &str, options: &StoreOptions, create: bool) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = normalize_url(url)?;
        let target = describe(dialect, &url);
        if dialect == Dialect::Sqlite && !create {
            let path = sqlite_path(&url);
            if !std::path::Path::new(path).exists() {
                let cwd = std::env::current_dir().ok().filter(|_| std::path::Path::new(path).is_relative());
                let place = cwd.map_or_else(String::new, |cwd| format!(" (in {})", cwd.display()));
                return Err(StoreError::Missing(format!("{path}{place}")));
            }
        }
        let connect_options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Open { target: target.clone(), cause: cause(dialect, &url, &e) })?
            .disable_statement_logging();
        probe(dialect, &url, &target, &connect_options).await?;
        let readers = match dialect {
            // Readers never block each other in WAL mode; a few are all that helps.
            Dialect::Sqlite => options.max_connections.min(4),
            Dialect::Postgres => options.max_connections,
        };
        let opening = |e: StoreError| match e {
            StoreError::Db(e) => StoreError::Open { target: target.clone(), cause: cause(dialect, &url, &e) },
            other => other,
        };
        let pool = connect(dialect, &connect_options, options, readers).await.map_err(opening)?;
        let writer = match dialect {
            Dialect::Sqlite => connect(dialect, &connect_options, options, 1).await.map_err(opening)?,
            Dialect::Postgres => pool.clone(),
        };
        let store = Store { pool, writer, dialect, durable: options.durable, inbox: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    /// The writer, for inbox batches: announces the batch so background writes step aside.
    fn inbox_writer(&self) -> (&AnyPool, InboxGuard<'_>) {
        self.inbox.waiting.fetch_add(1, Ordering::SeqCst);
        (&self.writer, InboxGuard(&self.inbox))
    }

    /// The writer, for everything but inbox batches: on SQLite, once no inbox batch is waiting.
    async fn background_writer(&self) -> &AnyPool {
        if self.dialect == Dialect::Sqlite {
            loop {
                let done = self.inbox.done.notified();
                if self.inbox.waiting.load(Ordering::SeqCst) == 0 {
                    break;
                }
                done.await;
            }
        }
        &self.writer
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Cheap reachability check for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    async fn migrate(&self) -> Result<()> {
        let sources: &[(i64, &str, &str, &str)] = &[
            (
                1,
                "foundation",
                include_str!("migrations/sqlite/0001_foundation.sql"),
                include_str!("migrations/postgres/0001_foundation.sql"),
            ),
            (
                2,
                "postmortem links",
                // Portable SQL: one file serves both dialects.
                include_str!("migrations/common/0002_postmortem_links.sql"),
                include_str!("migrations/common/0002_postmortem_links.sql"),
            ),
            (
                3,
                "lane state version",
                include_str!("migrations/common/0003_lane_state_version.sql"),
                include_str!("migrations/common/0003_lane_state_version.sql"),
            ),
            (
                4,
                "lifecycle events",
                include_str!("migrations/common/0004_lifecycle.sql"),
                include_str!("migrations/common/0004_lifecycle.sql"),
            ),
            (
                5,
                "job lease expiries",
                include_str!("migrations/common/0005_job_lease_expiries.sql"),
                include_str!("migrations/common/0005_job_lease_expiries.sql"),
            ),
            (
                6,
                "lifecycle due times",
                include_str!("migrations/sqlite/0006_lifecycle_due.sql"),
                include_str!("migrations/postgres/0006_lifecycle_due.sql"),
            ),
        ];
        let migrations = sources
            .iter()
            .map(|&(version, description, sqlite, postgres)| {
                let sql = match self.dialect {
                    Dialect::Sqlite => sqlite,
                    Dialect::Postgres => postgres,
                };
                Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, Cow::Borrowed(sql), false)
            })
            .collect::<Vec<_>>();
        let migrator = Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT };
        migrator.run(&self.writer).await?;
        Ok(())
    }
}

async fn connect(
    dialect: Dialect,
    connect_options: &AnyConnectOptions,
    options: &StoreOptions,
    max_connections: u32,
) -> Result<AnyPool> {
    let durable = options.durable;
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // Commits do not wait for the disk unless they ask to (see the module docs).
                let setup = match (dialect, durable) {
                    (Dialect::Sqlite, true) => {
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;"
                    }
                    (Dialect::Sqlite, false) => {
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA busy_timeout=10000;"
                    }
                    (Dialect::Postgres, _) => "SET synchronous_commit = off",
                };
                conn.execute(setup).await?;
                Ok(())
            })
        })
        .connect_with(connect_options.clone())
        .await?;
    Ok(pool)
}

/// How long the first connection may take: a host that does not answer is reported in seconds,
/// not after the pool's own wait.
const FIRST_CONNECTION: Duration = Duration::from_secs(5);

/// One connection, made before the pool: the pool retries a refused connection until its
/// acquire timeout and then says only that it timed out, where this says why at once.
async fn probe(dialect: Dialect, url: &str, target: &str, options: &AnyConnectOptions) -> Result<()> {
    let open = |cause| StoreError::Open { target: target.to_string(), cause };
    match tokio::time::timeout(FIRST_CONNECTION, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
            Ok(())
        }
        Ok(Err(e)) => Err(open(cause(dialect, url, &e))),
        Err(_) => Err(open(format!(
            "no answer within {}s from {}; check that the host is reachable from here (DNS, firewall) and \
             that PostgreSQL listens on that port",
            FIRST_CONNECTION.as_secs(),
            host_port(url)
        ))),
    }
}

/// What went wrong, said once, with what to check.
fn cause(dialect: Dialect, url: &str, err: &sqlx::Error) -> String {
    match (dialect, err) {
        (Dialect::Postgres, sqlx::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "connection refused: nothing listens at {}; check that PostgreSQL is running and that the URL's host \
             and port are right",
            host_port(url)
        ),
        (Dialect::Postgres, sqlx::Error::Io(e)) => format!("{e} (at {})", host_port(url)),
        (_, sqlx::Error::PoolTimedOut) => {
            "no connection became free in time; check that the database is up and accepts connections".into()
        }
        (Dialect::Sqlite, sqlx::Error::Database(e)) if e.code().as_deref() == Some("14") => {
            let path = sqlite_path(url);
            let dir = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty());
            let dir = dir.map_or_else(|| "the working directory".to_string(), |d| d.display().to_string());
            format!("{}; check that {dir} exists and that this user may write there", e.message())
        }
        (_, sqlx::Error::Database(e)) => e.message().to_string(),
        (_, other) => other.to_string(),
    }
}

/// The database as a person names it: the SQLite file, or the URL without its password.
fn describe(dialect: Dialect, url: &str) -> String {
    match dialect {
        Dialect::Sqlite => sqlite_path(url).to_string(),
        Dialect::Postgres => redact(url),
    }
}

/// The file of a normalized SQLite URL.
fn sqlite_path(url: &str) -> &str {
    let rest = url.strip_prefix("sqlite://").unwrap_or(url);
    rest.split('?').next().unwrap_or(rest)
}

/// A URL without its password: none in the user part, no `password=` parameter.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => format!("{}@{host}", user.split(':').next().unwrap_or_default()),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> =
                query.split('&').filter(|p| !p.to_ascii_lowercase().starts_with("password=")).collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// `host:port` of a PostgreSQL URL (5432 when it names none).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if host.is_empty() { "localhost" } else { host };
    if host.ends_with(']') || !host.contains(':') {
        format!("{host}:5432")
    } else {
        host.to_string()
    }
}

/// Decides the backend from the URL; a bare path means a SQLite file, created on first run.
fn normalize_url(url: &str) -> Result<(Dialect, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Dialect::Postgres, url.to_string()));
    }
    let path_and_params = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") || url.is_empty() {
        return Err(StoreError::BadUrl(url.to_string()));
    } else {
        url
    };
    let mode = if path_and_params.contains("mode=") {
        ""
    } else if path_and_params.contains('?') {
        "&mode=rwc"
    } else {
        "?mode=rwc"
    };
    Ok((Dialect::Sqlite, format!("sqlite://{path_and_params}{mode}")))
}

/// `($first, …), (…), …`: `rows` groups of `cols` numbered placeholders for a multi-row insert.
fn placeholders(rows: usize, cols: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let group: Vec<String> = (0..cols).map(|c| format!("${}", first + r * cols + c)).collect();
            format!("({})", group.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Milliseconds since the Unix epoch: the one time representation the store uses.
pub type Millis = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_row() {
        assert_eq!(placeholders(2, 3, 2), "($2, $3, $4), ($5, $6, $7)");
        assert_eq!(placeholders(1, 1, 1), "($1)");
    }

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(normalize_url("postgres://u@h/db").unwrap().0, Dialect::Postgres);
        assert_eq!(normalize_url("sqlite://x.db").unwrap(), (Dialect::Sqlite, "sqlite://x.db?mode=rwc".into()));
        assert_eq!(normalize_url("data/x.db").unwrap(), (Dialect::Sqlite, "sqlite://data/x.db?mode=rwc".into()));
        assert_eq!(normalize_url("sqlite:x.db?mode=ro").unwrap().1, "sqlite://x.db?mode=ro");
        assert!(normalize_url("mysql://h/db").is_err());
        assert!(normalize_url("").is_err());
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(redact("postgres://hl:s3cret@db:5432/lane"), "postgres://hl@db:5432/lane");
        assert_eq!(redact("postgres://db/lane?sslmode=require&password=s3cret"), "postgres://db/lane?sslmode=require");
        assert_eq!(redact("postgres://db/lane?password=s3cret"), "postgres://db/lane");
        assert_eq!(redact("postgresql://hl@db/lane"), "postgresql://hl@db/lane");
        assert_eq!(host_port("postgres://hl:pw@db.internal/lane"), "db.internal:5432");
        assert_eq!(host_port("postgres://127.0.0.1:6543/lane"), "127.0.0.1:6543");
        assert_eq!(host_port("postgres://[::1]/lane"), "[::1]:5432");
        assert_eq!(sqlite_path("sqlite:///data/x.db?mode=rwc"), "/data/x.db");
    }
}
