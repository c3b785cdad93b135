//! What the lane reads from GitLab's REST v4 answers, and the endpoints the `gitlab` crate does
//! not have (merging with `skip_merge_train`, merge trains, a commit's merge requests, a
//! member of a group including inherited ones).

use std::borrow::Cow;

use gitlab::api::{BodyError, Endpoint, FormParams, Pageable, QueryParams};
use http::Method;
use serde::Deserialize;

/// A project, group or file path as one URL segment.
pub fn segment(path: &str) -> String {
    url::form_urlencoded::byte_serialize(path.as_bytes()).collect()
}

/// One REST call by path, with query and form parameters.
pub struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    form: Vec<(&'static str, String)>,
}

impl Call {
    pub fn get(path: String) -> Call {
        Call { method: Method::GET, path, query: vec![], form: vec![] }
    }
    pub fn post(path: String) -> Call {
        Call { method: Method::POST, path, query: vec![], form: vec![] }
    }
    pub fn put(path: String) -> Call {
        Call { method: Method::PUT, path, query: vec![], form: vec![] }
    }
    pub fn query(mut self, key: &'static str, value: impl ToString) -> Call {
        self.query.push((key, value.to_string()));
        self
    }
    pub fn form(mut self, key: &'static str, value: impl ToString) -> Call {
        self.form.push((key, value.to_string()));
        self
    }
}

impl Endpoint for Call {
    fn method(&self) -> Method {
        self.method.clone()
    }

    fn endpoint(&self) -> Cow<'static, str> {
        self.path.clone().into()
    }

    fn parameters(&self) -> QueryParams<'_> {
        let mut params = QueryParams::default();
        for (key, value) in &self.query {
            params.push(*key, value.as_str());
        }
        params
    }

    fn body(&self) -> Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        if self.form.is_empty() {
            return Ok(None);
        }
        let mut params = FormParams::default();
        for (key, value) in &self.form {
            params.push(*key, value.as_str());
        }
        params.into_body()
    }
}

impl Pageable for Call {}

#[derive(Debug, Deserialize)]
pub struct User {
    pub id: u64,
    pub username: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    pub default_branch: Option<String>,
    #[serde(default)]
    pub http_url_to_repo: String,
    #[serde(default)]
    pub squash_option: Option<String>,
    #[serde(default)]
    pub merge_trains_enabled: bool,
    #[serde(default)]
    pub merge_trains_skip_train_allowed: bool,
}

#[derive(Debug, Deserialize)]
pub struct File {
    pub blob_id: String,
    pub content: String,
}

#[derive(Debug, Deserialize)]
pub struct Commit {
    #[serde(default)]
    pub author_email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pipeline {
    pub id: u64,
    pub sha: String,
}

#[derive(Debug, Deserialize)]
pub struct MergeRequest {
    pub iid: u64,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub author: User,
    pub state: String,
    #[serde(default)]
    pub draft: bool,
    pub merge_commit_sha: Option<String>,
    #[serde(default)]
    pub squash_commit_sha: Option<String>,
    pub sha: String,
    pub source_branch: String,
    pub target_branch: String,
    pub source_project_id: u64,
    pub target_project_id: u64,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub head_pipeline: Option<Pipeline>,
    #[serde(default)]
    pub detailed_merge_status: Option<String>,
    #[serde(default)]
    pub diff_refs: Option<DiffRefs>,
}

/// Where a merge request's diff starts and ends.
#[derive(Debug, Clone, Deserialize)]
pub struct DiffRefs {
    pub base_sha: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Issue {
    pub iid: u64,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub moved_to_id: Option<u64>,
    #[serde(default)]
    pub author: Option<User>,
}

#[derive(Debug, Deserialize)]
pub struct Note {
    pub id: u64,
    pub body: String,
    pub author: User,
    #[serde(default)]
    pub system: bool,
}

#[derive(Debug, Deserialize)]
pub struct LabelEvent {
    pub user: Option<User>,
    pub created_at: String,
    pub label: Option<LabelName>,
    pub action: String,
}

#[derive(Debug, Deserialize)]
pub struct LabelName {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub id: u64,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub author: Option<User>,
}

#[derive(Debug, Deserialize)]
pub struct Job {
    pub id: u64,
    pub name: String,
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub access_level: u64,
}

#[derive(Debug, Deserialize)]
pub struct Diff {
    pub old_path: String,
    pub new_path: String,
}

#[derive(Debug, Deserialize)]
pub struct TrainCar {
    pub merge_request: CarRequest,
    pub pipeline: Option<Pipeline>,
    pub target_branch: String,
}

#[derive(Debug, Deserialize)]
pub struct CarRequest {
    pub iid: u64,
}

#[derive(Debug, Deserialize)]
pub struct Created {
    pub iid: u64,
}

#[derive(Debug, Deserialize)]
pub struct CreatedNote {
    pub id: u64,
}
