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
pub use jobs::{ClaimedJob, JobCounts, JobSummary, NewJob};
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
        sqlx::any::install_default_drivers();
        let (dialect, url) = normalize_url(url)?;
        let connect_options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let readers = match dialect {
            // Readers never block each other in WAL mode; a few are all that helps.
            Dialect::Sqlite => options.max_connections.min(4),
            Dialect::Postgres => options.max_connections,
        };
        let pool = connect(dialect, &connect_options, options, readers).await?;
        let writer = match dialect {
            Dialect::Sqlite => connect(dialect, &connect_options, options, 1).await?,
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
}
