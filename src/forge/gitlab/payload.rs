//! GitLab webhook bodies → the lane's neutral [`Envelope`].
//!
//! GitLab names the event in the body (`object_kind`), so the body alone decides the shape; the
//! `X-Gitlab-Event` header is not trusted for routing. Only the fields the lane reads are typed;
//! unknown fields are ignored, and action, state and status strings are read as plain strings
//! and mapped here, so that a value GitLab adds tomorrow makes the event ignored rather than
//! refused (a refused delivery counts towards GitLab disabling the hook).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

use crate::lane::event::{
    self, Actor, CheckAction, CheckConclusion, CheckStatus, CommentAction, Envelope, Event, Forge, IssueAction,
    ItemState, MergeGroupAction, PullRequestAction, RepoRef,
};

/// Why a body could not become an event.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    /// Valid JSON, but not an object naming its `object_kind`: not a GitLab webhook body.
    #[error("body is not a GitLab webhook event: {0}")]
    NotAnEvent(serde_json::Error),
    /// A kind the lane reads, without a field it needs (or with one of another type).
    #[error("`{kind}` payload has the wrong shape: {reason}")]
    WrongShape { kind: String, reason: String },
}

/// The `object_kind`s [`parse`] reads; any other is a valid event the lane ignores.
pub const KINDS: &[&str] = &["merge_request", "note", "issue", "work_item", "pipeline", "push", "deployment"];

/// Parses a GitLab webhook body. `Ok(None)` is a valid event the lane does not act on (an
/// unknown kind, a tag push, a note on a commit, a system note, a task work item…).
pub fn parse(body: &[u8]) -> Result<Option<Envelope>, PayloadError> {
    parse_with_kind(body).map(|(_, envelope)| envelope)
}

/// [`parse`], also returning the body's `object_kind` when it is one of [`KINDS`] (as the
/// lane's own string, fit for a metric label or the stored event name).
pub fn parse_with_kind(body: &[u8]) -> Result<(Option<&'static str>, Option<Envelope>), PayloadError> {
    #[derive(Deserialize)]
    struct Kind {
        object_kind: String,
    }
    // A first pass reads only `object_kind` (everything else is skipped without being built),
    // the second goes straight into the typed shape of that kind.
    let kind = serde_json::from_slice::<Kind>(body)
        .map_err(|e| match e.classify() {
            Category::Data => PayloadError::NotAnEvent(e),
            Category::Syntax | Category::Eof | Category::Io => PayloadError::NotJson(e),
        })?
        .object_kind;
    fn de<T: DeserializeOwned>(kind: &str, body: &[u8]) -> Result<T, PayloadError> {
        serde_json::from_slice(body)
            .map_err(|e| PayloadError::WrongShape { kind: kind.to_string(), reason: e.to_string() })
    }
    let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
        return Ok((None, None));
    };
    let envelope = match kind {
        "merge_request" => Some(de::<MergeRequestHook>(kind, body)?.into_envelope()),
        "note" => de::<NoteHook>(kind, body)?.into_envelope(kind)?,
        "issue" | "work_item" => de::<IssueHook>(kind, body)?.into_envelope(),
        "pipeline" => Some(de::<PipelineHook>(kind, body)?.into_envelope(kind)?),
        "push" => Some(de::<PushHook>(kind, body)?.into_envelope()),
        "deployment" => de::<DeploymentHook>(kind, body)?.into_envelope(),
        _ => unreachable!("every kind in KINDS is parsed"),
    };
    Ok((Some(kind), envelope))
}

/// Ids are stored as SQL `BIGINT`: one above `i64::MAX` would come back as another id.
fn stored_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n > i64::MAX as u64 {
        return Err(serde::de::Error::custom(format!("{n} is above the largest id the lane stores ({})", i64::MAX)));
    }
    Ok(n)
}

fn optional_stored_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct N(#[serde(deserialize_with = "stored_number")] u64);
    Ok(Option::<N>::deserialize(d)?.map(|n| n.0))
}

/// `null` read as the type's default (GitLab sends `null` for empty lists and flags at times).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct Project {
    #[serde(deserialize_with = "stored_number")]
    id: u64,
    path_with_namespace: String,
    /// `null` for a project with no commits yet.
    #[serde(default)]
    default_branch: Option<String>,
}

impl From<Project> for RepoRef {
    fn from(p: Project) -> Self {
        RepoRef {
            id: p.id,
            full_name: p.path_with_namespace,
            // GitLab's own default for new projects.
            default_branch: p.default_branch.filter(|b| !b.is_empty()).unwrap_or_else(|| "main".to_string()),
        }
    }
}

/// The hook's `user`: who acted. Deliveries from before GitLab 10.x carry no `id`.
#[derive(Deserialize)]
struct User {
    #[serde(default, deserialize_with = "optional_stored_number")]
    id: Option<u64>,
    username: String,
}

impl User {
    /// The actor; an id of 0 means the delivery did not say (the lane completes it from the API).
    fn actor(&self) -> Actor {
        Actor { id: self.id.unwrap_or(0), login: self.username.clone() }
    }
}

#[derive(Deserialize, Default)]
struct Label {
    title: String,
}

fn titles(labels: Vec<Label>) -> Vec<String> {
    labels.into_iter().map(|l| l.title).collect()
}

#[derive(Deserialize, Default)]
struct LabelChange {
    #[serde(default, deserialize_with = "nullable")]
    previous: Vec<Label>,
    #[serde(default, deserialize_with = "nullable")]
    current: Vec<Label>,
}

/// What an `update` changed, by label title (case-sensitive, as GitLab names labels). Added
/// labels are listed in the order GitLab lists them in `current`.
struct LabelDiff {
    added: Vec<String>,
    removed: Vec<String>,
}

impl LabelChange {
    fn diff(self) -> LabelDiff {
        let previous = titles(self.previous);
        let current = titles(self.current);
        LabelDiff {
            added: current.iter().filter(|t| !previous.contains(t)).cloned().collect(),
            removed: previous.iter().filter(|t| !current.contains(t)).cloned().collect(),
        }
    }
}

/// The part of `changes` that decides an `update`'s action; a retarget, a title, description
/// or draft change, or an empty `changes` all make it `Edited`.
#[derive(Deserialize, Default)]
struct Changes {
    #[serde(default)]
    labels: Option<LabelChange>,
}

fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

// ---- merge_request -------------------------------------------------------------------------

#[derive(Deserialize)]
struct LastCommit {
    id: String,
}

#[derive(Deserialize)]
struct MergeRequestAttributes {
    #[serde(deserialize_with = "stored_number")]
    iid: u64,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(deserialize_with = "stored_number")]
    author_id: u64,
    state: String,
    #[serde(default)]
    draft: Option<bool>,
    /// The name of `draft` before GitLab 14.
    #[serde(default)]
    work_in_progress: Option<bool>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    last_commit: LastCommit,
    source_branch: String,
    target_branch: String,
    #[serde(deserialize_with = "stored_number")]
    source_project_id: u64,
    #[serde(deserialize_with = "stored_number")]
    target_project_id: u64,
    #[serde(default)]
    labels: Option<Vec<Label>>,
    #[serde(default)]
    action: Option<String>,
    /// Present only when the update pushed code (a push, an applied suggestion).
    #[serde(default)]
    oldrev: Option<String>,
}

#[derive(Deserialize)]
struct MergeRequestHook {
    user: User,
    project: Project,
    object_attributes: MergeRequestAttributes,
    #[serde(default)]
    labels: Option<Vec<Label>>,
    #[serde(default, deserialize_with = "nullable")]
    changes: Changes,
}

impl MergeRequestHook {
    fn into_envelope(self) -> Envelope {
        let sender = self.user.actor();
        let a = self.object_attributes;
        let merged = a.state == "merged";
        let state = match a.state.as_str() {
            "opened" | "locked" => ItemState::Open,
            "closed" => ItemState::Closed,
            "merged" => ItemState::Merged,
            _ => ItemState::Unknown,
        };
        let (action, label, also_added) = match a.action.as_deref() {
            Some("open") => (PullRequestAction::Opened, None, Vec::new()),
            Some("reopen") => (PullRequestAction::Reopened, None, Vec::new()),
            Some("close") | Some("merge") => (PullRequestAction::Closed, None, Vec::new()),
            // Reported for some merges: no action at all, but the state says what happened.
            None if merged => (PullRequestAction::Closed, None, Vec::new()),
            Some("update") => update_action(a.oldrev.as_deref(), self.changes),
            // approval, approved, unapproval, unapproved, and whatever comes next.
            _ => (PullRequestAction::Unknown, None, Vec::new()),
        };
        // The hook names its author only by id; its `user` is whoever acted.
        let author = Actor {
            id: a.author_id,
            login: if self.user.id == Some(a.author_id) { self.user.username.clone() } else { String::new() },
        };
        let labels = self.labels.or(a.labels).map(titles).unwrap_or_default();
        let pull = event::PullRequest {
            number: a.iid,
            title: a.title,
            body: a.description.unwrap_or_default(),
            author,
            state,
            draft: a.draft.or(a.work_in_progress).unwrap_or(false),
            merged,
            merge_commit_sha: a.merge_commit_sha,
            base_sha: None,
            head_sha: a.last_commit.id,
            head_ref: a.source_branch,
            base_ref: a.target_branch,
            from_fork: a.source_project_id != a.target_project_id,
            labels,
        };
        Envelope {
            forge: Forge::Gitlab,
            repo: Some(self.project.into()),
            sender,
            installation_id: None,
            event: Event::PullRequest { action, pull, label, also_added },
        }
    }
}

/// An `update` is one hook for whatever changed: a push (which takes precedence, since it
/// voids what was granted for the old head), labels, or anything else.
fn update_action(oldrev: Option<&str>, changes: Changes) -> (PullRequestAction, Option<String>, Vec<String>) {
    if oldrev.is_some_and(|r| !r.is_empty()) {
        return (PullRequestAction::Synchronize, None, Vec::new());
    }
    if let Some(labels) = changes.labels {
        let mut diff = labels.diff();
        if !diff.added.is_empty() {
            let first = diff.added.remove(0);
            return (PullRequestAction::Labeled, Some(first), diff.added);
        }
        if let Some(first) = diff.removed.into_iter().next() {
            return (PullRequestAction::Unlabeled, Some(first), Vec::new());
        }
    }
    (PullRequestAction::Edited, None, Vec::new())
}

// ---- note ----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct NoteAttributes {
    #[serde(deserialize_with = "stored_number")]
    id: u64,
    #[serde(default)]
    note: Option<String>,
    noteable_type: String,
    #[serde(default, deserialize_with = "nullable")]
    system: bool,
    #[serde(default, deserialize_with = "optional_stored_number")]
    author_id: Option<u64>,
    #[serde(default)]
    action: Option<String>,
}

#[derive(Deserialize)]
struct Noteable {
    #[serde(deserialize_with = "stored_number")]
    iid: u64,
}

#[derive(Deserialize)]
struct NoteHook {
    user: User,
    project: Project,
    object_attributes: NoteAttributes,
    #[serde(default)]
    merge_request: Option<Noteable>,
    #[serde(default)]
    issue: Option<Noteable>,
}

impl NoteHook {
    fn into_envelope(self, kind: &str) -> Result<Option<Envelope>, PayloadError> {
        let a = self.object_attributes;
        if a.system {
            return Ok(None);
        }
        let missing = |what: &str| PayloadError::WrongShape {
            kind: kind.to_string(),
            reason: format!("a note on a {} without its `{what}`", a.noteable_type),
        };
        let (number, on_pull_request) = match a.noteable_type.as_str() {
            "MergeRequest" => (self.merge_request.ok_or_else(|| missing("merge_request"))?.iid, true),
            "Issue" => (self.issue.ok_or_else(|| missing("issue"))?.iid, false),
            // Commits, snippets, designs: nothing the lane tracks.
            _ => return Ok(None),
        };
        let action = match a.action.as_deref() {
            None | Some("create") => CommentAction::Created,
            Some("update") => CommentAction::Edited,
            _ => CommentAction::Unknown,
        };
        // The note's author is the hook's user; old deliveries name only the note's `author_id`.
        let author = Actor { id: self.user.id.or(a.author_id).unwrap_or(0), login: self.user.username };
        Ok(Some(Envelope {
            forge: Forge::Gitlab,
            repo: Some(self.project.into()),
            sender: author.clone(),
            installation_id: None,
            event: Event::Comment {
                action,
                number,
                on_pull_request,
                comment: event::Comment { id: a.id, body: a.note.unwrap_or_default(), author },
            },
        }))
    }
}

// ---- issue / work_item ---------------------------------------------------------------------

#[derive(Deserialize)]
struct IssueAttributes {
    #[serde(deserialize_with = "stored_number")]
    iid: u64,
    title: String,
    #[serde(default)]
    description: Option<String>,
    state: String,
    /// `Issue`, `Incident`, `Task`…; absent on old deliveries, which are all issues.
    #[serde(default, rename = "type")]
    work_item_type: Option<String>,
    #[serde(default)]
    labels: Option<Vec<Label>>,
    #[serde(default)]
    action: Option<String>,
}

#[derive(Deserialize)]
struct IssueHook {
    user: User,
    project: Project,
    object_attributes: IssueAttributes,
    #[serde(default)]
    labels: Option<Vec<Label>>,
    #[serde(default, deserialize_with = "nullable")]
    changes: Changes,
}

impl IssueHook {
    fn into_envelope(self) -> Option<Envelope> {
        let a = self.object_attributes;
        if !matches!(a.work_item_type.as_deref(), None | Some("Issue") | Some("Incident")) {
            return None;
        }
        let (action, label) = match a.action.as_deref() {
            Some("open") => (IssueAction::Opened, None),
            Some("close") => (IssueAction::Closed, None),
            Some("reopen") => (IssueAction::Reopened, None),
            Some("update") => {
                let diff = self.changes.labels.map(LabelChange::diff);
                match diff {
                    Some(LabelDiff { added, .. }) if !added.is_empty() => {
                        (IssueAction::Labeled, added.into_iter().next())
                    }
                    Some(LabelDiff { removed, .. }) if !removed.is_empty() => {
                        (IssueAction::Unlabeled, removed.into_iter().next())
                    }
                    _ => (IssueAction::Edited, None),
                }
            }
            _ => (IssueAction::Unknown, None),
        };
        let state = match a.state.as_str() {
            "opened" => ItemState::Open,
            "closed" => ItemState::Closed,
            _ => ItemState::Unknown,
        };
        let issue = event::Issue {
            number: a.iid,
            title: a.title,
            body: a.description.unwrap_or_default(),
            state,
            labels: self.labels.or(a.labels).map(titles).unwrap_or_default(),
            is_pull_request: false,
        };
        Some(Envelope {
            forge: Forge::Gitlab,
            repo: Some(self.project.into()),
            sender: self.user.actor(),
            installation_id: None,
            event: Event::Issue { action, issue, label },
        })
    }
}

// ---- pipeline ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct PipelineAttributes {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    status: String,
}

#[derive(Deserialize)]
struct PipelineMergeRequest {
    #[serde(deserialize_with = "stored_number")]
    iid: u64,
    #[serde(default)]
    target_branch: Option<String>,
}

#[derive(Deserialize)]
struct PipelineHook {
    /// Absent for some pipelines no user started.
    #[serde(default)]
    user: Option<User>,
    project: Project,
    object_attributes: PipelineAttributes,
    #[serde(default)]
    merge_request: Option<PipelineMergeRequest>,
}

/// Whether `git_ref` is the ref a merge train runs an MR's pipeline on:
/// `refs/merge-requests/<iid>/train`.
fn is_train_ref(git_ref: &str) -> bool {
    git_ref
        .strip_prefix("refs/merge-requests/")
        .and_then(|rest| rest.strip_suffix("/train"))
        .is_some_and(|iid| !iid.is_empty() && iid.bytes().all(|b| b.is_ascii_digit()))
}

impl PipelineHook {
    fn into_envelope(self, kind: &str) -> Result<Envelope, PayloadError> {
        let sender = self.user.as_ref().map_or(Actor { id: 0, login: "gitlab".into() }, User::actor);
        let a = self.object_attributes;
        let event = if is_train_ref(&a.git_ref) {
            let base_ref =
                self.merge_request.and_then(|mr| mr.target_branch).ok_or_else(|| PayloadError::WrongShape {
                    kind: kind.to_string(),
                    reason: "a merge-train pipeline without its merge request's `target_branch`".into(),
                })?;
            let action = match a.status.as_str() {
                "created" | "waiting_for_resource" | "preparing" | "pending" | "running" => {
                    MergeGroupAction::ChecksRequested
                }
                _ => MergeGroupAction::Unknown,
            };
            Event::MergeGroup { action, group: event::MergeGroup { head_sha: a.sha, head_ref: a.git_ref, base_ref } }
        } else {
            let (status, conclusion) = match a.status.as_str() {
                "created" | "waiting_for_resource" | "preparing" | "pending" | "scheduled" => {
                    (CheckStatus::Queued, None)
                }
                "running" => (CheckStatus::InProgress, None),
                "manual" => (CheckStatus::Waiting, None),
                "success" => (CheckStatus::Completed, Some(CheckConclusion::Success)),
                "failed" => (CheckStatus::Completed, Some(CheckConclusion::Failure)),
                "canceled" => (CheckStatus::Completed, Some(CheckConclusion::Cancelled)),
                "skipped" => (CheckStatus::Completed, Some(CheckConclusion::Skipped)),
                _ => (CheckStatus::Unknown, None),
            };
            let action = if status == CheckStatus::Completed { CheckAction::Completed } else { CheckAction::Requested };
            Event::CheckSuite {
                action,
                suite: event::CheckSuite {
                    head_sha: a.sha,
                    head_branch: Some(a.git_ref),
                    status,
                    conclusion,
                    pull_numbers: self.merge_request.map(|mr| vec![mr.iid]).unwrap_or_default(),
                },
            }
        };
        Ok(Envelope { forge: Forge::Gitlab, repo: Some(self.project.into()), sender, installation_id: None, event })
    }
}

// ---- push ----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct PushHook {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(deserialize_with = "stored_number")]
    user_id: u64,
    user_username: String,
    project: Project,
}

impl PushHook {
    fn into_envelope(self) -> Envelope {
        Envelope {
            forge: Forge::Gitlab,
            repo: Some(self.project.into()),
            sender: Actor { id: self.user_id, login: self.user_username },
            installation_id: None,
            event: Event::Push {
                created: is_zero_sha(&self.before),
                deleted: is_zero_sha(&self.after),
                git_ref: self.git_ref,
                before: self.before,
                after: self.after,
                // GitLab does not say; the lane compares shas where it matters.
                forced: false,
            },
        }
    }
}

/// A Deployment Hook: only a successful one says anything the lane records.
#[derive(Deserialize)]
struct DeploymentHook {
    status: String,
    environment: String,
    #[serde(default)]
    environment_tier: Option<String>,
    /// Older hooks name the commit only in `commit_url` (`…/-/commit/<sha>`).
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    commit_url: Option<String>,
    user: User,
    project: Project,
}

impl DeploymentHook {
    fn into_envelope(self) -> Option<Envelope> {
        if self.status != "success" {
            return None;
        }
        let from_url = self.commit_url.as_deref().and_then(|u| u.rsplit('/').next()).map(str::to_string);
        let sha = self.sha.or(from_url).filter(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))?;
        Some(Envelope {
            forge: Forge::Gitlab,
            repo: Some(self.project.into()),
            sender: self.user.actor(),
            installation_id: None,
            event: Event::Deployment {
                sha: sha.to_ascii_lowercase(),
                environment: self.environment,
                tier: self.environment_tier,
            },
        })
    }
}

#[cfg(test)]
mod tests;
