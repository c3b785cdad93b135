//! A stateful fake of GitLab's REST API (v4) on loopback: the lane's GitLab client talks to it
//! over HTTP. It holds projects (files, commits, merge requests, notes, pipelines and their
//! jobs, commit statuses, issues, merge trains, protected branches), users and groups with their
//! members, and records every request so tests can count API calls. It answers in GitLab's
//! shapes, including its errors (`{"message": …}`), its paging headers and its traps: 405 while
//! mergeability is being computed, 409 on a stale `sha`, statuses placed into pipelines.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;

use super::faults::{Faults, Flavor};

/// Who the lane's token is, unless a test says otherwise: a project access token's bot.
pub const BOT: &str = "project_42_bot_hotfix";
/// The access levels GitLab grants.
pub const GUEST: u32 = 10;
pub const REPORTER: u32 = 20;
pub const DEVELOPER: u32 = 30;
pub const MAINTAINER: u32 = 40;
pub const OWNER: u32 = 50;

/// 2026-11-26 13:24 UTC, in seconds: where the fake's own clock starts.
const EPOCH: i64 = 1_795_699_440;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub id: u64,
    pub full_path: String,
    /// user id → access level.
    pub members: BTreeMap<u64, u32>,
}

#[derive(Debug, Clone)]
pub struct FileEntry {
    pub content: String,
    /// The commit that last changed the file on its branch.
    pub last_commit_id: String,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub id: String,
    pub title: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    pub parent_ids: Vec<String>,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct ChangedFile {
    pub old_path: String,
    pub new_path: String,
    pub new_file: bool,
    pub renamed_file: bool,
    pub deleted_file: bool,
    pub diff: String,
}

impl ChangedFile {
    /// A file the change modifies in place.
    pub fn modified(path: &str) -> ChangedFile {
        ChangedFile {
            old_path: path.into(),
            new_path: path.into(),
            new_file: false,
            renamed_file: false,
            deleted_file: false,
            diff: "@@ -1 +1 @@\n-old\n+new\n".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LabelEvent {
    pub id: u64,
    pub user: u64,
    pub created_at: String,
    pub label: String,
    /// `add` or `remove`.
    pub action: String,
}

#[derive(Debug, Clone)]
pub struct Note {
    pub id: u64,
    pub body: String,
    pub author: u64,
    pub system: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noteable {
    MergeRequest,
    Issue,
}

/// One write of a note through the API: its creation, or an edit with the text it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteWrite {
    pub project: u64,
    pub noteable: Noteable,
    pub iid: u64,
    pub note_id: u64,
    pub body: String,
    /// The writer's username.
    pub by: String,
    /// `create` or `update`.
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct MergeRequest {
    pub id: u64,
    pub iid: u64,
    pub title: String,
    pub description: String,
    pub author: u64,
    /// `opened`, `closed`, `merged` or `locked`.
    pub state: String,
    pub draft: bool,
    pub labels: Vec<String>,
    pub source_branch: String,
    pub target_branch: String,
    pub source_project_id: u64,
    pub target_project_id: u64,
    /// The head commit.
    pub sha: String,
    /// Every commit the source branch has had as its head, oldest first.
    pub commits: Vec<String>,
    pub merge_commit_sha: Option<String>,
    pub squash_commit_sha: Option<String>,
    /// `diff_refs.base_sha`: the target's commit the diff starts from, if set.
    pub base_sha: Option<String>,
    pub merged_by: Option<u64>,
    /// Who merged it or set it to auto-merge.
    pub merge_user: Option<u64>,
    /// What GitLab computed about mergeability (`mergeable`, `checking`, `not_approved`, …);
    /// draft, state and pipeline conditions are derived on top of it.
    pub detailed_merge_status: String,
    pub reviewers: Vec<u64>,
    pub assignees: Vec<u64>,
    pub squash: bool,
    pub remove_source_branch: bool,
    pub changed_files: Vec<ChangedFile>,
    pub notes: Vec<Note>,
    pub label_events: Vec<LabelEvent>,
    pub created_at: String,
    pub updated_at: String,
    pub merged_at: Option<String>,
    /// Auto-merge set (`auto_merge`): the fake merges when the head pipeline succeeds.
    pub auto_merge: Option<MergeParams>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeParams {
    pub sha: Option<String>,
    pub squash: Option<bool>,
    pub skip_merge_train: bool,
    pub auto_merge: bool,
    pub should_remove_source_branch: bool,
    pub merge_commit_message: Option<String>,
    pub squash_commit_message: Option<String>,
}

/// A merge the fake performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub project: u64,
    pub iid: u64,
    /// The merging user's username.
    pub by: String,
    /// The `sha` the request pinned, if any.
    pub sha: Option<String>,
    /// The head it merged.
    pub head: String,
    pub squash: bool,
    pub skip_merge_train: bool,
    pub auto_merge: bool,
    /// The project's merge method at the time: `merge`, `rebase_merge` or `ff`.
    pub method: String,
    pub merge_commit_sha: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub name: String,
    pub stage: String,
    pub status: String,
    pub allow_failure: bool,
    pub user: u64,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// A later job of the same name replaced it (a retry).
    pub retried: bool,
    /// A commit status posted through the API (GitLab's generic commit status), not a CI job.
    pub external: bool,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub id: u64,
    pub iid: u64,
    pub sha: String,
    pub ref_: String,
    pub status: String,
    pub source: String,
    pub user: u64,
    pub created_at: String,
    pub updated_at: String,
    pub jobs: Vec<Job>,
}

/// A commit status as posted through the API, with the pipeline it landed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRecord {
    pub project: u64,
    pub job_id: u64,
    pub sha: String,
    pub ref_: String,
    pub name: String,
    pub state: String,
    pub description: String,
    pub target_url: String,
    pub by: String,
    pub pipeline_id: u64,
    /// Whether the pipeline was made for this status (`source: external`).
    pub new_pipeline: bool,
}

#[derive(Debug, Clone)]
pub struct TrainCar {
    pub id: u64,
    pub iid: u64,
    pub target_branch: String,
    pub user: u64,
    pub pipeline_id: u64,
    /// `idle`, `stale`, `fresh`, `merging`, `merged`, `skip_merged`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A request to add a merge request to a merge train, as the API received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainAdd {
    pub project: u64,
    pub iid: u64,
    pub sha: Option<String>,
    pub squash: Option<bool>,
    pub auto_merge: bool,
    pub by: String,
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub id: u64,
    pub iid: u64,
    pub title: String,
    pub description: String,
    pub state: String,
    pub labels: Vec<String>,
    pub confidential: bool,
    pub author: u64,
    pub moved_to_id: Option<u64>,
    pub deleted: bool,
    /// `ISSUE` or `INCIDENT`.
    pub issue_type: String,
    pub notes: Vec<Note>,
    pub label_events: Vec<LabelEvent>,
    pub created_at: String,
    pub updated_at: String,
}

impl Project {
    /// Whether `sha` is a commit of the project, modelled or in [`Project::git_dir`].
    fn has_commit(&self, sha: &str) -> bool {
        self.commits.contains_key(sha) || self.git(&["cat-file", "-e", &format!("{sha}^{{commit}}")]).is_some()
    }

    /// A git command's output on [`Project::git_dir`], if there is one and the command succeeds.
    fn git(&self, args: &[&str]) -> Option<String> {
        let out =
            std::process::Command::new("git").arg("--git-dir").arg(self.git_dir.as_ref()?).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[derive(Debug, Clone)]
pub struct Protection {
    /// (access level, user id) of who may merge, and who may push.
    pub merge: Vec<(u32, Option<u64>)>,
    pub push: Vec<(u32, Option<u64>)>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: u64,
    pub path: String,
    pub default_branch: String,
    /// `merge`, `rebase_merge` or `ff`.
    pub merge_method: String,
    /// `never`, `always`, `default_on` or `default_off`.
    pub squash_option: String,
    pub merge_trains_enabled: bool,
    pub merge_trains_skip_train_allowed: bool,
    /// Merge train enforcement: direct merges are refused.
    pub merge_train_enforced: bool,
    pub only_allow_merge_if_pipeline_succeeds: bool,
    /// branch → head commit.
    pub branches: BTreeMap<String, String>,
    /// (branch, path) → file.
    pub files: BTreeMap<(String, String), FileEntry>,
    pub commits: BTreeMap<String, Commit>,
    pub merge_requests: BTreeMap<u64, MergeRequest>,
    pub pipelines: Vec<Pipeline>,
    pub issues: BTreeMap<u64, Issue>,
    /// user id → access level, on the project itself.
    pub members: BTreeMap<u64, u32>,
    pub protected: BTreeMap<String, Protection>,
    pub train: Vec<TrainCar>,
    /// label name → id.
    pub label_ids: BTreeMap<String, u64>,
    /// A bare repository on disk standing in for the project's git side: its clone URL, and
    /// the branches and files the fake does not model itself.
    pub git_dir: Option<std::path::PathBuf>,
    /// iid → the commit in `git_dir` its merge lands as (the merge commit), instead of one
    /// made up: what a backport then picks.
    pub landings: BTreeMap<u64, String>,
    /// Knobs: answer 405 to the next this many merge calls.
    pub merge_405: u32,
    /// Answer the next merge call 422 with this message.
    pub merge_422: Option<String>,
    /// Perform the next this many merges, then answer 500.
    pub merge_then_500: u32,
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    /// The path as sent (still URL-encoded), `/api/v4/…`.
    pub path: String,
    pub query: String,
    /// The `PRIVATE-TOKEN` (or bearer token) it carried.
    pub token: String,
}

impl Call {
    /// `METHOD /path`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Default)]
pub struct World {
    /// The instance's base URL (without `/api/v4`).
    pub base: String,
    pub users: BTreeMap<u64, User>,
    /// token → user id; any other non-empty token is the bot.
    pub tokens: BTreeMap<String, u64>,
    pub bot: u64,
    pub groups: BTreeMap<u64, Group>,
    pub projects: BTreeMap<u64, Project>,
    pub calls: Vec<Call>,
    pub merges: Vec<Merge>,
    pub train_adds: Vec<TrainAdd>,
    pub statuses: Vec<StatusRecord>,
    pub note_writes: Vec<NoteWrite>,
    /// (project, iid) of issues opened through the API, in order.
    pub issues_created: Vec<(u64, u64)>,
    /// (path part, status): the next request whose path contains it is answered so, once.
    pub fail_once: Vec<(String, u16)>,
    next_id: u64,
    commits_made: u64,
    tick: i64,
}

impl World {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A commit id no one has seen yet.
    pub fn new_sha(&mut self) -> String {
        self.commits_made += 1;
        let n = self.commits_made as u128;
        format!("{:032x}{:08x}", n.wrapping_mul(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d), n)
    }

    /// The fake's time, one second later at each call.
    pub fn now(&mut self) -> String {
        self.tick += 1;
        iso8601(EPOCH + self.tick)
    }

    /// The user called `username`, made on first use with an id that depends on the name only.
    pub fn user(&mut self, username: &str) -> u64 {
        if let Some(u) = self.users.values().find(|u| u.username.eq_ignore_ascii_case(username)) {
            return u.id;
        }
        let mut id = stable_id(username);
        while self.users.contains_key(&id) {
            id += 1;
        }
        let name = username.to_string();
        self.users.insert(id, User { id, username: name.clone(), name });
        id
    }

    pub fn username(&self, id: u64) -> String {
        self.users.get(&id).map(|u| u.username.clone()).unwrap_or_else(|| format!("user{id}"))
    }

    fn user_json(&self, id: u64) -> Value {
        let username = self.username(id);
        let name = self.users.get(&id).map(|u| u.name.clone()).unwrap_or_else(|| username.clone());
        json!({
            "id": id, "username": username, "name": name, "state": "active", "locked": false,
            "avatar_url": null, "web_url": format!("{}/{username}", self.base),
        })
    }

    /// The project by numeric id or by full path (already URL-decoded).
    pub fn project_id(&self, key: &str) -> Option<u64> {
        if let Ok(id) = key.parse::<u64>() {
            return self.projects.contains_key(&id).then_some(id);
        }
        self.projects.values().find(|p| p.path.eq_ignore_ascii_case(key)).map(|p| p.id)
    }

    fn group_id(&self, key: &str) -> Option<u64> {
        if let Ok(id) = key.parse::<u64>() {
            return self.groups.contains_key(&id).then_some(id);
        }
        self.groups.values().find(|g| g.full_path.eq_ignore_ascii_case(key)).map(|g| g.id)
    }

    pub fn project(&mut self, id: u64) -> &mut Project {
        self.projects.get_mut(&id).unwrap_or_else(|| panic!("no project {id}"))
    }

    fn mr(&mut self, project: u64, iid: u64) -> &mut MergeRequest {
        self.project(project).merge_requests.get_mut(&iid).unwrap_or_else(|| panic!("no !{iid} in {project}"))
    }

    /// The id of label `name` in the project, made on first use.
    pub fn label_id(&mut self, project: u64, name: &str) -> u64 {
        if let Some(id) = self.projects[&project].label_ids.get(name) {
            return *id;
        }
        let id = self.id();
        self.project(project).label_ids.insert(name.into(), id);
        id
    }

    fn label_json(&mut self, project: u64, name: &str) -> Value {
        let id = self.label_id(project, name);
        json!({ "id": id, "name": name, "color": "#6699cc", "description": null, "text_color": "#FFFFFF" })
    }

    /// A commit on `branch` (moving it), recorded so `GET …/commits/:sha` knows it.
    fn commit_on(&mut self, project: u64, branch: &str, title: &str, author: u64) -> String {
        let sha = self.new_sha();
        let at = self.now();
        let author = self.username(author);
        let p = self.project(project);
        let parent = p.branches.insert(branch.into(), sha.clone());
        let commit = Commit {
            id: sha.clone(),
            title: title.into(),
            message: format!("{title}\n"),
            author_name: author.clone(),
            author_email: format!("{author}@example.com"),
            parent_ids: parent.into_iter().collect(),
            created_at: at,
        };
        p.commits.insert(sha.clone(), commit);
        sha
    }

    fn record_commit(&mut self, project: u64, sha: &str, title: &str, author: u64, parent: Option<String>) {
        let at = self.now();
        let author = self.username(author);
        let commit = Commit {
            id: sha.into(),
            title: title.into(),
            message: format!("{title}\n"),
            author_name: author.clone(),
            author_email: format!("{author}@example.com"),
            parent_ids: parent.into_iter().collect(),
            created_at: at,
        };
        self.project(project).commits.entry(sha.into()).or_insert(commit);
    }

    /// The MR's head pipeline as GitLab picks it: the newest pipeline on its head commit for
    /// its source branch or its merge request refs (not train pipelines).
    pub fn head_pipeline(&self, project: u64, iid: u64) -> Option<u64> {
        let p = &self.projects[&project];
        let mr = &p.merge_requests[&iid];
        let own = [
            mr.source_branch.clone(),
            format!("refs/merge-requests/{iid}/head"),
            format!("refs/merge-requests/{iid}/merge"),
        ];
        p.pipelines.iter().rev().find(|pl| pl.sha == mr.sha && own.contains(&pl.ref_)).map(|pl| pl.id)
    }

    fn pipeline(&self, project: u64, id: u64) -> Option<&Pipeline> {
        self.projects[&project].pipelines.iter().find(|p| p.id == id)
    }

    fn pipeline_mut(&mut self, project: u64, id: u64) -> Option<&mut Pipeline> {
        self.project(project).pipelines.iter_mut().find(|p| p.id == id)
    }

    /// The MR's mergeability as `detailed_merge_status` shows it.
    pub fn merge_status(&self, project: u64, iid: u64) -> String {
        let p = &self.projects[&project];
        let mr = &p.merge_requests[&iid];
        if matches!(mr.detailed_merge_status.as_str(), "checking" | "unchecked") {
            return mr.detailed_merge_status.clone();
        }
        if mr.state != "opened" {
            return "not_open".into();
        }
        if mr.draft {
            return "draft_status".into();
        }
        if p.only_allow_merge_if_pipeline_succeeds {
            if let Some(pl) = self.head_pipeline(project, iid).and_then(|id| self.pipeline(project, id)) {
                match pl.status.as_str() {
                    "success" | "skipped" => {}
                    "created" | "pending" | "running" | "waiting_for_resource" | "preparing" | "scheduled" => {
                        return "ci_still_running".into()
                    }
                    _ => return "ci_must_pass".into(),
                }
            }
        }
        mr.detailed_merge_status.clone()
    }

    fn pipeline_json(&self, project: u64, pl: &Pipeline) -> Value {
        let path = &self.projects[&project].path;
        json!({
            "id": pl.id, "iid": pl.iid, "project_id": project, "sha": pl.sha, "ref": pl.ref_,
            "status": pl.status, "source": pl.source, "created_at": pl.created_at, "updated_at": pl.updated_at,
            "web_url": format!("{}/{path}/-/pipelines/{}", self.base, pl.id),
            "before_sha": "0000000000000000000000000000000000000000", "tag": false,
            "user": self.user_json(pl.user),
            "detailed_status": { "group": pl.status, "text": pl.status, "label": pl.status },
        })
    }

    fn mr_json(&self, project: u64, iid: u64, single: bool) -> Value {
        let p = &self.projects[&project];
        let mr = &p.merge_requests[&iid];
        let users = |ids: &[u64]| ids.iter().map(|id| self.user_json(*id)).collect::<Vec<_>>();
        let merged_by = mr.merged_by.map(|id| self.user_json(id));
        let merge_user = mr.merge_user.or(mr.merged_by).map(|id| self.user_json(id));
        let legacy = match self.merge_status(project, iid).as_str() {
            "checking" => "checking",
            "unchecked" => "unchecked",
            "mergeable" => "can_be_merged",
            _ => "cannot_be_merged",
        };
        let mut v = json!({
            "id": mr.id, "iid": iid, "project_id": mr.target_project_id, "title": mr.title,
            "description": mr.description, "state": mr.state, "created_at": mr.created_at,
            "updated_at": mr.updated_at, "merged_by": merged_by, "merge_user": merge_user,
            "merged_at": mr.merged_at, "closed_by": null, "closed_at": null,
            "target_branch": mr.target_branch, "source_branch": mr.source_branch,
            "user_notes_count": mr.notes.iter().filter(|n| !n.system).count(), "upvotes": 0, "downvotes": 0,
            "author": self.user_json(mr.author), "assignees": users(&mr.assignees),
            "assignee": mr.assignees.first().map(|id| self.user_json(*id)), "reviewers": users(&mr.reviewers),
            "source_project_id": mr.source_project_id, "target_project_id": mr.target_project_id,
        });
        let more = json!({
            "labels": mr.labels, "draft": mr.draft, "work_in_progress": mr.draft, "milestone": null,
            "merge_when_pipeline_succeeds": mr.auto_merge.is_some(), "merge_status": legacy,
            "detailed_merge_status": self.merge_status(project, iid), "sha": mr.sha,
            "merge_commit_sha": mr.merge_commit_sha, "squash_commit_sha": mr.squash_commit_sha,
            "discussion_locked": null, "should_remove_source_branch": mr.remove_source_branch,
            "force_remove_source_branch": mr.remove_source_branch, "squash": mr.squash,
            "squash_on_merge": mr.squash, "web_url": format!("{}/{}/-/merge_requests/{iid}", self.base, p.path),
            "references": { "short": format!("!{iid}"), "relative": format!("!{iid}"), "full": format!("{}!{iid}", p.path) },
            "has_conflicts": false, "blocking_discussions_resolved": true,
        });
        if let (Some(v), Value::Object(more)) = (v.as_object_mut(), more) {
            v.extend(more);
        }
        if single {
            let head = self.head_pipeline(project, iid).and_then(|id| self.pipeline(project, id));
            v["head_pipeline"] = head.map_or(Value::Null, |pl| self.pipeline_json(project, pl));
            v["pipeline"] = head.map_or(
                Value::Null,
                |pl| json!({ "id": pl.id, "sha": pl.sha, "ref": pl.ref_, "status": pl.status, "source": pl.source }),
            );
            let base_sha = mr.base_sha.clone().or_else(|| p.branches.get(&mr.target_branch).cloned());
            v["diff_refs"] = json!({ "base_sha": base_sha, "head_sha": mr.sha, "start_sha": base_sha });
            v["merge_error"] = Value::Null;
            v["changes_count"] = mr.changed_files.len().to_string().into();
            v["user"] = json!({ "can_merge": true });
        }
        v
    }

    fn issue_json(&self, project: u64, issue: &Issue) -> Value {
        let p = &self.projects[&project];
        json!({
            "id": issue.id, "iid": issue.iid, "project_id": project, "title": issue.title,
            "description": issue.description, "state": issue.state, "labels": issue.labels,
            "confidential": issue.confidential, "author": self.user_json(issue.author),
            "web_url": format!("{}/{}/-/issues/{}", self.base, p.path, issue.iid),
            "moved_to_id": issue.moved_to_id, "type": issue.issue_type,
            "issue_type": issue.issue_type.to_lowercase(), "created_at": issue.created_at,
            "updated_at": issue.updated_at, "closed_at": null, "assignees": [], "milestone": null,
            "references": { "short": format!("#{}", issue.iid), "full": format!("{}#{}", p.path, issue.iid) },
        })
    }

    fn note_json(&self, note: &Note, noteable: Noteable, iid: u64) -> Value {
        let kind = match noteable {
            Noteable::MergeRequest => "MergeRequest",
            Noteable::Issue => "Issue",
        };
        json!({
            "id": note.id, "body": note.body, "author": self.user_json(note.author), "system": note.system,
            "created_at": note.created_at, "updated_at": note.updated_at, "noteable_type": kind,
            "noteable_iid": iid, "resolvable": false, "confidential": false, "internal": false, "type": null,
        })
    }

    fn job_json(&self, project: u64, pl: &Pipeline, job: &Job) -> Value {
        json!({
            "id": job.id, "name": job.name, "stage": job.stage, "status": job.status,
            "allow_failure": job.allow_failure, "ref": pl.ref_, "tag": false,
            "pipeline": { "id": pl.id, "project_id": project, "sha": pl.sha, "ref": pl.ref_, "status": pl.status },
            "user": self.user_json(job.user), "created_at": job.created_at, "started_at": job.created_at,
            "finished_at": job.finished_at, "retried": job.retried,
            "commit": { "id": pl.sha, "short_id": &pl.sha[..8.min(pl.sha.len())] },
        })
    }

    /// A job as `GET …/commits/:sha/statuses` lists it (CI jobs and commit statuses alike).
    fn status_json(&self, pl: &Pipeline, job: &Job) -> Value {
        json!({
            "id": job.id, "sha": pl.sha, "ref": pl.ref_, "status": job.status, "name": job.name,
            "target_url": job.target_url, "description": job.description, "created_at": job.created_at,
            "started_at": job.created_at, "finished_at": job.finished_at, "allow_failure": job.allow_failure,
            "coverage": null, "pipeline_id": pl.id, "author": self.user_json(job.user),
        })
    }

    fn car_json(&self, project: u64, car: &TrainCar) -> Value {
        let p = &self.projects[&project];
        let mr = &p.merge_requests[&car.iid];
        let pl = self.pipeline(project, car.pipeline_id);
        json!({
            "id": car.id,
            "merge_request": {
                "id": mr.id, "iid": mr.iid, "project_id": project, "title": mr.title, "description": mr.description,
                "state": mr.state, "created_at": mr.created_at, "updated_at": mr.updated_at,
                "web_url": format!("{}/{}/-/merge_requests/{}", self.base, p.path, mr.iid),
            },
            "user": self.user_json(car.user),
            "pipeline": pl.map(|pl| json!({
                "id": pl.id, "sha": pl.sha, "ref": pl.ref_, "status": pl.status, "created_at": pl.created_at,
                "updated_at": pl.updated_at,
                "web_url": format!("{}/{}/-/pipelines/{}", self.base, p.path, pl.id),
            })),
            "created_at": car.created_at, "updated_at": car.updated_at, "target_branch": car.target_branch,
            "status": car.status, "merged_at": null, "duration": null,
        })
    }

    /// A pipeline's status from its current (not retried) jobs, as GitLab composes it.
    fn recompute(&mut self, project: u64, pipeline: u64) {
        let now = self.now();
        let Some(pl) = self.pipeline_mut(project, pipeline) else { return };
        let jobs: Vec<&Job> = pl.jobs.iter().filter(|j| !j.retried).collect();
        if jobs.is_empty() {
            return;
        }
        let any = |s: &[&str]| jobs.iter().any(|j| s.contains(&j.status.as_str()));
        let status = if any(&["running"]) {
            "running"
        } else if any(&["pending", "created", "waiting_for_resource", "preparing"]) {
            "pending"
        } else if jobs.iter().any(|j| j.status == "failed" && !j.allow_failure) {
            "failed"
        } else if any(&["canceled"]) {
            "canceled"
        } else if jobs.iter().all(|j| j.status == "skipped") {
            "skipped"
        } else {
            "success"
        };
        pl.status = status.into();
        pl.updated_at = now;
        if status == "success" {
            self.auto_merge_ready(project);
        }
    }

    /// Merges the MRs whose auto-merge was set once they became mergeable.
    fn auto_merge_ready(&mut self, project: u64) {
        let ready: Vec<(u64, MergeParams)> = self.projects[&project]
            .merge_requests
            .values()
            .filter(|mr| mr.auto_merge.is_some() && mr.state == "opened")
            .filter(|mr| self.merge_status(project, mr.iid) == "mergeable")
            .map(|mr| (mr.iid, mr.auto_merge.clone().unwrap()))
            .collect();
        for (iid, params) in ready {
            let bot = self.bot;
            let mr = self.mr(project, iid);
            let by = mr.merge_user.unwrap_or(bot);
            mr.auto_merge = None;
            // A head that moved past the pinned `sha` aborts the auto-merge.
            if params.sha.as_ref().is_none_or(|sha| *sha == mr.sha) {
                self.do_merge(project, iid, &params, by);
            }
        }
    }

    /// Merges the MR now, the way the project merges.
    fn do_merge(&mut self, project: u64, iid: u64, params: &MergeParams, by: u64) {
        let at = self.now();
        let p = &self.projects[&project];
        let method = p.merge_method.clone();
        let mr = &p.merge_requests[&iid];
        let squash = match p.squash_option.as_str() {
            "always" => true,
            "never" => false,
            _ => params.squash.unwrap_or(mr.squash),
        };
        let (head, target) = (mr.sha.clone(), mr.target_branch.clone());
        let landing = p.landings.get(&iid).cloned();
        let squash_sha = squash.then(|| self.new_sha()).filter(|_| landing.is_none());
        let merge_sha = landing.or_else(|| (method != "ff").then(|| self.new_sha()));
        let tip = merge_sha.clone().or(squash_sha.clone()).unwrap_or(head.clone());
        let parent = self.projects[&project].branches.get(&target).cloned();
        let title = format!("Merge branch into '{target}'");
        self.record_commit(project, &tip, &title, by, parent);
        self.project(project).branches.insert(target, tip);
        let mr = self.mr(project, iid);
        mr.state = "merged".into();
        mr.merged_by = Some(by);
        mr.merge_user = Some(by);
        mr.merged_at = Some(at.clone());
        mr.updated_at = at;
        mr.merge_commit_sha = merge_sha.clone();
        mr.squash_commit_sha = squash_sha;
        mr.squash = squash;
        for car in self.project(project).train.iter_mut().filter(|c| c.iid == iid) {
            car.status = "merged".into();
        }
        let merge = Merge {
            project,
            iid,
            by: self.username(by),
            sha: params.sha.clone(),
            head,
            squash,
            skip_merge_train: params.skip_merge_train,
            auto_merge: params.auto_merge,
            method,
            merge_commit_sha: merge_sha,
        };
        self.merges.push(merge);
    }

    /// A new pipeline; returns its id.
    fn new_pipeline(&mut self, project: u64, sha: &str, ref_: &str, source: &str, status: &str, user: u64) -> u64 {
        let id = self.id();
        let at = self.now();
        let p = self.project(project);
        let iid = p.pipelines.len() as u64 + 1;
        p.pipelines.push(Pipeline {
            id,
            iid,
            sha: sha.into(),
            ref_: ref_.into(),
            status: status.into(),
            source: source.into(),
            user,
            created_at: at.clone(),
            updated_at: at,
            jobs: Vec::new(),
        });
        id
    }

    /// Places a commit status the way GitLab does; `Err` is the answer GitLab gives instead.
    fn post_status(&mut self, project: u64, sha: &str, q: &Params, by: u64) -> Result<Value, Box<Response>> {
        const STATES: [&str; 6] = ["pending", "running", "success", "failed", "canceled", "skipped"];
        let Some(state) = q.get("state").filter(|s| STATES.contains(s)).map(String::from) else {
            return Err(Box::new(error_key(400, "state does not have a valid value")));
        };
        if !self.projects[&project].has_commit(sha) {
            return Err(Box::new(not_found("Commit")));
        }
        let name = q.get("name").or(q.get("context")).unwrap_or("default").to_string();
        let description = q.get("description").map(String::from);
        let target_url = q.get("target_url").map(String::from);
        let ref_given = q.get("ref").map(String::from);
        let (pipeline, new_pipeline) = if let Some(pid) = q.u64("pipeline_id") {
            match self.pipeline(project, pid) {
                Some(pl) if pl.sha == sha => (pid, false),
                Some(_) => {
                    return Err(Box::new(message(400, "400 Bad request - pipeline_id does not belong to the commit")))
                }
                None => return Err(Box::new(message(400, "400 Bad request - pipeline not found"))),
            }
        } else {
            let newest = self.projects[&project]
                .pipelines
                .iter()
                .rev()
                .find(|pl| pl.sha == sha && ref_given.as_ref().is_none_or(|r| *r == pl.ref_))
                .map(|pl| pl.id);
            match newest {
                Some(id) => (id, false),
                None => {
                    let ref_ = ref_given.clone().unwrap_or_else(|| self.ref_for(project, sha));
                    (self.new_pipeline(project, sha, &ref_, "external", "pending", by), true)
                }
            }
        };
        let at = self.now();
        let job_id = self.id();
        let pl = self.pipeline_mut(project, pipeline).unwrap();
        let ref_ = pl.ref_.clone();
        let finished = !matches!(state.as_str(), "pending" | "running");
        let current = pl.jobs.iter_mut().rev().find(|j| j.name == name && j.external && !j.retried);
        let id = match current {
            Some(job) if job.user == by && matches!(job.status.as_str(), "pending" | "running") => {
                if job.status == state {
                    let (event, from) = match state.as_str() {
                        "pending" => ("enqueue", "pending"),
                        _ => ("run", "running"),
                    };
                    return Err(Box::new(message(400, &format!("Cannot transition status via :{event} from :{from}"))));
                }
                job.status = state.clone();
                job.description = description.clone().or(job.description.take());
                job.target_url = target_url.clone().or(job.target_url.take());
                job.finished_at = finished.then(|| at.clone());
                job.id
            }
            other => {
                if let Some(old) = other {
                    old.retried = true;
                }
                pl.jobs.push(Job {
                    id: job_id,
                    name: name.clone(),
                    stage: "external".into(),
                    status: state.clone(),
                    allow_failure: false,
                    user: by,
                    created_at: at.clone(),
                    finished_at: finished.then(|| at.clone()),
                    retried: false,
                    external: true,
                    description: description.clone(),
                    target_url: target_url.clone(),
                });
                job_id
            }
        };
        self.recompute(project, pipeline);
        let record = StatusRecord {
            project,
            job_id: id,
            sha: sha.into(),
            ref_: ref_.clone(),
            name: name.clone(),
            state: state.clone(),
            description: description.clone().unwrap_or_default(),
            target_url: target_url.clone().unwrap_or_default(),
            by: self.username(by),
            pipeline_id: pipeline,
            new_pipeline,
        };
        self.statuses.push(record);
        Ok(json!({
            "id": id, "sha": sha, "ref": ref_, "status": state, "name": name, "target_url": target_url,
            "description": description, "created_at": at, "started_at": at, "finished_at": finished.then_some(&at),
            "allow_failure": false, "coverage": null, "pipeline_id": pipeline,
            "author": self.user_json(by),
        }))
    }

    /// The ref GitLab files a commit under: the source branch of an MR whose head it is, the
    /// branch it heads, or the default branch.
    fn ref_for(&self, project: u64, sha: &str) -> String {
        let p = &self.projects[&project];
        if let Some(mr) = p.merge_requests.values().find(|mr| mr.sha == sha) {
            return mr.source_branch.clone();
        }
        if let Some((branch, _)) = p.branches.iter().find(|(_, head)| *head == sha) {
            return branch.clone();
        }
        p.default_branch.clone()
    }

    fn add_label_to_mr(&mut self, project: u64, iid: u64, label: &str, by: u64) -> bool {
        if self.projects[&project].merge_requests[&iid].labels.iter().any(|l| l == label) {
            return false;
        }
        let (id, at) = (self.id(), self.now());
        self.label_id(project, label);
        let mr = self.mr(project, iid);
        mr.labels.push(label.into());
        mr.updated_at = at.clone();
        mr.label_events.push(LabelEvent { id, user: by, created_at: at, label: label.into(), action: "add".into() });
        true
    }

    fn remove_label_from_mr(&mut self, project: u64, iid: u64, label: &str, by: u64) -> bool {
        if !self.projects[&project].merge_requests[&iid].labels.iter().any(|l| l == label) {
            return false;
        }
        let (id, at) = (self.id(), self.now());
        let mr = self.mr(project, iid);
        mr.labels.retain(|l| l != label);
        mr.updated_at = at.clone();
        mr.label_events.push(LabelEvent { id, user: by, created_at: at, label: label.into(), action: "remove".into() });
        true
    }

    fn relabel_issue(&mut self, project: u64, iid: u64, label: &str, add: bool, by: u64) {
        let (id, at) = (self.id(), self.now());
        self.label_id(project, label);
        let issue = self.project(project).issues.get_mut(&iid).unwrap_or_else(|| panic!("no issue #{iid}"));
        let has = issue.labels.iter().any(|l| l == label);
        if has == add {
            return;
        }
        if add {
            issue.labels.push(label.into());
        } else {
            issue.labels.retain(|l| l != label);
        }
        issue.updated_at = at.clone();
        let action = if add { "add" } else { "remove" };
        issue.label_events.push(LabelEvent {
            id,
            user: by,
            created_at: at,
            label: label.into(),
            action: action.into(),
        });
    }

    fn notes_mut(&mut self, project: u64, noteable: Noteable, iid: u64) -> Option<&mut Vec<Note>> {
        let p = self.project(project);
        match noteable {
            Noteable::MergeRequest => p.merge_requests.get_mut(&iid).map(|mr| &mut mr.notes),
            Noteable::Issue => p.issues.get_mut(&iid).filter(|i| !i.deleted).map(|i| &mut i.notes),
        }
    }

    fn write_note(&mut self, project: u64, noteable: Noteable, iid: u64, body: &str, by: u64) -> Option<Note> {
        let (id, at) = (self.id(), self.now());
        let note = Note { id, body: body.into(), author: by, system: false, created_at: at.clone(), updated_at: at };
        self.notes_mut(project, noteable, iid)?.push(note.clone());
        let write = NoteWrite {
            project,
            noteable,
            iid,
            note_id: id,
            body: body.into(),
            by: self.username(by),
            kind: "create".into(),
        };
        self.note_writes.push(write);
        Some(note)
    }

    fn edit_note(&mut self, project: u64, noteable: Noteable, iid: u64, id: u64, body: &str, by: u64) -> Option<Note> {
        let at = self.now();
        let note = self.notes_mut(project, noteable, iid)?.iter_mut().find(|n| n.id == id)?;
        note.body = body.into();
        note.updated_at = at;
        let note = note.clone();
        let write = NoteWrite {
            project,
            noteable,
            iid,
            note_id: id,
            body: body.into(),
            by: self.username(by),
            kind: "update".into(),
        };
        self.note_writes.push(write);
        Some(note)
    }

    /// Effective access of `user` on `path`'s namespace chain: `acme/platform` → itself, `acme`.
    fn group_chain_access(&self, path: &str, user: u64) -> Option<u32> {
        let mut best = None;
        let mut prefix = path.to_string();
        loop {
            if let Some(g) = self.groups.values().find(|g| g.full_path.eq_ignore_ascii_case(&prefix)) {
                if let Some(level) = g.members.get(&user) {
                    best = best.max(Some(*level));
                }
            }
            match prefix.rfind('/') {
                Some(i) => prefix.truncate(i),
                None => return best,
            }
        }
    }

    fn project_access(&self, project: u64, user: u64) -> Option<u32> {
        let p = &self.projects[&project];
        let own = p.members.get(&user).copied();
        let inherited = p.path.rfind('/').and_then(|i| self.group_chain_access(&p.path[..i], user));
        own.max(inherited)
    }
}

/// An id from a name alone, so a user keeps it however a test runs.
fn stable_id(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.to_ascii_lowercase().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    10_000 + h % 1_000_000
}

/// `2026-11-26T13:24:01.000Z`.
pub fn iso8601(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Git's blob id of `content`: `sha1("blob <len>\0<content>")`.
pub fn blob_id(content: &str) -> String {
    git2::Oid::hash_object(git2::ObjectType::Blob, content.as_bytes()).expect("hash a blob").to_string()
}

// Requests.

/// Query and body parameters, as GitLab's API takes them: query string, JSON or form body;
/// `key[]` is `key`, and array values are repeated keys.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    fn parse_form(text: &str) -> Vec<(String, String)> {
        text.split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
            })
            .map(|(k, v)| (k.trim_end_matches("[]").to_string(), v))
            .collect()
    }

    fn from_json(body: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let scalar = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (k, v) in body.as_object().into_iter().flatten() {
            match v {
                Value::Null => {}
                Value::Array(items) if items.is_empty() => out.push((k.clone(), String::new())),
                Value::Array(items) => out.extend(items.iter().map(|i| (k.clone(), scalar(i)))),
                other => out.push((k.clone(), scalar(other))),
            }
        }
        out
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| matches!(v, "true" | "1" | "yes"))
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// A list given as repeated keys or comma-separated (`labels=a,b`); `None` when absent.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        self.has(key).then(|| {
            self.0
                .iter()
                .filter(|(k, _)| k == key)
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }

    pub fn ids(&self, key: &str) -> Option<Vec<u64>> {
        self.list(key).map(|l| l.iter().filter_map(|v| v.parse().ok()).collect())
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn message(status: u16, text: &str) -> Response {
    (StatusCode::from_u16(status).unwrap(), Json(json!({ "message": text }))).into_response()
}

/// Parameter validation errors, which GitLab reports under `error`.
fn error_key(status: u16, text: &str) -> Response {
    (StatusCode::from_u16(status).unwrap(), Json(json!({ "error": text }))).into_response()
}

fn not_found(what: &str) -> Response {
    message(404, &format!("404 {what} Not Found"))
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

/// One page of `items` as GitLab serves a listing: `per_page` (20 unless asked, at most 100)
/// and `page`, with `x-page`, `x-per-page`, `x-total`, `x-total-pages`, `x-next-page`,
/// `x-prev-page` and a `link` header to the next, previous, first and last pages.
fn paged(items: Vec<Value>, q: &Params, base: &str, uri: &Uri) -> Response {
    let per_page = q.u64("per_page").unwrap_or(20).clamp(1, 100) as usize;
    let page = q.u64("page").unwrap_or(1).max(1) as usize;
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let others: Vec<&str> =
        uri.query().unwrap_or_default().split('&').filter(|p| !p.is_empty() && !p.starts_with("page=")).collect();
    let sep = if others.is_empty() { "" } else { "&" };
    let link = |n: usize, rel: &str| format!("<{base}{}?{}{sep}page={n}>; rel=\"{rel}\"", uri.path(), others.join("&"));
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < pages {
        links.push(link(page + 1, "next"));
    }
    links.extend([link(1, "first"), link(pages, "last")]);
    let slice: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut response = Json(slice).into_response();
    let h = response.headers_mut();
    let mut set = |k: &'static str, v: String| {
        h.insert(k, HeaderValue::from_str(&v).unwrap());
    };
    set("x-page", page.to_string());
    set("x-per-page", per_page.to_string());
    set("x-total", total.to_string());
    set("x-total-pages", pages.to_string());
    set("x-next-page", if page < pages { (page + 1).to_string() } else { String::new() });
    set("x-prev-page", if page > 1 { (page - 1).to_string() } else { String::new() });
    set("link", links.join(", "));
    response
}

// The server.

#[derive(Clone)]
pub struct FakeGitLab {
    pub world: Arc<Mutex<World>>,
    /// The instance's base URL, as the lane is configured with it (the API is `{url}/api/v4`).
    pub url: String,
    /// What stands between the lane and this fake: nothing, unless it was started with faults.
    pub faults: Faults,
}

/// A merge request to open through the control API.
#[derive(Debug, Clone, Default)]
pub struct OpenMr {
    /// The iid; the next free one if unset.
    pub iid: Option<u64>,
    pub title: String,
    pub description: String,
    pub author: String,
    pub source_branch: String,
    /// The project's default branch if empty.
    pub target_branch: String,
    pub labels: Vec<String>,
    /// A new commit if unset.
    pub sha: Option<String>,
}

impl FakeGitLab {
    /// An instance with its bot user ([`BOT`]) and no project yet.
    pub async fn start() -> FakeGitLab {
        FakeGitLab::start_with(Faults::off()).await
    }

    /// An instance every call to which goes through `faults`.
    pub async fn start_with(faults: Faults) -> FakeGitLab {
        let world = Arc::new(Mutex::new(World { next_id: 1000, ..World::default() }));
        let app = Router::new().fallback(dispatch).with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(faults.clone().serve(listener, app, Flavor::GitLab));
        let fake = FakeGitLab { world, url: url.clone(), faults };
        fake.with(|w| {
            w.base = url;
            w.bot = w.user(BOT);
        });
        fake
    }

    /// Moves the fake's clock to the real time, for a binary that measures what the fake
    /// recorded against its own clock (how long ago a note authorized a merge).
    pub fn clock_at_real_time(&self) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        self.with(|w| w.tick = w.tick.max(now - EPOCH));
    }

    /// The API root, `{url}/api/v4`.
    pub fn api(&self) -> String {
        format!("{}/api/v4", self.url)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.world.lock().unwrap())
    }

    pub fn project<T>(&self, id: u64, f: impl FnOnce(&mut Project) -> T) -> T {
        self.with(|w| f(w.project(id)))
    }

    // Users, groups, members.

    /// The user called `username` (made on first use); its id.
    pub fn user(&self, username: &str) -> u64 {
        self.with(|w| w.user(username))
    }

    /// Makes `username` the token's user (`GET /user`) instead of [`BOT`].
    pub fn set_bot(&self, username: &str) {
        self.with(|w| w.bot = w.user(username));
    }

    /// Requests with `token` act as `username`.
    pub fn add_token(&self, token: &str, username: &str) {
        self.with(|w| {
            let id = w.user(username);
            w.tokens.insert(token.into(), id);
        });
    }

    /// A group (`acme`, `acme/platform`); its id.
    pub fn add_group(&self, full_path: &str) -> u64 {
        self.with(|w| {
            if let Some(id) = w.group_id(full_path) {
                return id;
            }
            let id = w.id();
            w.groups.insert(id, Group { id, full_path: full_path.into(), members: BTreeMap::new() });
            id
        })
    }

    pub fn add_group_member(&self, group: &str, username: &str, level: u32) {
        let id = self.add_group(group);
        self.with(|w| {
            let user = w.user(username);
            w.groups.get_mut(&id).unwrap().members.insert(user, level);
        });
    }

    pub fn add_member(&self, project: u64, username: &str, level: u32) {
        self.with(|w| {
            let user = w.user(username);
            w.project(project).members.insert(user, level);
        });
    }

    /// A project with an empty default branch; the bot is a maintainer of it, as a project
    /// access token's bot is.
    pub fn add_project(&self, id: u64, path: &str, default_branch: &str) {
        self.with(|w| {
            let bot = w.bot;
            let mut project = Project {
                id,
                path: path.into(),
                default_branch: default_branch.into(),
                merge_method: "merge".into(),
                squash_option: "default_off".into(),
                merge_trains_enabled: false,
                merge_trains_skip_train_allowed: false,
                merge_train_enforced: false,
                only_allow_merge_if_pipeline_succeeds: false,
                branches: BTreeMap::new(),
                files: BTreeMap::new(),
                commits: BTreeMap::new(),
                merge_requests: BTreeMap::new(),
                pipelines: Vec::new(),
                issues: BTreeMap::new(),
                members: BTreeMap::new(),
                protected: BTreeMap::new(),
                train: Vec::new(),
                label_ids: BTreeMap::new(),
                merge_405: 0,
                merge_422: None,
                merge_then_500: 0,
                git_dir: None,
                landings: BTreeMap::new(),
            };
            project.members.insert(bot, MAINTAINER);
            w.projects.insert(id, project);
            w.commit_on(id, default_branch, "Initial commit", bot);
        });
        let mut prefix = path.to_string();
        while let Some(i) = prefix.rfind('/') {
            prefix.truncate(i);
            self.add_group(&prefix);
        }
    }

    /// Protects `branch`: who may merge into it and push to it, by access level.
    pub fn protect_branch(&self, project: u64, branch: &str, merge_level: u32, push_level: u32) {
        let protection = Protection { merge: vec![(merge_level, None)], push: vec![(push_level, None)] };
        self.project(project, |p| p.protected.insert(branch.into(), protection));
    }

    // Files and commits.

    /// Commits `content` as `path` on `branch` (as the bot); returns the new commit.
    pub fn set_file(&self, project: u64, branch: &str, path: &str, content: &str) -> String {
        self.set_file_by(project, branch, path, content, BOT)
    }

    pub fn set_file_by(&self, project: u64, branch: &str, path: &str, content: &str, by: &str) -> String {
        self.with(|w| {
            let user = w.user(by);
            let sha = w.commit_on(project, branch, &format!("Update {path}"), user);
            let entry = FileEntry { content: content.into(), last_commit_id: sha.clone() };
            w.project(project).files.insert((branch.into(), path.into()), entry);
            sha
        })
    }

    pub fn branch_head(&self, project: u64, branch: &str) -> Option<String> {
        self.project(project, |p| p.branches.get(branch).cloned())
    }

    // Merge requests.

    /// Opens a merge request; returns its iid.
    pub fn open_mr(&self, project: u64, mr: OpenMr) -> u64 {
        self.with(|w| {
            let author = w.user(&mr.author);
            let p = &w.projects[&project];
            let iid = mr.iid.unwrap_or_else(|| p.merge_requests.keys().max().map_or(1, |n| n + 1));
            // GitLab never gives a number twice: a test that asks for one in use is wrong.
            assert!(!p.merge_requests.contains_key(&iid), "!{iid} is already open in project {project}");
            let target = if mr.target_branch.is_empty() { p.default_branch.clone() } else { mr.target_branch };
            let source = if mr.source_branch.is_empty() { format!("fix-{iid}") } else { mr.source_branch };
            let base = p.branches.get(&target).cloned();
            let sha = mr.sha.unwrap_or_else(|| w.new_sha());
            let labels = mr.labels;
            let title = if mr.title.is_empty() { format!("Fix {iid}") } else { mr.title };
            w.record_commit(project, &sha, &title, author, base);
            w.project(project).branches.insert(source.clone(), sha.clone());
            let (id, at) = (w.id(), w.now());
            let draft = is_draft(&title);
            let mr = MergeRequest {
                id,
                iid,
                title,
                description: mr.description,
                author,
                state: "opened".into(),
                draft,
                labels: Vec::new(),
                source_branch: source,
                target_branch: target,
                source_project_id: project,
                target_project_id: project,
                sha: sha.clone(),
                commits: vec![sha],
                merge_commit_sha: None,
                squash_commit_sha: None,
                base_sha: None,
                merged_by: None,
                merge_user: None,
                detailed_merge_status: "mergeable".into(),
                reviewers: Vec::new(),
                assignees: Vec::new(),
                squash: false,
                remove_source_branch: false,
                changed_files: vec![ChangedFile::modified("src/lib.rs")],
                notes: Vec::new(),
                label_events: Vec::new(),
                created_at: at.clone(),
                updated_at: at,
                merged_at: None,
                auto_merge: None,
            };
            w.project(project).merge_requests.insert(iid, mr);
            for label in &labels {
                w.add_label_to_mr(project, iid, label, author);
            }
            iid
        })
    }

    /// A merge request as a test reads it.
    pub fn mr(&self, project: u64, iid: u64) -> MergeRequest {
        self.with(|w| w.mr(project, iid).clone())
    }

    pub fn edit_mr<T>(&self, project: u64, iid: u64, f: impl FnOnce(&mut MergeRequest) -> T) -> T {
        self.with(|w| f(w.mr(project, iid)))
    }

    /// Pushes a new head commit to the MR's source branch by `by`; returns it. With
    /// `pipeline`, a `merge_request_event` pipeline of that status runs on it.
    pub fn push_head(&self, project: u64, iid: u64, by: &str, pipeline: Option<&str>) -> String {
        self.with(|w| {
            let user = w.user(by);
            let source = w.mr(project, iid).source_branch.clone();
            let sha = w.commit_on(project, &source, "Push", user);
            let at = w.now();
            let mr = w.mr(project, iid);
            mr.sha = sha.clone();
            mr.commits.push(sha.clone());
            mr.updated_at = at;
            if let Some(status) = pipeline {
                w.new_pipeline(
                    project,
                    &sha,
                    &format!("refs/merge-requests/{iid}/head"),
                    "merge_request_event",
                    status,
                    user,
                );
            }
            sha
        })
    }

    /// `by` adds `label` to the MR (recorded as a label event); false if it had it.
    pub fn add_label(&self, project: u64, iid: u64, label: &str, by: &str) -> bool {
        self.with(|w| {
            let user = w.user(by);
            w.add_label_to_mr(project, iid, label, user)
        })
    }

    pub fn remove_label(&self, project: u64, iid: u64, label: &str, by: &str) -> bool {
        self.with(|w| {
            let user = w.user(by);
            w.remove_label_from_mr(project, iid, label, user)
        })
    }

    /// A note by `by` on the MR; its id. (Written by a person: not in [`FakeGitLab::bot_notes`].)
    pub fn add_note(&self, project: u64, iid: u64, by: &str, body: &str) -> u64 {
        self.with(|w| {
            let user = w.user(by);
            let (id, at) = (w.id(), w.now());
            let note =
                Note { id, body: body.into(), author: user, system: false, created_at: at.clone(), updated_at: at };
            w.mr(project, iid).notes.push(note);
            id
        })
    }

    /// Edits a note in place.
    pub fn edit_note(&self, project: u64, iid: u64, note: u64, body: &str) {
        self.with(|w| {
            let at = w.now();
            let n = w.mr(project, iid).notes.iter_mut().find(|n| n.id == note).expect("a note on the MR");
            n.body = body.into();
            n.updated_at = at;
        })
    }

    /// Sets what `GET …/merge_requests/:iid/diffs` lists.
    pub fn set_changed_files(&self, project: u64, iid: u64, files: Vec<ChangedFile>) {
        self.edit_mr(project, iid, |mr| mr.changed_files = files);
    }

    // Pipelines and jobs.

    /// A pipeline on `sha` at `ref_` with `jobs` as (name, status); its id. Its status follows
    /// from the jobs (`status` when it has none). On an open MR's head and refs it becomes the
    /// MR's head pipeline.
    pub fn create_pipeline(
        &self,
        project: u64,
        sha: &str,
        ref_: &str,
        source: &str,
        status: &str,
        jobs: &[(&str, &str)],
    ) -> u64 {
        self.with(|w| {
            let bot = w.bot;
            let id = w.new_pipeline(project, sha, ref_, source, status, bot);
            for (name, status) in jobs {
                add_job(w, project, id, name, status, false, bot);
            }
            w.recompute(project, id);
            id
        })
    }

    /// Adds a CI job to a pipeline (`user` runs it); its id.
    pub fn add_job(
        &self,
        project: u64,
        pipeline: u64,
        name: &str,
        status: &str,
        allow_failure: bool,
        user: &str,
    ) -> u64 {
        self.with(|w| {
            let user = w.user(user);
            let id = add_job(w, project, pipeline, name, status, allow_failure, user);
            w.recompute(project, pipeline);
            id
        })
    }

    /// Sets a job's status (the pipeline's follows).
    pub fn set_job_status(&self, project: u64, pipeline: u64, job: u64, status: &str) {
        self.with(|w| {
            let at = w.now();
            let pl = w.pipeline_mut(project, pipeline).expect("a pipeline");
            let j = pl.jobs.iter_mut().find(|j| j.id == job).expect("a job");
            j.status = status.into();
            j.finished_at = (!matches!(status, "pending" | "running" | "created")).then_some(at);
            w.recompute(project, pipeline);
        })
    }

    /// Sets a pipeline's status outright.
    pub fn set_pipeline_status(&self, project: u64, pipeline: u64, status: &str) {
        self.with(|w| {
            let at = w.now();
            let pl = w.pipeline_mut(project, pipeline).expect("a pipeline");
            pl.status = status.into();
            pl.updated_at = at;
            if status == "success" {
                w.auto_merge_ready(project);
            }
        })
    }

    pub fn pipeline(&self, project: u64, id: u64) -> Option<Pipeline> {
        self.with(|w| w.pipeline(project, id).cloned())
    }

    /// The newest pipeline on `sha`.
    pub fn newest_pipeline(&self, project: u64, sha: &str) -> Option<Pipeline> {
        self.project(project, |p| p.pipelines.iter().rev().find(|pl| pl.sha == sha).cloned())
    }

    pub fn head_pipeline(&self, project: u64, iid: u64) -> Option<u64> {
        self.with(|w| w.head_pipeline(project, iid))
    }

    /// A commit status posted through the API by `by` (placed as GitLab places it).
    pub fn post_status_as(
        &self,
        project: u64,
        sha: &str,
        name: &str,
        state: &str,
        description: &str,
        by: &str,
    ) -> Result<StatusRecord, String> {
        self.with(|w| {
            let user = w.user(by);
            let q = Params(vec![
                ("state".into(), state.into()),
                ("name".into(), name.into()),
                ("description".into(), description.into()),
            ]);
            match w.post_status(project, sha, &q, user) {
                Ok(_) => Ok(w.statuses.last().cloned().unwrap()),
                Err(answer) => Err(format!("{}", answer.status())),
            }
        })
    }

    // Merge trains.

    /// Adds the MR to its target's merge train by `by`, with a train pipeline (ref
    /// `refs/merge-requests/<iid>/train`, a new commit) of `status`; returns (car id, train sha).
    pub fn add_train_car(&self, project: u64, iid: u64, by: &str, status: &str) -> (u64, String) {
        self.with(|w| {
            let user = w.user(by);
            add_car(w, project, iid, user, status)
        })
    }

    pub fn set_car_status(&self, project: u64, car: u64, status: &str) {
        self.project(project, |p| {
            if let Some(c) = p.train.iter_mut().find(|c| c.id == car) {
                c.status = status.into();
            }
        });
    }

    // Issues.

    /// An issue by `by`, at `iid` (the next free one if `None`); its iid.
    pub fn create_issue(&self, project: u64, iid: Option<u64>, title: &str, labels: &[&str], by: &str) -> u64 {
        self.with(|w| {
            let user = w.user(by);
            let iid = iid.unwrap_or_else(|| w.projects[&project].issues.keys().max().map_or(1, |n| n + 1));
            new_issue(w, project, iid, title, "", labels.iter().map(|l| l.to_string()).collect(), false, "ISSUE", user);
            iid
        })
    }

    pub fn issue(&self, project: u64, iid: u64) -> Option<Issue> {
        self.project(project, |p| p.issues.get(&iid).cloned())
    }

    pub fn edit_issue<T>(&self, project: u64, iid: u64, f: impl FnOnce(&mut Issue) -> T) -> T {
        self.project(project, |p| f(p.issues.get_mut(&iid).expect("an issue")))
    }

    /// A person merges the MR from the web page, the way the project merges; returns the commit
    /// the target branch now has.
    pub fn merge_by_hand(&self, project: u64, iid: u64, by: &str) -> String {
        self.with(|w| {
            let user = w.user(by);
            w.do_merge(project, iid, &MergeParams::default(), user);
            let target = w.projects[&project].merge_requests[&iid].target_branch.clone();
            w.projects[&project].branches[&target].clone()
        })
    }

    pub fn label_issue(&self, project: u64, iid: u64, label: &str, add: bool, by: &str) {
        self.with(|w| {
            let user = w.user(by);
            w.relabel_issue(project, iid, label, add, user);
        })
    }

    /// Deletes an issue: `GET` answers 404.
    pub fn delete_issue(&self, project: u64, iid: u64) {
        self.edit_issue(project, iid, |i| i.deleted = true);
    }

    /// Moves an issue to another project (`to_project`, where it becomes a new issue); the old
    /// one is closed with `moved_to_id`. Returns the new issue's iid.
    pub fn move_issue(&self, project: u64, iid: u64, to_project: u64) -> u64 {
        self.with(|w| {
            let old = w.projects[&project].issues[&iid].clone();
            let new_iid = w.projects[&to_project].issues.keys().max().map_or(1, |n| n + 1);
            let id = new_issue(
                w,
                to_project,
                new_iid,
                &old.title,
                &old.description,
                old.labels.clone(),
                old.confidential,
                &old.issue_type,
                old.author,
            );
            let issue = w.project(project).issues.get_mut(&iid).unwrap();
            issue.state = "closed".into();
            issue.moved_to_id = Some(id);
            new_iid
        })
    }

    // Faults.

    /// The next `n` merge calls on the project answer 405, as while mergeability is computed.
    pub fn merge_405(&self, project: u64, n: u32) {
        self.project(project, |p| p.merge_405 = n);
    }

    /// The next merge call answers 422 with `message`.
    pub fn merge_422(&self, project: u64, message: &str) {
        self.project(project, |p| p.merge_422 = Some(message.into()));
    }

    /// The next `n` merges are performed, and then answered 500.
    pub fn merge_then_500(&self, project: u64, n: u32) {
        self.project(project, |p| p.merge_then_500 = n);
    }

    /// The next request whose path contains `path_part` is answered `status`, once.
    pub fn fail_once(&self, path_part: &str, status: u16) {
        self.with(|w| w.fail_once.push((path_part.into(), status)));
    }

    // Read-back.

    pub fn merges(&self) -> Vec<Merge> {
        self.with(|w| w.merges.clone())
    }

    pub fn train_adds(&self) -> Vec<TrainAdd> {
        self.with(|w| w.train_adds.clone())
    }

    /// Every commit status posted through the API, in order.
    pub fn statuses(&self) -> Vec<StatusRecord> {
        self.with(|w| w.statuses.clone())
    }

    /// The latest status named `name` on `sha` posted through the API.
    pub fn status(&self, project: u64, sha: &str, name: &str) -> Option<StatusRecord> {
        self.with(|w| w.statuses.iter().rev().find(|s| s.project == project && s.sha == sha && s.name == name).cloned())
    }

    /// The latest job or status named `name` on `sha`, whoever ran or posted it: (status,
    /// description).
    pub fn latest_job(&self, project: u64, sha: &str, name: &str) -> Option<(String, String)> {
        self.project(project, |p| {
            p.pipelines
                .iter()
                .filter(|pl| pl.sha == sha)
                .flat_map(|pl| pl.jobs.iter())
                .filter(|j| j.name == name)
                .max_by_key(|j| j.id)
                .map(|j| (j.status.clone(), j.description.clone().unwrap_or_default()))
        })
    }

    /// Every note write through the API, in order.
    pub fn note_writes(&self) -> Vec<NoteWrite> {
        self.with(|w| w.note_writes.clone())
    }

    /// The note writes of the token's user (the lane).
    pub fn bot_notes(&self) -> Vec<NoteWrite> {
        self.with(|w| {
            let bot = w.username(w.bot);
            w.note_writes.iter().filter(|n| n.by == bot).cloned().collect()
        })
    }

    /// Issues opened through the API, in order.
    pub fn issues_created(&self) -> Vec<Issue> {
        self.with(|w| w.issues_created.iter().map(|(p, iid)| w.projects[p].issues[iid].clone()).collect())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|w| w.calls.clone())
    }

    /// The calls so far, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        self.with(|w| std::mem::take(&mut w.calls))
    }

    pub fn call_count(&self) -> usize {
        self.with(|w| w.calls.len())
    }

    /// How many calls were `method` on a path containing `path_part`.
    pub fn count(&self, method: &str, path_part: &str) -> usize {
        self.with(|w| w.calls.iter().filter(|c| c.method == method && c.path.contains(path_part)).count())
    }
}

fn is_draft(title: &str) -> bool {
    let t = title.trim_start().to_ascii_lowercase();
    t.starts_with("draft:") || t.starts_with("[draft]") || t.starts_with("(draft)")
}

fn add_job(
    w: &mut World,
    project: u64,
    pipeline: u64,
    name: &str,
    status: &str,
    allow_failure: bool,
    user: u64,
) -> u64 {
    let (id, at) = (w.id(), w.now());
    let pl = w.pipeline_mut(project, pipeline).expect("a pipeline");
    for old in pl.jobs.iter_mut().filter(|j| j.name == name && !j.retried) {
        old.retried = true;
    }
    let finished = !matches!(status, "pending" | "running" | "created");
    pl.jobs.push(Job {
        id,
        name: name.into(),
        stage: "test".into(),
        status: status.into(),
        allow_failure,
        user,
        created_at: at.clone(),
        finished_at: finished.then_some(at),
        retried: false,
        external: false,
        description: None,
        target_url: None,
    });
    id
}

fn add_car(w: &mut World, project: u64, iid: u64, user: u64, status: &str) -> (u64, String) {
    let sha = w.new_sha();
    let target = w.mr(project, iid).target_branch.clone();
    let parent = w.projects[&project].branches.get(&target).cloned();
    w.record_commit(project, &sha, &format!("Merge train for !{iid}"), user, parent);
    let pipeline =
        w.new_pipeline(project, &sha, &format!("refs/merge-requests/{iid}/train"), "merge_request_event", status, user);
    let (id, at) = (w.id(), w.now());
    let car_status = if matches!(status, "created" | "pending") { "idle" } else { "fresh" };
    w.project(project).train.push(TrainCar {
        id,
        iid,
        target_branch: target,
        user,
        pipeline_id: pipeline,
        status: car_status.into(),
        created_at: at.clone(),
        updated_at: at,
    });
    (id, sha)
}

#[allow(clippy::too_many_arguments)]
fn new_issue(
    w: &mut World,
    project: u64,
    iid: u64,
    title: &str,
    description: &str,
    labels: Vec<String>,
    confidential: bool,
    issue_type: &str,
    author: u64,
) -> u64 {
    let (id, at) = (w.id(), w.now());
    for l in &labels {
        w.label_id(project, l);
    }
    let issue = Issue {
        id,
        iid,
        title: title.into(),
        description: description.into(),
        state: "opened".into(),
        labels,
        confidential,
        author,
        moved_to_id: None,
        deleted: false,
        issue_type: issue_type.into(),
        notes: Vec::new(),
        label_events: Vec::new(),
        created_at: at.clone(),
        updated_at: at,
    };
    w.project(project).issues.insert(iid, issue);
    id
}

type Shared = State<Arc<Mutex<World>>>;

/// Every request: recorded, authenticated, then routed by its path segments.
async fn dispatch(State(world): Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut w = world.lock().unwrap();
    let token = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok())?;
            auth.strip_prefix("Bearer ").map(String::from)
        })
        .unwrap_or_default();
    let call = Call {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        token: token.clone(),
    };
    w.calls.push(call);
    if let Some(i) = w.fail_once.iter().position(|(p, _)| uri.path().contains(p.as_str())) {
        let (_, status) = w.fail_once.remove(i);
        let text = if status >= 500 { "500 Internal Server Error" } else { "injected failure" };
        return message(status, text);
    }
    let Some(rest) = uri.path().strip_prefix("/api/v4/") else { return message(404, "404 Not found") };
    if token.trim().is_empty() {
        return message(401, "401 Unauthorized");
    }
    let user = w.tokens.get(&token).copied().unwrap_or(w.bot);
    let mut params = Params(Params::parse_form(uri.query().unwrap_or_default()));
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !body.is_empty() {
        if content_type.starts_with("application/json") {
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) => params.0.extend(Params::from_json(&v)),
                Err(_) => return message(400, "400 Bad request - invalid JSON"),
            }
        } else {
            params.0.extend(Params::parse_form(&String::from_utf8_lossy(&body)));
        }
    }
    let segs: Vec<String> = rest.split('/').map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let req = Req { method: method.as_str(), uri: &uri, q: &params, user };
    route(&mut w, &req, &segs)
}

struct Req<'a> {
    method: &'a str,
    uri: &'a Uri,
    q: &'a Params,
    user: u64,
}

fn route(w: &mut World, r: &Req, segs: &[&str]) -> Response {
    match (r.method, segs) {
        ("GET", ["user"]) => Json(w.user_json(r.user)).into_response(),
        ("GET", ["users"]) => {
            let wanted = r.q.get("username").unwrap_or_default();
            let found: Vec<Value> = w
                .users
                .values()
                .filter(|u| u.username.eq_ignore_ascii_case(wanted))
                .map(|u| w.user_json(u.id))
                .collect();
            Json(found).into_response()
        }
        ("GET", ["groups", group, "members", "all", user]) => {
            let Some(g) = w.group_id(group) else { return not_found("Group") };
            let Ok(user) = user.parse::<u64>() else { return message(404, "404 Not found") };
            let path = w.groups[&g].full_path.clone();
            match w.group_chain_access(&path, user) {
                Some(level) => Json(member_json(w, user, level)).into_response(),
                None => message(404, "404 Not found"),
            }
        }
        (_, ["projects", project, rest @ ..]) => {
            let Some(pid) = w.project_id(project) else { return not_found("Project") };
            project_route(w, r, pid, rest)
        }
        _ => message(404, "404 Not found"),
    }
}

fn member_json(w: &World, user: u64, level: u32) -> Value {
    let mut v = w.user_json(user);
    v["access_level"] = level.into();
    v["expires_at"] = Value::Null;
    v["membership_state"] = "active".into();
    v
}

fn project_route(w: &mut World, r: &Req, pid: u64, segs: &[&str]) -> Response {
    let base = w.base.clone();
    let q = r.q;
    match (r.method, segs) {
        ("GET", []) => {
            let p = &w.projects[&pid];
            Json(json!({
                "id": pid, "path_with_namespace": p.path, "path": p.path.rsplit('/').next(),
                "name": p.path.rsplit('/').next(), "default_branch": p.default_branch,
                "web_url": format!("{base}/{}", p.path),
                "http_url_to_repo": p.git_dir.as_ref().map_or_else(|| format!("{base}/{}.git", p.path), |d| format!("file://{}", d.display())),
                "merge_method": p.merge_method, "squash_option": p.squash_option,
                "merge_trains_enabled": p.merge_trains_enabled,
                "merge_trains_skip_train_allowed": p.merge_trains_skip_train_allowed,
                "only_allow_merge_if_pipeline_succeeds": p.only_allow_merge_if_pipeline_succeeds,
                "merge_pipelines_enabled": p.merge_trains_enabled,
                "namespace": { "full_path": p.path.rsplit_once('/').map_or("", |(ns, _)| ns) },
                "archived": false, "visibility": "private",
            }))
            .into_response()
        }
        (m @ ("GET" | "HEAD"), ["repository", "files", file] | ["repository", "files", file, "raw"]) => {
            let raw = segs.len() == 4;
            let branch = q.get("ref").map(String::from).unwrap_or_else(|| w.projects[&pid].default_branch.clone());
            let p = &w.projects[&pid];
            let from_git = p.git(&["show", &format!("{branch}:{file}")]).map(|content| FileEntry {
                content,
                last_commit_id: p.git(&["rev-parse", &branch]).unwrap_or_default().trim().to_string(),
            });
            let Some(entry) = p.files.get(&(branch.clone(), file.to_string())).cloned().or(from_git) else {
                return not_found("File");
            };
            let blob = blob_id(&entry.content);
            let commit = p.branches.get(&branch).cloned().unwrap_or_default();
            if raw {
                return entry.content.clone().into_response();
            }
            if m == "HEAD" {
                let mut response = StatusCode::OK.into_response();
                let h = response.headers_mut();
                for (k, v) in [
                    ("x-gitlab-blob-id", blob.clone()),
                    ("x-gitlab-commit-id", commit.clone()),
                    ("x-gitlab-last-commit-id", entry.last_commit_id.clone()),
                    ("x-gitlab-file-path", file.to_string()),
                    ("x-gitlab-file-name", file.rsplit('/').next().unwrap_or_default().to_string()),
                    ("x-gitlab-ref", branch.clone()),
                    ("x-gitlab-size", entry.content.len().to_string()),
                    ("x-gitlab-encoding", "base64".to_string()),
                    ("x-gitlab-content-sha256", hex::encode(sha2::Sha256::digest(entry.content.as_bytes()))),
                ] {
                    h.insert(k, HeaderValue::from_str(&v).unwrap());
                }
                return response;
            }
            Json(json!({
                "file_name": file.rsplit('/').next(), "file_path": file, "size": entry.content.len(),
                "encoding": "base64", "content": base64::engine::general_purpose::STANDARD.encode(&entry.content),
                "content_sha256": hex::encode(sha2::Sha256::digest(entry.content.as_bytes())),
                "ref": branch, "blob_id": blob, "commit_id": commit, "last_commit_id": entry.last_commit_id,
                "execute_filemode": false,
            }))
            .into_response()
        }
        ("GET", ["repository", "merge_base"]) => {
            // GitLab answers the common ancestor of the refs; here, of two commits it recorded.
            let refs = q.list("refs").unwrap_or_default();
            let [a, b] = refs.as_slice() else { return message(400, "refs is invalid") };
            let p = &w.projects[&pid];
            let ancestors = |from: &str| {
                let (mut seen, mut todo) = (Vec::new(), vec![from.to_string()]);
                while let Some(c) = todo.pop() {
                    if let Some(commit) = p.commits.get(&c) {
                        todo.extend(commit.parent_ids.iter().cloned());
                    }
                    seen.push(c);
                }
                seen
            };
            let of_b = ancestors(b);
            match ancestors(a).into_iter().find(|c| of_b.contains(c) && p.commits.contains_key(c)) {
                Some(base) => Json(json!({ "id": base, "short_id": &base[..8.min(base.len())] })).into_response(),
                None => not_found("Commit"),
            }
        }
        ("GET", ["repository", "commits", sha]) => {
            let p = &w.projects[&pid];
            let Some(c) = p.commits.get(*sha).or_else(|| p.branches.get(*sha).and_then(|h| p.commits.get(h))) else {
                return not_found("Commit");
            };
            let last = p.pipelines.iter().rev().find(|pl| pl.sha == c.id);
            Json(json!({
                "id": c.id, "short_id": &c.id[..8], "title": c.title, "message": c.message,
                "author_name": c.author_name, "author_email": c.author_email, "authored_date": c.created_at,
                "committer_name": c.author_name, "committer_email": c.author_email, "committed_date": c.created_at,
                "created_at": c.created_at, "parent_ids": c.parent_ids,
                "web_url": format!("{base}/{}/-/commit/{}", p.path, c.id),
                "last_pipeline": last.map(|pl| json!({ "id": pl.id, "sha": pl.sha, "ref": pl.ref_, "status": pl.status })),
                "status": last.map(|pl| pl.status.clone()),
            }))
            .into_response()
        }
        ("GET", ["repository", "commits", sha, "merge_requests"]) => {
            let p = &w.projects[&pid];
            if !p.has_commit(sha) {
                return not_found("Commit");
            }
            let iids: Vec<u64> = p
                .merge_requests
                .values()
                .filter(|mr| {
                    mr.sha == *sha
                        || mr.commits.iter().any(|c| c == sha)
                        || mr.merge_commit_sha.as_deref() == Some(sha)
                        || mr.squash_commit_sha.as_deref() == Some(sha)
                })
                .map(|mr| mr.iid)
                .collect();
            let list = iids.iter().map(|iid| w.mr_json(pid, *iid, false)).collect();
            paged(list, q, &base, r.uri)
        }
        ("GET", ["repository", "commits", sha, "statuses"]) => {
            let p = &w.projects[&pid];
            let all = q.bool("all").unwrap_or(false);
            let mut jobs: Vec<(&Pipeline, &Job)> = p
                .pipelines
                .iter()
                .filter(|pl| pl.sha == *sha && q.get("ref").is_none_or(|r| r == pl.ref_))
                .filter(|pl| q.get("pipeline_id").is_none_or(|id| id == pl.id.to_string()))
                .flat_map(|pl| pl.jobs.iter().map(move |j| (pl, j)))
                .filter(|(_, j)| q.get("name").is_none_or(|n| n == j.name))
                .filter(|(_, j)| all || !j.retried)
                .collect();
            jobs.sort_by_key(|(_, j)| std::cmp::Reverse(j.id));
            let list = jobs.iter().map(|(pl, j)| w.status_json(pl, j)).collect();
            paged(list, q, &base, r.uri)
        }
        ("POST", ["statuses", sha]) => match w.post_status(pid, sha, q, r.user) {
            Ok(v) => created(v),
            Err(answer) => *answer,
        },
        ("GET", ["pipelines"]) => {
            let p = &w.projects[&pid];
            let list = p
                .pipelines
                .iter()
                .rev()
                .filter(|pl| q.get("sha").is_none_or(|s| s == pl.sha))
                .filter(|pl| q.get("ref").is_none_or(|s| s == pl.ref_))
                .filter(|pl| q.get("status").is_none_or(|s| s == pl.status))
                .filter(|pl| q.get("source").is_none_or(|s| s == pl.source))
                .map(|pl| {
                    json!({ "id": pl.id, "iid": pl.iid, "project_id": pid, "sha": pl.sha, "ref": pl.ref_,
                        "status": pl.status, "source": pl.source, "created_at": pl.created_at, "updated_at": pl.updated_at,
                        "web_url": format!("{base}/{}/-/pipelines/{}", p.path, pl.id) })
                })
                .collect();
            paged(list, q, &base, r.uri)
        }
        ("GET", ["pipelines", id]) => match id.parse().ok().and_then(|id| w.pipeline(pid, id)) {
            Some(pl) => Json(w.pipeline_json(pid, pl)).into_response(),
            None => message(404, "404 Not found"),
        },
        ("GET", ["pipelines", id, "jobs"]) => {
            let Some(pl) = id.parse().ok().and_then(|id| w.pipeline(pid, id)) else {
                return message(404, "404 Not found");
            };
            let retried = q.bool("include_retried").unwrap_or(false);
            let scope = q.list("scope").unwrap_or_default();
            let list = pl
                .jobs
                .iter()
                .filter(|j| !j.external && (retried || !j.retried))
                .filter(|j| scope.is_empty() || scope.contains(&j.status))
                .map(|j| w.job_json(pid, pl, j))
                .collect();
            paged(list, q, &base, r.uri)
        }
        ("GET", ["merge_requests"]) => {
            let p = &w.projects[&pid];
            let labels = q.list("labels").unwrap_or_default();
            let state = q.get("state").filter(|s| *s != "all");
            let iids: Vec<u64> = p
                .merge_requests
                .values()
                .rev()
                .filter(|mr| q.get("source_branch").is_none_or(|b| b == mr.source_branch))
                .filter(|mr| q.get("target_branch").is_none_or(|b| b == mr.target_branch))
                .filter(|mr| state.is_none_or(|s| s == mr.state))
                .filter(|mr| labels.iter().all(|l| mr.labels.contains(l)))
                .map(|mr| mr.iid)
                .collect();
            let list = iids.iter().map(|iid| w.mr_json(pid, *iid, false)).collect();
            paged(list, q, &base, r.uri)
        }
        ("POST", ["merge_requests"]) => create_mr(w, r, pid),
        (_, ["merge_requests", iid, rest @ ..]) => {
            let Some(iid) = iid.parse().ok().filter(|i| w.projects[&pid].merge_requests.contains_key(i)) else {
                return not_found("Merge Request");
            };
            mr_route(w, r, pid, iid, rest)
        }
        ("POST", ["merge_trains", "merge_requests", iid]) => {
            let Some(iid) = iid.parse().ok().filter(|i| w.projects[&pid].merge_requests.contains_key(i)) else {
                return not_found("Merge Request");
            };
            let p = &w.projects[&pid];
            if !p.merge_trains_enabled {
                return message(400, "Merge trains are not enabled for this project");
            }
            let mr = &p.merge_requests[&iid];
            if mr.state != "opened" || mr.draft {
                return message(400, "This merge request cannot be added to the merge train");
            }
            if let Some(sha) = q.get("sha") {
                if sha != mr.sha {
                    return message(409, &format!("SHA does not match HEAD of source branch: {}", mr.sha));
                }
            }
            let add = TrainAdd {
                project: pid,
                iid,
                sha: q.get("sha").map(String::from),
                squash: q.bool("squash"),
                auto_merge: q.bool("auto_merge").unwrap_or(false),
                by: w.username(r.user),
            };
            w.train_adds.push(add);
            let target = mr.target_branch.clone();
            add_car(w, pid, iid, r.user, "running");
            let cars: Vec<Value> = w.projects[&pid]
                .train
                .iter()
                .filter(|c| c.target_branch == target && !matches!(c.status.as_str(), "merged" | "skip_merged"))
                .map(|c| w.car_json(pid, c))
                .collect();
            created(Value::Array(cars))
        }
        ("GET", ["merge_trains", "merge_requests", iid]) => {
            let iid: u64 = iid.parse().unwrap_or(0);
            match w.projects[&pid].train.iter().rev().find(|c| c.iid == iid) {
                Some(car) => Json(w.car_json(pid, car)).into_response(),
                None => not_found("Merge Train"),
            }
        }
        ("GET", ["merge_trains"]) | ("GET", ["merge_trains", _]) => {
            let target = segs.get(1).copied();
            let scope = q.get("scope");
            let list = w.projects[&pid]
                .train
                .iter()
                .filter(|c| target.is_none_or(|t| t == c.target_branch))
                .filter(|c| {
                    let done = matches!(c.status.as_str(), "merged" | "skip_merged");
                    match scope {
                        Some("active") => !done,
                        Some("complete") => done,
                        _ => true,
                    }
                })
                .map(|c| w.car_json(pid, c))
                .collect();
            paged(list, q, &base, r.uri)
        }
        ("GET", ["issues"]) => {
            let p = &w.projects[&pid];
            let labels = q.list("labels").unwrap_or_default();
            let state = q.get("state").filter(|s| *s != "all");
            let search = q.get("search").map(str::to_lowercase);
            let author = q.get("author_username");
            let list = p
                .issues
                .values()
                .rev()
                .filter(|i| !i.deleted)
                .filter(|i| labels.iter().all(|l| i.labels.contains(l)))
                .filter(|i| state.is_none_or(|s| s == i.state))
                .filter(|i| {
                    search
                        .as_ref()
                        .is_none_or(|s| i.title.to_lowercase().contains(s) || i.description.to_lowercase().contains(s))
                })
                .filter(|i| author.is_none_or(|a| w.username(i.author).eq_ignore_ascii_case(a)))
                .map(|i| w.issue_json(pid, i))
                .collect();
            paged(list, q, &base, r.uri)
        }
        ("POST", ["issues"]) => {
            let Some(title) = q.get("title").filter(|t| !t.is_empty()) else {
                return error_key(400, "title is missing");
            };
            let iid = w.projects[&pid].issues.keys().max().map_or(1, |n| n + 1);
            let kind = match q.get("issue_type") {
                Some("incident") => "INCIDENT",
                _ => "ISSUE",
            };
            let labels = q.list("labels").unwrap_or_default();
            let description = q.get("description").unwrap_or_default().to_string();
            let confidential = q.bool("confidential").unwrap_or(false);
            new_issue(w, pid, iid, title, &description, labels, confidential, kind, r.user);
            w.issues_created.push((pid, iid));
            let issue = w.projects[&pid].issues[&iid].clone();
            created(w.issue_json(pid, &issue))
        }
        (_, ["issues", iid, rest @ ..]) => {
            let Some(issue) =
                iid.parse().ok().and_then(|i| w.projects[&pid].issues.get(&i)).filter(|i| !i.deleted).cloned()
            else {
                return not_found("Issue");
            };
            issue_route(w, r, pid, issue, rest)
        }
        ("GET", ["members", "all", user]) => {
            let Ok(user) = user.parse::<u64>() else { return message(404, "404 Not found") };
            match w.project_access(pid, user) {
                Some(level) => Json(member_json(w, user, level)).into_response(),
                None => message(404, "404 Not found"),
            }
        }
        ("GET", ["members", user]) => {
            let level = user.parse::<u64>().ok().and_then(|u| w.projects[&pid].members.get(&u).map(|l| (u, *l)));
            match level {
                Some((user, level)) => Json(member_json(w, user, level)).into_response(),
                None => message(404, "404 Not found"),
            }
        }
        ("GET", ["protected_branches", name]) => {
            let Some(pr) = w.projects[&pid].protected.get(*name) else { return not_found("Protected Branch") };
            let levels = |l: &[(u32, Option<u64>)]| {
                l.iter()
                    .enumerate()
                    .map(|(i, (level, user))| {
                        let desc = match level {
                            40 => "Maintainers",
                            30 => "Developers + Maintainers",
                            0 => "No one",
                            _ => "Custom",
                        };
                        json!({ "id": i + 1, "access_level": level, "access_level_description": desc, "user_id": user, "group_id": null })
                    })
                    .collect::<Vec<_>>()
            };
            Json(json!({
                "id": 1, "name": name, "merge_access_levels": levels(&pr.merge), "push_access_levels": levels(&pr.push),
                "allow_force_push": false, "code_owner_approval_required": false,
            }))
            .into_response()
        }
        _ => message(404, "404 Not found"),
    }
}

fn create_mr(w: &mut World, r: &Req, pid: u64) -> Response {
    let q = r.q;
    let (Some(source), Some(target), Some(title)) = (q.get("source_branch"), q.get("target_branch"), q.get("title"))
    else {
        return error_key(400, "source_branch is missing, target_branch is missing, title is missing");
    };
    let p = &w.projects[&pid];
    if let Some(other) = p
        .merge_requests
        .values()
        .find(|mr| mr.state == "opened" && mr.source_branch == source && mr.target_branch == target)
    {
        let text = format!("Another open merge request already exists for this source branch: !{}", other.iid);
        return (StatusCode::CONFLICT, Json(json!({ "message": [text] }))).into_response();
    }
    if source == target {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "message": ["You can't use same project/branch for source and target"] })),
        )
            .into_response();
    }
    let pushed = || Some(p.git(&["rev-parse", "--verify", "-q", &format!("refs/heads/{source}")])?.trim().to_string());
    let Some(sha) = p.branches.get(source).cloned().or_else(pushed) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "message": { "source_branch": ["is invalid"] } })))
            .into_response();
    };
    let iid = p.merge_requests.keys().max().map_or(1, |n| n + 1);
    let (id, at) = (w.id(), w.now());
    let mr = MergeRequest {
        id,
        iid,
        title: title.into(),
        description: q.get("description").unwrap_or_default().into(),
        author: r.user,
        state: "opened".into(),
        draft: is_draft(title),
        labels: Vec::new(),
        source_branch: source.into(),
        target_branch: target.into(),
        source_project_id: pid,
        target_project_id: q.u64("target_project_id").unwrap_or(pid),
        sha: sha.clone(),
        commits: vec![sha],
        merge_commit_sha: None,
        squash_commit_sha: None,
        base_sha: None,
        merged_by: None,
        merge_user: None,
        detailed_merge_status: "mergeable".into(),
        reviewers: q.ids("reviewer_ids").unwrap_or_default(),
        assignees: q.ids("assignee_ids").or_else(|| q.ids("assignee_id")).unwrap_or_default(),
        squash: q.bool("squash").unwrap_or(false),
        remove_source_branch: q.bool("remove_source_branch").unwrap_or(false),
        changed_files: Vec::new(),
        notes: Vec::new(),
        label_events: Vec::new(),
        created_at: at.clone(),
        updated_at: at,
        merged_at: None,
        auto_merge: None,
    };
    w.project(pid).merge_requests.insert(iid, mr);
    for label in q.list("labels").unwrap_or_default() {
        w.add_label_to_mr(pid, iid, &label, r.user);
    }
    created(w.mr_json(pid, iid, true))
}

fn mr_route(w: &mut World, r: &Req, pid: u64, iid: u64, segs: &[&str]) -> Response {
    let base = w.base.clone();
    let q = r.q;
    match (r.method, segs) {
        ("GET", []) => Json(w.mr_json(pid, iid, true)).into_response(),
        ("PUT", []) => {
            let at = w.now();
            {
                let mr = w.mr(pid, iid);
                if let Some(t) = q.get("title") {
                    mr.title = t.into();
                    mr.draft = is_draft(t);
                }
                if let Some(d) = q.get("description") {
                    mr.description = d.into();
                }
                if let Some(b) = q.get("target_branch") {
                    mr.target_branch = b.into();
                }
                if let Some(ids) = q.ids("assignee_ids") {
                    mr.assignees = ids;
                }
                if let Some(ids) = q.ids("reviewer_ids") {
                    mr.reviewers = ids;
                }
                if let Some(s) = q.bool("squash") {
                    mr.squash = s;
                }
                if let Some(s) = q.bool("remove_source_branch") {
                    mr.remove_source_branch = s;
                }
                match q.get("state_event") {
                    Some("close") => mr.state = "closed".into(),
                    Some("reopen") => mr.state = "opened".into(),
                    _ => {}
                }
                mr.updated_at = at;
            }
            if let Some(labels) = q.list("labels") {
                let current = w.mr(pid, iid).labels.clone();
                for l in current.iter().filter(|l| !labels.contains(l)) {
                    w.remove_label_from_mr(pid, iid, l, r.user);
                }
                for l in &labels {
                    w.add_label_to_mr(pid, iid, l, r.user);
                }
            }
            for l in q.list("add_labels").unwrap_or_default() {
                w.add_label_to_mr(pid, iid, &l, r.user);
            }
            for l in q.list("remove_labels").unwrap_or_default() {
                w.remove_label_from_mr(pid, iid, &l, r.user);
            }
            Json(w.mr_json(pid, iid, true)).into_response()
        }
        ("PUT", ["merge"]) => merge(w, r, pid, iid),
        ("GET", ["notes"]) => notes_list(w, r, pid, Noteable::MergeRequest, iid),
        ("POST", ["notes"]) => note_create(w, r, pid, Noteable::MergeRequest, iid),
        ("PUT", ["notes", id]) => note_edit(w, r, pid, Noteable::MergeRequest, iid, id),
        ("GET", ["notes", id]) => note_get(w, pid, Noteable::MergeRequest, iid, id),
        ("GET", ["versions"]) => paged(diff_versions(w, pid, iid), q, &base, r.uri),
        ("GET", ["resource_label_events"]) => {
            let mr = &w.projects[&pid].merge_requests[&iid];
            let list = label_events_json(w, pid, "MergeRequest", mr.id, &mr.label_events.clone());
            paged(list, q, &base, r.uri)
        }
        ("GET", ["diffs"]) => {
            let list = w.projects[&pid].merge_requests[&iid]
                .changed_files
                .iter()
                .map(|f| {
                    json!({ "old_path": f.old_path, "new_path": f.new_path, "a_mode": "100644", "b_mode": "100644",
                        "new_file": f.new_file, "renamed_file": f.renamed_file, "deleted_file": f.deleted_file,
                        "diff": f.diff, "generated_file": false })
                })
                .collect();
            paged(list, q, &base, r.uri)
        }
        ("GET", ["pipelines"]) => {
            let p = &w.projects[&pid];
            let mr = &p.merge_requests[&iid];
            let own = [
                mr.source_branch.clone(),
                format!("refs/merge-requests/{iid}/head"),
                format!("refs/merge-requests/{iid}/merge"),
            ];
            let list = p
                .pipelines
                .iter()
                .rev()
                .filter(|pl| mr.commits.contains(&pl.sha) && own.contains(&pl.ref_))
                .map(|pl| json!({ "id": pl.id, "iid": pl.iid, "sha": pl.sha, "ref": pl.ref_, "status": pl.status, "source": pl.source }))
                .collect();
            paged(list, q, &base, r.uri)
        }
        _ => message(404, "404 Not found"),
    }
}

fn label_events_json(w: &mut World, pid: u64, kind: &str, resource_id: u64, events: &[LabelEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let label = w.label_json(pid, &e.label);
            json!({
                "id": e.id, "user": w.user_json(e.user), "created_at": e.created_at, "resource_type": kind,
                "resource_id": resource_id, "label": { "id": label["id"], "name": e.label, "color": label["color"], "description": null },
                "action": e.action,
            })
        })
        .collect()
}

fn merge(w: &mut World, r: &Req, pid: u64, iid: u64) -> Response {
    let q = r.q;
    let params = MergeParams {
        sha: q.get("sha").map(String::from),
        squash: q.bool("squash"),
        skip_merge_train: q.bool("skip_merge_train").unwrap_or(false),
        auto_merge: q.bool("auto_merge").or(q.bool("merge_when_pipeline_succeeds")).unwrap_or(false),
        should_remove_source_branch: q.bool("should_remove_source_branch").unwrap_or(false),
        merge_commit_message: q.get("merge_commit_message").map(String::from),
        squash_commit_message: q.get("squash_commit_message").map(String::from),
    };
    let not_allowed = || message(405, "405 Method Not Allowed");
    if w.projects[&pid].merge_405 > 0 {
        w.project(pid).merge_405 -= 1;
        return not_allowed();
    }
    let status = w.merge_status(pid, iid);
    let p = &w.projects[&pid];
    let mr = &p.merge_requests[&iid];
    if mr.state != "opened" || mr.draft || matches!(status.as_str(), "checking" | "unchecked") {
        return not_allowed();
    }
    if p.merge_trains_enabled
        && p.merge_train_enforced
        && !(params.skip_merge_train && p.merge_trains_skip_train_allowed)
    {
        return message(405, "Merge requests must be merged through the merge train");
    }
    let pipeline_blocks = matches!(status.as_str(), "ci_still_running" | "ci_must_pass");
    if pipeline_blocks && params.auto_merge && status == "ci_still_running" {
        if let Some(sha) = &params.sha {
            if *sha != mr.sha {
                return message(409, &format!("SHA does not match HEAD of source branch: {}", mr.sha));
            }
        }
        let user = r.user;
        let mr = w.mr(pid, iid);
        mr.auto_merge = Some(params);
        mr.merge_user = Some(user);
        return Json(w.mr_json(pid, iid, true)).into_response();
    }
    if pipeline_blocks || status != "mergeable" {
        return not_allowed();
    }
    if let Some(text) = w.project(pid).merge_422.take() {
        return message(422, &text);
    }
    let mr = &w.projects[&pid].merge_requests[&iid];
    if let Some(sha) = &params.sha {
        if *sha != mr.sha {
            return message(409, &format!("SHA does not match HEAD of source branch: {}", mr.sha));
        }
    }
    w.do_merge(pid, iid, &params, r.user);
    if w.projects[&pid].merge_then_500 > 0 {
        w.project(pid).merge_then_500 -= 1;
        return message(500, "500 Internal Server Error");
    }
    Json(w.mr_json(pid, iid, true)).into_response()
}

/// `GET …/merge_requests/:iid/versions`: one diff version per head the MR has had, newest first,
/// created when that commit arrived (as the fake recorded it).
fn diff_versions(w: &World, pid: u64, iid: u64) -> Vec<Value> {
    let p = &w.projects[&pid];
    let mr = &p.merge_requests[&iid];
    let base = p.branches.get(&mr.target_branch).cloned().unwrap_or_default();
    mr.commits
        .iter()
        .enumerate()
        .rev()
        .map(|(i, sha)| {
            let at = p.commits.get(sha).map(|c| c.created_at.clone()).unwrap_or_else(|| mr.created_at.clone());
            json!({ "id": mr.id * 100 + i as u64, "head_commit_sha": sha, "base_commit_sha": base,
                "start_commit_sha": base, "created_at": at, "merge_request_id": mr.id,
                "state": "collected", "real_size": "1" })
        })
        .collect()
}

fn notes_list(w: &mut World, r: &Req, pid: u64, kind: Noteable, iid: u64) -> Response {
    let base = w.base.clone();
    let mut notes = w.notes_mut(pid, kind, iid).cloned().unwrap_or_default();
    let by_updated = r.q.get("order_by") == Some("updated_at");
    notes.sort_by(|a, b| {
        if by_updated { a.updated_at.cmp(&b.updated_at) } else { a.created_at.cmp(&b.created_at) }.then(a.id.cmp(&b.id))
    });
    // GitLab's default order is newest first.
    if r.q.get("sort") != Some("asc") {
        notes.reverse();
    }
    let list = notes.iter().map(|n| w.note_json(n, kind, iid)).collect();
    paged(list, r.q, &base, r.uri)
}

fn note_create(w: &mut World, r: &Req, pid: u64, kind: Noteable, iid: u64) -> Response {
    let Some(body) = r.q.get("body").filter(|b| !b.is_empty()) else { return error_key(400, "body is missing") };
    match w.write_note(pid, kind, iid, body, r.user) {
        Some(note) => created(w.note_json(&note, kind, iid)),
        None => message(404, "404 Not found"),
    }
}

fn note_edit(w: &mut World, r: &Req, pid: u64, kind: Noteable, iid: u64, id: &str) -> Response {
    let Some(body) = r.q.get("body") else { return error_key(400, "body is missing") };
    let Ok(id) = id.parse() else { return not_found("Note") };
    let author = w.notes_mut(pid, kind, iid).and_then(|n| n.iter().find(|n| n.id == id).map(|n| n.author));
    match author {
        None => not_found("Note"),
        Some(a) if a != r.user => message(403, "403 Forbidden"),
        Some(_) => {
            let note = w.edit_note(pid, kind, iid, id, body, r.user).unwrap();
            Json(w.note_json(&note, kind, iid)).into_response()
        }
    }
}

fn note_get(w: &mut World, pid: u64, kind: Noteable, iid: u64, id: &str) -> Response {
    let id: u64 = id.parse().unwrap_or(0);
    match w.notes_mut(pid, kind, iid).and_then(|n| n.iter().find(|n| n.id == id).cloned()) {
        Some(note) => Json(w.note_json(&note, kind, iid)).into_response(),
        None => not_found("Note"),
    }
}

fn issue_route(w: &mut World, r: &Req, pid: u64, issue: Issue, segs: &[&str]) -> Response {
    let base = w.base.clone();
    let iid = issue.iid;
    match (r.method, segs) {
        ("GET", []) => Json(w.issue_json(pid, &issue)).into_response(),
        ("PUT", []) => {
            let q = r.q;
            let at = w.now();
            {
                let i = w.project(pid).issues.get_mut(&iid).unwrap();
                if let Some(d) = q.get("description") {
                    i.description = d.into();
                }
                if let Some(t) = q.get("title") {
                    i.title = t.into();
                }
                if let Some(c) = q.bool("confidential") {
                    i.confidential = c;
                }
                match q.get("state_event") {
                    Some("close") => i.state = "closed".into(),
                    Some("reopen") => i.state = "opened".into(),
                    _ => {}
                }
                i.updated_at = at;
            }
            if let Some(labels) = q.list("labels") {
                for l in issue.labels.iter().filter(|l| !labels.contains(l)) {
                    w.relabel_issue(pid, iid, l, false, r.user);
                }
                for l in &labels {
                    w.relabel_issue(pid, iid, l, true, r.user);
                }
            }
            for l in q.list("add_labels").unwrap_or_default() {
                w.relabel_issue(pid, iid, &l, true, r.user);
            }
            for l in q.list("remove_labels").unwrap_or_default() {
                w.relabel_issue(pid, iid, &l, false, r.user);
            }
            let issue = w.projects[&pid].issues[&iid].clone();
            Json(w.issue_json(pid, &issue)).into_response()
        }
        ("GET", ["notes"]) => notes_list(w, r, pid, Noteable::Issue, iid),
        ("POST", ["notes"]) => note_create(w, r, pid, Noteable::Issue, iid),
        ("PUT", ["notes", id]) => note_edit(w, r, pid, Noteable::Issue, iid, id),
        ("GET", ["resource_label_events"]) => {
            let list = label_events_json(w, pid, "Issue", issue.id, &issue.label_events);
            paged(list, r.q, &base, r.uri)
        }
        _ => message(404, "404 Not found"),
    }
}
