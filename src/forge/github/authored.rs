//! Who wrote or did what, read across every page of a listing: the lane's own comments, issues
//! and pull requests are those its identity wrote (anyone can copy a marker or a title), and a
//! label's applier is the latest one (anyone can push the first page's events out of date).

use serde::Deserialize;

use super::{encode_query, pages::Pages, GitHub, Named};
use crate::forge::{AuthoredPull, ForgeError};
use crate::lane::incident::parse_utc;
use crate::store::Millis;

/// Who wrote something.
#[derive(Deserialize)]
pub(super) struct Login {
    pub(super) login: String,
}

#[derive(Deserialize)]
struct ListedComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<Login>,
}

#[derive(Deserialize)]
struct ListedIssue {
    number: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<Login>,
    #[serde(default)]
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ListedPull {
    number: u64,
    #[serde(default)]
    user: Option<Login>,
}

#[derive(Deserialize)]
struct IssueEvent {
    event: String,
    actor: Option<Login>,
    #[serde(default)]
    label: Option<Named>,
    created_at: String,
}

/// Whether `author` is the lane's own identity (logins compare without case, as on GitHub).
async fn is_own(gh: &GitHub, author: Option<&Login>) -> Result<bool, ForgeError> {
    let Some(author) = author else { return Ok(false) };
    Ok(author.login.eq_ignore_ascii_case(&gh.identity.login(gh).await?))
}

/// The oldest comment on a change that carries `marker` and that the lane wrote.
pub(super) async fn own_comment(gh: &GitHub, repo: &str, number: u64, marker: &str) -> Result<Option<u64>, ForgeError> {
    let mut pages = Pages::oldest_first(format!("/repos/{repo}/issues/{number}/comments?per_page=100"));
    while let Some(comments) = pages.next::<ListedComment>(gh).await? {
        for comment in comments.into_iter().filter(|c| c.body.as_deref().is_some_and(|b| b.contains(marker))) {
            if is_own(gh, comment.user.as_ref()).await? {
                return Ok(Some(comment.id));
            }
        }
    }
    Ok(None)
}

/// The oldest issue (not pull request) labelled `label` that carries `marker` and that the lane
/// opened.
pub(super) async fn own_issue(gh: &GitHub, repo: &str, label: &str, marker: &str) -> Result<Option<u64>, ForgeError> {
    let route = format!("/repos/{repo}/issues?labels={}&state=all&per_page=100", encode_query(label));
    let mut pages = Pages::oldest_first(route);
    while let Some(issues) = pages.next::<ListedIssue>(gh).await? {
        let marked = issues.into_iter().filter(|i| i.pull_request.is_none());
        for issue in marked.filter(|i| i.body.as_deref().is_some_and(|b| b.contains(marker))) {
            if is_own(gh, issue.user.as_ref()).await? {
                return Ok(Some(issue.number));
            }
        }
    }
    Ok(None)
}

/// Every pull request from `branch` of `repo` itself, in any state, with who opened it.
pub(super) async fn branch_pulls(gh: &GitHub, repo: &str, branch: &str) -> Result<Vec<AuthoredPull>, ForgeError> {
    let owner = repo.split('/').next().unwrap_or_default();
    let head = encode_query(&format!("{owner}:{branch}"));
    let pulls: Vec<ListedPull> =
        Pages::oldest_first(format!("/repos/{repo}/pulls?head={head}&state=all&per_page=100")).all(gh).await?;
    Ok(pulls
        .into_iter()
        .map(|p| AuthoredPull { number: p.number, author: p.user.map(|u| u.login).unwrap_or_default() })
        .collect())
}

/// The newest `labeled` of `label` and when it was, unless an `unlabeled` of it came after.
pub(super) async fn labeler(
    gh: &GitHub,
    repo: &str,
    number: u64,
    label: &str,
) -> Result<Option<(String, Millis)>, ForgeError> {
    let mut pages = Pages::newest_first(format!("/repos/{repo}/issues/{number}/events?per_page=100"));
    let about_label = |e: &IssueEvent| {
        matches!(e.event.as_str(), "labeled" | "unlabeled")
            && e.label.as_ref().is_some_and(|l| l.name.eq_ignore_ascii_case(label))
    };
    while let Some(events) = pages.next::<IssueEvent>(gh).await? {
        if let Some(e) = events.into_iter().find(about_label) {
            return Ok(match e.event.as_str() {
                "labeled" => e.actor.and_then(|a| Some((a.login, parse_utc(&e.created_at)?))),
                _ => None,
            });
        }
    }
    Ok(None)
}
