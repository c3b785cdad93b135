//! GitHub webhook bodies as GitHub sends them (only the fields the lane reads), and their
//! conversion into [`Envelope`]s. Unknown fields are ignored; missing required fields are errors.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

use crate::lane::event::{self, Actor, Envelope, Event, Forge, RepoRef};

/// Why a body could not become an event; shown to the sender in the `400` body.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("`{event}` payload has the wrong shape: {source}")]
    WrongShape { event: String, source: serde_json::Error },
}

/// The event names [`parse`] knows; any other is acknowledged and ignored.
pub const EVENTS: &[&str] = &[
    "ping",
    "pull_request",
    "pull_request_review",
    "issues",
    "issue_comment",
    "merge_group",
    "check_run",
    "check_suite",
    "status",
    "push",
    "installation",
    "deployment_status",
];

/// Parses the body of a delivery whose `X-GitHub-Event` is `event_name`.
/// Returns `Ok(None)` for event types the lane does not subscribe to.
pub fn parse(event_name: &str, body: &[u8]) -> Result<Option<Envelope>, PayloadError> {
    // One pass straight into the typed shape: unknown fields are skipped without being built.
    fn de<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, PayloadError> {
        serde_json::from_slice(body).map_err(|e| match e.classify() {
            Category::Data => PayloadError::WrongShape { event: event.to_string(), source: e },
            Category::Syntax | Category::Eof | Category::Io => PayloadError::NotJson(e),
        })
    }
    let envelope = match event_name {
        "ping" => de::<Ping>(event_name, body)?.into_envelope(),
        "pull_request" => de::<PullRequestHook>(event_name, body)?.into_envelope(),
        "pull_request_review" => de::<ReviewHook>(event_name, body)?.into_envelope(),
        "issues" => de::<IssuesHook>(event_name, body)?.into_envelope(),
        "issue_comment" => de::<IssueCommentHook>(event_name, body)?.into_envelope(),
        "merge_group" => de::<MergeGroupHook>(event_name, body)?.into_envelope(),
        "check_run" => de::<CheckRunHook>(event_name, body)?.into_envelope(),
        "check_suite" => de::<CheckSuiteHook>(event_name, body)?.into_envelope(),
        "status" => de::<StatusHook>(event_name, body)?.into_envelope(),
        "push" => de::<PushHook>(event_name, body)?.into_envelope(),
        "installation" => de::<InstallationHook>(event_name, body)?.into_envelope(),
        "deployment_status" => match de::<DeploymentStatusHook>(event_name, body)?.into_envelope() {
            Some(envelope) => envelope,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(envelope))
}

/// Ids and numbers the lane keeps are stored as SQL `BIGINT`: one above `i64::MAX` cannot be a
/// GitHub id, and would come back from the database as another (negative) one, so it is refused.
fn stored_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n > i64::MAX as u64 {
        return Err(serde::de::Error::custom(format!("{n} is above the largest id the lane stores ({})", i64::MAX)));
    }
    Ok(n)
}

#[derive(Deserialize)]
struct Repository {
    #[serde(deserialize_with = "stored_number")]
    id: u64,
    full_name: String,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct User {
    #[serde(deserialize_with = "stored_number")]
    id: u64,
    pub(crate) login: String,
}

#[derive(Deserialize)]
struct Installation {
    #[serde(deserialize_with = "stored_number")]
    id: u64,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

/// Declares a repository-scoped hook: its own fields plus the `repository`, `sender` and
/// `installation` every such hook carries, and how it becomes an [`Event`]. (Not
/// `#[serde(flatten)]`: that buffers the whole payload, unknown fields included, and parses it
/// a second time.)
macro_rules! hook {
    ($name:ident { $($(#[$attr:meta])* $field:ident : $ty:ty),* $(,)? } |$h:ident| $event:expr) => {
        #[derive(Deserialize)]
        struct $name {
            $($(#[$attr])* $field: $ty,)*
            repository: Repository,
            sender: User,
            #[serde(default)]
            installation: Option<Installation>,
        }

        impl $name {
            fn into_envelope(self) -> Envelope {
                let $h = self;
                let event = $event;
                Envelope {
                    forge: Forge::Github,
                    repo: Some($h.repository.into()),
                    sender: $h.sender.into(),
                    installation_id: $h.installation.map(|i| i.id),
                    event,
                }
            }
        }
    };
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
        Actor { id: u.id, login: u.login }
    }
}

fn label_names(labels: Vec<Label>) -> Vec<String> {
    labels.into_iter().map(|l| l.name).collect()
}

/// A ping: from a repository's hook, or from an App's or organization's, which name no
/// repository (and an App's, no sender): set-up pages show the first delivery's answer.
#[derive(Deserialize)]
struct Ping {
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    sender: Option<User>,
    #[serde(default)]
    installation: Option<Installation>,
}

impl Ping {
    fn into_envelope(self) -> Envelope {
        Envelope {
            forge: Forge::Github,
            repo: self.repository.map(Into::into),
            sender: self.sender.map_or(Actor { id: 0, login: "github".into() }, Into::into),
            installation_id: self.installation.map(|i| i.id),
            event: Event::Ping,
        }
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
    #[serde(deserialize_with = "stored_number")]
    id: u64,
}

/// A pull request as GitHub shows it, in webhooks and in the REST API alike.
#[derive(Deserialize)]
pub(crate) struct PullRequestBody {
    #[serde(deserialize_with = "stored_number")]
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
            state: if merged { event::ItemState::Merged } else { p.state },
            draft: p.draft,
            merged,
            merge_commit_sha: p.merge_commit_sha,
            base_sha: None,
            head_sha: p.head.sha,
            head_ref: p.head.git_ref,
            base_ref: p.base.git_ref,
            from_fork,
            labels: label_names(p.labels),
        }
    }
}

hook!(PullRequestHook {
    action: event::PullRequestAction,
    pull_request: PullRequestBody,
    #[serde(default)]
    label: Option<Label>,
} |h| Event::PullRequest {
    action: h.action,
    pull: h.pull_request.into(),
    label: h.label.map(|l| l.name),
    also_added: Vec::new(),
});

#[derive(Deserialize)]
struct ReviewBody {
    #[serde(deserialize_with = "stored_number")]
    id: u64,
    state: event::ReviewState,
    user: User,
    commit_id: Option<String>,
}

hook!(
    ReviewHook { action: event::ReviewAction, review: ReviewBody, pull_request: PullRequestBody }
        | h
        | Event::Review {
            action: h.action,
            pull: h.pull_request.into(),
            review: event::Review {
                id: h.review.id,
                state: h.review.state,
                author: h.review.user.into(),
                commit_sha: h.review.commit_id,
            },
        }
);

#[derive(Deserialize)]
struct IssueBody {
    #[serde(deserialize_with = "stored_number")]
    number: u64,
    title: String,
    #[serde(default)]
    body: Option<String>,
    state: event::ItemState,
    #[serde(default)]
    labels: Vec<Label>,
    /// Present (with URLs) only when the "issue" is a pull request.
    #[serde(default)]
    pull_request: Option<serde::de::IgnoredAny>,
}

impl From<IssueBody> for event::Issue {
    fn from(i: IssueBody) -> Self {
        event::Issue {
            number: i.number,
            title: i.title,
            body: i.body.unwrap_or_default(),
            state: i.state,
            labels: label_names(i.labels),
            is_pull_request: i.pull_request.is_some(),
        }
    }
}

hook!(IssuesHook {
    action: event::IssueAction,
    issue: IssueBody,
    #[serde(default)]
    label: Option<Label>,
} |h| Event::Issue {
    action: h.action,
    issue: h.issue.into(),
    label: h.label.map(|l| l.name),
});

#[derive(Deserialize)]
struct CommentBody {
    #[serde(deserialize_with = "stored_number")]
    id: u64,
    body: Option<String>,
    user: User,
}

hook!(
    IssueCommentHook { action: event::CommentAction, issue: IssueBody, comment: CommentBody }
        | h
        | Event::Comment {
            action: h.action,
            number: h.issue.number,
            on_pull_request: h.issue.pull_request.is_some(),
            comment: event::Comment {
                id: h.comment.id,
                body: h.comment.body.unwrap_or_default(),
                author: h.comment.user.into(),
            },
        }
);

#[derive(Deserialize)]
struct MergeGroupBody {
    head_sha: String,
    head_ref: String,
    base_ref: String,
}

hook!(
    MergeGroupHook { action: event::MergeGroupAction, merge_group: MergeGroupBody }
        | h
        | Event::MergeGroup {
            action: h.action,
            group: event::MergeGroup {
                head_sha: h.merge_group.head_sha,
                head_ref: h.merge_group.head_ref,
                base_ref: h.merge_group.base_ref,
            },
        }
);

#[derive(Deserialize)]
struct PullNumber {
    #[serde(deserialize_with = "stored_number")]
    number: u64,
}

fn numbers(pulls: Vec<PullNumber>) -> Vec<u64> {
    pulls.into_iter().map(|p| p.number).collect()
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

hook!(
    CheckRunHook { action: event::CheckAction, check_run: CheckRunBody }
        | h
        | Event::CheckRun {
            action: h.action,
            check: event::Check {
                name: h.check_run.name,
                head_sha: h.check_run.head_sha,
                status: h.check_run.status,
                conclusion: h.check_run.conclusion,
                pull_numbers: numbers(h.check_run.pull_requests),
            },
        }
);

#[derive(Deserialize)]
struct CheckSuiteBody {
    head_sha: String,
    head_branch: Option<String>,
    status: event::CheckStatus,
    conclusion: Option<event::CheckConclusion>,
    #[serde(default)]
    pull_requests: Vec<PullNumber>,
}

hook!(
    CheckSuiteHook { action: event::CheckAction, check_suite: CheckSuiteBody }
        | h
        | Event::CheckSuite {
            action: h.action,
            suite: event::CheckSuite {
                head_sha: h.check_suite.head_sha,
                head_branch: h.check_suite.head_branch,
                status: h.check_suite.status,
                conclusion: h.check_suite.conclusion,
                pull_numbers: numbers(h.check_suite.pull_requests),
            },
        }
);

hook!(
    StatusHook { sha: String, context: String, state: event::CommitState }
        | h
        | Event::Status { sha: h.sha, context: h.context, state: h.state }
);

#[derive(Deserialize)]
struct DeploymentStatusBody {
    state: String,
    #[serde(default)]
    environment: Option<String>,
}

#[derive(Deserialize)]
struct DeploymentBody {
    sha: String,
    environment: String,
}

/// A `deployment_status` delivery: only a successful one says anything the lane records.
#[derive(Deserialize)]
struct DeploymentStatusHook {
    deployment_status: DeploymentStatusBody,
    deployment: DeploymentBody,
    repository: Repository,
    sender: User,
    #[serde(default)]
    installation: Option<Installation>,
}

impl DeploymentStatusHook {
    fn into_envelope(self) -> Option<Envelope> {
        (self.deployment_status.state == "success").then(|| Envelope {
            forge: Forge::Github,
            repo: Some(self.repository.into()),
            sender: self.sender.into(),
            installation_id: self.installation.map(|i| i.id),
            event: Event::Deployment {
                sha: self.deployment.sha.to_ascii_lowercase(),
                environment: self.deployment_status.environment.unwrap_or(self.deployment.environment),
                tier: None,
            },
        })
    }
}

hook!(
    PushHook {
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
    } | h
        | Event::Push {
            git_ref: h.git_ref,
            before: h.before,
            after: h.after,
            created: h.created,
            deleted: h.deleted,
            forced: h.forced,
        }
);

/// Account-level: no repository.
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
            event: Event::Installation { action: self.action },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_event_is_parsed_and_no_other() {
        for name in EVENTS {
            assert!(!matches!(parse(name, b"{}"), Ok(None)), "{name} is listed but not parsed");
        }
        assert!(matches!(parse("star", b"{}"), Ok(None)));
    }
}
