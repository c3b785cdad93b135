//! Durable intake of webhook deliveries with group commit.
//!
//! Ingress hands each delivery to one writer task and waits. The writer takes everything that
//! queued up while the previous commit was on its way to disk and stores it in one transaction:
//! one fsync acknowledges a whole batch, so durability costs little under load and adds no wait
//! when idle.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};

use std::collections::HashMap;

use super::jobs::{insert_jobs, NewJob};
use sqlx::{AnyConnection, Connection, Executor};

use super::{placeholders, Dialect, Millis, Result, Store, StoreError};

/// Upper bound of deliveries per transaction; keeps one commit's latency bounded.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub forge: &'static str,
    pub delivery_id: String,
    pub event: String,
    pub envelope: String,
    pub ordering_key: String,
    pub received_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored and its job queued; committed before this value exists.
    Stored,
    /// A delivery with this id was stored before; nothing changed.
    Duplicate,
}

type Request = (NewDelivery, oneshot::Sender<Result<StoreOutcome>>);

/// Handle to the group-commit writer task. Cloneable; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct DeliveryWriter {
    tx: mpsc::Sender<Request>,
}

/// The job kind a stored delivery enqueues.
pub const DELIVERY_JOB: &str = "delivery";

impl DeliveryWriter {
    /// `wake` is notified once after each commit that queued new jobs (see [`crate::jobs::Runner`]).
    pub fn spawn(store: Store, max_attempts: i64, wake: Arc<Notify>) -> (DeliveryWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(run(store, rx, max_attempts, wake));
        (DeliveryWriter { tx }, task)
    }

    /// Stores one delivery; returns once it is committed (or known to be a duplicate).
    pub async fn store(&self, delivery: NewDelivery) -> Result<StoreOutcome> {
        let (done, wait) = oneshot::channel();
        self.tx.send((delivery, done)).await.map_err(|_| StoreError::WriterGone)?;
        wait.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Request>, max_attempts: i64, wake: Arc<Notify>) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match store.insert_deliveries(&batch, max_attempts).await {
            Ok(outcomes) => {
                if outcomes.contains(&StoreOutcome::Stored) {
                    // One idle worker wakes (or the next to wait finds the permit); each
                    // worker that finds a job wakes another, so a batch wakes as many as it
                    // has work for and no more: claims that find nothing still take the writer.
                    wake.notify_one();
                }
                for ((_, done), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = done.send(Ok(outcome));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, count = batch.len(), "storing a batch of deliveries failed");
                let message = err.to_string();
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Err(StoreError::BatchFailed(message.clone())));
                }
            }
        }
    }
}

impl Store {
    async fn insert_deliveries(&self, batch: &[Request], max_attempts: i64) -> Result<Vec<StoreOutcome>> {
        let (writer, _turn) = self.inbox_writer();
        let mut conn = writer.acquire().await?;
        let sqlite_sync = self.durable && self.dialect == Dialect::Sqlite;
        if sqlite_sync {
            // In WAL mode a FULL commit syncs the log, and with it every commit before it.
            conn.execute("PRAGMA synchronous = FULL").await?;
        }
        let result = self.insert_batch(&mut conn, batch, max_attempts).await;
        if sqlite_sync {
            conn.execute("PRAGMA synchronous = NORMAL").await?;
        }
        result
    }

    async fn insert_batch(
        &self,
        conn: &mut AnyConnection,
        batch: &[Request],
        max_attempts: i64,
    ) -> Result<Vec<StoreOutcome>> {
        // On PostgreSQL the commit that acknowledges waits for the disk; asked for in the same
        // round trip as the `BEGIN`.
        let mut tx = if self.durable && self.dialect == Dialect::Postgres {
            conn.begin_with("BEGIN; SET LOCAL synchronous_commit = on").await?
        } else {
            conn.begin().await?
        };
        // A delivery id seen earlier in the same batch is a duplicate of that one.
        let mut first = std::collections::HashSet::new();
        let fresh: Vec<&NewDelivery> =
            batch.iter().map(|(d, _)| d).filter(|d| first.insert((d.forge, d.delivery_id.as_str()))).collect();
        // Two statements per batch, not two per delivery.
        let sql = format!(
            "INSERT INTO deliveries (forge, delivery_id, event, received_at, envelope) VALUES {} \
             ON CONFLICT (forge, delivery_id) DO NOTHING RETURNING id, forge, delivery_id",
            placeholders(fresh.len(), 5, 1)
        );
        let mut insert = sqlx::query_as::<_, (i64, String, String)>(&sql).persistent(false);
        for d in &fresh {
            insert = insert.bind(d.forge).bind(&d.delivery_id).bind(&d.event).bind(d.received_at).bind(&d.envelope);
        }
        let stored: HashMap<(String, String), i64> = insert
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, forge, delivery)| ((forge, delivery), id))
            .collect();
        let jobs: Vec<NewJob> = fresh
            .iter()
            .filter_map(|d| {
                let id = *stored.get(&(d.forge.to_string(), d.delivery_id.clone()))?;
                Some(NewJob {
                    kind: DELIVERY_JOB.to_string(),
                    ordering_key: d.ordering_key.clone(),
                    payload: serde_json::Value::Null,
                    delivery_id: Some(id),
                    max_attempts,
                    run_at: d.received_at,
                })
            })
            .collect();
        if !jobs.is_empty() {
            // Ordered as received, so jobs of one pull request run in delivery order.
            insert_jobs(&mut tx, &jobs, jobs[0].run_at).await?;
        }
        let mut claimed = std::collections::HashSet::new();
        let outcomes = batch
            .iter()
            .map(|(d, _)| {
                let key = (d.forge.to_string(), d.delivery_id.clone());
                if stored.contains_key(&key) && claimed.insert(key) {
                    StoreOutcome::Stored
                } else {
                    StoreOutcome::Duplicate
                }
            })
            .collect();
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The stored envelope (JSON) of a delivery, by row id.
    pub async fn delivery_envelope(&self, id: i64) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT envelope FROM deliveries WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|(e,)| e))
    }

    /// The stored envelope (JSON) of a delivery, by its forge delivery id.
    pub async fn delivery_by_forge_id(&self, forge: &str, delivery_id: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT envelope FROM deliveries WHERE forge = $1 AND delivery_id = $2")
                .bind(forge)
                .bind(delivery_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(e,)| e))
    }

    pub async fn delivery_count(&self) -> Result<i64> {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deliveries").fetch_one(&self.pool).await?;
        Ok(row.0)
    }
}
