//! What the lane needs from a forge, as one trait; each forge's client implements it.

pub mod both;
pub mod github;
pub mod gitlab;

use std::future::Future;
use std::time::Duration;

use crate::lane::event::PullRequest;
use crate::lane::policy::Responders;
use crate::lane::postmortem::IssueLookup;
use crate::lane::report::Report;

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The forge asked us to slow down; the job is retried after this long.
    #[error("rate limited by the forge; retry in {0:?}")]
    RateLimited(Duration),
    #[error("forge request failed: {0}")]
    Failed(String),
}

/// How long the lane waits on a forge: a host that accepts and never answers fails the call, and
/// the job retries later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// The whole call: request written, answer read.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { connect: Duration::from_secs(10), request: Duration::from_secs(30) }
    }
}

/// What a merge request to the forge came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    Merged,
    /// The base branch moved under the merge: worth trying again.
    BaseModified,
    /// The base branch only accepts changes through its merge queue.
    QueueRequired,
    /// The forge refused (conflicts, head moved, protection): not retried; says why.
    Refused(String),
}

/// Where git reaches a repository, and the token it authenticates with there.
#[derive(Clone)]
pub struct GitRemote {
    pub url: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for GitRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRemote").field("url", &self.url).field("token", &self.token.as_ref().map(|_| "…")).finish()
    }
}

/// A pull request to open.
#[derive(Debug, Clone)]
pub struct NewPull<'a> {
    pub title: &'a str,
    /// The branch with the changes, in the same repository.
    pub head: &'a str,
    pub base: &'a str,
    pub body: &'a str,
    pub draft: bool,
}

/// What a conditional read of a file on the default branch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revalidated {
    /// Same as the copy whose validator was sent (a `304`, free of rate limits on GitHub).
    Unchanged,
    Absent,
    /// `etag` validates this copy on the next read.
    Changed {
        file: FileContent,
        etag: Option<String>,
    },
}

/// A file read from a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// The blob id: unchanged content, unchanged id.
    pub sha: String,
    pub text: String,
}

/// A pull request and who opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoredPull {
    pub number: u64,
    pub author: String,
}

/// A group in a merge queue, as the queue itself lists it (branch names prove nothing: anyone
/// who can push may create one that looks like a group's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGroup {
    /// The commit the queue tests for this entry.
    pub head_sha: String,
    /// The changes that commit carries: the entries ahead of it, then its own, last.
    pub changes: Vec<u64>,
    /// The branch the queue merges into.
    pub base: String,
}

/// Hands out the client to act with for an event: the App installation's, or the one
/// token's.
pub trait Forges: Send + Sync + 'static {
    type Client: Forge;
    /// The client for `forge`, acting as `installation` (a GitHub App's) where there is one.
    fn client(&self, forge: crate::lane::event::Forge, installation: Option<u64>) -> Result<Self::Client, ForgeError>;
}

pub trait Forge: Send + Sync + 'static {
    /// This forge's paths and words (where the policy lives, what a change is called).
    fn conventions(&self) -> &'static crate::lane::conventions::Conventions;

    /// Whether what this client reports can be required from it alone: a GitHub App's check
    /// runs, which a ruleset pins to the App. A commit status can be posted by anyone who can
    /// push, so a check the lane would vouch for by itself must not rest on one.
    fn pinned_reports(&self) -> bool;

    /// The login the forge shows on what this client writes (a token's user, an App's bot):
    /// comments and pull requests are the lane's own only when this login wrote them.
    fn identity(&self) -> impl Future<Output = Result<String, ForgeError>> + Send;

    /// A file on a branch; `None` when it does not exist.
    fn file(
        &self,
        repo: &str,
        path: &str,
        branch: &str,
    ) -> impl Future<Output = Result<Option<FileContent>, ForgeError>> + Send;

    /// `path` on the repository's default branch — as the forge knows it, never as an event or
    /// a change says — read conditionally: `etag` is the validator of the copy the caller has.
    fn default_branch_file(
        &self,
        repo: &str,
        path: &str,
        etag: Option<&str>,
    ) -> impl Future<Output = Result<Revalidated, ForgeError>> + Send;

    /// Who the forge says wrote commit `sha` (its account login), if it links the commit to one.
    fn commit_author(&self, repo: &str, sha: &str) -> impl Future<Output = Result<Option<String>, ForgeError>> + Send;

    /// An issue (or pull request) by number, for postmortem checks. Moved and deleted issues
    /// are answers, not errors: the change's author controls which issue is named.
    fn issue(&self, repo: &str, number: u64) -> impl Future<Output = Result<IssueLookup, ForgeError>> + Send;

    /// A pull request by number; `None` when it does not exist.
    fn pull(&self, repo: &str, number: u64) -> impl Future<Output = Result<Option<PullRequest>, ForgeError>> + Send;

    /// Merges a change at exactly `sha` with `method`.
    fn merge(
        &self,
        repo: &str,
        number: u64,
        sha: &str,
        method: crate::lane::policy::MergeMethod,
    ) -> impl Future<Output = Result<MergeOutcome, ForgeError>> + Send;

    /// Puts a pull request at the front of its base branch's merge queue ("jump"), pinned to
    /// `sha`.
    fn enqueue_first(&self, repo: &str, number: u64, sha: &str) -> impl Future<Output = Result<(), ForgeError>> + Send;

    /// The branches whose merge queue may have groups in flight. Only a hint of where to look:
    /// what a queue holds comes from [`Forge::queue_groups`].
    fn queue_branches(&self, repo: &str) -> impl Future<Output = Result<Vec<String>, ForgeError>> + Send;

    /// The groups in `base`'s merge queue, in queue order; none when it has no queue.
    fn queue_groups(&self, repo: &str, base: &str) -> impl Future<Output = Result<Vec<QueueGroup>, ForgeError>> + Send;

    /// Whether `context` has been reported on `sha` (as this client reports: status or check run).
    fn has_report(&self, repo: &str, sha: &str, context: &str)
        -> impl Future<Output = Result<bool, ForgeError>> + Send;

    /// Whether commit `descendant` contains commit `ancestor` (is it, or comes after it).
    fn commit_contains(
        &self,
        repo: &str,
        ancestor: &str,
        descendant: &str,
    ) -> impl Future<Output = Result<bool, ForgeError>> + Send;

    /// Open pull requests whose head is `sha`.
    fn pulls_for_commit(&self, repo: &str, sha: &str) -> impl Future<Output = Result<Vec<u64>, ForgeError>> + Send;

    /// Who approved commit `sha` of a pull request in their latest review (a later review asking
    /// for changes, or one of another commit, replaces an approval). Whether they may approve is
    /// the caller's to check.
    fn approvals(
        &self,
        repo: &str,
        number: u64,
        sha: &str,
    ) -> impl Future<Output = Result<Vec<String>, ForgeError>> + Send;

    /// Paths a pull request changes, all of them.
    fn changed_files(&self, repo: &str, number: u64) -> impl Future<Output = Result<Vec<String>, ForgeError>> + Send;

    /// Reports a check result on a commit.
    fn report(&self, repo: &str, sha: &str, report: &Report) -> impl Future<Output = Result<(), ForgeError>> + Send;

    /// Creates or updates the lane's one comment on a change; returns its id. Finds a comment
    /// it wrote before (by `marker`, among the comments [`Forge::identity`] wrote: anyone can
    /// post a marker) when `known` is `None`, so a retried job never adds a second one.
    fn upsert_comment(
        &self,
        repo: &str,
        number: u64,
        known: Option<u64>,
        marker: &str,
        body: &str,
    ) -> impl Future<Output = Result<u64, ForgeError>> + Send;

    /// Creates or edits the lane's comment marked `marker` on issue `number`.
    fn upsert_issue_comment(
        &self,
        repo: &str,
        number: u64,
        marker: &str,
        body: &str,
    ) -> impl Future<Output = Result<u64, ForgeError>> + Send;

    /// Who last applied `label` to a change, and when: for a label applied while hotfix-lane
    /// was not listening. `None` when its last application was undone since.
    fn labeler(
        &self,
        repo: &str,
        number: u64,
        label: &str,
    ) -> impl Future<Output = Result<Option<(String, crate::store::Millis)>, ForgeError>> + Send;

    /// Opens an issue with labels; returns its number.
    fn create_issue(
        &self,
        repo: &str,
        title: &str,
        body: &str,
        labels: &[String],
    ) -> impl Future<Output = Result<u64, ForgeError>> + Send;

    /// The number of an issue [`Forge::identity`] opened carrying `label` whose body contains
    /// `marker`, if there is one.
    fn find_issue(
        &self,
        repo: &str,
        label: &str,
        marker: &str,
    ) -> impl Future<Output = Result<Option<u64>, ForgeError>> + Send;

    /// Replaces a pull request's description.
    fn set_pull_body(&self, repo: &str, number: u64, body: &str)
        -> impl Future<Output = Result<(), ForgeError>> + Send;

    /// Where git fetches and pushes the repository, with credentials that make the forge treat
    /// pushes as this client's (an App's pushes and pull requests run the repository's CI).
    fn git_remote(&self, repo: &str) -> impl Future<Output = Result<GitRemote, ForgeError>> + Send;

    /// The pull requests (in any state) whose head is `branch` of `repo` itself, newest first.
    fn pulls_for_branch(
        &self,
        repo: &str,
        branch: &str,
    ) -> impl Future<Output = Result<Vec<AuthoredPull>, ForgeError>> + Send;

    /// Opens a pull request; returns its number.
    fn create_pull(&self, repo: &str, pull: &NewPull<'_>) -> impl Future<Output = Result<u64, ForgeError>> + Send;

    /// Adds `labels` to a pull request, and `people` as its assignees and reviewers (those the
    /// forge refuses as reviewers, such as its author, are left out).
    fn decorate_pull(
        &self,
        repo: &str,
        number: u64,
        labels: &[String],
        people: &[String],
    ) -> impl Future<Output = Result<(), ForgeError>> + Send;

    /// Every check run and commit status on `sha`, newest first, with who reported it.
    fn commit_checks(
        &self,
        repo: &str,
        sha: &str,
    ) -> impl Future<Output = Result<Vec<crate::lane::smoke::Seen>, ForgeError>> + Send;

    /// Whether `login` is a responder under `responders` (users, teams, repository permission).
    fn is_responder(
        &self,
        repo: &str,
        login: &str,
        responders: &Responders,
    ) -> impl Future<Output = Result<bool, ForgeError>> + Send;
}
