//! GitHub through octocrab, with our own small request and response shapes (only the fields
//! read). Every URL is relative to the configured API base, so GitHub Enterprise and the test
//! suite's fake GitHub work the same way.

mod authored;
mod checks;
mod graphql;
mod identity;
mod limits;
mod pages;
pub mod payload;
mod queue;

pub use queue::queue_pull_number;

use crate::lane::event::Forge as ForgeKind;
use crate::lane::policy::MergeMethod;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use octocrab::models::{AppId, InstallationId};
use octocrab::Octocrab;
use serde::{Deserialize, Serialize};

use super::{
    AuthoredPull, FileContent, Forge, ForgeError, Forges, GitRemote, MergeOutcome, NewPull, QueueGroup, Revalidated,
    Timeouts,
};
use crate::lane::event::PullRequest;
use crate::lane::policy::{Permission, Responders};
use crate::lane::postmortem::IssueLookup;
use crate::lane::report::{CheckState, Report};
use crate::lane::smoke::Seen;
use crate::store::Millis;
pub use graphql::graphql_root;
use identity::Identity;
use limits::classify;
use pages::Pages;
use payload::{PullRequestBody, User};

/// A client acting as one identity: a token (reports as commit statuses) or an App
/// installation (reports as check runs). Cheap to clone.
#[derive(Clone)]
pub struct GitHub {
    client: Octocrab,
    check_runs: bool,
    /// The token itself, for git; `None` for an App installation (its token is asked for).
    token: Option<String>,
    identity: Identity,
    /// GitHub Enterprise Server serves GraphQL at `/api/graphql`, beside the REST base
    /// `/api/v3` rather than under it: an unauthenticated client for that root, given this
    /// client's token per call. `None` where GraphQL lives under the REST base
    /// (`https://api.github.com/graphql`).
    graphql: Option<Octocrab>,
}

/// How hotfix-lane authenticates to GitHub.
pub enum GitHubAuth {
    /// A personal access token or fine-grained token.
    Token(String),
    /// A GitHub App: JWTs signed with its private key buy installation tokens, which octocrab
    /// caches and renews before they expire.
    App { app_id: u64, private_key_pem: String },
}

/// The clients for every installation (App) or the one client (token).
pub enum GitHubClients {
    Token(GitHub),
    App { root: Octocrab, installations: Mutex<HashMap<u64, GitHub>>, identity: Identity, graphql: Option<Octocrab> },
}

impl GitHubClients {
    pub fn new(api_url: &str, auth: GitHubAuth) -> Result<GitHubClients, ForgeError> {
        GitHubClients::with_timeouts(api_url, auth, Timeouts::default())
    }

    pub fn with_timeouts(api_url: &str, auth: GitHubAuth, timeouts: Timeouts) -> Result<GitHubClients, ForgeError> {
        // A host that accepts and never answers fails the call, and the job retries later.
        let builder = |base: &str| {
            Ok::<_, ForgeError>(
                Octocrab::builder()
                    .base_uri(base)
                    .map_err(|e| ForgeError::Failed(format!("bad GitHub API URL `{base}`: {e}")))?
                    .set_connect_timeout(Some(timeouts.connect))
                    .set_read_timeout(Some(timeouts.request))
                    .set_write_timeout(Some(timeouts.request)),
            )
        };
        let graphql = match graphql_root(api_url) {
            Some(root) => Some(builder(&root)?.build().map_err(|e| ForgeError::Failed(e.to_string()))?),
            None => None,
        };
        Ok(match auth {
            GitHubAuth::Token(token) => GitHubClients::Token(GitHub {
                client: builder(api_url)?
                    .personal_token(token.clone())
                    .build()
                    .map_err(|e| ForgeError::Failed(e.to_string()))?,
                check_runs: false,
                token: Some(token),
                identity: Identity::token(),
                graphql,
            }),
            GitHubAuth::App { app_id, private_key_pem } => {
                let root = builder(api_url)?
                    .app_from_rsa_pem(AppId(app_id), private_key_pem)
                    .map_err(|e| ForgeError::Failed(format!("GitHub App private key: {e}")))?
                    .build()
                    .map_err(|e| ForgeError::Failed(e.to_string()))?;
                GitHubClients::App {
                    identity: Identity::app(root.clone()),
                    root,
                    installations: Mutex::default(),
                    graphql,
                }
            }
        })
    }
}

impl Forges for GitHubClients {
    type Client = GitHub;

    fn client(&self, forge: ForgeKind, installation: Option<u64>) -> Result<GitHub, ForgeError> {
        if forge != ForgeKind::Github {
            return Err(ForgeError::Failed(format!("no {} credentials are configured", forge.as_str())));
        }
        match self {
            GitHubClients::Token(client) => Ok(client.clone()),
            GitHubClients::App { root, installations, identity, graphql } => {
                let id = installation
                    .ok_or_else(|| ForgeError::Failed("the delivery names no App installation to act as".into()))?;
                let mut installations = installations.lock().expect("installation clients lock");
                if let Some(client) = installations.get(&id) {
                    return Ok(client.clone());
                }
                let client = root.installation(InstallationId(id)).map_err(|e| ForgeError::Failed(e.to_string()))?;
                let client = GitHub {
                    client,
                    check_runs: true,
                    token: None,
                    identity: identity.clone(),
                    graphql: graphql.clone(),
                };
                installations.insert(id, client.clone());
                Ok(client)
            }
        }
    }
}

/// A read GitHub failed (5xx), dropped or let time out is asked again this many times, at once
/// but for a short pause: a read changes nothing, and the job's own retry would repeat every
/// read and write before it.
const READ_RETRIES: u32 = 2;

/// Worth asking again: GitHub's own failures and the network's, never a refusal or a limit.
fn transient(err: &octocrab::Error) -> bool {
    match err {
        octocrab::Error::GitHub { source, .. } => source.status_code.is_server_error(),
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } | octocrab::Error::Http { .. } => true,
        _ => false,
    }
}

fn read_pause(attempt: u32) -> Duration {
    Duration::from_millis(50 * u64::from(attempt))
}

/// A write whose repeat leaves GitHub as one would (labels or assignees added, reviewers asked,
/// a comment or a description set to its whole new text, a status set) is asked again as a read
/// is when its answer is lost. A create (comment, issue, pull request, check run) or a merge
/// never is: a lost answer may hide that it happened, and the lane reads to find out.
const WRITE_RETRIES: u32 = READ_RETRIES;

/// Runs `call` again, after a pause, while it fails the way a lost answer fails.
async fn repeated<T, Fut>(call: impl Fn() -> Fut) -> Result<T, octocrab::Error>
where
    Fut: std::future::Future<Output = Result<T, octocrab::Error>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(err) if attempt < WRITE_RETRIES && transient(&err) => attempt += 1,
            done => return done,
        }
        tokio::time::sleep(read_pause(attempt)).await;
    }
}

impl GitHub {
    /// Whether the newest status of `status.context` on `sha` is `status`: a post whose answer
    /// was lost may have set it.
    async fn status_is(&self, repo: &str, sha: &str, status: &NewStatus<'_>) -> Result<bool, ForgeError> {
        let route = format!("/repos/{repo}/commits/{sha}/statuses?per_page=100");
        let listed = self.get::<Vec<ListedStatus>>(&route).await?.unwrap_or_default();
        // Newest first.
        Ok(listed.into_iter().find(|s| s.context == status.context).is_some_and(|s| {
            s.state == status.state && s.description.as_deref().unwrap_or_default() == status.description
        }))
    }

    async fn get<T: octocrab::FromResponse>(&self, route: &str) -> Result<Option<T>, ForgeError> {
        let mut attempt = 0;
        loop {
            match self.client.get::<T, _, ()>(route, None).await {
                Ok(value) => return Ok(Some(value)),
                Err(err) if status(&err) == Some(404) => return Ok(None),
                Err(err) if attempt < READ_RETRIES && transient(&err) => attempt += 1,
                Err(err) => return Err(classify(err)),
            }
            tokio::time::sleep(read_pause(attempt)).await;
        }
    }

    /// A GET whose answer the caller reads by status: `expected` statuses come back as
    /// `(status, ETag, body)`, anything else as the error octocrab makes of it.
    async fn get_answer(
        &self,
        route: &str,
        headers: Option<axum::http::HeaderMap>,
        expected: &[u16],
    ) -> Result<(u16, Option<String>, Vec<u8>), ForgeError> {
        use http_body_util::BodyExt;
        let mut attempt = 0;
        let response = loop {
            match self.client._get_with_headers(route, headers.clone()).await {
                Ok(response) if response.status().is_server_error() && attempt < READ_RETRIES => attempt += 1,
                Ok(response) => break response,
                Err(err) if attempt < READ_RETRIES && transient(&err) => attempt += 1,
                Err(err) => return Err(classify(err)),
            }
            tokio::time::sleep(read_pause(attempt)).await;
        };
        let code = response.status().as_u16();
        if !expected.contains(&code) {
            return Err(match octocrab::map_github_error(response).await {
                Err(err) => classify(err),
                Ok(_) => ForgeError::Failed(format!("GitHub answered {code} to GET {route}")),
            });
        }
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(String::from);
        let body = response.into_body().collect().await.map_err(classify)?.to_bytes().to_vec();
        Ok((code, etag, body))
    }
}

fn decode_contents(path: &str, contents: Contents) -> Result<FileContent, ForgeError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(contents.content.replace(['\n', '\r'], ""))
        .map_err(|e| ForgeError::Failed(format!("{path} is not valid base64: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| ForgeError::Failed(format!("{path} is not UTF-8")))?;
    Ok(FileContent { sha: contents.sha, text })
}

fn parse_answer<T: serde::de::DeserializeOwned>(route: &str, body: &[u8]) -> Result<T, ForgeError> {
    serde_json::from_slice(body).map_err(|e| ForgeError::Failed(format!("GET {route}: unexpected answer: {e}")))
}

fn status(err: &octocrab::Error) -> Option<u16> {
    match err {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Contents {
    sha: String,
    content: String,
}

#[derive(Deserialize)]
struct IssueBody {
    #[serde(default)]
    labels: Vec<Named>,
    #[serde(default)]
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Serialize)]
struct NewStatus<'a> {
    state: &'a str,
    context: &'a str,
    description: &'a str,
}

/// A status as `GET …/commits/{sha}/statuses` lists it, newest first.
#[derive(Deserialize)]
struct ListedStatus {
    context: String,
    state: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct CombinedStatus {
    #[serde(default)]
    statuses: Vec<StatusContext>,
}

#[derive(Deserialize)]
struct StatusContext {
    context: String,
}

#[derive(Deserialize)]
struct CheckRuns {
    #[serde(default)]
    total_count: u64,
}

#[derive(Serialize)]
struct MergeRequest<'a> {
    sha: &'a str,
    merge_method: &'a str,
}

#[derive(Serialize)]
struct NewCheckRun<'a> {
    name: &'a str,
    head_sha: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conclusion: Option<&'a str>,
    output: CheckOutput<'a>,
}

#[derive(Serialize)]
struct CheckOutput<'a> {
    title: &'a str,
    summary: &'a str,
}

#[derive(Serialize)]
struct CommentText<'a> {
    body: &'a str,
}

#[derive(Deserialize)]
struct CommentId {
    id: u64,
}

#[derive(Deserialize)]
struct ChangedFile {
    filename: String,
}

#[derive(Deserialize)]
struct ReviewBody {
    user: Option<authored::Login>,
    state: String,
    commit_id: Option<String>,
}

#[derive(Serialize)]
struct NewIssue<'a> {
    title: &'a str,
    body: &'a str,
    labels: &'a [String],
}

#[derive(Deserialize)]
struct Repository {
    clone_url: String,
}

#[derive(Serialize)]
struct CreatePull<'a> {
    title: &'a str,
    head: &'a str,
    base: &'a str,
    body: &'a str,
    draft: bool,
    maintainer_can_modify: bool,
}

#[derive(Deserialize)]
struct Numbered {
    number: u64,
}

/// Percent-encodes a query value (labels may contain spaces and other characters).
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
struct Membership {
    state: String,
}

#[derive(Deserialize)]
struct CollaboratorPermission {
    #[serde(default)]
    role_name: Option<String>,
    permission: String,
}

impl Forge for GitHub {
    fn conventions(&self) -> &'static crate::lane::conventions::Conventions {
        &crate::lane::conventions::GITHUB
    }

    async fn identity(&self) -> Result<String, ForgeError> {
        self.identity.login(self).await
    }

    async fn file(&self, repo: &str, path: &str, branch: &str) -> Result<Option<FileContent>, ForgeError> {
        let route = format!("/repos/{repo}/contents/{path}?ref={}", encode_query(branch));
        let Some(contents) = self.get::<Contents>(&route).await? else {
            return Ok(None);
        };
        decode_contents(path, contents).map(Some)
    }

    async fn default_branch_file(&self, repo: &str, path: &str, etag: Option<&str>) -> Result<Revalidated, ForgeError> {
        // Without `ref`, GitHub reads the repository's default branch itself.
        let route = format!("/repos/{repo}/contents/{path}");
        let headers = etag.and_then(|e| axum::http::HeaderValue::from_str(e).ok()).map(|value| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(axum::http::header::IF_NONE_MATCH, value);
            headers
        });
        Ok(match self.get_answer(&route, headers, &[200, 304, 404]).await? {
            (304, ..) => Revalidated::Unchanged,
            (404, ..) => Revalidated::Absent,
            (_, etag, body) => {
                Revalidated::Changed { file: decode_contents(path, parse_answer(&route, &body)?)?, etag }
            }
        })
    }

    async fn commit_author(&self, repo: &str, sha: &str) -> Result<Option<String>, ForgeError> {
        #[derive(Deserialize)]
        struct Commit {
            author: Option<User>,
        }
        let commit = self.get::<Commit>(&format!("/repos/{repo}/commits/{sha}")).await?;
        Ok(commit.and_then(|c| c.author).map(|u| u.login))
    }

    async fn issue(&self, repo: &str, number: u64) -> Result<IssueLookup, ForgeError> {
        let route = format!("/repos/{repo}/issues/{number}");
        Ok(match self.get_answer(&route, None, &[200, 301, 404, 410]).await? {
            (301, ..) => IssueLookup::Moved,
            (404, ..) => IssueLookup::NotFound,
            (410, ..) => IssueLookup::Deleted,
            (_, _, body) => {
                let issue: IssueBody = parse_answer(&route, &body)?;
                IssueLookup::Found {
                    is_pull_request: issue.pull_request.is_some(),
                    labels: issue.labels.into_iter().map(|l| l.name).collect(),
                }
            }
        })
    }

    async fn pull(&self, repo: &str, number: u64) -> Result<Option<PullRequest>, ForgeError> {
        // The REST API's pull request is the webhook's: one shape, one conversion.
        Ok(self.get::<PullRequestBody>(&format!("/repos/{repo}/pulls/{number}")).await?.map(PullRequest::from))
    }

    async fn merge(&self, repo: &str, number: u64, sha: &str, method: MergeMethod) -> Result<MergeOutcome, ForgeError> {
        let method = match method {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        };
        let body = MergeRequest { sha, merge_method: method };
        match self
            .client
            .put::<serde_json::Value, _, _>(format!("/repos/{repo}/pulls/{number}/merge"), Some(&body))
            .await
        {
            Ok(_) => Ok(MergeOutcome::Merged),
            Err(octocrab::Error::GitHub { source, .. }) if source.status_code.as_u16() == 405 => {
                // 405 covers a moved base (retry), a merge-queue-only branch (enqueue) and an
                // unmergeable change (stop).
                let message = source.message.to_lowercase();
                if message.contains("base branch was modified") {
                    Ok(MergeOutcome::BaseModified)
                } else if message.contains("merge queue") {
                    Ok(MergeOutcome::QueueRequired)
                } else {
                    Ok(MergeOutcome::Refused(source.message.clone()))
                }
            }
            Err(octocrab::Error::GitHub { source, .. }) if matches!(source.status_code.as_u16(), 409 | 422) => {
                Ok(MergeOutcome::Refused(source.message.clone()))
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn enqueue_first(&self, repo: &str, number: u64, sha: &str) -> Result<(), ForgeError> {
        let (owner, name) = repo.split_once('/').unwrap_or((repo, ""));
        let query = serde_json::json!({
            "query": "query($owner: String!, $name: String!, $number: Int!) { repository(owner: $owner, name: $name) { pullRequest(number: $number) { id } } }",
            "variables": { "owner": owner, "name": name, "number": number },
        });
        let found: serde_json::Value = self.graphql(&query).await?;
        let id = found["repository"]["pullRequest"]["id"]
            .as_str()
            .ok_or_else(|| ForgeError::Failed(format!("pull request #{number} has no GraphQL id")))?;
        let mutation = serde_json::json!({
            "query": "mutation($id: ID!, $sha: GitObjectID!) { enqueuePullRequest(input: { pullRequestId: $id, expectedHeadOid: $sha, jump: true }) { mergeQueueEntry { position } } }",
            "variables": { "id": id, "sha": sha },
        });
        let _: serde_json::Value = self.graphql(&mutation).await?;
        Ok(())
    }

    async fn queue_branches(&self, repo: &str) -> Result<Vec<String>, ForgeError> {
        queue::branches(self, repo).await
    }

    async fn queue_groups(&self, repo: &str, base: &str) -> Result<Vec<QueueGroup>, ForgeError> {
        queue::groups(self, repo, base).await
    }

    async fn has_report(&self, repo: &str, sha: &str, context: &str) -> Result<bool, ForgeError> {
        if self.check_runs {
            let route = format!("/repos/{repo}/commits/{sha}/check-runs?check_name={}", encode_query(context));
            let runs = self.get::<CheckRuns>(&route).await?;
            return Ok(runs.is_some_and(|r| r.total_count > 0));
        }
        let status = self.get::<CombinedStatus>(&format!("/repos/{repo}/commits/{sha}/status")).await?;
        Ok(status.is_some_and(|s| s.statuses.iter().any(|st| st.context == context)))
    }

    async fn commit_contains(&self, repo: &str, ancestor: &str, descendant: &str) -> Result<bool, ForgeError> {
        if ancestor.eq_ignore_ascii_case(descendant) {
            return Ok(true);
        }
        #[derive(serde::Deserialize)]
        struct Compared {
            status: String,
        }
        let route = format!("/repos/{repo}/compare/{ancestor}...{descendant}?per_page=1");
        // `ahead`: the descendant has the ancestor and more; unknown commits compare as 404.
        Ok(self.get::<Compared>(&route).await?.is_some_and(|c| matches!(c.status.as_str(), "ahead" | "identical")))
    }

    async fn pulls_for_commit(&self, repo: &str, sha: &str) -> Result<Vec<u64>, ForgeError> {
        let pulls = self.get::<Vec<Numbered>>(&format!("/repos/{repo}/commits/{sha}/pulls")).await?.unwrap_or_default();
        Ok(pulls.into_iter().map(|p| p.number).collect())
    }

    async fn approvals(&self, repo: &str, number: u64, sha: &str) -> Result<Vec<String>, ForgeError> {
        let route = format!("/repos/{repo}/pulls/{number}/reviews?per_page=100");
        let reviews: Vec<ReviewBody> = Pages::oldest_first(route).all(self).await?;
        // Each reviewer's latest review that took a side; comments change nothing.
        let mut latest: std::collections::BTreeMap<String, (String, ReviewBody)> = Default::default();
        let sided = |r: &ReviewBody| matches!(r.state.as_str(), "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED");
        for r in reviews.into_iter().filter(sided) {
            if let Some(login) = r.user.as_ref().map(|u| u.login.clone()) {
                latest.insert(login.to_ascii_lowercase(), (login, r));
            }
        }
        Ok(latest
            .into_values()
            // An App's or a workflow's approval (`…[bot]`) is no person's.
            .filter(|(login, r)| {
                r.state == "APPROVED" && r.commit_id.as_deref() == Some(sha) && !login.ends_with("[bot]")
            })
            .map(|(login, _)| login)
            .collect())
    }

    fn pinned_reports(&self) -> bool {
        self.check_runs
    }

    async fn changed_files(&self, repo: &str, number: u64) -> Result<Vec<String>, ForgeError> {
        let route = format!("/repos/{repo}/pulls/{number}/files?per_page=100");
        let files: Vec<ChangedFile> = Pages::oldest_first(route).all(self).await?;
        Ok(files.into_iter().map(|f| f.filename).collect())
    }

    async fn report(&self, repo: &str, sha: &str, report: &Report) -> Result<(), ForgeError> {
        let state = match report.state {
            CheckState::Success => "success",
            CheckState::Failure => "failure",
            CheckState::Pending => "pending",
        };
        if self.check_runs {
            let (status, conclusion) = match report.state {
                CheckState::Pending => ("in_progress", None),
                _ => ("completed", Some(state)),
            };
            // A check run's summary is Markdown; the one-line description is plain text.
            let plain;
            let summary = if report.details.is_empty() {
                plain = crate::lane::markdown::text(&report.description);
                &plain
            } else {
                &report.details
            };
            let run = NewCheckRun {
                name: &report.context,
                head_sha: sha,
                status,
                conclusion,
                output: CheckOutput { title: &report.description, summary },
            };
            self.client
                .post::<_, serde_json::Value>(format!("/repos/{repo}/check-runs"), Some(&run))
                .await
                .map_err(classify)?;
            return Ok(());
        }
        let status = NewStatus { state, context: &report.context, description: &report.description };
        let route = format!("/repos/{repo}/statuses/{sha}");
        let mut attempt = 0;
        loop {
            match self.client.post::<_, serde_json::Value>(route.as_str(), Some(&status)).await {
                Ok(_) => return Ok(()),
                Err(err) if attempt < WRITE_RETRIES && transient(&err) => {
                    attempt += 1;
                    tokio::time::sleep(read_pause(attempt)).await;
                    // The status may be set already: posted again, it would be listed twice.
                    match self.status_is(repo, sha, &status).await {
                        Ok(true) => return Ok(()),
                        Ok(false) => {}
                        // Slowed down: the job waits as long as GitHub asks, then posts again.
                        Err(limited @ ForgeError::RateLimited(_)) => return Err(limited),
                        Err(_) => return Err(classify(err)),
                    }
                }
                Err(err) => return Err(classify(err)),
            }
        }
    }

    async fn upsert_comment(
        &self,
        repo: &str,
        number: u64,
        known: Option<u64>,
        marker: &str,
        body: &str,
    ) -> Result<u64, ForgeError> {
        let existing = match known {
            Some(id) => Some(id),
            None => authored::own_comment(self, repo, number, marker).await?,
        };
        let text = CommentText { body };
        let comment: CommentId = match existing {
            // The whole text again: an edit repeated is the same edit.
            Some(id) => {
                let route = format!("/repos/{repo}/issues/comments/{id}");
                repeated(|| self.client.patch(route.as_str(), Some(&text))).await
            }
            // Never repeated here: the job's next attempt finds it by its marker if it was made.
            None => self.client.post(format!("/repos/{repo}/issues/{number}/comments"), Some(&text)).await,
        }
        .map_err(classify)?;
        Ok(comment.id)
    }

    async fn upsert_issue_comment(&self, repo: &str, number: u64, marker: &str, body: &str) -> Result<u64, ForgeError> {
        // Issues and pull requests share their comments on GitHub.
        self.upsert_comment(repo, number, None, marker, body).await
    }

    async fn labeler(&self, repo: &str, number: u64, label: &str) -> Result<Option<(String, Millis)>, ForgeError> {
        authored::labeler(self, repo, number, label).await
    }

    async fn create_issue(&self, repo: &str, title: &str, body: &str, labels: &[String]) -> Result<u64, ForgeError> {
        let new = NewIssue { title, body, labels };
        let created: Numbered =
            self.client.post(format!("/repos/{repo}/issues"), Some(&new)).await.map_err(classify)?;
        Ok(created.number)
    }

    async fn find_issue(&self, repo: &str, label: &str, marker: &str) -> Result<Option<u64>, ForgeError> {
        authored::own_issue(self, repo, label, marker).await
    }

    async fn set_pull_body(&self, repo: &str, number: u64, body: &str) -> Result<(), ForgeError> {
        let (route, text) = (format!("/repos/{repo}/pulls/{number}"), CommentText { body });
        let _: serde_json::Value =
            repeated(|| self.client.patch(route.as_str(), Some(&text))).await.map_err(classify)?;
        Ok(())
    }

    async fn git_remote(&self, repo: &str) -> Result<GitRemote, ForgeError> {
        let found = self.get::<Repository>(&format!("/repos/{repo}")).await?;
        let url = found.ok_or_else(|| ForgeError::Failed(format!("repository {repo} not found")))?.clone_url;
        let token = match &self.token {
            Some(token) => token.clone(),
            None => {
                use octocrab::secrecy::ExposeSecret;
                self.client.installation_token().await.map_err(classify)?.expose_secret().to_string()
            }
        };
        Ok(GitRemote { url, token: Some(token) })
    }

    async fn pulls_for_branch(&self, repo: &str, branch: &str) -> Result<Vec<AuthoredPull>, ForgeError> {
        authored::branch_pulls(self, repo, branch).await
    }

    async fn create_pull(&self, repo: &str, pull: &NewPull<'_>) -> Result<u64, ForgeError> {
        let body = CreatePull {
            title: pull.title,
            head: pull.head,
            base: pull.base,
            body: pull.body,
            draft: pull.draft,
            maintainer_can_modify: true,
        };
        let created: Numbered =
            self.client.post(format!("/repos/{repo}/pulls"), Some(&body)).await.map_err(classify)?;
        Ok(created.number)
    }

    async fn decorate_pull(
        &self,
        repo: &str,
        number: u64,
        labels: &[String],
        people: &[String],
    ) -> Result<(), ForgeError> {
        // Each adds to what is there: asked again, it adds nothing more.
        if !labels.is_empty() {
            let route = format!("/repos/{repo}/issues/{number}/labels");
            let body = serde_json::json!({ "labels": labels });
            let _: serde_json::Value =
                repeated(|| self.client.post(route.as_str(), Some(&body))).await.map_err(classify)?;
        }
        if people.is_empty() {
            return Ok(());
        }
        let route = format!("/repos/{repo}/issues/{number}/assignees");
        let body = serde_json::json!({ "assignees": people });
        let _: serde_json::Value =
            repeated(|| self.client.post(route.as_str(), Some(&body))).await.map_err(classify)?;
        // One at a time: GitHub refuses the whole request when one reviewer cannot review.
        for login in people {
            let route = format!("/repos/{repo}/pulls/{number}/requested_reviewers");
            let body = serde_json::json!({ "reviewers": [login] });
            let asked: Result<serde_json::Value, _> = repeated(|| self.client.post(route.as_str(), Some(&body))).await;
            match asked {
                Ok(_) => {}
                Err(err) if status(&err) == Some(422) => {
                    tracing::info!(repo, number, reviewer = %login, "reviewer refused by GitHub; left out")
                }
                Err(err) => return Err(classify(err)),
            }
        }
        Ok(())
    }

    async fn commit_checks(&self, repo: &str, sha: &str) -> Result<Vec<Seen>, ForgeError> {
        checks::on_commit(self, repo, sha).await
    }

    async fn is_responder(&self, repo: &str, login: &str, responders: &Responders) -> Result<bool, ForgeError> {
        if responders.users.iter().any(|u| u.eq_ignore_ascii_case(login)) {
            return Ok(true);
        }
        for team in &responders.teams {
            let Some((org, slug)) = team.trim_start_matches('@').split_once('/') else {
                continue;
            };
            let route = format!("/orgs/{org}/teams/{slug}/memberships/{login}");
            if self.get::<Membership>(&route).await?.is_some_and(|m| m.state == "active") {
                return Ok(true);
            }
        }
        if let Some(min) = responders.min_permission {
            let route = format!("/repos/{repo}/collaborators/{login}/permission");
            if let Some(p) = self.get::<CollaboratorPermission>(&route).await? {
                let role = p.role_name.unwrap_or(p.permission);
                let held = match role.as_str() {
                    "admin" => Some(Permission::Admin),
                    "maintain" => Some(Permission::Maintain),
                    "write" | "push" => Some(Permission::Write),
                    "triage" => Some(Permission::Triage),
                    "read" | "pull" => Some(Permission::Read),
                    _ => None,
                };
                return Ok(held.is_some_and(|h| h >= min));
            }
        }
        Ok(false)
    }
}
