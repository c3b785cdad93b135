//! A stateful fake of the GitHub REST API on loopback: the real client talks to it over HTTP.
//! It holds repositories (files, issues, pull requests, statuses, comments), teams and
//! permissions, and records every request so tests can count API calls. Like GitHub, it knows
//! who each token is (what the client writes carries that author) and serves listings in pages.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use super::faults::{Faults, Flavor};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub sha: String,
    pub context: String,
    pub state: String,
    pub description: String,
    /// Who posted it: the token's user for statuses (`creator`), the App for check runs.
    pub by: String,
    /// A check run's check suite (one workflow run and its re-runs); 0 for statuses.
    pub suite: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub number: u64,
    pub body: String,
    /// Its author's login.
    pub author: String,
}

#[derive(Default)]
pub struct Repo {
    /// (branch, path) → content.
    pub files: HashMap<(String, String), String>,
    /// number → (labels, is pull request).
    pub issues: BTreeMap<u64, (Vec<String>, bool)>,
    /// number → (title, body), for issues opened through the API.
    pub issue_texts: BTreeMap<u64, (String, String)>,
    pub pulls: BTreeMap<u64, Value>,
    /// Answers to the next merge requests, `(status, message)`; empty means "merged".
    pub merge_answers: std::collections::VecDeque<(u16, String)>,
    /// (number, sha, method) of every merge the fake performed.
    pub merges: Vec<(u64, String, String)>,
    /// (number, when it arrived) of every merge request, whatever the answer: benchmarks time
    /// the lane's merges by it.
    pub merge_requests: Vec<(u64, std::time::Instant)>,
    /// Merges to perform and then answer 502 for, as if the answer were lost on the way.
    pub lost_merge_answers: u32,
    /// `(ref, sha)` of the merge queue's `gh-readonly-queue/…` branches.
    pub queue_refs: Vec<(String, String)>,
    /// number → paths the pull request changes.
    pub pull_files: BTreeMap<u64, Vec<String>>,
    /// number → (reviewer, state, commit) of its reviews, oldest first.
    pub reviews: BTreeMap<u64, Vec<(String, String, String)>>,
    /// (issue or pull number, label, actor, created_at) of `labeled` events.
    pub label_events: Vec<(u64, String, String, String)>,
    pub statuses: Vec<Status>,
    pub comments: Vec<Comment>,
    /// A bare repository on disk standing in for the repository's git side: its clone URL,
    /// and the contents of any commit not in `files`.
    pub git_dir: Option<std::path::PathBuf>,
    /// number → labels added, assignees and requested reviewers of pull requests.
    pub pull_labels: BTreeMap<u64, Vec<String>>,
    pub assignees: BTreeMap<u64, Vec<String>>,
    pub reviewers: BTreeMap<u64, Vec<String>>,
    /// Check runs created through the API (also kept in `statuses`, by name).
    pub check_runs: Vec<Status>,
    /// The default branch GitHub reads when a request names no `ref` (`master` if unset).
    pub default_branch: Option<String>,
    /// number → the status GitHub answers for an issue that moved (301) or was deleted (410).
    pub gone_issues: BTreeMap<u64, u16>,
    /// sha → login GitHub links the commit's author to.
    pub commit_authors: HashMap<String, String>,
    /// Issue events of any other kind, in order, listed after `label_events`: `(number, event)`.
    pub events: Vec<(u64, Value)>,
    /// Base branch → its merge queue's entries in order: `(pull number, group head sha)`.
    pub merge_queue: BTreeMap<String, Vec<(u64, String)>>,
    /// number → who opened the issue (through the API: the token's login).
    pub issue_authors: BTreeMap<u64, String>,
    /// Base branches that take changes only through their merge queue: a merge into one is
    /// refused the way GitHub's ruleset refuses it.
    pub queue_only: Vec<String>,
    /// The default branch's commits made by merges, oldest first: what `compare` answers from.
    pub history: Vec<String>,
    /// number → the commit in `git_dir` a merge of the pull request lands as, instead of one
    /// made up: what a backport then picks.
    pub landings: BTreeMap<u64, String>,
}

impl Repo {
    /// Merges pull request `number` as a new commit on top of the default branch's history.
    pub fn land(&mut self, number: u64) -> String {
        let made_up = || format!("{:032x}{:08x}", 0x6d65_7267_6564_u128 + self.history.len() as u128, number);
        let sha = self.landings.get(&number).cloned().unwrap_or_else(made_up);
        if let Some(p) = self.pulls.get_mut(&number) {
            p["merged"] = json!(true);
            p["state"] = json!("closed");
            p["merge_commit_sha"] = json!(sha);
        }
        self.history.push(sha.clone());
        sha
    }
}

#[derive(Default)]
pub struct World {
    pub repos: HashMap<String, Repo>,
    /// (org, team slug) → member logins.
    pub teams: HashMap<(String, String), Vec<String>>,
    /// (repo, login) → role name.
    pub permissions: HashMap<(String, String), String>,
    /// (pull request node id, expected head, jump) of every merge-queue entry made over GraphQL.
    pub enqueued: Vec<(String, String, bool)>,
    /// "METHOD /path" of every request, in order.
    pub calls: Vec<String>,
    /// (path, Authorization header) of every request.
    pub auth: Vec<(String, String)>,
    /// Requests whose path contains one of these are answered 502, as a degraded GitHub would.
    pub failing: Vec<String>,
    /// Path and query of every request, in order.
    pub uris: Vec<String>,
    /// (path part, count): that many requests whose path contains it hit a secondary rate
    /// limit (403, `Retry-After: 1`, with most of the hourly limit left).
    pub throttled: Vec<(String, u32)>,
    /// Failures to answer instead of the next request matching "METHOD /path": `(call, status)`.
    pub failures: Vec<(String, u16)>,
    /// `(repo, comment)` of every comment written through the API, in order: each creation and
    /// each edit (with the text it left), so a test can read every version the lane wrote.
    pub written: Vec<(String, Comment)>,
    /// repo → what `GET /repos/{repo}` answers (default branch, the caller's permissions),
    /// besides the clone URL of `git_dir`.
    pub repo_info: HashMap<String, Value>,
    /// repo → the App's installation on it (`GET /repos/{repo}/installation`); absent: 404.
    pub installations: HashMap<String, Value>,
    /// (repo, branch) → the rules that apply to the branch (`GET /repos/{repo}/rules/branches/{branch}`).
    pub rules: HashMap<(String, String), Value>,
    /// What `GET /app` answers instead of the default (slug, id, permissions, events).
    pub app_info: Option<Value>,
    /// The `X-OAuth-Scopes` of a classic token, sent with `GET /user`; none: a fine-grained token.
    pub token_scopes: Option<String>,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub world: Arc<Mutex<World>>,
    pub url: String,
    /// What stands between the lane and this fake: nothing, unless it was started with faults.
    pub faults: Faults,
}

impl FakeGitHub {
    /// Laid out as github.com: REST at the root, GraphQL at `/graphql`.
    pub async fn start() -> FakeGitHub {
        FakeGitHub::serve(false, Faults::off()).await
    }

    /// Laid out as github.com, every call going through `faults`.
    pub async fn start_with(faults: Faults) -> FakeGitHub {
        FakeGitHub::serve(false, faults).await
    }

    /// Laid out as GitHub Enterprise Server: REST under `/api/v3` (the `url`), GraphQL beside
    /// it at `/api/graphql`. Recorded calls carry the whole path.
    pub async fn start_enterprise() -> FakeGitHub {
        FakeGitHub::serve(true, Faults::off()).await
    }

    async fn serve(enterprise: bool, faults: Faults) -> FakeGitHub {
        let world = Arc::new(Mutex::new(World { next_id: 1000, ..World::default() }));
        let api = Router::new()
            .route("/repos/{owner}/{repo}/contents/{*path}", get(contents))
            .route("/repos/{owner}/{repo}/issues", get(list_issues).post(create_issue))
            .route("/repos/{owner}/{repo}/issues/{number}", get(issue))
            .route("/repos/{owner}/{repo}/issues/{number}/comments", get(list_comments).post(create_comment))
            .route("/repos/{owner}/{repo}/issues/{number}/events", get(issue_events))
            .route("/repos/{owner}/{repo}/issues/comments/{id}", patch(edit_comment))
            .route("/repos/{owner}/{repo}", get(repository))
            .route("/repos/{owner}/{repo}/installation", get(installation))
            .route("/repos/{owner}/{repo}/rules/branches/{branch}", get(branch_rules))
            .route("/repos/{owner}/{repo}/pulls", get(list_pulls).post(create_pull))
            .route("/repos/{owner}/{repo}/issues/{number}/labels", post(add_labels))
            .route("/repos/{owner}/{repo}/issues/{number}/assignees", post(add_assignees))
            .route("/repos/{owner}/{repo}/pulls/{number}/requested_reviewers", post(request_reviewers))
            .route("/repos/{owner}/{repo}/pulls/{number}", get(pull).patch(edit_pull))
            .route("/repos/{owner}/{repo}/pulls/{number}/files", get(pull_files))
            .route("/repos/{owner}/{repo}/pulls/{number}/reviews", get(pull_reviews))
            .route("/repos/{owner}/{repo}/pulls/{number}/merge", axum::routing::put(merge_pull))
            .route("/repos/{owner}/{repo}/commits/{sha}/pulls", get(pulls_for_commit))
            .route("/repos/{owner}/{repo}/compare/{spec}", get(compare))
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
            .route("/repos/{owner}/{repo}/check-runs", post(create_check_run))
            .route("/app/installations/{id}/access_tokens", post(access_token))
            .route("/user", get(user))
            .route("/app", get(app))
            .route("/repos/{owner}/{repo}/git/matching-refs/{*prefix}", get(matching_refs))
            .route("/repos/{owner}/{repo}/commits/{sha}/status", get(combined_status))
            .route("/repos/{owner}/{repo}/commits/{sha}/check-runs", get(list_check_runs))
            .route("/repos/{owner}/{repo}/commits/{sha}/statuses", get(list_statuses))
            .route("/repos/{owner}/{repo}/commits/{sha}", get(commit))
            .route("/orgs/{org}/teams/{team}/memberships/{login}", get(team_membership))
            .route("/repos/{owner}/{repo}/collaborators/{login}/permission", get(permission));
        let (app, prefix) = match enterprise {
            false => (api.route("/graphql", post(graphql)), ""),
            true => (Router::new().nest("/api/v3", api).route("/api/graphql", post(graphql)), "/api/v3"),
        };
        let app = app
            .fallback(|uri: Uri| async move { not_found(&format!("no fake for {uri}")) })
            .layer(axum::middleware::from_fn_with_state(world.clone(), record))
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{prefix}", listener.local_addr().unwrap());
        tokio::spawn(faults.clone().serve(listener, app, Flavor::GitHub));
        FakeGitHub { world, url, faults }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.world.lock().unwrap())
    }

    pub fn repo<T>(&self, name: &str, f: impl FnOnce(&mut Repo) -> T) -> T {
        self.with(|w| f(w.repos.entry(name.to_string()).or_default()))
    }

    /// The latest status of `context` on `sha`.
    pub fn status(&self, repo: &str, sha: &str, context: &str) -> Option<Status> {
        self.repo(repo, |r| r.statuses.iter().rev().find(|s| s.sha == sha && s.context == context).cloned())
    }

    pub fn comments(&self, repo: &str, number: u64) -> Vec<Comment> {
        self.repo(repo, |r| r.comments.iter().filter(|c| c.number == number).cloned().collect())
    }

    /// A commit status posted by `creator`, as CI (or anyone with write access) would.
    pub fn post_status(&self, repo: &str, sha: &str, context: &str, state: &str, creator: &str) {
        let status = Status {
            sha: sha.into(),
            context: context.into(),
            state: state.into(),
            description: String::new(),
            by: creator.into(),
            suite: 0,
        };
        self.repo(repo, |r| r.statuses.push(status));
    }

    /// A check run created by the App `app` (its slug), as a CI App would, in its first check
    /// suite (a re-run of the same workflow run).
    pub fn post_check_run(&self, repo: &str, sha: &str, name: &str, conclusion: &str, app: &str) {
        self.post_check_run_in(repo, sha, name, conclusion, app, 1);
    }

    /// A check run in check suite `suite`: another workflow run, as one a writer's workflow on
    /// another branch would make.
    pub fn post_check_run_in(&self, repo: &str, sha: &str, name: &str, conclusion: &str, app: &str, suite: u64) {
        let run = Status {
            sha: sha.into(),
            context: name.into(),
            state: conclusion.into(),
            description: String::new(),
            by: app.into(),
            suite,
        };
        self.repo(repo, |r| {
            r.check_runs.push(run.clone());
            r.statuses.push(run);
        });
    }

    pub fn take_calls(&self) -> Vec<String> {
        self.with(|w| std::mem::take(&mut w.calls))
    }
}

type Shared = State<Arc<Mutex<World>>>;

/// Who the fake says posted what the lane reports: the token's user, or the App.
pub const LANE_TOKEN_USER: &str = "hotfix-lane-bot";
pub const LANE_APP_SLUG: &str = "hotfix-lane";

async fn record(
    State(world): Shared,
    method: Method,
    uri: Uri,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let authorization =
        request.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let failure = {
        let mut w = world.lock().unwrap();
        let call = format!("{method} {}", uri.path());
        w.calls.push(call.clone());
        w.uris.push(uri.path_and_query().map_or_else(|| uri.path().to_string(), |p| p.to_string()));
        w.auth.push((uri.path().to_string(), authorization));
        if w.failing.iter().any(|f| uri.path().contains(f.as_str())) {
            return (StatusCode::BAD_GATEWAY, Json(json!({ "message": "Server Error" }))).into_response();
        }
        if let Some((_, left)) = w.throttled.iter_mut().find(|(p, left)| *left > 0 && uri.path().contains(p.as_str())) {
            *left -= 1;
            let reset = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600)
                .to_string();
            let headers = [
                ("retry-after", "1".to_string()),
                ("x-ratelimit-remaining", "4000".into()),
                ("x-ratelimit-reset", reset),
            ];
            let message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
            return (StatusCode::FORBIDDEN, headers, Json(json!({ "message": message }))).into_response();
        }
        w.failures.iter().position(|(c, _)| *c == call).map(|i| w.failures.remove(i).1)
    };
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap();
        return (status, Json(json!({ "message": "injected failure" }))).into_response();
    }
    next.run(request).await
}

fn not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "message": message, "documentation_url": "https://docs.github.com" })))
        .into_response()
}

fn full(owner: &str, repo: &str) -> String {
    format!("{owner}/{repo}")
}

async fn contents(
    State(world): Shared,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let world = world.lock().unwrap();
    let Some(r) = world.repos.get(&full(&owner, &repo)) else { return not_found("Not Found") };
    let branch = q.get("ref").cloned().unwrap_or_else(|| r.default_branch.clone().unwrap_or_else(|| "master".into()));
    let from_git = || {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(r.git_dir.as_ref()?)
            .args(["show", &format!("{branch}:{path}")])
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(text) = r.files.get(&(branch.clone(), path.clone())).cloned().or_else(from_git) else {
        return not_found("Not Found");
    };
    let sha = format!("{:040x}", text.bytes().fold(0u128, |h, b| h.wrapping_mul(31).wrapping_add(b as u128)));
    // Like GitHub: a strong validator per content; a matching `If-None-Match` answers 304.
    let etag = format!("\"{sha}\"");
    if headers.get("if-none-match").is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    let content = base64::engine::general_purpose::STANDARD.encode(text);
    let body = json!({ "type": "file", "path": path, "sha": sha, "encoding": "base64", "content": content });
    ([("etag", etag)], Json(body)).into_response()
}

async fn issue(State(world): Shared, Path((owner, repo, number)): Path<(String, String, u64)>) -> Response {
    let world = world.lock().unwrap();
    if let Some(&code) = world.repos.get(&full(&owner, &repo)).and_then(|r| r.gone_issues.get(&number)) {
        let message = if code == 301 { "Moved Permanently" } else { "This issue was deleted" };
        let status = StatusCode::from_u16(code).unwrap();
        return (status, Json(json!({ "message": message, "documentation_url": "https://docs.github.com" })))
            .into_response();
    }
    match world.repos.get(&full(&owner, &repo)).and_then(|r| r.issues.get(&number)) {
        Some((labels, is_pr)) => {
            let labels: Vec<Value> = labels.iter().map(|l| json!({ "name": l })).collect();
            let mut body = json!({ "number": number, "title": "incident", "state": "open", "labels": labels });
            if *is_pr {
                body["pull_request"] = json!({ "url": "https://api.github.com/x" });
            }
            Json(body).into_response()
        }
        None => not_found("Not Found"),
    }
}

async fn pull(State(world): Shared, Path((owner, repo, number)): Path<(String, String, u64)>) -> Response {
    let world = world.lock().unwrap();
    match world.repos.get(&full(&owner, &repo)).and_then(|r| r.pulls.get(&number)) {
        Some(p) => Json(p.clone()).into_response(),
        None => not_found("Not Found"),
    }
}

async fn repository(State(world): Shared, Path((owner, repo)): Path<(String, String)>) -> Response {
    let world = world.lock().unwrap();
    let name = full(&owner, &repo);
    let info = world.repo_info.get(&name).cloned();
    match (world.repos.get(&name).and_then(|r| r.git_dir.clone()), info) {
        (Some(dir), info) => {
            let mut answer = info.unwrap_or_else(|| json!({ "default_branch": "master" }));
            answer["clone_url"] = format!("file://{}", dir.display()).into();
            Json(answer).into_response()
        }
        (None, Some(info)) => Json(info).into_response(),
        (None, None) => not_found("Not Found"),
    }
}

async fn installation(State(world): Shared, Path((owner, repo)): Path<(String, String)>) -> Response {
    match world.lock().unwrap().installations.get(&full(&owner, &repo)) {
        Some(installation) => Json(installation.clone()).into_response(),
        None => not_found("Not Found"),
    }
}

async fn branch_rules(State(world): Shared, Path((owner, repo, branch)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    Json(world.rules.get(&(full(&owner, &repo), branch)).cloned().unwrap_or_else(|| json!([]))).into_response()
}

async fn list_pulls(
    State(world): Shared,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let world = world.lock().unwrap();
    let head = q.get("head").cloned().unwrap_or_default();
    let list: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .map(|r| {
            r.pulls
                .values()
                .filter(|p| head.is_empty() || format!("{owner}:{}", p["head"]["ref"].as_str().unwrap_or("")) == head)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    paged(list, &q, &uri, &headers)
}

async fn create_pull(
    State(world): Shared,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let repo = world.repos.entry(full(&owner, &repo)).or_default();
    let head = body["head"].as_str().unwrap_or_default().to_string();
    if repo.pulls.values().any(|p| p["head"]["ref"] == head.as_str() && p["state"] == "open") {
        let message = format!("A pull request already exists for {owner}:{head}.");
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "message": message }))).into_response();
    }
    let number = next_number(repo);
    // Like GitHub, the head is the branch's commit, when the repository has real git behind it.
    let head_sha = repo.git_dir.as_ref().map_or_else(String::new, |dir| {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(["rev-parse", "--verify", "-q", &format!("refs/heads/{head}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    let pull = json!({
        "number": number,
        "title": body["title"], "body": body["body"], "draft": body["draft"],
        "state": "open", "merged": false,
        "head": { "ref": head, "sha": head_sha }, "base": { "ref": body["base"], "sha": "" },
        "maintainer_can_modify": body["maintainer_can_modify"],
        "user": { "id": 1, "login": login_of(&headers) },
        "opened_here": true,
    });
    repo.pulls.insert(number, pull);
    repo.issues.insert(number, (vec![], true));
    (StatusCode::CREATED, Json(json!({ "number": number }))).into_response()
}

/// Issues and pull requests share one sequence of numbers.
fn next_number(repo: &Repo) -> u64 {
    repo.issues.keys().chain(repo.pulls.keys()).max().copied().unwrap_or(0) + 1
}

/// Appends what `list` lacks, as GitHub does for labels, assignees and reviewers.
fn add_unique(list: &mut Vec<String>, new: Vec<String>) {
    for item in new {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
}

async fn add_labels(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let repo = world.repos.entry(full(&owner, &repo)).or_default();
    let labels = repo.pull_labels.entry(number).or_default();
    add_unique(labels, strings(&body["labels"]));
    // A pull request the fake opened shows them when read, as on GitHub.
    let shown = labels.clone();
    if let Some(pull) = repo.pulls.get_mut(&number).filter(|p| p["opened_here"] == json!(true)) {
        pull["labels"] = shown.iter().map(|l| json!({ "name": l })).collect();
    }
    Json(json!([])).into_response()
}

async fn add_assignees(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let assignees = world.repos.entry(full(&owner, &repo)).or_default().assignees.entry(number).or_default();
    add_unique(assignees, strings(&body["assignees"]));
    (StatusCode::CREATED, Json(json!({ "number": number }))).into_response()
}

/// Like GitHub, refuses a reviewer who is not a collaborator (here: `outsider`).
async fn request_reviewers(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let asked = strings(&body["reviewers"]);
    if asked.iter().any(|r| r == "outsider") {
        let message = "Reviews may only be requested from collaborators.";
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "message": message }))).into_response();
    }
    let reviewers = world.repos.entry(full(&owner, &repo)).or_default().reviewers.entry(number).or_default();
    add_unique(reviewers, asked);
    (StatusCode::CREATED, Json(json!({ "number": number }))).into_response()
}

async fn issue_events(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let world = world.lock().unwrap();
    let events: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .map(|r| {
            let labeled = r.label_events.iter().filter(|e| e.0 == number).map(|(_, label, actor, at)| {
                json!({ "event": "labeled", "label": { "name": label }, "actor": { "id": 1, "login": actor }, "created_at": at })
            });
            labeled.chain(r.events.iter().filter(|e| e.0 == number).map(|e| e.1.clone())).collect()
        })
        .unwrap_or_default();
    paged(events, &q, &uri, &headers)
}

async fn merge_pull(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let arrived = std::time::Instant::now();
    let mut world = world.lock().unwrap();
    let repo = world.repos.entry(full(&owner, &repo)).or_default();
    repo.merge_requests.push((number, arrived));
    let base = repo.pulls.get(&number).and_then(|p| p["base"]["ref"].as_str()).unwrap_or_default();
    if repo.queue_only.iter().any(|b| b == base) {
        let message = "Repository rule violations found\n\nChanges must be made through the merge queue";
        return (StatusCode::METHOD_NOT_ALLOWED, Json(json!({ "message": message }))).into_response();
    }
    if let Some((status, message)) = repo.merge_answers.pop_front() {
        let status = StatusCode::from_u16(status).unwrap();
        return (status, Json(json!({ "message": message, "documentation_url": "https://docs.github.com" })))
            .into_response();
    }
    let sha = body["sha"].as_str().unwrap_or_default().to_string();
    if repo.pulls.get(&number).is_some_and(|p| p["merged"] == json!(true)) {
        return (StatusCode::METHOD_NOT_ALLOWED, Json(json!({ "message": "Pull Request is not mergeable" })))
            .into_response();
    }
    let merge_sha = repo.land(number);
    repo.merges.push((number, sha.clone(), body["merge_method"].as_str().unwrap_or_default().into()));
    if repo.lost_merge_answers > 0 {
        repo.lost_merge_answers -= 1;
        return (StatusCode::BAD_GATEWAY, Json(json!({ "message": "Server Error" }))).into_response();
    }
    Json(json!({ "sha": merge_sha, "merged": true, "message": "Pull Request successfully merged" })).into_response()
}

/// `GET compare/{base}...{head}` over the default branch's linear history: `ahead` when head
/// came after base, `behind` before it, 404 for a commit it does not know.
async fn compare(State(world): Shared, Path((owner, repo, spec)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    let history = world.repos.get(&full(&owner, &repo)).map(|r| r.history.clone()).unwrap_or_default();
    let Some((base, head)) = spec.split_once("...") else { return not_found("Not Found") };
    let at = |sha: &str| history.iter().position(|h| h == sha);
    match (at(base), at(head)) {
        (Some(b), Some(h)) => {
            let status = match h.cmp(&b) {
                std::cmp::Ordering::Greater => "ahead",
                std::cmp::Ordering::Equal => "identical",
                std::cmp::Ordering::Less => "behind",
            };
            Json(json!({ "status": status, "ahead_by": h.saturating_sub(b), "behind_by": b.saturating_sub(h) }))
                .into_response()
        }
        _ => not_found("Not Found"),
    }
}

async fn pulls_for_commit(State(world): Shared, Path((owner, repo, sha)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    let list: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .map(|r| {
            r.pulls
                .values()
                .filter(|p| p["head"]["sha"] == json!(sha))
                .map(|p| json!({ "number": p["number"] }))
                .collect()
        })
        .unwrap_or_default();
    Json(list).into_response()
}

async fn pull_files(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let world = world.lock().unwrap();
    let files: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .and_then(|r| r.pull_files.get(&number))
        .map(|f| f.iter().map(|name| json!({ "filename": name, "status": "modified" })).collect())
        .unwrap_or_default();
    paged(files, &q, &uri, &headers)
}

async fn pull_reviews(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let world = world.lock().unwrap();
    let reviews: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .and_then(|r| r.reviews.get(&number))
        .map(|all| {
            all.iter()
                .enumerate()
                .map(|(i, (login, state, commit))| {
                    json!({ "id": 80_000 + i, "user": { "login": login, "type": "User" }, "state": state,
                        "commit_id": commit, "body": "" })
                })
                .collect()
        })
        .unwrap_or_default();
    paged(reviews, &q, &uri, &headers)
}

async fn edit_pull(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let repo = world.repos.entry(full(&owner, &repo)).or_default();
    match repo.pulls.get_mut(&number) {
        Some(p) => {
            if let Some(text) = body.get("body") {
                p["body"] = text.clone();
            }
            Json(p.clone()).into_response()
        }
        None => not_found("Not Found"),
    }
}

async fn create_issue(
    State(world): Shared,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let repo = world.repos.entry(full(&owner, &repo)).or_default();
    let number = next_number(repo);
    repo.issue_authors.insert(number, login_of(&headers));
    repo.issues.insert(number, (strings(&body["labels"]), false));
    let text = (body["title"].as_str().unwrap_or_default().into(), body["body"].as_str().unwrap_or_default().into());
    repo.issue_texts.insert(number, text);
    (StatusCode::CREATED, Json(json!({ "number": number }))).into_response()
}

async fn list_issues(
    State(world): Shared,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let world = world.lock().unwrap();
    let Some(repo) = world.repos.get(&full(&owner, &repo)) else { return Json(json!([])).into_response() };
    let label = q.get("labels").cloned().unwrap_or_default();
    let list: Vec<Value> = repo
        .issues
        .iter()
        .filter(|(_, (labels, _))| label.is_empty() || labels.contains(&label))
        .map(|(n, (_, is_pr))| {
            let body = repo.issue_texts.get(n).map(|t| t.1.clone()).unwrap_or_default();
            let mut issue = json!({ "number": n, "body": body });
            if *is_pr {
                issue["pull_request"] = json!({});
            }
            if let Some(author) = repo.issue_authors.get(n) {
                issue["user"] = json!({ "id": 1, "login": author });
            }
            issue
        })
        .collect();
    paged(list, &q, &uri, &headers)
}

async fn create_status(
    State(world): Shared,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let status = Status {
        sha,
        context: body["context"].as_str().unwrap_or_default().into(),
        state: body["state"].as_str().unwrap_or_default().into(),
        description: body["description"].as_str().unwrap_or_default().into(),
        by: LANE_TOKEN_USER.into(),
        suite: 0,
    };
    world.repos.entry(full(&owner, &repo)).or_default().statuses.push(status);
    (StatusCode::CREATED, Json(json!({ "id": 1 }))).into_response()
}

/// Check runs are kept with the statuses: the context is the run's name, the state its
/// conclusion, the description its title.
async fn create_check_run(
    State(world): Shared,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let status = Status {
        sha: body["head_sha"].as_str().unwrap_or_default().into(),
        context: body["name"].as_str().unwrap_or_default().into(),
        state: body["conclusion"].as_str().unwrap_or("pending").into(),
        description: body["output"]["title"].as_str().unwrap_or_default().into(),
        by: LANE_APP_SLUG.into(),
        suite: 1,
    };
    let repo = world.repos.entry(full(&owner, &repo)).or_default();
    repo.check_runs.push(status.clone());
    repo.statuses.push(status);
    (StatusCode::CREATED, Json(json!({ "id": 7 }))).into_response()
}

async fn matching_refs(State(world): Shared, Path((owner, repo, prefix)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    let prefix = format!("refs/{prefix}");
    let refs: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .map(|r| {
            r.queue_refs
                .iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .map(|(name, sha)| json!({ "ref": name, "object": { "sha": sha, "type": "commit" } }))
                .collect()
        })
        .unwrap_or_default();
    Json(refs).into_response()
}

/// Like GitHub: the latest status of each context, newest first.
async fn combined_status(State(world): Shared, Path((owner, repo, sha)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    let mut seen = std::collections::HashSet::new();
    let statuses: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .map(|r| {
            r.statuses
                .iter()
                .rev()
                .filter(|s| s.sha == sha && !r.check_runs.contains(s) && seen.insert(s.context.clone()))
                .map(|s| json!({ "context": s.context, "state": s.state }))
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "sha": sha, "statuses": statuses })).into_response()
}

/// Statuses on a commit, newest first, each with its creator (which the combined status omits).
async fn list_statuses(State(world): Shared, Path((owner, repo, sha)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    let statuses: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .map(|r| {
            r.statuses
                .iter()
                .rev()
                .filter(|s| s.sha == sha && !r.check_runs.contains(s))
                .map(|s| {
                    json!({
                        "context": s.context, "state": s.state, "description": s.description,
                        "creator": { "id": 1, "login": s.by },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Json(statuses).into_response()
}

async fn commit(State(world): Shared, Path((owner, repo, sha)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    let author = world.repos.get(&full(&owner, &repo)).and_then(|r| r.commit_authors.get(&sha)).cloned();
    let author = author.map(|login| json!({ "id": 1, "login": login }));
    Json(json!({ "sha": sha, "author": author })).into_response()
}

/// Check runs on a commit, newest first, optionally of one name.
async fn list_check_runs(
    State(world): Shared,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let world = world.lock().unwrap();
    let runs: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .map(|r| {
            r.check_runs
                .iter()
                .rev()
                .filter(|c| c.sha == sha && q.get("check_name").is_none_or(|n| *n == c.context))
                .map(|c| {
                    let conclusion = (c.state != "pending").then(|| c.state.clone());
                    let status = if conclusion.is_some() { "completed" } else { "in_progress" };
                    let app = json!({ "slug": c.by, "name": c.by });
                    let suite = json!({ "id": c.suite });
                    json!({ "name": c.context, "status": status, "conclusion": conclusion, "app": app, "check_suite": suite })
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "total_count": runs.len(), "check_runs": runs })).into_response()
}

/// The GraphQL operations the lane uses: a pull request's node id, `enqueuePullRequest`, and
/// those of [`identity_and_queue_graphql`].
async fn graphql(State(world): Shared, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let query = body["query"].as_str().unwrap_or_default();
    let vars = &body["variables"];
    if let Some(answer) = identity_and_queue_graphql(&world, &headers, query, vars) {
        return answer;
    }
    if query.contains("enqueuePullRequest") {
        let mut world = world.lock().unwrap();
        let jump = query.contains("jump: true");
        let entry =
            (vars["id"].as_str().unwrap_or_default().into(), vars["sha"].as_str().unwrap_or_default().into(), jump);
        world.enqueued.push(entry);
        return Json(json!({ "data": { "enqueuePullRequest": { "mergeQueueEntry": { "position": 0 } } } }))
            .into_response();
    }
    let id = format!(
        "PR_{}_{}_{}",
        vars["owner"].as_str().unwrap_or_default(),
        vars["name"].as_str().unwrap_or_default(),
        vars["number"]
    );
    Json(json!({ "data": { "repository": { "pullRequest": { "id": id } } } })).into_response()
}

/// Installation tokens for App mode: `ghs_installation_<id>`, valid for an hour.
async fn access_token(Path(id): Path<u64>) -> Response {
    let token = json!({
        "token": format!("ghs_installation_{id}"),
        "expires_at": "2099-01-01T00:00:00Z",
        "permissions": { "checks": "write", "statuses": "write", "issues": "write", "pull_requests": "write" },
        "repository_selection": "all",
    });
    (StatusCode::CREATED, Json(token)).into_response()
}

async fn list_comments(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let world = world.lock().unwrap();
    let list: Vec<Value> = world
        .repos
        .get(&full(&owner, &repo))
        .map(|r| {
            r.comments
                .iter()
                .filter(|c| c.number == number)
                .map(|c| json!({ "id": c.id, "body": c.body, "user": { "id": 1, "login": c.author } }))
                .collect()
        })
        .unwrap_or_default();
    paged(list, &q, &uri, &headers)
}

async fn create_comment(
    State(world): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    world.next_id += 1;
    let id = world.next_id;
    let body = body["body"].as_str().unwrap_or_default().to_string();
    let author = login_of(&headers);
    let comment = Comment { id, number, body: body.clone(), author: author.clone() };
    world.written.push((full(&owner, &repo), comment.clone()));
    world.repos.entry(full(&owner, &repo)).or_default().comments.push(comment);
    (StatusCode::CREATED, Json(json!({ "id": id, "body": body, "user": { "id": 1, "login": author } }))).into_response()
}

async fn edit_comment(
    State(world): Shared,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let mut world = world.lock().unwrap();
    let text = body["body"].as_str().unwrap_or_default().to_string();
    let name = full(&owner, &repo);
    let repo = world.repos.entry(name.clone()).or_default();
    match repo.comments.iter_mut().find(|c| c.id == id) {
        Some(c) => {
            c.body = text.clone();
            let edited = c.clone();
            world.written.push((name, edited));
            Json(json!({ "id": id, "body": text })).into_response()
        }
        None => not_found("Not Found"),
    }
}

async fn team_membership(State(world): Shared, Path((org, team, login)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    match world.teams.get(&(org, team)) {
        Some(members) if members.iter().any(|m| m.eq_ignore_ascii_case(&login)) => {
            Json(json!({ "state": "active", "role": "member" })).into_response()
        }
        _ => not_found("Not Found"),
    }
}

async fn permission(State(world): Shared, Path((owner, repo, login)): Path<(String, String, String)>) -> Response {
    let world = world.lock().unwrap();
    let role = world.permissions.get(&(full(&owner, &repo), login)).cloned().unwrap_or_else(|| "read".into());
    let permission = match role.as_str() {
        "maintain" => "write",
        "triage" => "read",
        other => other,
    };
    Json(json!({ "permission": permission, "role_name": role })).into_response()
}

// Identity, pagination and the merge queue.

/// Who a plain token (`HOTFIX_LANE_GITHUB_TOKEN`) is.
pub const TOKEN_LOGIN: &str = "hotfix-lane-bot";
/// The App's slug: its installations act as `hotfix-lane[bot]`.
pub const APP_SLUG: &str = "hotfix-lane";
/// Who an installation token not bought from this App is: Actions' `GITHUB_TOKEN`.
pub const ACTIONS_LOGIN: &str = "github-actions[bot]";

/// The login GitHub shows on what a request's token writes.
pub fn login_of(headers: &HeaderMap) -> String {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = auth.trim_start_matches("Bearer ").trim_start_matches("token ");
    if token.starts_with("ghs_installation_") {
        format!("{APP_SLUG}[bot]")
    } else if token.starts_with("ghs_") {
        ACTIONS_LOGIN.to_string()
    } else {
        TOKEN_LOGIN.to_string()
    }
}

/// Like GitHub: an installation token has no user.
async fn user(State(world): Shared, headers: HeaderMap) -> Response {
    let login = login_of(&headers);
    if login.ends_with("[bot]") {
        let message = "Resource not accessible by integration";
        return (StatusCode::FORBIDDEN, Json(json!({ "message": message }))).into_response();
    }
    let mut response = Json(json!({ "id": 1, "login": login, "type": "User" })).into_response();
    if let Some(scopes) = world.lock().unwrap().token_scopes.clone() {
        response.headers_mut().insert("x-oauth-scopes", scopes.parse().unwrap());
    }
    response
}

/// The App itself, asked with its JWT.
async fn app(State(world): Shared) -> Response {
    let info = world.lock().unwrap().app_info.clone();
    Json(info.unwrap_or_else(|| json!({ "id": 4242, "slug": APP_SLUG, "name": "hotfix lane" }))).into_response()
}

/// One page of `items` as GitHub serves a listing: `per_page` (30 unless asked, at most 100) and
/// `page`, with a `Link` header to the next, previous, first and last pages.
fn paged(items: Vec<Value>, q: &HashMap<String, String>, uri: &Uri, headers: &HeaderMap) -> Response {
    let per_page = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30usize).clamp(1, 100);
    let page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1usize).max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let others: Vec<&str> = uri.query().unwrap_or_default().split('&').filter(|p| !p.starts_with("page=")).collect();
    let link =
        |n: usize, rel: &str| format!("<http://{host}{}?{}&page={n}>; rel=\"{rel}\"", uri.path(), others.join("&"));
    let mut links = Vec::new();
    if page < pages {
        links.extend([link(page + 1, "next"), link(pages, "last")]);
    }
    if page > 1 {
        links.extend([link(1, "first"), link(page - 1, "prev")]);
    }
    let slice: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut response = Json(slice).into_response();
    if !links.is_empty() {
        response.headers_mut().insert("link", links.join(", ").parse().unwrap());
    }
    response
}

/// GraphQL's `viewer` and `mergeQueue`, from the request's token and the repositories' queues.
fn identity_and_queue_graphql(
    world: &Mutex<World>,
    headers: &HeaderMap,
    query: &str,
    vars: &Value,
) -> Option<Response> {
    if query.contains("viewer {") {
        return Some(Json(json!({ "data": { "viewer": { "login": login_of(headers) } } })).into_response());
    }
    if !query.contains("mergeQueue(") {
        return None;
    }
    let world = world.lock().unwrap();
    let repo = format!("{}/{}", vars["owner"].as_str().unwrap_or_default(), vars["name"].as_str().unwrap_or_default());
    let branch = vars["branch"].as_str().unwrap_or_default();
    let queue = world.repos.get(&repo).and_then(|r| r.merge_queue.get(branch)).map(|entries| {
        let nodes: Vec<Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (number, sha))| {
                json!({ "position": i + 1, "state": "AWAITING_CHECKS", "headCommit": { "oid": sha }, "pullRequest": { "number": number } })
            })
            .collect();
        json!({ "entries": { "pageInfo": { "hasNextPage": false, "endCursor": null }, "nodes": nodes } })
    });
    Some(Json(json!({ "data": { "repository": { "mergeQueue": queue } } })).into_response())
}
