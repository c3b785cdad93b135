//! Job queries: enqueue, claim under a lease, finish, retry, bury, requeue.
//!
//! A job is claimable when it is queued and due (or running with an expired lease) and no older
//! job with the same ordering key is still queued or running; that one rule gives in-order,
//! one-at-a-time processing per pull request. Claims are compare-and-set updates, so two
//! processes never hold the same job; on PostgreSQL `SKIP LOCKED` keeps them from queuing
//! behind each other's candidate rows.
//!
//! So that a claim never walks the jobs waiting behind a busy key, only the oldest pending job
//! of each key carries `head = 1`, and claims look at heads only. Each change that can make
//! another job the oldest of its key (insert, completion, death, revival) promotes it in the
//! same transaction. The flag is a hint: the rule above is still checked on every claim, and a
//! sweep repairs any head that concurrent transactions on PostgreSQL failed to promote.

use sqlx::{Any, Row, Transaction};

use super::records::{apply, Write};
use super::{placeholders, Dialect, Millis, Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    pub ordering_key: String,
    pub payload: serde_json::Value,
    pub delivery_id: Option<i64>,
    pub max_attempts: i64,
    pub run_at: Millis,
}

/// A job this process holds the lease on.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub ordering_key: String,
    pub payload: serde_json::Value,
    pub delivery_id: Option<i64>,
    /// Including this one.
    pub attempts: i64,
    pub max_attempts: i64,
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobSummary {
    pub id: i64,
    pub kind: String,
    pub ordering_key: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub dead: i64,
}

/// How many times a job's lease may run out before it is buried: a job that kills its process
/// every time must not be retried forever, but a job whose replica was killed under it (a deploy,
/// an OOM kill, a lost node) did not fail, and is not charged an attempt for it.
pub const MAX_LEASE_EXPIRIES: i64 = 10;

macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            // A queued job starts its next attempt; an expired one re-runs the attempt its dead
            // worker lost (right-hand sides read the row as it was before the update).
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
             attempts = CASE WHEN state = 'running' THEN attempts ELSE attempts + 1 END, \
             expiries = CASE WHEN state = 'running' THEN expiries + 1 ELSE expiries END, updated_at = $3 \
             WHERE id = (SELECT j.id FROM jobs j \
                WHERE j.head = 1 AND j.state IN ('queued', 'running') \
                  AND ((j.state = 'queued' AND j.run_at <= $3) OR (j.state = 'running' AND j.lease_until < $3 AND j.expiries < $4)) \
                  AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.ordering_key = j.ordering_key AND e.id < j.id \
                                  AND e.state IN ('queued', 'running')) \
                ORDER BY j.id LIMIT 1 ",
            $lock,
            ") AND ((state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_until < $3 AND expiries < $4)) \
             RETURNING id, kind, ordering_key, payload, delivery_id, attempts, max_attempts"
        )
    };
}

const CLAIM_SQLITE: &str = claim_sql!("");
const CLAIM_POSTGRES: &str = claim_sql!("FOR UPDATE SKIP LOCKED");

pub(super) async fn insert_jobs(tx: &mut Transaction<'_, Any>, jobs: &[NewJob], now: Millis) -> Result<()> {
    let keys: Vec<&str> = jobs.iter().map(|j| j.ordering_key.as_str()).collect();
    lock_keys(tx, &keys).await?;
    let sql = format!(
        "INSERT INTO jobs (kind, ordering_key, payload, delivery_id, max_attempts, run_at, state, attempts, created_at, \
         updated_at) VALUES {}",
        // $1 is `now`, shared by every row.
        placeholders(jobs.len(), 6, 2).replace(')', ", 'queued', 0, $1, $1)")
    );
    let mut insert = sqlx::query(&sql).persistent(false).bind(now);
    for job in jobs {
        insert = insert
            .bind(&job.kind)
            .bind(&job.ordering_key)
            .bind(job.payload.to_string())
            .bind(job.delivery_id)
            .bind(job.max_attempts)
            .bind(job.run_at);
    }
    insert.execute(&mut **tx).await?;
    promote_heads(tx, &keys).await
}

/// On PostgreSQL, serializes the transactions that change which job heads a key, until commit:
/// otherwise one finishing a key's job and another queueing the next could each miss the
/// other's row and leave the new job unmarked. (SQLite has one writer at a time anyway.)
async fn lock_keys(tx: &mut Transaction<'_, Any>, keys: &[&str]) -> Result<()> {
    if tx.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    let mut keys = keys.to_vec();
    // One order for every transaction, so two of them never wait on each other in a cycle; the
    // scan of a `VALUES` list takes its rows in the order written. One round trip for all keys.
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = (1..=keys.len()).map(|i| format!("(${i})")).collect();
    let sql =
        format!("SELECT pg_advisory_xact_lock(hashtext(k.column1)::bigint) FROM (VALUES {}) AS k", list.join(", "));
    let mut lock = sqlx::query(&sql).persistent(false);
    for key in keys {
        lock = lock.bind(key);
    }
    lock.execute(&mut **tx).await?;
    Ok(())
}

/// Marks the oldest pending job of each key as its head. One `MIN` per key, each answered from
/// the start of the key's pending index: a `GROUP BY` over the keys would read every job
/// waiting behind them, and that grows with the backlog.
async fn promote_heads(tx: &mut Transaction<'_, Any>, keys: &[&str]) -> Result<()> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = (1..=keys.len()).map(|i| format!("(${i})")).collect();
    let sql = format!(
        "UPDATE jobs SET head = 1 WHERE head = 0 AND id IN (SELECT (SELECT MIN(e.id) FROM jobs e \
         WHERE e.ordering_key = k.column1 AND e.state IN ('queued', 'running')) FROM (VALUES {}) AS k)",
        list.join(", ")
    );
    let mut promote = sqlx::query(&sql).persistent(false);
    for key in keys {
        promote = promote.bind(key);
    }
    promote.execute(&mut **tx).await?;
    Ok(())
}

type JobRow = (i64, String, String, String, Option<i64>, i64, i64);

impl Store {
    pub async fn enqueue(&self, job: &NewJob, now: Millis) -> Result<()> {
        let mut tx = self.background_writer().await.begin().await?;
        insert_jobs(&mut tx, std::slice::from_ref(job), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims the oldest runnable job for `owner`, leased until `lease_until`.
    pub async fn claim(&self, owner: &str, now: Millis, lease_until: Millis) -> Result<Option<ClaimedJob>> {
        let sql = match self.dialect {
            Dialect::Sqlite => CLAIM_SQLITE,
            Dialect::Postgres => CLAIM_POSTGRES,
        };
        let row: Option<JobRow> = sqlx::query_as(sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(MAX_LEASE_EXPIRIES)
            .fetch_optional(self.background_writer().await)
            .await?;
        Ok(row.map(|(id, kind, ordering_key, payload, delivery_id, attempts, max_attempts)| ClaimedJob {
            id,
            kind,
            ordering_key,
            delivery_id,
            // Payloads are written by `insert_job` from a `Value`; they always parse.
            payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
            attempts,
            max_attempts,
            owner: owner.to_string(),
        }))
    }

    /// Extends a lease; false when the lease was lost (expired and taken by someone else).
    /// Not behind the inbox's priority: a lease must not run out because webhooks are busy.
    pub async fn extend_lease(&self, job: &ClaimedJob, lease_until: Millis) -> Result<bool> {
        let done =
            sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'")
                .bind(lease_until)
                .bind(job.id)
                .bind(&job.owner)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a job done and applies its writes in the same transaction. Returns false (and
    /// applies nothing) when the lease was lost, so a job's writes land exactly once.
    pub async fn complete(&self, job: &ClaimedJob, writes: &[Write], now: Millis) -> Result<bool> {
        let mut tx = self.background_writer().await.begin().await?;
        lock_keys(&mut tx, &[&job.ordering_key]).await?;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'done', head = 0, finished_at = $1, updated_at = $1, lease_owner = NULL, \
             lease_until = NULL, last_error = NULL WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
        )
        .bind(now)
        .bind(job.id)
        .bind(&job.owner)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        promote_heads(&mut tx, &[&job.ordering_key]).await?;
        for write in writes {
            apply(&mut tx, write, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Puts a failed attempt back in the queue to run at `run_at`, or buries it as dead when it
    /// has used all its attempts. Returns true when the job is now dead.
    pub async fn fail(&self, job: &ClaimedJob, error: &str, run_at: Millis, now: Millis) -> Result<bool> {
        let dead = job.attempts >= job.max_attempts;
        let mut tx = self.background_writer().await.begin().await?;
        lock_keys(&mut tx, &[&job.ordering_key]).await?;
        sqlx::query(
            "UPDATE jobs SET state = $1, head = $2, run_at = $3, last_error = $4, updated_at = $5, lease_owner = NULL, \
             lease_until = NULL, finished_at = $6 WHERE id = $7 AND lease_owner = $8 AND state = 'running'",
        )
        .bind(if dead { "dead" } else { "queued" })
        // A retried job stays the head of its key: the jobs behind it keep waiting.
        .bind(if dead { 0i64 } else { 1 })
        .bind(run_at)
        .bind(error)
        .bind(now)
        .bind(dead.then_some(now))
        .bind(job.id)
        .bind(&job.owner)
        .execute(&mut *tx)
        .await?;
        if dead {
            promote_heads(&mut tx, &[&job.ordering_key]).await?;
        }
        tx.commit().await?;
        Ok(dead)
    }

    /// Defers a job without spending an attempt (the handler asked to be retried after a rate
    /// limit or similar).
    pub async fn defer(&self, job: &ClaimedJob, run_at: Millis, reason: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET state = 'queued', run_at = $1, attempts = attempts - 1, last_error = $2, updated_at = $3, \
             lease_owner = NULL, lease_until = NULL WHERE id = $4 AND lease_owner = $5 AND state = 'running'",
        )
        .bind(run_at)
        .bind(reason)
        .bind(now)
        .bind(job.id)
        .bind(&job.owner)
        .execute(self.background_writer().await)
        .await?;
        Ok(())
    }

    /// Hands back every lease `owner` holds (at shutdown), so other replicas pick the jobs up now
    /// instead of after the lease runs out. The interrupted attempt is not counted.
    pub async fn release_leases(&self, owner: &str, now: Millis) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL, \
             updated_at = $1 WHERE lease_owner = $2 AND state = 'running'",
        )
        .bind(now)
        .bind(owner)
        .execute(self.background_writer().await)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn jobs_in_state(&self, state: &str) -> Result<Vec<JobSummary>> {
        let rows = sqlx::query(
            "SELECT id, kind, ordering_key, state, attempts, last_error, updated_at FROM jobs WHERE state = $1 ORDER BY id",
        )
        .bind(state)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobSummary {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    ordering_key: r.try_get("ordering_key")?,
                    state: r.try_get("state")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Gives a dead job a fresh set of attempts. False when no dead job has that id.
    pub async fn requeue_dead(&self, id: i64, now: Millis) -> Result<bool> {
        let mut tx = self.background_writer().await.begin().await?;
        let key: Option<(String,)> = sqlx::query_as(
            "UPDATE jobs SET state = 'queued', attempts = 0, expiries = 0, run_at = $1, updated_at = $1, \
             finished_at = NULL WHERE id = $2 AND state = 'dead' RETURNING ordering_key",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((key,)) = key else {
            return Ok(false);
        };
        promote_heads(&mut tx, &[&key]).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn job_counts(&self) -> Result<JobCounts> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetch_all(&self.pool).await?;
        let mut counts = JobCounts::default();
        for (state, n) in rows {
            match state.as_str() {
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                "done" => counts.done = n,
                "dead" => counts.dead = n,
                _ => {}
            }
        }
        Ok(counts)
    }
}

impl Store {
    /// Buries running jobs whose lease ran out [`MAX_LEASE_EXPIRIES`] times: a job that kills
    /// its process every time must not be retried forever. A running job is always its key's
    /// head (only heads are claimed), so the heads index bounds the scan by the keys with
    /// pending work, however long the queues behind them are (the `IN` repeats the index's
    /// predicate so that SQLite's planner sees it applies).
    pub async fn bury_expired(&self, now: Millis) -> Result<u64> {
        let mut tx = self.background_writer().await.begin().await?;
        let keys: Vec<(String,)> = sqlx::query_as(
            "UPDATE jobs SET state = 'dead', head = 0, \
             last_error = 'its lease ran out ' || expiries || ' times: its worker died or stalled each time', \
             updated_at = $1, finished_at = $1, lease_owner = NULL, lease_until = NULL \
             WHERE head = 1 AND state IN ('queued', 'running') AND state = 'running' AND lease_until < $1 \
               AND expiries >= $2 \
             RETURNING ordering_key",
        )
        .bind(now)
        .bind(MAX_LEASE_EXPIRIES)
        .fetch_all(&mut *tx)
        .await?;
        let keys: Vec<&str> = keys.iter().map(|(k,)| k.as_str()).collect();
        promote_heads(&mut tx, &keys).await?;
        tx.commit().await?;
        Ok(keys.len() as u64)
    }

    /// Promotes every queued job that is the oldest pending one of its key but is not marked
    /// as head. Only concurrent transactions on PostgreSQL (one finishing a key's job while
    /// another queues the next) can leave such a job; the runner sweeps for them now and then.
    pub async fn repair_heads(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET head = 1 WHERE head = 0 AND state = 'queued' AND NOT EXISTS \
             (SELECT 1 FROM jobs e WHERE e.ordering_key = jobs.ordering_key AND e.id < jobs.id \
              AND e.state IN ('queued', 'running'))",
        )
        .execute(self.background_writer().await)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes finished jobs and deliveries older than `before`. Dead jobs stay until someone
    /// looks at them. A delivery is kept while its job exists, so redelivery stays a duplicate.
    pub async fn prune(&self, before: Millis) -> Result<(u64, u64)> {
        let jobs = sqlx::query("DELETE FROM jobs WHERE state = 'done' AND finished_at < $1")
            .bind(before)
            .execute(self.background_writer().await)
            .await?;
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE received_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.delivery_id = deliveries.id)",
        )
        .bind(before)
        .execute(self.background_writer().await)
        .await?;
        Ok((jobs.rows_affected(), deliveries.rows_affected()))
    }
}
