//! Durable intake of webhook deliveries with group commit.
//!
//! Ingress hands each delivery to one writer task and waits. The writer takes everything that
//! queued up while the previous commit was on its way to disk and stores it in one transaction:
//! one fsync acknowledges a whole batch, so durability costs little under load and adds no wait
//! when idle.

use tokio::sync::{mpsc, oneshot};

use super::jobs::{insert_job, NewJob};
use super::{Millis, Result, Store, StoreError};

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
    pub fn spawn(store: Store, max_attempts: i64) -> (DeliveryWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(run(store, rx, max_attempts));
        (DeliveryWriter { tx }, task)
    }

    /// Stores one delivery; returns once it is committed (or known to be a duplicate).
    pub async fn store(&self, delivery: NewDelivery) -> Result<StoreOutcome> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((delivery, done))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        wait.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Request>, max_attempts: i64) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match store.insert_deliveries(&batch, max_attempts).await {
            Ok(outcomes) => {
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
    async fn insert_deliveries(
        &self,
        batch: &[Request],
        max_attempts: i64,
    ) -> Result<Vec<StoreOutcome>> {
        let mut tx = self.writer.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for (d, _) in batch {
            let id: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO deliveries (forge, delivery_id, event, received_at, envelope) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (forge, delivery_id) DO NOTHING RETURNING id",
            )
            .bind(d.forge)
            .bind(&d.delivery_id)
            .bind(&d.event)
            .bind(d.received_at)
            .bind(&d.envelope)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match id {
                Some((id,)) => {
                    let job = NewJob {
                        kind: DELIVERY_JOB.to_string(),
                        ordering_key: d.ordering_key.clone(),
                        payload: serde_json::Value::Null,
                        delivery_id: Some(id),
                        max_attempts,
                        run_at: d.received_at,
                    };
                    insert_job(&mut tx, &job, d.received_at).await?;
                    StoreOutcome::Stored
                }
                None => StoreOutcome::Duplicate,
            };
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The stored envelope (JSON) of a delivery, by row id.
    pub async fn delivery_envelope(&self, id: i64) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT envelope FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(e,)| e))
    }

    /// The stored envelope (JSON) of a delivery, by its forge delivery id.
    pub async fn delivery_by_forge_id(
        &self,
        forge: &str,
        delivery_id: &str,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT envelope FROM deliveries WHERE forge = $1 AND delivery_id = $2")
                .bind(forge)
                .bind(delivery_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(e,)| e))
    }

    pub async fn delivery_count(&self) -> Result<i64> {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deliveries")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.0)
    }
}
