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
pub const KINDS: &[&str] = &["merge_request", "note", "issue", "work_item", "pipeline", "push"];

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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::lane::event::{CheckSuite, Comment, Issue, MergeGroup, PullRequest};

    fn fixture(rel: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab").join(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn json_fixture(rel: &str) -> Value {
        serde_json::from_slice(&fixture(rel)).unwrap()
    }

    fn envelope(body: &[u8]) -> Envelope {
        parse(body).expect("parses").expect("an event the lane reads")
    }

    fn of(value: &Value) -> Envelope {
        envelope(&serde_json::to_vec(value).unwrap())
    }

    fn pull(env: &Envelope) -> (PullRequestAction, &PullRequest, Option<&str>, &[String]) {
        match &env.event {
            Event::PullRequest { action, pull, label, also_added } => (*action, pull, label.as_deref(), also_added),
            other => panic!("not a pull request event: {other:?}"),
        }
    }

    fn hello_world() -> RepoRef {
        RepoRef { id: 4861503, full_name: "gitlab-org/hello-world".into(), default_branch: "master".into() }
    }

    fn sytses() -> Actor {
        // The 2017 deliveries name the user without an id.
        Actor { id: 0, login: "sytses".into() }
    }

    #[test]
    fn every_fixture_is_covered_here() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab");
        let mut on_disk = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            for file in std::fs::read_dir(&dir).unwrap() {
                let name = file.unwrap().file_name().to_string_lossy().to_string();
                on_disk.push(format!("{}/{name}", dir.file_name().unwrap().to_string_lossy()));
            }
        }
        on_disk.sort();
        let mut covered = vec![
            "issue/open.json",
            "issue/update.labels.json",
            "merge_request/close.json",
            "merge_request/merge.json",
            "merge_request/open.json",
            "merge_request/open.with-label-changes.json",
            "merge_request/reopen.json",
            "merge_request/update.draft-toggle.json",
            "merge_request/update.json",
            "note/merge_request.diff-note.json",
            "note/merge_request.json",
            "pipeline/success.json",
            "push/push.json",
        ];
        covered.sort();
        assert_eq!(on_disk, covered);
    }

    #[test]
    fn merge_request_open_close_reopen_and_merge() {
        for (file, action, state) in [
            ("open.json", PullRequestAction::Opened, ItemState::Open),
            ("close.json", PullRequestAction::Closed, ItemState::Closed),
            ("reopen.json", PullRequestAction::Reopened, ItemState::Open),
            ("merge.json", PullRequestAction::Closed, ItemState::Merged),
        ] {
            let env = envelope(&fixture(&format!("merge_request/{file}")));
            assert_eq!(env.forge, Forge::Gitlab);
            assert_eq!(env.repo, Some(hello_world()), "{file}");
            assert_eq!(env.sender, sytses(), "{file}");
            assert_eq!(env.installation_id, None);
            let (got, pr, label, also) = pull(&env);
            assert_eq!((got, pr.state), (action, state), "{file}");
            assert_eq!((label, also.len()), (None, 0), "{file}");
            assert_eq!(pr.number, 1);
            assert_eq!(pr.title, "update readme");
            assert_eq!(pr.body, "adding build instructions to readme");
            // `user` has no id, so it cannot be shown to be the author: the lane asks the API.
            assert_eq!(pr.author, Actor { id: 51764, login: String::new() });
            assert_eq!((pr.head_ref.as_str(), pr.base_ref.as_str()), ("feature", "master"));
            assert!(!pr.from_fork && !pr.draft);
            assert_eq!(pr.merged, state == ItemState::Merged, "{file}");
            assert!(pr.labels.is_empty());
        }
        let merge = envelope(&fixture("merge_request/merge.json"));
        assert_eq!(pull(&merge).1.merge_commit_sha.as_deref(), Some("78a76ee6b4992a6baf64c59fc4c44c7323d60438"));
        let open = envelope(&fixture("merge_request/open.json"));
        assert_eq!(pull(&open).1.head_sha, "c4c79227ed610f1151f05bbc5be33b4f340d39c8");
        assert_eq!(pull(&open).1.merge_commit_sha, None);
    }

    #[test]
    fn merge_request_docs_example_reads_labels_fork_and_user_id() {
        let env = envelope(&fixture("merge_request/open.with-label-changes.json"));
        assert_eq!(
            env.repo,
            Some(RepoRef { id: 1, full_name: "gitlabhq/gitlab-test".into(), default_branch: "master".into() })
        );
        assert_eq!(env.sender, Actor { id: 1, login: "user1".into() });
        let (action, pr, label, _) = pull(&env);
        // `open` stays `Opened` even though this example carries a label change.
        assert_eq!((action, label), (PullRequestAction::Opened, None));
        assert_eq!(pr.labels, ["API"]);
        assert_eq!(pr.head_sha, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
        // Author 51 is not the acting user 1: no login is claimed for them.
        assert_eq!(pr.author, Actor { id: 51, login: String::new() });
        assert_eq!((pr.number, pr.head_ref.as_str()), (1, "ms-viewport"));
        assert!(!pr.from_fork, "source and target project ids are both 14");
    }

    #[test]
    fn merge_request_update_with_oldrev_is_a_push() {
        let env = envelope(&fixture("merge_request/update.json"));
        assert_eq!(
            env.repo,
            Some(RepoRef { id: 2, full_name: "test/woodpecker".into(), default_branch: "master".into() })
        );
        assert_eq!(env.sender, Actor { id: 2, login: "test".into() });
        let (action, pr, label, _) = pull(&env);
        assert_eq!((action, label), (PullRequestAction::Synchronize, None));
        assert_eq!(pr.head_sha, "0ab96a10266b95b4b533dcfd98738015fbe70889");
        assert_eq!(pr.author, Actor { id: 2, login: "test".into() }, "the acting user is the author");
        assert_eq!((pr.number, pr.title.as_str(), pr.body.as_str()), (2, "Update client.go 🎉", ""));
        assert_eq!((pr.head_ref.as_str(), pr.base_ref.as_str()), ("next-feature", "master"));
    }

    /// The `update` fixture without its push, with `changes.labels` from `previous` to `current`.
    fn label_update(previous: &[&str], current: &[&str], keep_oldrev: bool) -> Value {
        let mut hook = json_fixture("merge_request/update.json");
        if !keep_oldrev {
            hook["object_attributes"].as_object_mut().unwrap().remove("oldrev");
        }
        let labels = |titles: &[&str]| titles.iter().map(|t| json!({"id": 1, "title": t})).collect::<Vec<_>>();
        hook["changes"]["labels"] = json!({"previous": labels(previous), "current": labels(current)});
        hook["labels"] = json!(labels(current));
        hook
    }

    #[test]
    fn adding_hotfix_alone_is_labeled_hotfix() {
        let env = of(&label_update(&["backend"], &["backend", "hotfix"], false));
        let (action, pr, label, also) = pull(&env);
        assert_eq!((action, label, also), (PullRequestAction::Labeled, Some("hotfix"), &[][..]));
        assert_eq!(pr.labels, ["backend", "hotfix"]);
    }

    #[test]
    fn adding_two_labels_at_once_reports_the_second_in_also_added() {
        let env = of(&label_update(&[], &["urgent", "hotfix"], false));
        let (action, _, label, also) = pull(&env);
        assert_eq!((action, label), (PullRequestAction::Labeled, Some("urgent")));
        assert_eq!(also, ["hotfix"]);
    }

    #[test]
    fn removing_hotfix_is_unlabeled_hotfix() {
        let env = of(&label_update(&["hotfix", "backend"], &["backend"], false));
        let (action, pr, label, also) = pull(&env);
        assert_eq!((action, label, also.len()), (PullRequestAction::Unlabeled, Some("hotfix"), 0));
        assert_eq!(pr.labels, ["backend"]);
    }

    #[test]
    fn label_names_are_compared_case_sensitively() {
        let env = of(&label_update(&["Hotfix"], &["hotfix"], false));
        assert_eq!(pull(&env).2, Some("hotfix"));
        assert_eq!(pull(&env).0, PullRequestAction::Labeled);
    }

    #[test]
    fn a_push_that_also_changes_labels_is_a_push() {
        let env = of(&label_update(&[], &["hotfix"], true));
        let (action, _, label, also) = pull(&env);
        assert_eq!((action, label, also.len()), (PullRequestAction::Synchronize, None, 0));
    }

    #[test]
    fn an_empty_oldrev_is_no_push_and_unchanged_labels_are_an_edit() {
        let mut hook = label_update(&["hotfix"], &["hotfix"], false);
        hook["object_attributes"]["oldrev"] = json!("");
        assert_eq!(pull(&of(&hook)).0, PullRequestAction::Edited);
        let mut retarget = json_fixture("merge_request/update.json");
        retarget["object_attributes"].as_object_mut().unwrap().remove("oldrev");
        retarget["changes"] = json!({"target_branch": {"previous": "main", "current": "release-1"}});
        assert_eq!(pull(&of(&retarget)).0, PullRequestAction::Edited);
        retarget["changes"] = json!({});
        assert_eq!(pull(&of(&retarget)).0, PullRequestAction::Edited);
    }

    #[test]
    fn draft_toggle_is_an_edit_of_a_draft() {
        let env = envelope(&fixture("merge_request/update.draft-toggle.json"));
        assert_eq!(
            env.repo,
            Some(RepoRef { id: 44067058, full_name: "rathod.meetsatish/meet".into(), default_branch: "main".into() })
        );
        assert_eq!(env.sender, Actor { id: 13900456, login: "rathod.meetsatish".into() });
        let (action, pr, label, _) = pull(&env);
        assert_eq!((action, label), (PullRequestAction::Edited, None));
        assert!(pr.draft);
        assert_eq!((pr.number, pr.title.as_str()), (3, "Draft: Update README.md"));
        assert_eq!(pr.head_sha, "ffd71529ecdfb41a530ee13f91b8fdd3e743c754");
        assert_eq!(pr.author, Actor { id: 13900456, login: "rathod.meetsatish".into() });
        // Old deliveries say `work_in_progress` only.
        let mut old = json_fixture("merge_request/update.draft-toggle.json");
        old["object_attributes"].as_object_mut().unwrap().remove("draft");
        assert!(pull(&of(&old)).1.draft);
    }

    #[test]
    fn approvals_and_unknown_actions_parse_and_are_not_actionable() {
        for action in ["approval", "approved", "unapproval", "unapproved", "something_new"] {
            let mut hook = json_fixture("merge_request/open.json");
            hook["object_attributes"]["action"] = json!(action);
            let env = of(&hook);
            assert_eq!(pull(&env).0, PullRequestAction::Unknown, "{action}");
            assert!(!env.is_actionable(), "{action}");
        }
    }

    #[test]
    fn a_merge_without_an_action_is_closed_and_merged() {
        let mut hook = json_fixture("merge_request/merge.json");
        hook["object_attributes"].as_object_mut().unwrap().remove("action");
        let env = of(&hook);
        let (action, pr, ..) = pull(&env);
        assert_eq!((action, pr.state, pr.merged), (PullRequestAction::Closed, ItemState::Merged, true));
        let mut open = json_fixture("merge_request/open.json");
        open["object_attributes"].as_object_mut().unwrap().remove("action");
        assert_eq!(pull(&of(&open)).0, PullRequestAction::Unknown);
    }

    #[test]
    fn a_merge_request_from_a_fork_says_so() {
        let mut hook = json_fixture("merge_request/open.json");
        hook["object_attributes"]["source_project_id"] = json!(99);
        assert!(pull(&of(&hook)).1.from_fork);
    }

    fn comment(env: &Envelope) -> (CommentAction, u64, bool, &Comment) {
        match &env.event {
            Event::Comment { action, number, on_pull_request, comment } => {
                (*action, *number, *on_pull_request, comment)
            }
            other => panic!("not a comment: {other:?}"),
        }
    }

    #[test]
    fn notes_on_a_merge_request_are_comments_on_it() {
        for (file, id) in [("merge_request.json", 50772616), ("merge_request.diff-note.json", 50772639)] {
            let env = envelope(&fixture(&format!("note/{file}")));
            assert_eq!(env.repo, Some(hello_world()));
            // No `user.id` in 2017: the note's `author_id` names them.
            let author = Actor { id: 51764, login: "sytses".into() };
            assert_eq!(env.sender, author);
            let (action, number, on_pr, c) = comment(&env);
            assert_eq!((action, number, on_pr), (CommentAction::Created, 1, true), "{file}");
            assert_eq!((c.id, &c.author), (id, &author), "{file}");
            if file == "merge_request.json" {
                assert_eq!(c.body, "lgtm");
            }
        }
    }

    #[test]
    fn a_note_on_an_issue_is_a_comment_on_the_issue() {
        let mut hook = json_fixture("note/merge_request.json");
        hook["object_attributes"]["noteable_type"] = json!("Issue");
        hook.as_object_mut().unwrap().remove("merge_request");
        hook["issue"] = json!({"id": 8131350, "iid": 7, "title": "found a bug"});
        hook["object_attributes"]["action"] = json!("update");
        let (action, number, on_pr, _) = comment(&of(&hook));
        assert_eq!((action, number, on_pr), (CommentAction::Edited, 7, false));
    }

    #[test]
    fn notes_on_commits_and_snippets_and_system_notes_are_ignored() {
        for noteable in ["Commit", "Snippet"] {
            let mut hook = json_fixture("note/merge_request.json");
            hook["object_attributes"]["noteable_type"] = json!(noteable);
            hook.as_object_mut().unwrap().remove("merge_request");
            assert!(parse(&serde_json::to_vec(&hook).unwrap()).unwrap().is_none(), "{noteable}");
        }
        let mut system = json_fixture("note/merge_request.json");
        system["object_attributes"]["system"] = json!(true);
        assert!(parse(&serde_json::to_vec(&system).unwrap()).unwrap().is_none());
    }

    fn issue(env: &Envelope) -> (IssueAction, &Issue, Option<&str>) {
        match &env.event {
            Event::Issue { action, issue, label } => (*action, issue, label.as_deref()),
            other => panic!("not an issue: {other:?}"),
        }
    }

    #[test]
    fn issues_open_and_get_labeled() {
        let open = envelope(&fixture("issue/open.json"));
        assert_eq!((open.repo.clone(), open.sender.clone()), (Some(hello_world()), sytses()));
        let (action, i, label) = issue(&open);
        assert_eq!((action, label), (IssueAction::Opened, None));
        assert_eq!(
            i,
            &Issue {
                number: 1,
                title: "found a bug".into(),
                state: ItemState::Open,
                labels: vec![],
                is_pull_request: false
            }
        );
        let labeled = envelope(&fixture("issue/update.labels.json"));
        let (action, i, label) = issue(&labeled);
        assert_eq!((action, label), (IssueAction::Labeled, Some("critical")));
        assert_eq!(i.labels, ["critical"]);

        let mut unlabeled = json_fixture("issue/update.labels.json");
        let change = unlabeled["changes"]["labels"].clone();
        unlabeled["changes"]["labels"] = json!({"previous": change["current"], "current": []});
        unlabeled["labels"] = json!([]);
        assert_eq!(issue(&of(&unlabeled)).0, IssueAction::Unlabeled);
        assert_eq!(issue(&of(&unlabeled)).2, Some("critical"));

        let mut edited = json_fixture("issue/update.labels.json");
        edited["changes"] = json!({"title": {"previous": "a", "current": "b"}});
        assert_eq!(issue(&of(&edited)).0, IssueAction::Edited);
        let mut closed = json_fixture("issue/open.json");
        closed["object_attributes"]["action"] = json!("close");
        closed["object_attributes"]["state"] = json!("closed");
        assert_eq!((issue(&of(&closed)).0, issue(&of(&closed)).1.state), (IssueAction::Closed, ItemState::Closed));
    }

    #[test]
    fn incident_work_items_are_issues_and_tasks_are_not() {
        let mut incident = json_fixture("issue/open.json");
        incident["object_kind"] = json!("work_item");
        incident["object_attributes"]["type"] = json!("Incident");
        incident["object_attributes"]["confidential"] = json!(true);
        let env = of(&incident);
        assert_eq!(issue(&env).0, IssueAction::Opened);
        assert_eq!(issue(&env).1.number, 1);
        incident["object_attributes"]["type"] = json!("Task");
        assert!(parse(&serde_json::to_vec(&incident).unwrap()).unwrap().is_none());
    }

    #[test]
    fn a_branch_pipeline_is_a_check_suite() {
        let env = envelope(&fixture("pipeline/success.json"));
        assert_eq!(
            env.repo,
            Some(RepoRef { id: 1, full_name: "gitlab-org/gitlab-test".into(), default_branch: "master".into() })
        );
        assert_eq!(env.sender, Actor { id: 42, login: "user1".into() });
        let Event::CheckSuite { action, suite } = &env.event else { panic!("{:?}", env.event) };
        assert_eq!(*action, CheckAction::Completed);
        assert_eq!(
            suite,
            &CheckSuite {
                head_sha: "bcbb5ec396a2c0f828686f14fac9b80b780504f2".into(),
                head_branch: Some("master".into()),
                status: CheckStatus::Completed,
                conclusion: Some(CheckConclusion::Success),
                pull_numbers: vec![1],
            }
        );
        let mut running = json_fixture("pipeline/success.json");
        running["object_attributes"]["status"] = json!("running");
        running.as_object_mut().unwrap().remove("merge_request");
        let Event::CheckSuite { action, suite } = of(&running).event else { panic!() };
        assert_eq!((action, suite.status, suite.conclusion), (CheckAction::Requested, CheckStatus::InProgress, None));
        assert!(suite.pull_numbers.is_empty());
        for (status, conclusion) in [
            ("failed", CheckConclusion::Failure),
            ("canceled", CheckConclusion::Cancelled),
            ("skipped", CheckConclusion::Skipped),
        ] {
            running["object_attributes"]["status"] = json!(status);
            let Event::CheckSuite { action, suite } = of(&running).event else { panic!() };
            assert_eq!((action, suite.conclusion), (CheckAction::Completed, Some(conclusion)), "{status}");
        }
    }

    #[test]
    fn a_merge_train_pipeline_is_a_merge_group() {
        let mut train = json_fixture("pipeline/success.json");
        train["object_attributes"]["ref"] = json!("refs/merge-requests/1/train");
        train["object_attributes"]["status"] = json!("pending");
        let env = of(&train);
        assert_eq!(
            env.event,
            Event::MergeGroup {
                action: MergeGroupAction::ChecksRequested,
                group: MergeGroup {
                    head_sha: "bcbb5ec396a2c0f828686f14fac9b80b780504f2".into(),
                    head_ref: "refs/merge-requests/1/train".into(),
                    base_ref: "master".into(),
                },
            }
        );
        train["object_attributes"]["status"] = json!("success");
        let Event::MergeGroup { action, .. } = of(&train).event else { panic!() };
        assert_eq!(action, MergeGroupAction::Unknown);
        // Merged-results and detached refs are ordinary pipelines.
        train["object_attributes"]["ref"] = json!("refs/merge-requests/1/merge");
        assert!(matches!(of(&train).event, Event::CheckSuite { .. }));
    }

    #[test]
    fn pushes_create_and_delete_branches() {
        let env = envelope(&fixture("push/push.json"));
        assert_eq!(env.repo, Some(hello_world()));
        assert_eq!(env.sender, Actor { id: 51764, login: "sytses".into() });
        assert_eq!(
            env.event,
            Event::Push {
                git_ref: "refs/heads/master".into(),
                before: "0000000000000000000000000000000000000000".into(),
                after: "2adc9465c4edfc33834e173fe89436a7cb899a1d".into(),
                created: true,
                deleted: false,
                forced: false,
            }
        );
        let mut delete = json_fixture("push/push.json");
        delete["before"] = json!("2adc9465c4edfc33834e173fe89436a7cb899a1d");
        delete["after"] = json!("0000000000000000000000000000000000000000");
        let Event::Push { created, deleted, .. } = of(&delete).event else { panic!() };
        assert_eq!((created, deleted), (false, true));
        delete["object_kind"] = json!("tag_push");
        assert!(parse(&serde_json::to_vec(&delete).unwrap()).unwrap().is_none());
    }

    #[test]
    fn bodies_that_are_not_events_are_told_apart_from_bad_shapes() {
        assert!(matches!(parse(b"not json"), Err(PayloadError::NotJson(_))));
        assert!(matches!(parse(b"[1,2]"), Err(PayloadError::NotAnEvent(_))));
        assert!(matches!(parse(br#"{"event_name":"project_create"}"#), Err(PayloadError::NotAnEvent(_))));
        assert!(matches!(parse(br#"{"object_kind":"deployment"}"#), Ok(None)));
        let err = parse(br#"{"object_kind":"merge_request","object_attributes":{"iid":"seven"}}"#).unwrap_err();
        assert!(matches!(&err, PayloadError::WrongShape { kind, .. } if kind == "merge_request"), "{err}");
        let mut huge = json_fixture("merge_request/open.json");
        huge["project"]["id"] = json!(u64::MAX);
        assert!(matches!(parse(&serde_json::to_vec(&huge).unwrap()), Err(PayloadError::WrongShape { .. })));
    }

    #[test]
    fn every_listed_kind_is_read() {
        for kind in KINDS {
            let body = format!(r#"{{"object_kind":"{kind}"}}"#);
            assert!(matches!(parse(body.as_bytes()), Err(PayloadError::WrongShape { .. })), "{kind}");
        }
    }
}
