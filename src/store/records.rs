//! Lane state and audit rows, written atomically with the job that produced them.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::jobs::{insert_jobs, NewJob};
use super::StoreError;
use super::{Millis, Result, Store};

/// One audit-log row: who did what to which change, at which commit, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: Millis,
    pub forge: String,
    pub repo: String,
    pub number: Option<i64>,
    pub actor: String,
    pub action: String,
    pub sha: Option<String>,
    pub detail: String,
}

/// An audit entry with its id: the cursor that pages through the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumberedEntry {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// A database change a job hands back on success. The runner applies all of them in the
/// transaction that marks the job done, so they happen exactly once even if a job is re-run
/// after a crash.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    LaneState {
        forge: String,
        repo_id: i64,
        number: i64,
        state: serde_json::Value,
        /// The version the writer read (`None`: it read none); the write lands only if that is
        /// still the stored one.
        read: Option<i64>,
    },
    Audit(AuditEntry),
    Enqueue(NewJob),
    /// Records (or, with `issue: None`, forgets) the postmortem issue a change names.
    PostmortemLink {
        forge: String,
        repo_id: i64,
        repo: String,
        number: i64,
        issue: Option<(String, i64)>,
    },
    /// A milestone of a change's life, recorded once.
    Lifecycle(crate::lane::lifecycle::LifecycleEvent),
}

/// A change that names an issue as its postmortem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedChange {
    pub repo_id: i64,
    pub repo: String,
    pub number: i64,
}

pub(super) async fn apply(tx: &mut Transaction<'_, Any>, write: &Write, now: Millis) -> Result<()> {
    match write {
        Write::LaneState { forge, repo_id, number, state, read } => {
            let written = match read {
                None => sqlx::query(
                    "INSERT INTO lane_state (forge, repo_id, number, state, updated_at, version) \
                     VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (forge, repo_id, number) DO NOTHING",
                ),
                Some(_) => sqlx::query(
                    "UPDATE lane_state SET state = $4, updated_at = $5, version = version + 1 \
                     WHERE forge = $1 AND repo_id = $2 AND number = $3 AND version = $6",
                ),
            }
            .bind(forge)
            .bind(repo_id)
            .bind(number)
            .bind(state.to_string())
            .bind(now)
            .bind(read.unwrap_or(0))
            .execute(&mut **tx)
            .await?;
            if written.rows_affected() != 1 {
                return Err(StoreError::Stale(format!(
                    "the lane state of {forge} change {repo_id}#{number} changed since this job read it"
                )));
            }
        }
        Write::Audit(e) => {
            sqlx::query(
                "INSERT INTO audit_log (at, forge, repo, number, actor, action, sha, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(e.at)
            .bind(&e.forge)
            .bind(&e.repo)
            .bind(e.number)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.sha)
            .bind(&e.detail)
            .execute(&mut **tx)
            .await?;
        }
        Write::PostmortemLink { forge, repo_id, repo, number, issue } => {
            sqlx::query("DELETE FROM postmortem_links WHERE forge = $1 AND repo_id = $2 AND number = $3")
                .bind(forge)
                .bind(repo_id)
                .bind(number)
                .execute(&mut **tx)
                .await?;
            if let Some((issue_repo, issue_number)) = issue {
                sqlx::query(
                    "INSERT INTO postmortem_links (forge, repo_id, repo, number, issue_repo, issue_number) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(forge)
                .bind(repo_id)
                .bind(repo)
                .bind(number)
                .bind(issue_repo.to_lowercase())
                .bind(issue_number)
                .execute(&mut **tx)
                .await?;
            }
        }
        Write::Enqueue(job) => {
            insert_jobs(tx, std::slice::from_ref(job), now).await?;
        }
        Write::Lifecycle(event) => super::lifecycle::insert(tx, event).await?,
    }
    Ok(())
}

impl Store {
    /// The changes that name `issue_repo#issue_number` as their postmortem.
    pub async fn changes_naming(&self, forge: &str, issue_repo: &str, issue_number: i64) -> Result<Vec<LinkedChange>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT repo_id, repo, number FROM postmortem_links \
             WHERE forge = $1 AND issue_repo = $2 AND issue_number = $3 ORDER BY repo_id, number",
        )
        .bind(forge)
        .bind(issue_repo.to_lowercase())
        .bind(issue_number)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(repo_id, repo, number)| LinkedChange { repo_id, repo, number }).collect())
    }

    /// Lane states of one forge changed since `since`, for the sweeps: read a page at a time,
    /// so that a sweep never holds every change the lane ever saw.
    pub fn lane_states_since(&self, forge: &str, since: Millis) -> LaneStates<'_> {
        LaneStates {
            store: self,
            forge: forge.to_string(),
            since,
            after: (i64::MIN, i64::MIN),
            page: Vec::new().into_iter(),
            exhausted: false,
        }
    }

    pub async fn lane_state(&self, forge: &str, repo_id: i64, number: i64) -> Result<Option<serde_json::Value>> {
        Ok(self.versioned_lane_state(forge, repo_id, number).await?.map(|(state, _)| state))
    }

    /// A change's lane state with its version, for a writer to hand back with its write.
    pub async fn versioned_lane_state(
        &self,
        forge: &str,
        repo_id: i64,
        number: i64,
    ) -> Result<Option<(serde_json::Value, i64)>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT state, version FROM lane_state WHERE forge = $1 AND repo_id = $2 AND number = $3")
                .bind(forge)
                .bind(repo_id)
                .bind(number)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(s, version)| serde_json::from_str(&s).map(|state| (state, version))).transpose().map_err(|e| {
            StoreError::Corrupt(format!("the stored lane state of {forge} change {repo_id}#{number} is not JSON: {e}"))
        })
    }

    /// Audit entries, oldest first, optionally narrowed to one repository and a start time.
    pub async fn audit(&self, repo: Option<&str>, since: Option<Millis>) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, forge, repo, number, actor, action, sha, detail FROM audit_log \
             WHERE ($1 IS NULL OR repo = $1) AND at >= $2 ORDER BY at, id",
        )
        .bind(repo)
        .bind(since.unwrap_or(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry).collect()
    }

    /// One change's audit entries, oldest first.
    pub async fn audit_of(&self, forge: &str, repo: &str, number: u64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, forge, repo, number, actor, action, sha, detail FROM audit_log \
             WHERE forge = $1 AND repo = $2 AND number = $3 ORDER BY at, id",
        )
        .bind(forge)
        .bind(repo)
        .bind(number as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry).collect()
    }

    /// One page of the audit log: the newest `limit` entries with an id below `before` (all
    /// when `None`), narrowed like [`Store::audit`], oldest first.
    pub async fn audit_page(
        &self,
        repo: Option<&str>,
        since: Option<Millis>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<NumberedEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, forge, repo, number, actor, action, sha, detail FROM audit_log \
             WHERE ($1 IS NULL OR repo = $1) AND at >= $2 AND id < $3 ORDER BY id DESC LIMIT $4",
        )
        .bind(repo)
        .bind(since.unwrap_or(0))
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut page = rows
            .iter()
            .map(|r| Ok(NumberedEntry { id: r.try_get("id")?, entry: audit_entry(r)? }))
            .collect::<Result<Vec<_>>>()?;
        page.reverse();
        Ok(page)
    }
}

/// Lane states in (repository, number) order, fetched [`LANE_STATE_PAGE`] at a time.
pub struct LaneStates<'s> {
    store: &'s Store,
    forge: String,
    since: Millis,
    /// The key of the last row read; the next page starts after it.
    after: (i64, i64),
    page: std::vec::IntoIter<serde_json::Value>,
    exhausted: bool,
}

const LANE_STATE_PAGE: usize = 500;

impl LaneStates<'_> {
    /// The next state, or `None` once every one was read.
    pub async fn next(&mut self) -> Result<Option<serde_json::Value>> {
        loop {
            if let Some(state) = self.page.next() {
                return Ok(Some(state));
            }
            if self.exhausted {
                return Ok(None);
            }
            let rows: Vec<(i64, i64, String)> = sqlx::query_as(
                "SELECT repo_id, number, state FROM lane_state WHERE forge = $1 AND updated_at >= $2 \
                 AND (repo_id > $3 OR (repo_id = $3 AND number > $4)) ORDER BY repo_id, number LIMIT $5",
            )
            .bind(&self.forge)
            .bind(self.since)
            .bind(self.after.0)
            .bind(self.after.1)
            .bind(LANE_STATE_PAGE as i64)
            .fetch_all(&self.store.pool)
            .await?;
            self.exhausted = rows.len() < LANE_STATE_PAGE;
            if let Some(&(repo_id, number, _)) = rows.last() {
                self.after = (repo_id, number);
            }
            let states: Vec<_> = rows.into_iter().filter_map(|(_, _, s)| serde_json::from_str(&s).ok()).collect();
            self.page = states.into_iter();
        }
    }
}

fn audit_entry(r: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        at: r.try_get("at")?,
        forge: r.try_get("forge")?,
        repo: r.try_get("repo")?,
        number: r.try_get("number")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        sha: r.try_get("sha")?,
        detail: r.try_get("detail")?,
    })
}
