//! A commit's check runs and statuses, each with who reported it: the lane counts a smoke check
//! only from the source its policy names.

use serde::Deserialize;

use super::pages::Pages;
use super::payload::User;
use super::GitHub;
use crate::forge::ForgeError;
use crate::lane::smoke::{Conclusion, Seen, Source};

#[derive(Deserialize)]
struct CheckRunPage {
    #[serde(default)]
    check_runs: Vec<CheckRunItem>,
}

#[derive(Deserialize)]
struct CheckRunItem {
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    app: Option<App>,
    #[serde(default)]
    check_suite: Option<Suite>,
}

#[derive(Deserialize)]
struct Suite {
    id: u64,
}

#[derive(Deserialize)]
struct App {
    slug: String,
}

#[derive(Deserialize)]
struct StatusItem {
    context: String,
    state: String,
    #[serde(default)]
    creator: Option<User>,
}

/// Check runs are read this many pages of 100 at most: the listing wraps its items in an
/// object, which the `Link`-header walk does not read.
const MAX_RUN_PAGES: usize = 10;

fn run_conclusion(status: Option<&str>, conclusion: Option<&str>) -> Conclusion {
    match (status, conclusion) {
        (Some("completed") | None, Some("success")) => Conclusion::Success,
        (Some("completed") | None, Some("neutral")) => Conclusion::Neutral,
        (Some("completed") | None, Some("skipped")) => Conclusion::Skipped,
        (Some("completed") | None, Some(_)) => Conclusion::Failure,
        _ => Conclusion::Pending,
    }
}

fn status_conclusion(state: &str) -> Conclusion {
    match state {
        "success" => Conclusion::Success,
        "pending" => Conclusion::Pending,
        _ => Conclusion::Failure,
    }
}

pub(super) async fn on_commit(gh: &GitHub, repo: &str, sha: &str) -> Result<Vec<Seen>, ForgeError> {
    // Both lists come newest first, each result with who reported it: the App of a check
    // run, the creator of a status (which the combined status leaves out).
    let mut seen = Vec::new();
    for page in 1..=MAX_RUN_PAGES {
        let route = format!("/repos/{repo}/commits/{sha}/check-runs?per_page=100&page={page}");
        let runs = gh.get::<CheckRunPage>(&route).await?.map(|r| r.check_runs).unwrap_or_default();
        let full = runs.len() == 100;
        seen.extend(runs.into_iter().map(|run| Seen {
            name: run.name,
            source: run.app.map(|a| Source::App(a.slug)),
            run: run.check_suite.map(|s| s.id),
            conclusion: run_conclusion(run.status.as_deref(), run.conclusion.as_deref()),
        }));
        if !full {
            break;
        }
    }
    let route = format!("/repos/{repo}/commits/{sha}/statuses?per_page=100");
    let statuses: Vec<StatusItem> = Pages::oldest_first(route).all(gh).await?;
    seen.extend(statuses.into_iter().map(|status| Seen {
        name: status.context,
        source: status.creator.map(|u| Source::User(u.login)),
        run: None,
        conclusion: status_conclusion(&status.state),
    }));
    Ok(seen)
}
