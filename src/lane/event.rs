//! Forge-neutral events: what the lane needs to know about a webhook delivery, and nothing else.
//!
//! Ingress turns each forge's payload into an [`Envelope`]; the store keeps it as JSON and the
//! worker hands it to the lane. Action enums carry an `Unknown` variant so that an action a
//! forge adds tomorrow still parses (and is then ignored) instead of failing the whole event.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    Github,
    Gitlab,
}

impl Forge {
    pub const ALL: [Forge; 2] = [Forge::Github, Forge::Gitlab];

    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Github => "github",
            Forge::Gitlab => "gitlab",
        }
    }
}

/// One delivery, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub forge: Forge,
    /// Absent only for account-level events (e.g. an App installation).
    pub repo: Option<RepoRef>,
    pub sender: Actor,
    pub installation_id: Option<u64>,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRef {
    pub id: u64,
    /// `owner/name` on GitHub, the project path on GitLab.
    pub full_name: String,
    pub default_branch: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: u64,
    pub login: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Ping,
    PullRequest {
        action: PullRequestAction,
        pull: PullRequest,
        /// The label added or removed, for `labeled`/`unlabeled`.
        label: Option<String>,
        /// Labels this event applied besides `label`, on forges that apply several in one event
        /// (GitLab reports one `update` for `/label ~a ~b`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also_added: Vec<String>,
    },
    Review {
        action: ReviewAction,
        pull: PullRequest,
        review: Review,
    },
    Issue {
        action: IssueAction,
        issue: Issue,
        label: Option<String>,
    },
    Comment {
        action: CommentAction,
        /// The issue or pull request number the comment sits on.
        number: u64,
        on_pull_request: bool,
        comment: Comment,
    },
    MergeGroup {
        action: MergeGroupAction,
        group: MergeGroup,
    },
    CheckRun {
        action: CheckAction,
        check: Check,
    },
    CheckSuite {
        action: CheckAction,
        suite: CheckSuite,
    },
    Status {
        sha: String,
        context: String,
        state: CommitState,
    },
    Push {
        git_ref: String,
        before: String,
        after: String,
        created: bool,
        deleted: bool,
        forced: bool,
    },
    Installation {
        action: InstallationAction,
    },
    /// A deployment of commit `sha` to `environment` finished well (others are not delivered
    /// as events). `tier`: GitLab's deployment tier (`production`, …), when it says.
    Deployment {
        sha: String,
        environment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub author: Actor,
    pub state: ItemState,
    pub draft: bool,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    /// The target's commit the change's diff starts from, where the forge says (GitLab's
    /// `diff_refs.base_sha`): after a fast-forward merge, what landed begins right after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_sha: Option<String>,
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    /// True when the head branch lives in another repository (a fork).
    pub from_fork: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    /// Its description: read for a postmortem's `Incident-Started:` and `Fixes:` lines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    pub state: ItemState,
    pub labels: Vec<String>,
    /// GitHub delivers pull requests through `issues` hooks too; they never count as issues.
    pub is_pull_request: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub author: Actor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: u64,
    pub state: ReviewState,
    pub author: Actor,
    pub commit_sha: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeGroup {
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub head_sha: String,
    pub status: CheckStatus,
    pub conclusion: Option<CheckConclusion>,
    pub pull_numbers: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSuite {
    pub head_sha: String,
    pub head_branch: Option<String>,
    pub status: CheckStatus,
    pub conclusion: Option<CheckConclusion>,
    pub pull_numbers: Vec<u64>,
}

macro_rules! forge_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant,)+
            /// A value this version does not know; parsed so the rest of the event survives.
            #[serde(other)]
            Unknown,
        }
    };
}

forge_enum!(PullRequestAction {
    Opened,
    Edited,
    Closed,
    Reopened,
    Synchronize,
    Labeled,
    Unlabeled,
    ReadyForReview,
    ConvertedToDraft,
});
forge_enum!(ReviewAction { Submitted, Edited, Dismissed });
forge_enum!(ReviewState { Approved, ChangesRequested, Commented, Dismissed, Pending });
forge_enum!(IssueAction { Opened, Edited, Deleted, Transferred, Closed, Reopened, Labeled, Unlabeled });
forge_enum!(CommentAction { Created, Edited, Deleted });
forge_enum!(MergeGroupAction { ChecksRequested, Destroyed });
forge_enum!(CheckAction { Created, Completed, Rerequested, RequestedAction, Requested });
forge_enum!(CheckStatus { Queued, InProgress, Completed, Waiting, Requested, Pending });
forge_enum!(CheckConclusion {
    Success,
    Failure,
    Neutral,
    Cancelled,
    Skipped,
    TimedOut,
    ActionRequired,
    Stale,
    StartupFailure,
});
forge_enum!(CommitState { Pending, Success, Failure, Error });
forge_enum!(ItemState { Open, Closed, Merged });
forge_enum!(InstallationAction { Created, Deleted, Suspend, Unsuspend, NewPermissionsAccepted });

impl Envelope {
    /// Whether the lane acts on this event at all. Ignored events are acknowledged with `200`
    /// and not stored: pings, and any action value this version does not know.
    pub fn is_actionable(&self) -> bool {
        match &self.event {
            Event::Ping => false,
            Event::PullRequest { action, .. } => *action != PullRequestAction::Unknown,
            Event::Review { action, .. } => *action != ReviewAction::Unknown,
            Event::Issue { action, .. } => *action != IssueAction::Unknown,
            Event::Comment { action, .. } => *action != CommentAction::Unknown,
            Event::MergeGroup { action, .. } => *action != MergeGroupAction::Unknown,
            Event::CheckRun { action, .. } | Event::CheckSuite { action, .. } => *action != CheckAction::Unknown,
            Event::Status { .. } | Event::Push { .. } | Event::Deployment { .. } => true,
            Event::Installation { action } => *action != InstallationAction::Unknown,
        }
    }

    /// Jobs that share an ordering key run one at a time, in delivery order: everything about
    /// one pull request is serialized, unrelated work runs in parallel.
    pub fn ordering_key(&self) -> String {
        let forge = self.forge.as_str();
        let Some(repo) = &self.repo else {
            return format!("{forge}:installation:{}", self.installation_id.unwrap_or(0));
        };
        let change = |number: u64| super::key::ChangeKey::new(self.forge, repo.id, number).to_string();
        let scope = match &self.event {
            Event::PullRequest { pull, .. } | Event::Review { pull, .. } => return change(pull.number),
            Event::Comment { number, on_pull_request: true, .. } => return change(*number),
            Event::Issue { issue, .. } if issue.is_pull_request => return change(issue.number),
            Event::CheckRun { check: Check { pull_numbers, head_sha, .. }, .. }
            | Event::CheckSuite { suite: CheckSuite { pull_numbers, head_sha, .. }, .. } => {
                match pull_numbers.first() {
                    Some(n) => return change(*n),
                    None => format!("sha:{head_sha}"),
                }
            }
            Event::Comment { number, .. } => format!("issue:{number}"),
            Event::Issue { issue, .. } => format!("issue:{}", issue.number),
            Event::MergeGroup { group, .. } => format!("queue:{}", group.base_ref),
            Event::Status { sha, .. } => format!("sha:{sha}"),
            Event::Push { git_ref, .. } => format!("ref:{git_ref}"),
            // One queue per repository: each deployment sees what the one before recorded.
            Event::Deployment { .. } => "deployments".to_string(),
            Event::Ping | Event::Installation { .. } => "repo".to_string(),
        };
        format!("{forge}:{}:{scope}", repo.id)
    }
}
