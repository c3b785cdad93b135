//! What a merge request's history says, for a CI job that has no webhook to tell it: the notes
//! with when they were written, when each head commit arrived, and which merge request a merge
//! commit came from. Only `hotfix-lane gitlab-ci` reads these.

use serde::Deserialize;

use super::{millis, GitLab};
use crate::forge::gitlab::api::{segment, Call, User};
use crate::forge::ForgeError;
use crate::store::Millis;

/// A person's note on a merge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub author: String,
    pub body: String,
    pub created_at: Millis,
    /// Changed since it was written: an edit must not authorize anything.
    pub edited: bool,
}

#[derive(Debug, Deserialize)]
struct TimedNote {
    body: String,
    author: User,
    #[serde(default)]
    system: bool,
    created_at: String,
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Version {
    head_commit_sha: String,
    created_at: String,
}

#[derive(Debug, Deserialize)]
struct Merged {
    iid: u64,
    state: String,
    sha: String,
    merge_commit_sha: Option<String>,
    squash_commit_sha: Option<String>,
}

impl GitLab {
    /// The notes people wrote on merge request `iid`, oldest first (system notes left out).
    pub async fn notes(&self, repo: &str, iid: u64) -> Result<Vec<Note>, ForgeError> {
        let call = Call::get(format!("projects/{}/merge_requests/{iid}/notes", segment(repo))).query("sort", "asc");
        let notes: Vec<TimedNote> = self.all(call).await?;
        Ok(notes
            .into_iter()
            .filter(|n| !n.system)
            .filter_map(|n| {
                let created_at = millis(&n.created_at)?;
                let edited = n.updated_at.as_deref().is_some_and(|u| u != n.created_at);
                Some(Note { author: n.author.username, body: n.body, created_at, edited })
            })
            .collect())
    }

    /// When commit `sha` became the head of merge request `iid`: the newest diff version whose
    /// head it is. `None` when no version has it (GitLab is still computing the diff).
    pub async fn head_since(&self, repo: &str, iid: u64, sha: &str) -> Result<Option<Millis>, ForgeError> {
        let call = Call::get(format!("projects/{}/merge_requests/{iid}/versions", segment(repo)));
        let versions: Vec<Version> = self.all(call).await?;
        Ok(versions.iter().filter(|v| v.head_commit_sha == sha).filter_map(|v| millis(&v.created_at)).max())
    }

    /// The merged merge request that commit `sha` (its merge, squash or fast-forwarded head
    /// commit) came from.
    pub async fn merged_as(&self, repo: &str, sha: &str) -> Result<Option<u64>, ForgeError> {
        let call = Call::get(format!("projects/{}/repository/commits/{sha}/merge_requests", segment(repo)));
        let found: Vec<Merged> = self.all(call).await?;
        Ok(found
            .into_iter()
            .filter(|m| m.state == "merged")
            .find(|m| {
                m.merge_commit_sha.as_deref() == Some(sha)
                    || m.squash_commit_sha.as_deref() == Some(sha)
                    || m.sha == sha
            })
            .map(|m| m.iid))
    }
}
