//! The merge queue as GitHub's GraphQL API lists it. Branch names under `gh-readonly-queue/`
//! only say which queues to read: anyone who can push may create one.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{pages::Pages, GitHub};
use crate::forge::{ForgeError, QueueGroup};

const PREFIX: &str = "refs/heads/gh-readonly-queue/";

const QUERY: &str = "query($owner: String!, $name: String!, $branch: String!, $after: String) { repository(owner: $owner, name: $name) { mergeQueue(branch: $branch) { entries(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { position headCommit { oid } pullRequest { number } } } } } }";

#[derive(Deserialize)]
struct GitRef {
    #[serde(rename = "ref")]
    git_ref: String,
}

#[derive(Deserialize)]
struct Found {
    repository: Option<Repository>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Repository {
    merge_queue: Option<MergeQueue>,
}

#[derive(Deserialize)]
struct MergeQueue {
    entries: Entries,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entries {
    page_info: PageInfo,
    nodes: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    position: u64,
    head_commit: Option<Oid>,
    pull_request: Option<Numbered>,
}

#[derive(Deserialize)]
struct Oid {
    oid: String,
}

#[derive(Deserialize)]
struct Numbered {
    number: u64,
}

/// `<base>` of every `gh-readonly-queue/<base>/pr-<n>-<sha>` branch, once each.
pub(super) async fn branches(gh: &GitHub, repo: &str) -> Result<Vec<String>, ForgeError> {
    let route = format!("/repos/{repo}/git/matching-refs/heads/gh-readonly-queue/?per_page=100");
    let refs: Vec<GitRef> = Pages::oldest_first(route).all(gh).await?;
    let bases: BTreeSet<String> =
        refs.iter().filter_map(|r| Some(r.git_ref.strip_prefix(PREFIX)?.rsplit_once('/')?.0.to_string())).collect();
    Ok(bases.into_iter().collect())
}

/// Each entry's group carries the entries ahead of it: the queue builds every group on the
/// groups before it.
pub(super) async fn groups(gh: &GitHub, repo: &str, base: &str) -> Result<Vec<QueueGroup>, ForgeError> {
    let (owner, name) = repo.split_once('/').unwrap_or((repo, ""));
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = serde_json::json!({
            "query": QUERY,
            "variables": { "owner": owner, "name": name, "branch": base, "after": after },
        });
        let found: Found = gh.graphql(&query).await?;
        let Some(queue) = found.repository.and_then(|r| r.merge_queue) else { break };
        entries.extend(queue.entries.nodes);
        match queue.entries.page_info {
            PageInfo { has_next_page: true, end_cursor: Some(cursor) } => after = Some(cursor),
            _ => break,
        }
    }
    entries.sort_by_key(|e| e.position);
    let mut changes = Vec::new();
    let mut groups = Vec::new();
    for entry in entries {
        let Some(pull) = entry.pull_request else { continue };
        changes.push(pull.number);
        if let Some(head) = entry.head_commit {
            groups.push(QueueGroup { head_sha: head.oid, changes: changes.clone(), base: base.to_string() });
        }
    }
    Ok(groups)
}

/// `refs/heads/gh-readonly-queue/<base>/pr-<number>-<sha>` → `<number>`: the change a merge
/// group's branch names (a hint only: what a group carries comes from the queue).
pub fn queue_pull_number(head_ref: &str) -> Option<u64> {
    let rest = head_ref.strip_prefix("refs/heads/").unwrap_or(head_ref).strip_prefix("gh-readonly-queue/")?;
    let last = rest.rsplit('/').next()?;
    last.strip_prefix("pr-")?.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::queue_pull_number;

    #[test]
    fn merge_queue_refs_name_their_pull_request() {
        assert_eq!(
            queue_pull_number("refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64"),
            Some(104)
        );
        assert_eq!(queue_pull_number("refs/heads/gh-readonly-queue/release/1.x/pr-7-abc"), Some(7));
        assert_eq!(queue_pull_number("refs/heads/main"), None);
    }
}
