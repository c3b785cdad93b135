//! GitHub webhook bodies as GitHub sends them (only the fields the lane reads), and their
//! conversion into [`Envelope`]s. Unknown fields are ignored; missing required fields are errors.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::lane::event::{self, Actor, Envelope, Event, Forge, RepoRef};

/// Why a body could not become an event; shown to the sender in the `400` body.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("`{event}` payload has the wrong shape: {source}")]
    WrongShape {
        event: String,
        source: serde_json::Error,
    },
}

/// Parses the body of a delivery whose `X-GitHub-Event` is `event_name`.
/// Returns `Ok(None)` for event types the lane does not subscribe to.
pub fn parse(event_name: &str, body: &[u8]) -> Result<Option<Envelope>, PayloadError> {
    // One pass to check it is JSON at all, so "not JSON" and "wrong shape" get distinct reasons.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(PayloadError::NotJson)?;
    let shape = |source| PayloadError::WrongShape {
        event: event_name.to_string(),
        source,
    };
    fn de<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, serde_json::Error> {
        serde_json::from_value(v)
    }
    let envelope = match event_name {
        "ping" => de::<Ping>(value).map_err(shape)?.into_envelope(),
        "pull_request" => de::<PullRequestHook>(value).map_err(shape)?.into_envelope(),
        "pull_request_review" => de::<ReviewHook>(value).map_err(shape)?.into_envelope(),
        "issues" => de::<IssuesHook>(value).map_err(shape)?.into_envelope(),
        "issue_comment" => de::<IssueCommentHook>(value)
            .map_err(shape)?
            .into_envelope(),
        "merge_group" => de::<MergeGroupHook>(value).map_err(shape)?.into_envelope(),
        "check_run" => de::<CheckRunHook>(value).map_err(shape)?.into_envelope(),
        "check_suite" => de::<CheckSuiteHook>(value).map_err(shape)?.into_envelope(),
        "status" => de::<StatusHook>(value).map_err(shape)?.into_envelope(),
        "push" => de::<PushHook>(value).map_err(shape)?.into_envelope(),
        "installation" => de::<InstallationHook>(value)
            .map_err(shape)?
            .into_envelope(),
        _ => return Ok(None),
    };
    Ok(Some(envelope))
}

#[derive(Deserialize)]
struct Repository {
    id: u64,
    full_name: String,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

/// Fields every repository-scoped hook carries.
#[derive(Deserialize)]
struct Common {
    repository: Repository,
    sender: User,
    #[serde(default)]
    installation: Option<Installation>,
}

impl Common {
    fn envelope(self, event: Event) -> Envelope {
        Envelope {
            forge: Forge::Github,
            repo: Some(self.repository.into()),
            sender: self.sender.into(),
            installation_id: self.installation.map(|i| i.id),
            event,
        }
    }
}

impl From<Repository> for RepoRef {
    fn from(r: Repository) -> Self {
        RepoRef {
            id: r.id,
            full_name: r.full_name,
            // GitHub's own default when a payload omits it (some check payloads do).
            default_branch: r.default_branch.unwrap_or_else(|| "main".to_string()),
        }
    }
}

impl From<User> for Actor {
    fn from(u: User) -> Self {
        Actor {
            id: u.id,
            login: u.login,
        }
    }
}

fn label_names(labels: Vec<Label>) -> Vec<String> {
    labels.into_iter().map(|l| l.name).collect()
}

#[derive(Deserialize)]
struct Ping {
    #[serde(flatten)]
    common: Common,
}

impl Ping {
    fn into_envelope(self) -> Envelope {
        self.common.envelope(Event::Ping)
    }
}

#[derive(Deserialize)]
struct BranchRef {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    repo: Option<RepoId>,
}

#[derive(Deserialize)]
struct RepoId {
    id: u64,
}

#[derive(Deserialize)]
struct PullRequestBody {
    number: u64,
    title: String,
    body: Option<String>,
    user: User,
    state: event::ItemState,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    merged: Option<bool>,
    merge_commit_sha: Option<String>,
    head: BranchRef,
    base: BranchRef,
    #[serde(default)]
    labels: Vec<Label>,
}

impl From<PullRequestBody> for event::PullRequest {
    fn from(p: PullRequestBody) -> Self {
        let base_repo = p.base.repo.as_ref().map(|r| r.id);
        // A deleted fork shows as `head.repo: null`: still not this repository.
        let from_fork = p.head.repo.as_ref().map(|r| r.id) != base_repo;
        let merged = p.merged.unwrap_or(false);
        event::PullRequest {
            number: p.number,
            title: p.title,
            body: p.body.unwrap_or_default(),
            author: p.user.into(),
            state: if merged {
                event::ItemState::Merged
            } else {
                p.state
            },
            draft: p.draft,
            merged,
            merge_commit_sha: p.merge_commit_sha,
            head_sha: p.head.sha,
            head_ref: p.head.git_ref,
            base_ref: p.base.git_ref,
            from_fork,
            labels: label_names(p.labels),
        }
    }
}

#[derive(Deserialize)]
struct PullRequestHook {
    action: event::PullRequestAction,
    pull_request: PullRequestBody,
    #[serde(default)]
    label: Option<Label>,
    #[serde(flatten)]
    common: Common,
}

impl PullRequestHook {
    fn into_envelope(self) -> Envelope {
        self.common.envelope(Event::PullRequest {
            action: self.action,
            pull: self.pull_request.into(),
            label: self.label.map(|l| l.name),
        })
    }
}

#[derive(Deserialize)]
struct ReviewBody {
    id: u64,
    state: event::ReviewState,
    user: User,
    commit_id: Option<String>,
}

#[derive(Deserialize)]
struct ReviewHook {
    action: event::ReviewAction,
    review: ReviewBody,
    pull_request: PullRequestBody,
    #[serde(flatten)]
    common: Common,
}

impl ReviewHook {
    fn into_envelope(self) -> Envelope {
        let review = event::Review {
            id: self.review.id,
            state: self.review.state,
            author: self.review.user.into(),
            commit_sha: self.review.commit_id,
        };
        self.common.envelope(Event::Review {
            action: self.action,
            pull: self.pull_request.into(),
            review,
        })
    }
}

#[derive(Deserialize)]
struct IssueBody {
    number: u64,
    title: String,
    state: event::ItemState,
    #[serde(default)]
    labels: Vec<Label>,
    /// Present (with URLs) only when the "issue" is a pull request.
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct IssuesHook {
    action: event::IssueAction,
    issue: IssueBody,
    #[serde(default)]
    label: Option<Label>,
    #[serde(flatten)]
    common: Common,
}

impl From<IssueBody> for event::Issue {
    fn from(i: IssueBody) -> Self {
        event::Issue {
            number: i.number,
            title: i.title,
            state: i.state,
            labels: label_names(i.labels),
            is_pull_request: i.pull_request.is_some(),
        }
    }
}

impl IssuesHook {
    fn into_envelope(self) -> Envelope {
        self.common.envelope(Event::Issue {
            action: self.action,
            issue: self.issue.into(),
            label: self.label.map(|l| l.name),
        })
    }
}

#[derive(Deserialize)]
struct CommentBody {
    id: u64,
    body: Option<String>,
    user: User,
}

#[derive(Deserialize)]
struct IssueCommentHook {
    action: event::CommentAction,
    issue: IssueBody,
    comment: CommentBody,
    #[serde(flatten)]
    common: Common,
}

impl IssueCommentHook {
    fn into_envelope(self) -> Envelope {
        self.common.envelope(Event::Comment {
            action: self.action,
            number: self.issue.number,
            on_pull_request: self.issue.pull_request.is_some(),
            comment: event::Comment {
                id: self.comment.id,
                body: self.comment.body.unwrap_or_default(),
                author: self.comment.user.into(),
            },
        })
    }
}

#[derive(Deserialize)]
struct MergeGroupBody {
    head_sha: String,
    head_ref: String,
    base_ref: String,
}

#[derive(Deserialize)]
struct MergeGroupHook {
    action: event::MergeGroupAction,
    merge_group: MergeGroupBody,
    #[serde(flatten)]
    common: Common,
}

impl MergeGroupHook {
    fn into_envelope(self) -> Envelope {
        let g = self.merge_group;
        self.common.envelope(Event::MergeGroup {
            action: self.action,
            group: event::MergeGroup {
                head_sha: g.head_sha,
                head_ref: g.head_ref,
                base_ref: g.base_ref,
            },
        })
    }
}

#[derive(Deserialize)]
struct PullNumber {
    number: u64,
}

#[derive(Deserialize)]
struct CheckRunBody {
    name: String,
    head_sha: String,
    status: event::CheckStatus,
    conclusion: Option<event::CheckConclusion>,
    #[serde(default)]
    pull_requests: Vec<PullNumber>,
}

#[derive(Deserialize)]
struct CheckRunHook {
    action: event::CheckAction,
    check_run: CheckRunBody,
    #[serde(flatten)]
    common: Common,
}

impl CheckRunHook {
    fn into_envelope(self) -> Envelope {
        let c = self.check_run;
        self.common.envelope(Event::CheckRun {
            action: self.action,
            check: event::Check {
                name: c.name,
                head_sha: c.head_sha,
                status: c.status,
                conclusion: c.conclusion,
                pull_numbers: c.pull_requests.into_iter().map(|p| p.number).collect(),
            },
        })
    }
}

#[derive(Deserialize)]
struct CheckSuiteBody {
    head_sha: String,
    head_branch: Option<String>,
    status: event::CheckStatus,
    conclusion: Option<event::CheckConclusion>,
    #[serde(default)]
    pull_requests: Vec<PullNumber>,
}

#[derive(Deserialize)]
struct CheckSuiteHook {
    action: event::CheckAction,
    check_suite: CheckSuiteBody,
    #[serde(flatten)]
    common: Common,
}

impl CheckSuiteHook {
    fn into_envelope(self) -> Envelope {
        let s = self.check_suite;
        self.common.envelope(Event::CheckSuite {
            action: self.action,
            suite: event::CheckSuite {
                head_sha: s.head_sha,
                head_branch: s.head_branch,
                status: s.status,
                conclusion: s.conclusion,
                pull_numbers: s.pull_requests.into_iter().map(|p| p.number).collect(),
            },
        })
    }
}

#[derive(Deserialize)]
struct StatusHook {
    sha: String,
    context: String,
    state: event::CommitState,
    #[serde(flatten)]
    common: Common,
}

impl StatusHook {
    fn into_envelope(self) -> Envelope {
        self.common.envelope(Event::Status {
            sha: self.sha,
            context: self.context,
            state: self.state,
        })
    }
}

#[derive(Deserialize)]
struct PushHook {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    forced: bool,
    #[serde(flatten)]
    common: Common,
}

impl PushHook {
    fn into_envelope(self) -> Envelope {
        self.common.envelope(Event::Push {
            git_ref: self.git_ref,
            before: self.before,
            after: self.after,
            created: self.created,
            deleted: self.deleted,
            forced: self.forced,
        })
    }
}

#[derive(Deserialize)]
struct InstallationHook {
    action: event::InstallationAction,
    installation: Installation,
    sender: User,
}

impl InstallationHook {
    fn into_envelope(self) -> Envelope {
        Envelope {
            forge: Forge::Github,
            repo: None,
            sender: self.sender.into(),
            installation_id: Some(self.installation.id),
            event: Event::Installation {
                action: self.action,
            },
        }
    }
}
