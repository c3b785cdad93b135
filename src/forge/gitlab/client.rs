//! The lane's GitLab client: one token (a project or group access token, or a bot user's),
//! the `gitlab` crate's endpoints over [`Transport`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use gitlab::api::{self, AsyncQuery, Endpoint, Pagination};
use http::StatusCode;
use serde::de::DeserializeOwned;

mod history;

pub use history::Note;

use super::api::{self as v4, segment, Call};
use super::quick_actions::inert;
use super::transport::{self, Transport};
use crate::forge::{
    AuthoredPull, FileContent, Forge, ForgeError, GitRemote, MergeOutcome, NewPull, QueueGroup, Revalidated,
};
use crate::lane::event::{Actor, ItemState, PullRequest};
use crate::lane::policy::{MergeMethod, Responders};
use crate::lane::postmortem::IssueLookup;
use crate::lane::report::{CheckState, Report};
use crate::lane::smoke::{Conclusion, Seen, Source};
use crate::store::Millis;

/// What GitLab CI's jobs report as, for `merge.smoke_checks = [{ name = "smoke", app = "gitlab-ci" }]`:
/// only jobs of a pipeline count then, never a commit status someone posted through the API.
pub const CI_SOURCE: &str = "gitlab-ci";

/// Lists are read to the end, within reason: a change with more is not one the lane can judge.
const MOST: usize = 5_000;

/// A status post whose answer was lost is asked again this many times, each after reading
/// whether it was set (as a read is asked again).
const STATUS_RETRIES: u32 = 2;

/// How long a commit's head pipeline is trusted between two reports of one evaluation.
const PLACEMENT_TTL: Duration = Duration::from_secs(2);

/// How long a project's settings (default branch, merge method, squash option, clone URL) are
/// trusted: each event reads them several times, and they change only by an admin's hand.
const PROJECT_TTL: Duration = Duration::from_secs(30);

/// Entries kept in each cache before stale ones are dropped.
const CACHE_ROOM: usize = 1_024;

/// A commit a report goes on, and the pipeline it goes into (GitLab's pick when `None`).
type Placement = (String, Option<u64>);

#[derive(Clone)]
pub struct GitLab {
    inner: Arc<Inner>,
}

struct Inner {
    api: Transport,
    token: String,
    identity: Mutex<Option<String>>,
    users: Mutex<HashMap<String, u64>>,
    /// By (project, commit), with when they were read.
    placements: Cache<(String, String), Vec<Placement>>,
    projects: Cache<String, v4::Project>,
}

/// Values by key, with when they were read.
type Cache<K, V> = Mutex<HashMap<K, (Instant, V)>>;

/// The entry for `key` if read less than `ttl` ago.
fn fresh<K: std::hash::Hash + Eq, V: Clone>(cache: &Cache<K, V>, key: &K, ttl: Duration) -> Option<V> {
    let cache = cache.lock().expect("cache lock");
    cache.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, v)| v.clone())
}

/// Keeps `value` for `key`, first dropping stale entries when the cache is full.
fn keep<K: std::hash::Hash + Eq, V>(cache: &Cache<K, V>, key: K, value: V, ttl: Duration) {
    let mut cache = cache.lock().expect("cache lock");
    if cache.len() >= CACHE_ROOM {
        cache.retain(|_, (at, _)| at.elapsed() < ttl);
        if cache.len() >= CACHE_ROOM {
            cache.clear();
        }
    }
    cache.insert(key, (Instant::now(), value));
}

impl GitLab {
    /// `instance`: `https://gitlab.com`, a self-managed instance's address, or a test fake.
    pub fn new(instance: &str, token: &str) -> Result<GitLab, ForgeError> {
        GitLab::with_timeouts(instance, token, crate::forge::Timeouts::default())
    }

    pub fn with_timeouts(instance: &str, token: &str, timeouts: crate::forge::Timeouts) -> Result<GitLab, ForgeError> {
        Ok(GitLab {
            inner: Arc::new(Inner {
                api: Transport::new(instance, token, timeouts)?,
                token: token.to_string(),
                identity: Mutex::default(),
                users: Mutex::default(),
                placements: Mutex::default(),
                projects: Mutex::default(),
            }),
        })
    }

    async fn call<T: DeserializeOwned + 'static>(&self, endpoint: impl Endpoint + Sync) -> Result<T, ForgeError> {
        endpoint.query_async(&self.inner.api).await.map_err(transport::forge_error)
    }

    /// `None` for a 404.
    /// Creates or edits the lane's note marked `marker` under `notes` (an MR's or an issue's).
    async fn upsert_note(
        &self,
        notes: String,
        known: Option<u64>,
        marker: &str,
        body: &str,
    ) -> Result<u64, ForgeError> {
        let body = &inert(body);
        // The whole text again: an edit repeated is the same edit.
        let edit = |id: u64| Call::put(format!("{notes}/{id}")).form("body", body);
        if let Some(id) = known {
            if transport::repeatable(self.find::<serde_json::Value>(edit(id))).await?.is_some() {
                return Ok(id);
            }
        }
        let me = self.identity().await?;
        let all: Vec<v4::Note> = self.all(Call::get(notes.clone()).query("sort", "asc")).await?;
        if let Some(ours) = all.iter().find(|n| !n.system && n.author.username == me && n.body.contains(marker)) {
            transport::repeatable(self.call::<serde_json::Value>(edit(ours.id))).await?;
            return Ok(ours.id);
        }
        // Never repeated here: the job's next attempt finds it by its marker if it was made.
        let created: v4::CreatedNote = self.call(Call::post(notes).form("body", body)).await?;
        Ok(created.id)
    }

    async fn find<T: DeserializeOwned + 'static>(
        &self,
        endpoint: impl Endpoint + Sync,
    ) -> Result<Option<T>, ForgeError> {
        match endpoint.query_async(&self.inner.api).await {
            Ok(found) => Ok(Some(found)),
            Err(err) if transport::status(&err) == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(err) => Err(transport::forge_error(err)),
        }
    }

    async fn all<T: DeserializeOwned + Send + 'static>(&self, endpoint: Call) -> Result<Vec<T>, ForgeError> {
        api::paged(endpoint, Pagination::Limit(MOST)).query_async(&self.inner.api).await.map_err(transport::forge_error)
    }

    /// Every page, or `None` for a 404 (a feature the instance or tier does not have).
    async fn all_if_any<T: DeserializeOwned + Send + 'static>(
        &self,
        endpoint: Call,
    ) -> Result<Option<Vec<T>>, ForgeError> {
        match api::paged(endpoint, Pagination::Limit(MOST)).query_async(&self.inner.api).await {
            Ok(found) => Ok(Some(found)),
            Err(err) if transport::status(&err) == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(err) => Err(transport::forge_error(err)),
        }
    }

    async fn user_id(&self, username: &str) -> Result<Option<u64>, ForgeError> {
        let key = username.to_ascii_lowercase();
        if let Some(id) = self.inner.users.lock().expect("users lock").get(&key) {
            return Ok(Some(*id));
        }
        let found: Vec<v4::User> = self.call(Call::get("users".into()).query("username", username)).await?;
        let id = found.into_iter().find(|u| u.username.eq_ignore_ascii_case(username)).map(|u| u.id);
        if let Some(id) = id {
            self.inner.users.lock().expect("users lock").insert(key, id);
        }
        Ok(id)
    }

    /// The project's settings, as read in the last [`PROJECT_TTL`].
    async fn project(&self, repo: &str) -> Result<v4::Project, ForgeError> {
        match fresh(&self.inner.projects, &repo.to_string(), PROJECT_TTL) {
            Some(known) => Ok(known),
            None => self.project_now(repo).await,
        }
    }

    /// The project's settings as they are now: what a merge goes by (its method, squash option
    /// and merge trains).
    async fn project_now(&self, repo: &str) -> Result<v4::Project, ForgeError> {
        let project: v4::Project = self
            .find(Call::get(format!("projects/{}", segment(repo))))
            .await?
            .ok_or_else(|| ForgeError::Failed(format!("GitLab project {repo} not found")))?;
        keep(&self.inner.projects, repo.to_string(), project.clone(), PROJECT_TTL);
        Ok(project)
    }

    async fn merge_request(&self, repo: &str, iid: u64) -> Result<Option<v4::MergeRequest>, ForgeError> {
        self.find(Call::get(format!("projects/{}/merge_requests/{iid}", segment(repo)))).await
    }

    /// Where a report on `sha` must land to gate the merge: the head pipeline of the open merge
    /// request whose head it is (GitLab's "Pipelines must succeed" looks only there), on the
    /// pipeline's own commit too when that is a merged-results commit.
    async fn placements(&self, repo: &str, sha: &str) -> Result<Vec<Placement>, ForgeError> {
        let key = (repo.to_string(), sha.to_string());
        if let Some(known) = fresh(&self.inner.placements, &key, PLACEMENT_TTL) {
            return Ok(known);
        }
        let mut out = vec![];
        for iid in self.pulls_for_commit(repo, sha).await? {
            let Some(change) = self.merge_request(repo, iid).await? else { continue };
            if let Some(pipeline) = change.head_pipeline.filter(|_| change.sha == sha) {
                if pipeline.sha != sha {
                    out.push((sha.to_string(), None));
                }
                out.push((pipeline.sha, Some(pipeline.id)));
                break;
            }
        }
        if out.is_empty() {
            out.push((sha.to_string(), None));
        }
        keep(&self.inner.placements, key, out.clone(), PLACEMENT_TTL);
        Ok(out)
    }

    async fn post_status(
        &self,
        repo: &str,
        sha: &str,
        pipeline: Option<u64>,
        report: &Report,
    ) -> Result<(), ForgeError> {
        let state = match report.state {
            CheckState::Success => "success",
            CheckState::Failure => "failed",
            CheckState::Pending => "pending",
        };
        let call = || {
            let call = Call::post(format!("projects/{}/statuses/{sha}", segment(repo)))
                .form("state", state)
                .form("name", &report.context)
                .form("description", &report.description);
            match pipeline {
                Some(id) => call.form("pipeline_id", id),
                None => call,
            }
        };
        let mut attempt = 0;
        loop {
            let answer: Result<serde_json::Value, _> = call().query_async(&self.inner.api).await;
            match answer {
                Ok(_) => return Ok(()),
                // The same state again: GitLab refuses the transition, the status stands.
                Err(err) if transport::message(&err).contains("Cannot transition status") => return Ok(()),
                Err(err) if attempt < STATUS_RETRIES && transport::lost(&err) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    // The status may be set already: posted again once finished, GitLab would
                    // list it twice (the first as retried).
                    match self.status_is(repo, sha, pipeline, &report.context, state, &report.description).await {
                        Ok(true) => return Ok(()),
                        Ok(false) => {}
                        // Slowed down: the job waits as long as GitLab asks, then posts again.
                        Err(limited @ ForgeError::RateLimited(_)) => return Err(limited),
                        Err(_) => return Err(transport::forge_error(err)),
                    }
                }
                Err(err) => return Err(transport::forge_error(err)),
            }
        }
    }

    /// Whether the newest status named `name` on `sha` (in `pipeline`) is the lane's, in `state`
    /// with `description`: a post whose answer was lost may have set it.
    async fn status_is(
        &self,
        repo: &str,
        sha: &str,
        pipeline: Option<u64>,
        name: &str,
        state: &str,
        description: &str,
    ) -> Result<bool, ForgeError> {
        let me = self.identity().await?;
        let mut call = Call::get(format!("projects/{}/repository/commits/{sha}/statuses", segment(repo)))
            .query("name", name)
            .query("per_page", 1);
        if let Some(id) = pipeline {
            call = call.query("pipeline_id", id);
        }
        let listed: Vec<v4::Status> = self.call(call).await?;
        // Newest first.
        Ok(listed.first().is_some_and(|s| {
            s.status == state
                && s.description.as_deref().unwrap_or_default() == description
                && s.author.as_ref().is_some_and(|a| a.username == me)
        }))
    }

    fn merge_answer(&self, err: &transport::Error) -> Option<MergeOutcome> {
        let message = transport::message(err);
        match transport::status(err)? {
            StatusCode::CONFLICT => Some(MergeOutcome::Refused(format!("the head moved: {message}"))),
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_ACCEPTABLE => Some(MergeOutcome::Refused(message)),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some(MergeOutcome::Refused(format!(
                "the lane's token may not merge here ({message}): it needs \"Allowed to merge\" on the target branch"
            ))),
            _ => None,
        }
    }
}

fn state(word: &str) -> ItemState {
    match word {
        "merged" => ItemState::Merged,
        "closed" => ItemState::Closed,
        _ => ItemState::Open,
    }
}

fn conclusion(status: &str) -> Conclusion {
    match status {
        "success" => Conclusion::Success,
        "skipped" => Conclusion::Skipped,
        "failed" | "canceled" => Conclusion::Failure,
        // created, pending, running, manual, scheduled, waiting_for_resource, preparing
        _ => Conclusion::Pending,
    }
}

fn millis(rfc3339: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp_millis())
}

impl From<v4::MergeRequest> for PullRequest {
    fn from(m: v4::MergeRequest) -> PullRequest {
        let merged = m.state == "merged";
        PullRequest {
            number: m.iid,
            title: m.title,
            body: m.description.unwrap_or_default(),
            author: Actor { id: m.author.id, login: m.author.username },
            state: state(&m.state),
            draft: m.draft,
            merged,
            merge_commit_sha: m.merge_commit_sha.or(m.squash_commit_sha).or_else(|| merged.then(|| m.sha.clone())),
            base_sha: m.diff_refs.and_then(|d| d.base_sha),
            head_sha: m.sha,
            head_ref: m.source_branch,
            base_ref: m.target_branch,
            from_fork: m.source_project_id != m.target_project_id,
            labels: m.labels,
        }
    }
}

impl Forge for GitLab {
    fn conventions(&self) -> &'static crate::lane::conventions::Conventions {
        &crate::lane::conventions::GITLAB
    }

    async fn identity(&self) -> Result<String, ForgeError> {
        if let Some(known) = self.inner.identity.lock().expect("identity lock").clone() {
            return Ok(known);
        }
        let me: v4::User = self.call(Call::get("user".into())).await?;
        *self.inner.identity.lock().expect("identity lock") = Some(me.username.clone());
        Ok(me.username)
    }

    async fn file(&self, repo: &str, path: &str, branch: &str) -> Result<Option<FileContent>, ForgeError> {
        let call =
            Call::get(format!("projects/{}/repository/files/{}", segment(repo), segment(path))).query("ref", branch);
        let Some(file) = self.find::<v4::File>(call).await? else { return Ok(None) };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(file.content.replace('\n', ""))
            .map_err(|e| ForgeError::Failed(format!("{path}: GitLab sent content that is not base64: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| ForgeError::Failed(format!("{path} is not UTF-8 text")))?;
        Ok(Some(FileContent { sha: file.blob_id, text }))
    }

    async fn default_branch_file(&self, repo: &str, path: &str, etag: Option<&str>) -> Result<Revalidated, ForgeError> {
        let Some(branch) = self.project(repo).await?.default_branch else { return Ok(Revalidated::Absent) };
        if let Some(known) = etag {
            // A HEAD names the blob without sending it: the policy is re-read only when it changed.
            let endpoint =
                format!("projects/{}/repository/files/{}?ref={}", segment(repo), segment(path), segment(&branch));
            let (status, headers) = self.inner.api.head(&endpoint).await?;
            if status == StatusCode::NOT_FOUND {
                return Ok(Revalidated::Absent);
            }
            if status.is_success() && headers.get("x-gitlab-blob-id").is_some_and(|b| b.as_bytes() == known.as_bytes())
            {
                return Ok(Revalidated::Unchanged);
            }
        }
        Ok(match self.file(repo, path, &branch).await? {
            None => Revalidated::Absent,
            Some(file) => Revalidated::Changed { etag: Some(file.sha.clone()), file },
        })
    }

    /// GitLab links a commit to no account; a user whose public e-mail is the commit's author
    /// e-mail is the best it can say.
    async fn commit_author(&self, repo: &str, sha: &str) -> Result<Option<String>, ForgeError> {
        let call = Call::get(format!("projects/{}/repository/commits/{sha}", segment(repo)));
        let Some(email) = self.find::<v4::Commit>(call).await?.and_then(|c| c.author_email) else { return Ok(None) };
        let found: Vec<v4::User> = self.call(Call::get("users".into()).query("search", &email)).await?;
        Ok(match found.as_slice() {
            [one] => Some(one.username.clone()),
            _ => None,
        })
    }

    async fn issue(&self, repo: &str, number: u64) -> Result<IssueLookup, ForgeError> {
        let call = Call::get(format!("projects/{}/issues/{number}", segment(repo)));
        Ok(match self.find::<v4::Issue>(call).await? {
            None => IssueLookup::NotFound,
            Some(issue) if issue.moved_to_id.is_some() => IssueLookup::Moved,
            // `#12` on GitLab is always an issue: merge requests are `!12`.
            Some(issue) => IssueLookup::Found { is_pull_request: false, labels: issue.labels },
        })
    }

    async fn pull(&self, repo: &str, number: u64) -> Result<Option<PullRequest>, ForgeError> {
        Ok(self.merge_request(repo, number).await?.map(PullRequest::from))
    }

    async fn merge(&self, repo: &str, number: u64, sha: &str, method: MergeMethod) -> Result<MergeOutcome, ForgeError> {
        let project = self.project_now(repo).await?;
        // The project decides merge commit, rebase or fast-forward; squashing is the one choice
        // left to a merge, within the project's squash option.
        let squash = match project.squash_option.as_deref() {
            Some("always") => true,
            Some("never") => false,
            _ => method == MergeMethod::Squash,
        };
        let path = format!("projects/{}/merge_requests/{number}/merge", segment(repo));
        let mut attempt = 0u32;
        loop {
            let mut call = Call::put(path.clone()).form("sha", sha).form("squash", squash);
            if project.merge_trains_enabled && project.merge_trains_skip_train_allowed {
                call = call.form("skip_merge_train", true);
            }
            let err = match call.query_async(&self.inner.api).await {
                Ok(serde_json::Value::Object(_)) | Ok(_) => return Ok(MergeOutcome::Merged),
                Err(err) => err,
            };
            if let Some(answer) = self.merge_answer(&err) {
                return Ok(answer);
            }
            if transport::status(&err) != Some(StatusCode::METHOD_NOT_ALLOWED) {
                return Err(transport::forge_error(err));
            }
            // 405: not mergeable now. While GitLab is still computing mergeability that passes
            // within a second or two; anything else is a reason to tell.
            let change = self.merge_request(repo, number).await?;
            let status = change.as_ref().and_then(|c| c.detailed_merge_status.clone()).unwrap_or_default();
            let message = transport::message(&err);
            if message.to_ascii_lowercase().contains("merge train") || status == "merge_train" {
                return Ok(MergeOutcome::QueueRequired);
            }
            if matches!(status.as_str(), "checking" | "unchecked" | "preparing" | "approvals_syncing") && attempt < 5 {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt * attempt))).await;
                continue;
            }
            return Ok(MergeOutcome::Refused(match status.as_str() {
                "" => message,
                _ => format!("{message} (GitLab says the merge request is `{status}`)"),
            }));
        }
    }

    /// GitLab's API cannot put a merge request at the front of a merge train. Where the project
    /// allows it, the hotfix skips the train (merged at once, the train not restarted);
    /// otherwise it joins the train, pinned to `sha`, and merges when its train pipeline passes.
    async fn enqueue_first(&self, repo: &str, number: u64, sha: &str) -> Result<(), ForgeError> {
        let project = self.project_now(repo).await?;
        if project.merge_trains_skip_train_allowed {
            let call = Call::put(format!("projects/{}/merge_requests/{number}/merge", segment(repo)))
                .form("sha", sha)
                .form("skip_merge_train", true);
            return self.call::<serde_json::Value>(call).await.map(|_| ());
        }
        let call = Call::post(format!("projects/{}/merge_trains/merge_requests/{number}", segment(repo)))
            .form("sha", sha)
            .form("auto_merge", true);
        self.call::<serde_json::Value>(call).await.map(|_| ())
    }

    async fn queue_branches(&self, repo: &str) -> Result<Vec<String>, ForgeError> {
        let call = Call::get(format!("projects/{}/merge_trains", segment(repo))).query("scope", "active");
        let cars: Vec<v4::TrainCar> = match self.all_if_any(call).await? {
            Some(cars) => cars,
            None => return Ok(vec![]),
        };
        let mut branches: Vec<String> = cars.into_iter().map(|c| c.target_branch).collect();
        branches.sort();
        branches.dedup();
        Ok(branches)
    }

    async fn queue_groups(&self, repo: &str, base: &str) -> Result<Vec<QueueGroup>, ForgeError> {
        let call =
            Call::get(format!("projects/{}/merge_trains/{}", segment(repo), segment(base))).query("scope", "active");
        let cars: Vec<v4::TrainCar> = match self.all_if_any(call).await? {
            Some(cars) => cars,
            None => return Ok(vec![]),
        };
        // A car's train pipeline tests it on top of every car ahead of it.
        let mut ahead = vec![];
        let mut groups = vec![];
        for car in cars {
            ahead.push(car.merge_request.iid);
            if let Some(pipeline) = car.pipeline {
                groups.push(QueueGroup { head_sha: pipeline.sha, changes: ahead.clone(), base: car.target_branch });
            }
        }
        Ok(groups)
    }

    async fn has_report(&self, repo: &str, sha: &str, context: &str) -> Result<bool, ForgeError> {
        let call = Call::get(format!("projects/{}/repository/commits/{sha}/statuses", segment(repo)))
            .query("name", context)
            .query("all", true);
        let found: Vec<v4::Status> = self.call(call).await?;
        Ok(found.iter().any(|s| s.name == context))
    }

    async fn commit_contains(&self, repo: &str, ancestor: &str, descendant: &str) -> Result<bool, ForgeError> {
        if ancestor.eq_ignore_ascii_case(descendant) {
            return Ok(true);
        }
        #[derive(serde::Deserialize)]
        struct Commit {
            id: String,
        }
        // The merge base of the two is the ancestor exactly when the descendant contains it.
        let call = Call::get(format!("projects/{}/repository/merge_base", segment(repo)))
            .query("refs[]", ancestor)
            .query("refs[]", descendant);
        Ok(self.find::<Commit>(call).await?.is_some_and(|c| c.id.eq_ignore_ascii_case(ancestor)))
    }

    async fn pulls_for_commit(&self, repo: &str, sha: &str) -> Result<Vec<u64>, ForgeError> {
        let call = Call::get(format!("projects/{}/repository/commits/{sha}/merge_requests", segment(repo)));
        let found: Vec<v4::MergeRequest> = self.all(call).await?;
        Ok(found.into_iter().filter(|m| m.state == "opened" && m.sha == sha).map(|m| m.iid).collect())
    }

    fn pinned_reports(&self) -> bool {
        false
    }

    /// GitLab gates merges on its own approval rules, which the lane leaves alone: the policy
    /// refuses the approval check there.
    async fn approvals(&self, _repo: &str, _number: u64, _sha: &str) -> Result<Vec<String>, ForgeError> {
        Err(ForgeError::Failed("the `hotfix-lane/approval` check is not offered on GitLab".into()))
    }

    async fn changed_files(&self, repo: &str, number: u64) -> Result<Vec<String>, ForgeError> {
        let call = Call::get(format!("projects/{}/merge_requests/{number}/diffs", segment(repo)));
        let diffs: Vec<v4::Diff> = self.all(call).await?;
        let mut paths: Vec<String> = diffs.into_iter().flat_map(|d| [d.old_path, d.new_path]).collect();
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    async fn report(&self, repo: &str, sha: &str, report: &Report) -> Result<(), ForgeError> {
        for (commit, pipeline) in self.placements(repo, sha).await? {
            self.post_status(repo, &commit, pipeline, report).await?;
        }
        Ok(())
    }

    async fn upsert_comment(
        &self,
        repo: &str,
        number: u64,
        known: Option<u64>,
        marker: &str,
        body: &str,
    ) -> Result<u64, ForgeError> {
        self.upsert_note(format!("projects/{}/merge_requests/{number}/notes", segment(repo)), known, marker, body).await
    }

    async fn upsert_issue_comment(&self, repo: &str, number: u64, marker: &str, body: &str) -> Result<u64, ForgeError> {
        self.upsert_note(format!("projects/{}/issues/{number}/notes", segment(repo)), None, marker, body).await
    }

    async fn labeler(&self, repo: &str, number: u64, label: &str) -> Result<Option<(String, Millis)>, ForgeError> {
        let call = Call::get(format!("projects/{}/merge_requests/{number}/resource_label_events", segment(repo)));
        let events: Vec<v4::LabelEvent> = self.all(call).await?;
        let last = events.into_iter().rfind(|e| e.label.as_ref().is_some_and(|l| l.name.eq_ignore_ascii_case(label)));
        Ok(match last {
            Some(e) if e.action == "add" => e.user.map(|u| (u.username, millis(&e.created_at).unwrap_or(0))),
            _ => None,
        })
    }

    async fn create_issue(&self, repo: &str, title: &str, body: &str, labels: &[String]) -> Result<u64, ForgeError> {
        let call = Call::post(format!("projects/{}/issues", segment(repo)))
            .form("title", title)
            .form("description", inert(body))
            .form("labels", labels.join(","));
        let created: v4::Created = self.call(call).await?;
        Ok(created.iid)
    }

    async fn find_issue(&self, repo: &str, label: &str, marker: &str) -> Result<Option<u64>, ForgeError> {
        let me = self.identity().await?;
        let call = Call::get(format!("projects/{}/issues", segment(repo)))
            .query("labels", label)
            .query("state", "all")
            .query("author_username", &me);
        let issues: Vec<v4::Issue> = self.all(call).await?;
        Ok(issues
            .into_iter()
            .find(|i| {
                i.author.as_ref().is_some_and(|a| a.username == me)
                    && i.description.as_deref().is_some_and(|d| d.contains(marker))
            })
            .map(|i| i.iid))
    }

    async fn set_pull_body(&self, repo: &str, number: u64, body: &str) -> Result<(), ForgeError> {
        let call =
            Call::put(format!("projects/{}/merge_requests/{number}", segment(repo))).form("description", inert(body));
        transport::repeatable(self.call::<serde_json::Value>(call)).await.map(|_| ())
    }

    async fn git_remote(&self, repo: &str) -> Result<GitRemote, ForgeError> {
        let project = self.project(repo).await?;
        Ok(GitRemote { url: project.http_url_to_repo, token: Some(self.inner.token.clone()) })
    }

    async fn pulls_for_branch(&self, repo: &str, branch: &str) -> Result<Vec<AuthoredPull>, ForgeError> {
        let call = Call::get(format!("projects/{}/merge_requests", segment(repo)))
            .query("source_branch", branch)
            .query("state", "all")
            .query("order_by", "created_at")
            .query("sort", "desc");
        let found: Vec<v4::MergeRequest> = self.all(call).await?;
        Ok(found
            .into_iter()
            .filter(|m| m.source_project_id == m.target_project_id)
            .map(|m| AuthoredPull { number: m.iid, author: m.author.username })
            .collect())
    }

    async fn create_pull(&self, repo: &str, pull: &NewPull<'_>) -> Result<u64, ForgeError> {
        let title = if pull.draft { format!("Draft: {}", pull.title) } else { pull.title.to_string() };
        let call = Call::post(format!("projects/{}/merge_requests", segment(repo)))
            .form("source_branch", pull.head)
            .form("target_branch", pull.base)
            .form("title", title)
            .form("description", inert(pull.body))
            .form("remove_source_branch", true);
        let created: v4::Created = self.call(call).await?;
        Ok(created.iid)
    }

    async fn decorate_pull(
        &self,
        repo: &str,
        number: u64,
        labels: &[String],
        people: &[String],
    ) -> Result<(), ForgeError> {
        let mut call = Call::put(format!("projects/{}/merge_requests/{number}", segment(repo)));
        if !labels.is_empty() {
            call = call.form("add_labels", labels.join(","));
        }
        for person in people {
            if let Some(id) = self.user_id(person).await? {
                call = call.form("assignee_ids[]", id).form("reviewer_ids[]", id);
            }
        }
        // Labels added, people set to the same list: asked again, it changes nothing more.
        transport::repeatable(self.call::<serde_json::Value>(call)).await.map(|_| ())
    }

    /// The jobs of the pipeline that gates the merge (GitLab CI, [`CI_SOURCE`]; a retried job
    /// counts as its retry) and the statuses posted into it, by who posted them. Other
    /// pipelines on the commit do not count: GitLab gates the merge on the head pipeline alone.
    async fn commit_checks(&self, repo: &str, sha: &str) -> Result<Vec<Seen>, ForgeError> {
        let project = segment(repo);
        let gating = self.placements(repo, sha).await?.into_iter().find_map(|(_, p)| p);
        let pipeline = match gating {
            Some(id) => Some(id),
            None => {
                let call = Call::get(format!("projects/{project}/pipelines")).query("sha", sha).query("per_page", 1);
                self.call::<Vec<v4::Pipeline>>(call).await?.into_iter().next().map(|p| p.id)
            }
        };
        let Some(id) = pipeline else { return Ok(vec![]) };
        let call = Call::get(format!("projects/{project}/pipelines/{id}/jobs")).query("include_retried", true);
        let mut jobs = self.all::<v4::Job>(call).await?;
        // Newest first: a retry is a newer job of the same name, and the newest result stands.
        jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
        let ids: std::collections::HashSet<u64> = jobs.iter().map(|j| j.id).collect();
        let mut seen: Vec<Seen> = jobs
            .into_iter()
            .map(|job| Seen {
                name: job.name,
                source: Some(Source::App(CI_SOURCE.into())),
                run: Some(id),
                conclusion: conclusion(&job.status),
            })
            .collect();
        let call = Call::get(format!("projects/{project}/repository/commits/{sha}/statuses"))
            .query("pipeline_id", id)
            .query("all", true);
        let mut statuses = self.all::<v4::Status>(call).await?;
        statuses.sort_by_key(|s| std::cmp::Reverse(s.id));
        // GitLab lists the pipeline's jobs among the commit's statuses too: those are counted above.
        seen.extend(statuses.into_iter().filter(|s| !ids.contains(&s.id)).map(|status| Seen {
            name: status.name,
            source: status.author.map(|a| Source::User(a.username)),
            run: None,
            conclusion: conclusion(&status.status),
        }));
        Ok(seen)
    }

    async fn is_responder(&self, repo: &str, login: &str, responders: &Responders) -> Result<bool, ForgeError> {
        if responders.users.iter().any(|u| u.eq_ignore_ascii_case(login)) {
            return Ok(true);
        }
        if responders.teams.is_empty() && responders.min_permission.is_none() {
            return Ok(false);
        }
        let Some(id) = self.user_id(login).await? else { return Ok(false) };
        for group in &responders.teams {
            let path = group.trim_start_matches('@');
            // `members/all`: members of a parent group are members of its subgroups.
            let call = Call::get(format!("groups/{}/members/all/{id}", segment(path)));
            if self.find::<v4::Member>(call).await?.is_some_and(|m| m.access_level >= 10) {
                return Ok(true);
            }
        }
        if let Some(min) = responders.min_permission.and_then(|p| p.gitlab_access_level()) {
            let call = Call::get(format!("projects/{}/members/all/{id}", segment(repo)));
            return Ok(self.find::<v4::Member>(call).await?.is_some_and(|m| m.access_level >= min));
        }
        Ok(false)
    }
}
