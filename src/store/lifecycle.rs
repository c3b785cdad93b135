//! The lifecycle milestones of changes ([`crate::lane::lifecycle`]): written with the job that
//! observed them, read back by the report, the page and the reminder sweep.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Millis, Result, Store, StoreError};
use crate::lane::lifecycle::{Detail, LifecycleEvent, Milestone};

/// Records `event` unless that milestone of that change (and key) is recorded already: the
/// first observation is the one that counts.
pub(super) async fn insert(tx: &mut Transaction<'_, Any>, event: &LifecycleEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO lifecycle_events (forge, repo, number, milestone, part, at, actor, detail, due_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (forge, repo, number, milestone, part) DO NOTHING",
    )
    .bind(&event.forge)
    .bind(&event.repo)
    .bind(event.number as i64)
    .bind(event.milestone.as_str())
    .bind(&event.key)
    .bind(event.at)
    .bind(&event.actor)
    .bind(serde_json::to_string(&event.detail).expect("a detail serializes"))
    .bind(event.detail.due_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const COLUMNS: &str = "forge, repo, number, milestone, part, at, actor, detail";

/// [`COLUMNS`] of the table aliased `alias`.
fn columns_of(alias: &str) -> String {
    COLUMNS.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// Whether the change of lifecycle row `m` has recorded `milestone`.
fn has(milestone: Milestone) -> String {
    format!(
        "EXISTS (SELECT 1 FROM lifecycle_events c WHERE c.forge = m.forge AND c.repo = m.repo \
         AND c.number = m.number AND c.milestone = '{}')",
        milestone.as_str()
    )
}

impl Store {
    /// Records milestones outside a job (the deployment and reminder sweeps write through jobs;
    /// this serves imports and tests).
    pub async fn record_lifecycle(&self, events: &[LifecycleEvent]) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for event in events {
            insert(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every milestone of the changes that have one at or after `since` (all of each such
    /// change's milestones, earlier ones included, so that a figure sees its whole life),
    /// optionally in one repository; ordered by change, then time.
    pub async fn lifecycle_since(&self, repo: Option<&str>, since: Millis) -> Result<Vec<LifecycleEvent>> {
        // The changes first (a range of the `at` index), then their rows by the primary key: a
        // correlated EXISTS makes SQLite walk the index once per row.
        let columns = columns_of("e");
        let sql = format!(
            "SELECT {columns} FROM (SELECT DISTINCT forge, repo, number FROM lifecycle_events \
             WHERE ($1 IS NULL OR repo = $1) AND at >= $2) c JOIN lifecycle_events e \
             ON e.forge = c.forge AND e.repo = c.repo AND e.number = c.number \
             ORDER BY e.forge, e.repo, e.number, e.at, e.milestone, e.part"
        );
        let rows = sqlx::query(&sql).bind(repo).bind(since).fetch_all(&self.pool).await?;
        rows.iter().map(event).collect()
    }

    /// Postmortems still open of the hotfixes merged at or after `since`: how many are due
    /// after `now`, and how many by then (overdue). Counted in the database, so that the live
    /// gauges cost no memory however many hotfixes are recorded.
    pub async fn open_postmortems(&self, since: Millis, now: Millis) -> Result<(u64, u64)> {
        let (pending, overdue): (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(CASE WHEN m.due_at > $2 THEN 1 END), COUNT(CASE WHEN m.due_at <= $2 THEN 1 END) \
             FROM lifecycle_events m WHERE m.milestone = 'merged' AND m.at >= $1 AND m.due_at IS NOT NULL \
             AND NOT {}",
            has(Milestone::PostmortemClosed)
        ))
        .bind(since)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok((pending as u64, overdue as u64))
    }

    /// Every milestone of the hotfixes merged at or after `since` whose postmortem is still
    /// open, due by `due_by`, and not yet reminded of as overdue: the changes a reminder may be
    /// due for ([`crate::lane::reminder::due`] decides), ordered by change, then time.
    pub async fn lifecycle_awaiting_postmortem(&self, since: Millis, due_by: Millis) -> Result<Vec<LifecycleEvent>> {
        let columns = columns_of("e");
        let sql = format!(
            "SELECT {columns} FROM lifecycle_events m JOIN lifecycle_events e \
             ON e.forge = m.forge AND e.repo = m.repo AND e.number = m.number \
             WHERE m.milestone = 'merged' AND m.due_at IS NOT NULL AND m.due_at <= $2 AND m.at >= $1 \
             AND NOT {} AND NOT {} \
             ORDER BY e.forge, e.repo, e.number, e.at, e.milestone, e.part",
            has(Milestone::PostmortemClosed),
            has(Milestone::RemindedOverdue)
        );
        let rows = sqlx::query(&sql).bind(since).bind(due_by).fetch_all(&self.pool).await?;
        rows.iter().map(event).collect()
    }

    /// One change's milestones, oldest first.
    pub async fn lifecycle_of(&self, forge: &str, repo: &str, number: u64) -> Result<Vec<LifecycleEvent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM lifecycle_events WHERE forge = $1 AND repo = $2 AND number = $3 \
             ORDER BY at, milestone, part"
        );
        let rows = sqlx::query(&sql).bind(forge).bind(repo).bind(number as i64).fetch_all(&self.pool).await?;
        rows.iter().map(event).collect()
    }

    /// The repositories with milestones, for the page's and the report's choice of scope.
    pub async fn lifecycle_repos(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT repo FROM lifecycle_events ORDER BY repo").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }
}

fn event(r: &AnyRow) -> Result<LifecycleEvent> {
    let milestone: String = r.try_get("milestone")?;
    let detail: String = r.try_get("detail")?;
    let number: i64 = r.try_get("number")?;
    Ok(LifecycleEvent {
        forge: r.try_get("forge")?,
        repo: r.try_get("repo")?,
        number: number as u64,
        milestone: Milestone::parse(&milestone)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown lifecycle milestone {milestone:?}")))?,
        key: r.try_get("part")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        detail: serde_json::from_str::<Detail>(&detail)
            .map_err(|e| StoreError::Corrupt(format!("a lifecycle detail is not JSON: {e}")))?,
    })
}

impl Store {
    /// The change of `repo` that merged as commit `sha`, as its `merged` milestone recorded.
    pub async fn merged_as(&self, forge: &str, repo: &str, sha: &str) -> Result<Option<u64>> {
        if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        // The detail is JSON text; a 40-hex value cannot match anything but a sha field.
        let pattern = format!("%\"sha\":\"{}\"%", sha.to_ascii_lowercase());
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT number FROM lifecycle_events WHERE forge = $1 AND repo = $2 AND milestone = 'merged' \
             AND detail LIKE $3 ORDER BY at LIMIT 1",
        )
        .bind(forge)
        .bind(repo)
        .bind(pattern)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(n,)| n as u64))
    }
}

/// A merged hotfix no production deployment was recorded for yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undeployed {
    pub number: u64,
    pub merge_sha: Option<String>,
    pub merged_at: Millis,
}

impl Store {
    /// The hotfixes of `repo` merged in `[since, until]` with no deployment recorded, newest
    /// first, at most `limit`.
    pub async fn undeployed(
        &self,
        forge: &str,
        repo: &str,
        since: Millis,
        until: Millis,
        limit: i64,
    ) -> Result<Vec<Undeployed>> {
        let rows = sqlx::query(
            "SELECT m.number, m.at, m.detail FROM lifecycle_events m \
             WHERE m.forge = $1 AND m.repo = $2 AND m.milestone = 'merged' AND m.at >= $3 AND m.at <= $4 \
             AND NOT EXISTS (SELECT 1 FROM lifecycle_events d WHERE d.forge = m.forge AND d.repo = m.repo \
             AND d.number = m.number AND d.milestone = 'deployed') ORDER BY m.at DESC LIMIT $5",
        )
        .bind(forge)
        .bind(repo)
        .bind(since)
        .bind(until)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let detail: String = r.try_get("detail")?;
            let detail: Detail = serde_json::from_str(&detail)
                .map_err(|e| StoreError::Corrupt(format!("a lifecycle detail is not JSON: {e}")))?;
            if detail.hotfix {
                let number: i64 = r.try_get("number")?;
                out.push(Undeployed { number: number as u64, merge_sha: detail.sha, merged_at: r.try_get("at")? });
            }
        }
        Ok(out)
    }
}
