//! GitLab for the test language: the webhook payloads the lane receives, built from real
//! GitLab captures, and [`GitLabDriver`], which plays people's moves on the fake GitLab and
//! sends the webhook GitLab would send for each.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};

use super::fake_gitlab::{FakeGitLab, MergeRequest, OpenMr};
use super::lane::NOW;
use super::scenario::{Change, ForgeDriver, Issue, Landed, NewChange, Said, Source, State, Written};
use super::{base_url, Backend, TestDb};
use hotfix_lane::clock::ManualClock;
use hotfix_lane::server::Running;
use hotfix_lane::store::Store;

/// The project the scenarios run in.
pub const PROJECT: u64 = 42;
pub const PROJECT_PATH: &str = "acme/platform/payments";
pub const DEFAULT_BRANCH: &str = "main";
/// Where the policy lives on GitLab.
pub const POLICY: &str = ".gitlab/hotfix-lane.toml";
/// The `X-Gitlab-Token` the project's webhook sends.
pub const GITLAB_TOKEN: &str = "test-gitlab-webhook-token";
/// The lane's API token.
pub const API_TOKEN: &str = "glpat-test";

// Payloads.

/// Where the GitLab captures are: `tests/fixtures/gitlab` once the repository carries them,
/// else the shared capture directory beside the checkout (`HOTFIX_LANE_GITLAB_FIXTURES`
/// overrides both).
pub fn fixture_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HOTFIX_LANE_GITLAB_FIXTURES") {
        return dir.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let own = root.join("tests/fixtures/gitlab");
    if own.is_dir() {
        return own;
    }
    root.join("../shared/fixtures/gitlab")
}

/// A GitLab capture (`merge_request/open.json`) parsed, to edit into the hook a test needs.
pub fn fixture(rel: &str) -> Value {
    let path = fixture_dir().join(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("GitLab fixture {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// `2026-11-26 13:24:00 UTC`, as GitLab writes times in hook bodies.
pub fn hook_time(ms: i64) -> String {
    let iso = super::fake_gitlab::iso8601(ms.div_euclid(1000));
    format!("{} {} UTC", &iso[..10], &iso[11..19])
}

/// What one project looks like inside a hook (`project`, `object_attributes.source`/`target`).
pub fn hook_project(fake: &FakeGitLab, project: u64) -> Value {
    let (path, branch) = fake.project(project, |p| (p.path.clone(), p.default_branch.clone()));
    let name = path.rsplit('/').next().unwrap().to_string();
    let web = format!("{}/{path}", fake.url);
    let host = fake.url.trim_start_matches("http://").to_string();
    json!({
        "id": project, "name": name, "description": "", "web_url": web, "avatar_url": null,
        "git_ssh_url": format!("git@{host}:{path}.git"), "git_http_url": format!("{web}.git"),
        "namespace": path.rsplit_once('/').map_or("", |(ns, _)| ns), "visibility_level": 0,
        "path_with_namespace": path, "default_branch": branch, "ci_config_path": null, "homepage": web,
        "url": format!("git@{host}:{path}.git"), "ssh_url": format!("git@{host}:{path}.git"),
        "http_url": format!("{web}.git"),
    })
}

/// A hook's `user`: who did it.
pub fn hook_user(fake: &FakeGitLab, username: &str) -> Value {
    let id = fake.user(username);
    json!({
        "id": id, "name": username, "username": username,
        "avatar_url": "https://www.gravatar.com/avatar/00000000000000000000000000000000?s=80&d=identicon",
        "email": "[REDACTED]",
    })
}

/// Labels as hooks carry them: objects with a `title`.
pub fn hook_labels(fake: &FakeGitLab, project: u64, labels: &[String]) -> Value {
    labels
        .iter()
        .map(|l| {
            let id = fake.with(|w| w.label_id(project, l));
            json!({
                "id": id, "title": l, "color": "#6699cc", "project_id": project, "created_at": "2026-01-01 00:00:00 UTC",
                "updated_at": "2026-01-01 00:00:00 UTC", "template": false, "description": null, "type": "ProjectLabel",
                "group_id": null,
            })
        })
        .collect()
}

fn repository(project: &Value) -> Value {
    json!({
        "name": project["name"], "url": project["url"], "description": "", "homepage": project["homepage"],
    })
}

/// The `merge_request` object of Note and Pipeline hooks, and the `object_attributes` of
/// Merge Request hooks.
fn mr_attributes(fake: &FakeGitLab, project: u64, mr: &MergeRequest, base: &Value) -> Value {
    let mut a = base.clone();
    let p = hook_project(fake, project);
    let url = format!("{}/-/merge_requests/{}", p["web_url"].as_str().unwrap(), mr.iid);
    let head_pipeline = fake.head_pipeline(project, mr.iid);
    let status = fake.with(|w| w.merge_status(project, mr.iid));
    let labels = hook_labels(fake, project, &mr.labels);
    let set = |a: &mut Value, k: &str, v: Value| {
        a[k] = v;
    };
    set(&mut a, "id", mr.id.into());
    set(&mut a, "iid", mr.iid.into());
    set(&mut a, "title", mr.title.clone().into());
    set(&mut a, "description", mr.description.clone().into());
    set(&mut a, "state", mr.state.clone().into());
    set(&mut a, "author_id", mr.author.into());
    set(&mut a, "source_branch", mr.source_branch.clone().into());
    set(&mut a, "target_branch", mr.target_branch.clone().into());
    set(&mut a, "source_project_id", mr.source_project_id.into());
    set(&mut a, "target_project_id", mr.target_project_id.into());
    set(&mut a, "merge_commit_sha", mr.merge_commit_sha.clone().into());
    set(&mut a, "head_pipeline_id", head_pipeline.into());
    set(&mut a, "url", url.clone().into());
    set(&mut a, "work_in_progress", mr.draft.into());
    set(&mut a, "draft", mr.draft.into());
    set(&mut a, "detailed_merge_status", status.into());
    set(&mut a, "assignee_ids", mr.assignees.clone().into());
    set(&mut a, "reviewer_ids", mr.reviewers.clone().into());
    set(&mut a, "created_at", mr.created_at.replace('T', " ").replace(".000Z", " UTC").into());
    set(&mut a, "updated_at", mr.updated_at.replace('T', " ").replace(".000Z", " UTC").into());
    if a.get("source").is_some() {
        set(&mut a, "source", p.clone());
        set(&mut a, "target", p.clone());
    }
    if a.get("labels").is_some() || a.get("action").is_some() {
        set(&mut a, "labels", labels);
    }
    let commit = fake.project(project, |pr| pr.commits.get(&mr.sha).cloned());
    let author = fake.with(|w| w.username(mr.author));
    a["last_commit"] = json!({
        "id": mr.sha,
        "message": commit.as_ref().map_or("Fix\n".to_string(), |c| c.message.clone()),
        "title": commit.as_ref().map_or("Fix".to_string(), |c| c.title.clone()),
        "timestamp": "2026-11-26T13:24:00+00:00",
        "url": format!("{}/-/commit/{}", p["web_url"].as_str().unwrap(), mr.sha),
        "author": { "name": author, "email": format!("{author}@example.com") },
    });
    a
}

/// A Merge Request Hook about `mr`: `action` by `by`, with `changes`.
pub fn mr_hook(fake: &FakeGitLab, project: u64, mr: &MergeRequest, action: &str, by: &str, changes: Value) -> Value {
    let file = match action {
        "open" => "merge_request/open.json",
        "close" => "merge_request/close.json",
        "reopen" => "merge_request/reopen.json",
        "merge" => "merge_request/merge.json",
        _ => "merge_request/update.json",
    };
    let mut hook = fixture(file);
    let p = hook_project(fake, project);
    hook["user"] = hook_user(fake, by);
    hook["project"] = p.clone();
    hook["repository"] = repository(&p);
    let mut attributes = mr_attributes(fake, project, mr, &hook["object_attributes"]);
    attributes["action"] = action.into();
    if let Some(map) = attributes.as_object_mut() {
        // `oldrev` is only there on a real code change (a push); the caller adds it then.
        map.remove("oldrev");
    }
    hook["labels"] = attributes["labels"].clone();
    hook["object_attributes"] = attributes;
    let mut all = json!({ "updated_at": { "previous": "2026-11-26 13:23:00 UTC", "current": hook_time(NOW) } });
    if let (Some(all), Value::Object(changes)) = (all.as_object_mut(), changes) {
        all.extend(changes);
    }
    hook["changes"] = all;
    let people =
        |ids: &[u64]| -> Value { ids.iter().map(|id| hook_user(fake, &fake.with(|w| w.username(*id)))).collect() };
    hook["assignees"] = people(&mr.assignees);
    hook["reviewers"] = people(&mr.reviewers);
    hook
}

/// A Note Hook: `by` wrote (or edited) note `id` on the MR.
pub fn note_hook(
    fake: &FakeGitLab,
    project: u64,
    mr: &MergeRequest,
    id: u64,
    text: &str,
    action: &str,
    by: &str,
) -> Value {
    let mut hook = fixture("note/merge_request.json");
    let p = hook_project(fake, project);
    let user = hook_user(fake, by);
    hook["user"] = user.clone();
    hook["project_id"] = project.into();
    hook["project"] = p.clone();
    hook["repository"] = repository(&p);
    let a = &mut hook["object_attributes"];
    a["id"] = id.into();
    a["note"] = text.into();
    a["noteable_type"] = "MergeRequest".into();
    a["author_id"] = user["id"].clone();
    a["project_id"] = project.into();
    a["noteable_id"] = mr.id.into();
    a["system"] = false.into();
    a["action"] = action.into();
    a["created_at"] = hook_time(NOW).into();
    a["updated_at"] = hook_time(NOW).into();
    a["url"] = format!("{}/-/merge_requests/{}#note_{id}", p["web_url"].as_str().unwrap(), mr.iid).into();
    hook["merge_request"] = mr_attributes(fake, project, mr, &hook["merge_request"]);
    hook
}

/// An Issue Hook: `action` on issue `iid` by `by`, with `changes`.
pub fn issue_hook(fake: &FakeGitLab, project: u64, iid: u64, action: &str, by: &str, changes: Value) -> Value {
    let issue = fake.issue(project, iid).unwrap_or_else(|| panic!("no issue #{iid}"));
    let mut hook = fixture(if action == "open" { "issue/open.json" } else { "issue/update.labels.json" });
    let p = hook_project(fake, project);
    hook["user"] = hook_user(fake, by);
    hook["project"] = p.clone();
    hook["repository"] = repository(&p);
    let labels = hook_labels(fake, project, &issue.labels);
    let a = &mut hook["object_attributes"];
    a["id"] = issue.id.into();
    a["iid"] = iid.into();
    a["title"] = issue.title.clone().into();
    a["description"] = issue.description.clone().into();
    a["state"] = issue.state.clone().into();
    a["confidential"] = issue.confidential.into();
    a["author_id"] = issue.author.into();
    a["project_id"] = project.into();
    a["moved_to_id"] = issue.moved_to_id.into();
    a["url"] = format!("{}/-/issues/{iid}", p["web_url"].as_str().unwrap()).into();
    a["action"] = action.into();
    a["labels"] = labels.clone();
    a["type"] = if issue.issue_type == "INCIDENT" { "Incident" } else { "Issue" }.into();
    hook["labels"] = labels;
    hook["changes"] = changes;
    if issue.confidential {
        hook["event_type"] = "confidential_issue".into();
    }
    hook
}

/// A Pipeline Hook for pipeline `id`, about the MR `iid` if given.
pub fn pipeline_hook(fake: &FakeGitLab, project: u64, id: u64, iid: Option<u64>, by: &str) -> Value {
    let pl = fake.pipeline(project, id).unwrap_or_else(|| panic!("no pipeline {id}"));
    let mut hook = fixture("pipeline/success.json");
    let p = hook_project(fake, project);
    let user = hook_user(fake, by);
    let a = &mut hook["object_attributes"];
    a["id"] = pl.id.into();
    a["iid"] = pl.iid.into();
    a["ref"] = pl.ref_.clone().into();
    a["sha"] = pl.sha.clone().into();
    a["before_sha"] = "0000000000000000000000000000000000000000".into();
    a["source"] = pl.source.clone().into();
    a["status"] = pl.status.clone().into();
    a["detailed_status"] = match pl.status.as_str() {
        "success" => "passed",
        other => other,
    }
    .into();
    a["variables"] = json!([]);
    let finished = !matches!(pl.status.as_str(), "pending" | "running" | "created");
    a["finished_at"] = if finished { Value::from(hook_time(NOW)) } else { Value::Null };
    let stages: Vec<String> = pl.jobs.iter().fold(Vec::new(), |mut s, j| {
        if !s.contains(&j.stage) {
            s.push(j.stage.clone());
        }
        s
    });
    a["stages"] = stages.into();
    hook["merge_request"] = match iid {
        Some(iid) => {
            let mr = fake.mr(project, iid);
            let status = fake.with(|w| w.merge_status(project, iid));
            json!({
                "id": mr.id, "iid": iid, "title": mr.title, "source_branch": mr.source_branch,
                "source_project_id": mr.source_project_id, "target_branch": mr.target_branch,
                "target_project_id": mr.target_project_id, "state": mr.state,
                "merge_status": if status == "mergeable" { "can_be_merged" } else { "cannot_be_merged" },
                "detailed_merge_status": status,
                "url": format!("{}/-/merge_requests/{iid}", p["web_url"].as_str().unwrap()),
            })
        }
        None => Value::Null,
    };
    hook["user"] = user.clone();
    hook["project"] = json!({
        "id": project, "name": p["name"], "description": "", "web_url": p["web_url"], "avatar_url": null,
        "git_ssh_url": p["git_ssh_url"], "git_http_url": p["git_http_url"], "namespace": p["namespace"],
        "visibility_level": 0, "path_with_namespace": p["path_with_namespace"], "default_branch": p["default_branch"],
    });
    let commit = fake.project(project, |pr| pr.commits.get(&pl.sha).cloned());
    hook["commit"] = json!({
        "id": pl.sha, "message": commit.as_ref().map_or("Fix\n".into(), |c| c.message.clone()),
        "title": commit.as_ref().map_or("Fix".into(), |c| c.title.clone()), "timestamp": "2026-11-26T13:24:00+00:00",
        "url": format!("{}/-/commit/{}", p["web_url"].as_str().unwrap(), pl.sha),
        "author": { "name": by, "email": format!("{by}@example.com") },
    });
    hook["source_pipeline"] = Value::Null;
    let template = hook["builds"][0].clone();
    hook["builds"] = pl
        .jobs
        .iter()
        .filter(|j| !j.retried)
        .map(|j| {
            let mut b = template.clone();
            b["id"] = j.id.into();
            b["stage"] = j.stage.clone().into();
            b["name"] = j.name.clone().into();
            b["status"] = j.status.clone().into();
            b["allow_failure"] = j.allow_failure.into();
            b["when"] = "on_success".into();
            b["manual"] = false.into();
            b["failure_reason"] = if j.status == "failed" { Value::from("script_failure") } else { Value::Null };
            b["user"] = hook_user(fake, &fake.with(|w| w.username(j.user)));
            b["environment"] = Value::Null;
            b["created_at"] = hook_time(NOW).into();
            b
        })
        .collect();
    hook
}

/// A Push Hook: `by` moved `branch` from `before` to `after`, changing `modified`.
pub fn push_hook(
    fake: &FakeGitLab,
    project: u64,
    branch: &str,
    before: &str,
    after: &str,
    by: &str,
    modified: &[&str],
) -> Value {
    let mut hook = fixture("push/push.json");
    let p = hook_project(fake, project);
    let user = hook_user(fake, by);
    hook["before"] = before.into();
    hook["after"] = after.into();
    hook["ref"] = format!("refs/heads/{branch}").into();
    hook["ref_protected"] = (branch == p["default_branch"]).into();
    hook["checkout_sha"] = after.into();
    hook["user_id"] = user["id"].clone();
    hook["user_name"] = by.into();
    hook["user_username"] = by.into();
    hook["user_email"] = "".into();
    hook["project_id"] = project.into();
    hook["project"] = p.clone();
    let mut commit = hook["commits"][0].clone();
    commit["id"] = after.into();
    commit["url"] = format!("{}/-/commit/{after}", p["web_url"].as_str().unwrap()).into();
    commit["author"] = json!({ "name": by, "email": format!("{by}@example.com") });
    commit["added"] = json!([]);
    commit["modified"] = modified.into();
    commit["removed"] = json!([]);
    hook["commits"] = json!([commit]);
    hook["total_commits_count"] = 1.into();
    let mut repo = repository(&p);
    repo["git_http_url"] = p["git_http_url"].clone();
    repo["git_ssh_url"] = p["git_ssh_url"].clone();
    repo["visibility_level"] = 0.into();
    hook["repository"] = repo;
    hook
}

fn changes_labels(fake: &FakeGitLab, before: &[String], after: &[String]) -> Value {
    json!({ "labels": {
        "previous": hook_labels(fake, PROJECT, before),
        "current": hook_labels(fake, PROJECT, after),
    } })
}

/// A CI job's status for the DSL's state.
fn job_status(state: State) -> (&'static str, bool) {
    match state {
        State::Pending => ("running", false),
        State::Success => ("success", false),
        State::Failure => ("failed", false),
        // GitLab has no neutral outcome; an allowed failure ("passed with warnings") is closest.
        State::Neutral => ("failed", true),
        State::Skipped => ("skipped", false),
    }
}

fn commit_status(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Success => "success",
        State::Failure => "failed",
        State::Skipped => "skipped",
        State::Neutral => panic!("a GitLab commit status is never neutral"),
    }
}

/// The DSL's state for a GitLab status word.
pub fn lane_state(word: &str) -> State {
    match word {
        "pending" | "running" | "created" | "waiting_for_resource" | "preparing" | "scheduled" | "manual" => {
            State::Pending
        }
        "success" => State::Success,
        "failed" | "canceled" => State::Failure,
        "skipped" => State::Skipped,
        other => panic!("no such GitLab status: {other}"),
    }
}

// The driver.

/// The server's settings for the fake GitLab instance, on `db`.
fn settings_for(fake: &FakeGitLab, db: &TestDb) -> hotfix_lane::server::ServeSettings {
    let mut settings = super::settings(db);
    settings.gitlab = Some(hotfix_lane::server::GitLabSettings {
        url: fake.url.clone(),
        token: Some(API_TOKEN.into()),
        webhook_tokens: vec![GITLAB_TOKEN.into()],
        signing_tokens: vec![],
    });
    settings
}

/// The lane on GitLab: the real server configured for the fake GitLab instance, project
/// `acme/platform/payments` (id 42, default branch `main`), the policy at [`POLICY`].
pub struct GitLabDriver {
    pub fake: FakeGitLab,
    pub clock: Arc<ManualClock>,
    pub server: Running,
    pub client: reqwest::Client,
    pub base: String,
    /// Every hook sent, in order: `(X-Gitlab-Event, body)`.
    pub sent: Vec<(String, Value)>,
    /// Whether hooks go to the lane; off, the driver only plays moves on the fake (for tests of
    /// the driver itself while the lane cannot take GitLab hooks yet).
    pub deliver: bool,
    /// Whether each hook waits until every job it caused has run (on by default); a test
    /// driving many changes at once turns it off and waits by itself.
    pub settle_each: bool,
    _db: TestDb,
    /// GitLab's comments are snapshotted apart from GitHub's (`name@gitlab.snap`): commit ids
    /// and the forge's words differ.
    _snapshots: insta::internals::SettingsBindDropGuard,
}

impl GitLabDriver {
    /// Sends a hook of `kind` (`Merge Request`, `Note`, …) and waits until every job it caused
    /// has run.
    pub async fn send(&mut self, kind: &str, body: Value) {
        self.sent.push((format!("{kind} Hook"), body.clone()));
        if !self.deliver {
            return;
        }
        let status = self.deliver_to(&self.base, kind, &body).await;
        assert!(status == 202 || status == 200, "{kind} Hook answered {status}");
        if self.settle_each {
            self.settle().await;
        }
    }

    /// Posts a hook of `kind` to the server at `base` (this lane's, or a replica's) as GitLab
    /// would, each time with a new `Idempotency-Key`; returns the answer's status, without
    /// waiting for the jobs it caused.
    pub async fn deliver_to(&self, base: &str, kind: &str, body: &Value) -> u16 {
        let key = format!("{:08x}-0000-4000-8000-{:012x}", fastrand::u32(..), fastrand::u64(..1 << 48));
        let resp = self
            .client
            .post(format!("{base}/webhooks/gitlab"))
            .header("X-Gitlab-Event", format!("{kind} Hook"))
            .header("X-Gitlab-Token", GITLAB_TOKEN)
            .header("X-Gitlab-Instance", self.fake.url.clone())
            .header("Idempotency-Key", key)
            .header("User-Agent", "GitLab/19.5.0")
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .expect("hook sent");
        resp.status().as_u16()
    }

    /// A second `serve` on the same database and GitLab, as a replica behind the same load
    /// balancer.
    pub async fn replica(&self) -> Running {
        super::start_server_with(settings_for(&self.fake, &self._db), self.clock.clone()).await
    }

    pub async fn settle(&self) {
        crate::common::settle(self.store()).await
    }

    fn mr(&self, change: Change) -> MergeRequest {
        self.fake.mr(PROJECT, change.0)
    }

    async fn send_mr(&mut self, change: Change, action: &str, by: &str, changes: Value) {
        let mr = self.mr(change);
        let hook = mr_hook(&self.fake, PROJECT, &mr, action, by, changes);
        self.send("Merge Request", hook).await;
    }

    async fn relabel(&mut self, change: Change, label: &str, add: bool, by: &str) {
        let before = self.mr(change).labels;
        if add {
            self.fake.add_label(PROJECT, change.0, label, by);
        } else {
            self.fake.remove_label(PROJECT, change.0, label, by);
        }
        let after = self.mr(change).labels;
        let changes = changes_labels(&self.fake, &before, &after);
        self.send_mr(change, "update", by, changes).await;
    }

    async fn relabel_issue(&mut self, number: u64, label: &str, add: bool, by: &str) {
        let before = self.fake.issue(PROJECT, number).unwrap_or_else(|| panic!("no issue #{number}")).labels;
        self.fake.label_issue(PROJECT, number, label, add, by);
        let after = self.fake.issue(PROJECT, number).unwrap().labels;
        let changes = changes_labels(&self.fake, &before, &after);
        let hook = issue_hook(&self.fake, PROJECT, number, "update", by, changes);
        self.send("Issue", hook).await;
    }

    /// The pipeline CI runs on `sha`: the head pipeline of the MR it heads, else the newest on
    /// it (a train's), else a new `merge_request_event` pipeline for the MR (or the branch).
    pub fn ci_pipeline(&self, sha: &str) -> (u64, Option<u64>) {
        let mr = self.fake.project(PROJECT, |p| {
            p.merge_requests.values().rev().find(|m| m.sha == sha && m.state == "opened").map(|m| m.iid)
        });
        if let Some(iid) = mr {
            if let Some(id) = self.fake.head_pipeline(PROJECT, iid) {
                return (id, Some(iid));
            }
        }
        if let Some(pl) = self.fake.newest_pipeline(PROJECT, sha) {
            let train = pl.ref_.strip_prefix("refs/merge-requests/").and_then(|r| r.split('/').next()?.parse().ok());
            return (pl.id, mr.or(train));
        }
        let (ref_, source) = match mr {
            Some(iid) => (format!("refs/merge-requests/{iid}/head"), "merge_request_event"),
            None => (DEFAULT_BRANCH.to_string(), "push"),
        };
        (self.fake.create_pipeline(PROJECT, sha, &ref_, source, "pending", &[]), mr)
    }
}

impl GitLabDriver {
    /// On a fake GitLab of the caller's choosing (one with faults, say), with settings of the
    /// test's own beside the harness's.
    pub async fn start_configured(
        fake: FakeGitLab,
        backend: Backend,
        policy: &str,
        configure: impl FnOnce(&mut hotfix_lane::server::ServeSettings),
    ) -> GitLabDriver {
        fake.add_project(PROJECT, PROJECT_PATH, DEFAULT_BRANCH);
        fake.set_file(PROJECT, DEFAULT_BRANCH, POLICY, policy);
        let db = TestDb::new(backend).await;
        let clock = Arc::new(ManualClock::new(NOW));
        let mut settings = settings_for(&fake, &db);
        configure(&mut settings);
        let server = super::start_server_with(settings, clock.clone()).await;
        let base = base_url(&server);
        let client = reqwest::Client::new();
        let mut snapshots = insta::Settings::clone_current();
        snapshots.set_snapshot_suffix("gitlab");
        let _snapshots = snapshots.bind_to_scope();
        let sent = Vec::new();
        GitLabDriver { fake, clock, server, client, base, sent, deliver: true, settle_each: true, _db: db, _snapshots }
    }

    /// Someone runs a new pipeline for the merge request's head (Run pipeline, or a retry of
    /// the whole pipeline): GitLab makes it the head pipeline and says so in a Pipeline Hook.
    pub async fn run_pipeline(&mut self, change: Change) -> u64 {
        let sha = self.head(change);
        let ref_ = format!("refs/merge-requests/{}/head", change.0);
        let id = self.fake.create_pipeline(PROJECT, &sha, &ref_, "merge_request_event", "created", &[]);
        let hook = pipeline_hook(&self.fake, PROJECT, id, Some(change.0), "codertocat");
        self.send("Pipeline", hook).await;
        id
    }
}

impl ForgeDriver for GitLabDriver {
    async fn start(backend: Backend, policy: &str) -> GitLabDriver {
        GitLabDriver::start_configured(FakeGitLab::start().await, backend, policy, |_| {}).await
    }

    fn repo(&self) -> String {
        PROJECT_PATH.into()
    }

    fn store(&self) -> &Store {
        &self.server.store
    }

    fn clock(&self) -> &ManualClock {
        &self.clock
    }

    fn server_url(&self) -> String {
        self.base.clone()
    }

    async fn open(&mut self, change: NewChange) -> Change {
        let author = change.author.unwrap_or_else(|| "codertocat".into());
        let title = change.title.unwrap_or_else(|| "Update the README with new information.".into());
        let target_branch = change.base.unwrap_or_else(|| DEFAULT_BRANCH.into());
        let open = OpenMr {
            iid: change.number,
            title,
            description: change.body,
            author: author.clone(),
            target_branch,
            ..OpenMr::default()
        };
        let iid = self.fake.open_mr(PROJECT, open);
        self.send_mr(Change(iid), "open", &author, json!({})).await;
        Change(iid)
    }

    async fn label(&mut self, change: Change, label: &str, by: &str) {
        self.relabel(change, label, true, by).await
    }

    async fn unlabel(&mut self, change: Change, label: &str, by: &str) {
        self.relabel(change, label, false, by).await
    }

    async fn comment(&mut self, change: Change, text: &str, by: &str) -> Said {
        let id = self.fake.add_note(PROJECT, change.0, by, text);
        let hook = note_hook(&self.fake, PROJECT, &self.mr(change), id, text, "create", by);
        self.send("Note", hook).await;
        Said { change, id }
    }

    async fn edit_comment(&mut self, said: Said, text: &str, by: &str) {
        self.fake.edit_note(PROJECT, said.change.0, said.id, text);
        let hook = note_hook(&self.fake, PROJECT, &self.mr(said.change), said.id, text, "update", by);
        self.send("Note", hook).await;
    }

    async fn edit_description(&mut self, change: Change, text: &str, by: &str) {
        let old = self.fake.edit_mr(PROJECT, change.0, |mr| std::mem::replace(&mut mr.description, text.into()));
        self.send_mr(change, "update", by, json!({ "description": { "previous": old, "current": text } })).await;
    }

    async fn push(&mut self, change: Change, by: &str) -> String {
        let before = self.head(change);
        let after = self.fake.push_head(PROJECT, change.0, by, None);
        let branch = self.mr(change).source_branch;
        let push = push_hook(&self.fake, PROJECT, &branch, &before, &after, by, &["src/lib.rs"]);
        self.send("Push", push).await;
        let mr = self.mr(change);
        let mut hook = mr_hook(&self.fake, PROJECT, &mr, "update", by, json!({}));
        hook["object_attributes"]["oldrev"] = before.into();
        self.send("Merge Request", hook).await;
        after
    }

    async fn report(&mut self, sha: &str, name: &str, state: State, source: Source) {
        match source {
            Source::App(app) => {
                let (pipeline, iid) = self.ci_pipeline(sha);
                let (status, allow_failure) = job_status(state);
                self.fake.add_job(PROJECT, pipeline, name, status, allow_failure, app);
                let hook = pipeline_hook(&self.fake, PROJECT, pipeline, iid, app);
                self.send("Pipeline", hook).await;
            }
            Source::User(user) => {
                let record = self
                    .fake
                    .post_status_as(PROJECT, sha, name, commit_status(state), "", user)
                    .unwrap_or_else(|e| panic!("{user}'s status {name} on {sha}: {e}"));
                let iid = self
                    .fake
                    .project(PROJECT, |p| p.merge_requests.values().rev().find(|m| m.sha == sha).map(|m| m.iid));
                let hook = pipeline_hook(&self.fake, PROJECT, record.pipeline_id, iid, user);
                self.send("Pipeline", hook).await;
            }
        }
    }

    async fn open_issue(&mut self, number: u64, labels: &[&str], by: &str) {
        self.fake.create_issue(PROJECT, Some(number), &format!("Postmortem #{number}"), labels, by);
        let hook = issue_hook(&self.fake, PROJECT, number, "open", by, json!({}));
        self.send("Issue", hook).await;
    }

    async fn label_issue(&mut self, number: u64, label: &str, by: &str) {
        self.relabel_issue(number, label, true, by).await
    }

    async fn unlabel_issue(&mut self, number: u64, label: &str, by: &str) {
        self.relabel_issue(number, label, false, by).await
    }

    async fn push_policy(&mut self, text: &str, by: &str) {
        let before = self.fake.branch_head(PROJECT, DEFAULT_BRANCH).unwrap_or_default();
        let after = self.fake.set_file_by(PROJECT, DEFAULT_BRANCH, POLICY, text, by);
        let hook = push_hook(&self.fake, PROJECT, DEFAULT_BRANCH, &before, &after, by, &[POLICY]);
        self.send("Push", hook).await;
    }

    fn require_merge_queue(&mut self, _base: &str) {
        // Merge trains are a project setting on GitLab, enforced for every target branch.
        self.fake.project(PROJECT, |p| (p.merge_trains_enabled, p.merge_train_enforced) = (true, true));
    }

    async fn queue(&mut self, change: Change) -> String {
        let bot = self.fake.with(|w| w.username(w.bot));
        let (_, sha) = self.fake.add_train_car(PROJECT, change.0, &bot, "running");
        let pipeline = self.fake.newest_pipeline(PROJECT, &sha).expect("the train pipeline").id;
        let hook = pipeline_hook(&self.fake, PROJECT, pipeline, Some(change.0), &bot);
        self.send("Pipeline", hook).await;
        sha
    }

    async fn merge_by_hand(&mut self, change: Change, by: &str) -> String {
        let tip = self.fake.merge_by_hand(PROJECT, change.0, by);
        let hook = mr_hook(&self.fake, PROJECT, &self.mr(change), "merge", by, json!({}));
        self.send("Merge Request", hook).await;
        tip
    }

    async fn close_issue(&mut self, number: u64, body: &str, by: &str) {
        self.fake.edit_issue(PROJECT, number, |i| (i.state, i.description) = ("closed".into(), body.into()));
        let hook = issue_hook(&self.fake, PROJECT, number, "close", by, json!({}));
        self.send("Issue", hook).await;
    }

    async fn deploy(&mut self, sha: &str, environment: &str, by: &str) {
        let p = hook_project(&self.fake, PROJECT);
        let hook = json!({
            "object_kind": "deployment",
            "status": "success",
            "status_changed_at": "2026-11-26 13:24:00 +0000",
            "deployment_id": 15,
            "deployable_id": 796,
            "deployable_url": format!("{}/-/jobs/796", p["web_url"].as_str().unwrap()),
            "environment": environment,
            "environment_tier": if environment == "production" { "production" } else { "staging" },
            "environment_slug": environment,
            "environment_external_url": "https://example.com",
            "project": p,
            "short_sha": &sha[..8],
            "user": hook_user(&self.fake, by),
            "user_url": "https://gitlab.example.com/root",
            "commit_url": format!("{}/-/commit/{sha}", p["web_url"].as_str().unwrap()),
            "commit_title": "Merge branch into 'main'",
            "ref": DEFAULT_BRANCH,
        });
        self.send("Deployment", hook).await;
    }

    fn default_head(&self) -> String {
        self.fake.branch_head(PROJECT, DEFAULT_BRANCH).expect("the default branch")
    }

    fn head(&self, change: Change) -> String {
        self.mr(change).sha
    }

    fn description(&self, change: Change) -> String {
        self.mr(change).description
    }

    fn check(&self, sha: &str, context: &str) -> Option<(State, String)> {
        let (status, description) = self.fake.latest_job(PROJECT, sha, context)?;
        Some((lane_state(&status), description))
    }

    fn written(&self) -> Vec<Written> {
        let path = self.fake.project(PROJECT, |p| p.path.clone());
        self.fake
            .bot_notes()
            .into_iter()
            .map(|n| Written {
                repo: if n.project == PROJECT { path.clone() } else { n.project.to_string() },
                on: n.iid,
                id: n.note_id,
                body: n.body,
            })
            .collect()
    }

    fn issues_opened(&self) -> Vec<Issue> {
        self.fake
            .issues_created()
            .into_iter()
            .map(|i| Issue { number: i.iid, title: i.title, body: i.description, labels: i.labels })
            .collect()
    }

    fn landed(&self) -> Vec<Landed> {
        let merged = self.fake.merges().into_iter().map(|m| Landed::Merged {
            change: Change(m.iid),
            sha: m.sha.unwrap_or(m.head),
            method: if m.squash {
                "squash".into()
            } else if m.method == "merge" {
                "merge".into()
            } else {
                "rebase".into()
            },
        });
        let enqueued = self.fake.train_adds().into_iter().map(|t| Landed::Enqueued {
            change: Change(t.iid),
            sha: t.sha.unwrap_or_default(),
            front: false,
        });
        merged.chain(enqueued).collect()
    }
}
