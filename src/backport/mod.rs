//! Backports: a merged hotfix replayed onto each target branch.
//!
//! `select` reads which commits landed, `engine` picks them in memory with libgit2, `mirror`
//! keeps one warm bare repository per forge repository and moves objects to and from the forge.
//! The decisions around them (targets, names, texts) live in `lane::backport`; the job that
//! runs a backport end to end lives in `dispatch::backport`.

pub mod engine;
pub mod mirror;
pub mod open;
pub mod select;

use git2::{Oid, Repository, Signature};

pub use engine::Picked;

/// Who commits backports unless told otherwise. The original author stays the author.
pub const BOT_NAME: &str = "hotfix-lane[bot]";
pub const BOT_EMAIL: &str = "hotfix-lane[bot]@users.noreply.github.com";

pub fn bot_signature() -> Result<Signature<'static>, git2::Error> {
    Signature::now(BOT_NAME, BOT_EMAIL)
}

/// `hotfix-lane backport local`: picks `commits` onto `onto` in the repository at `repo` and
/// creates `branch` at the result (never moving an existing branch). Returns what the pick came
/// to and the new branch's commit; on a conflict no branch is made.
pub fn local(repo: &std::path::Path, onto: &str, branch: &str, commits: &[String]) -> Result<(Picked, Oid), String> {
    let repo = Repository::open(repo).map_err(|e| format!("cannot open {}: {}", repo.display(), e.message()))?;
    let refname = format!("refs/heads/{branch}");
    if !git2::Reference::is_valid_name(&refname) {
        return Err(format!("`{branch}` is not a valid branch name"));
    }
    if repo.find_reference(&refname).is_ok() {
        return Err(format!("branch `{branch}` exists already: it is never overwritten"));
    }
    let onto = commit_id(&repo, onto)?;
    let commits = commits.iter().map(|c| commit_id(&repo, c)).collect::<Result<Vec<_>, _>>()?;
    // The repository's own identity when it has one (people), the bot's otherwise.
    let committer = repo.signature().or_else(|_| bot_signature()).map_err(|e| e.message().to_string())?;
    let picked = engine::pick(&repo, onto, &commits, &committer, None).map_err(|e| e.message().to_string())?;
    let tip = match &picked {
        Picked::Clean { tip, .. } => *tip,
        Picked::AlreadyApplied => onto,
        Picked::Conflict { tip, .. } => {
            let tip = *tip;
            return Ok((picked, tip));
        }
    };
    let message = format!("hotfix-lane: backport onto {onto}");
    repo.reference(&refname, tip, false, &message).map_err(|e| e.message().to_string())?;
    Ok((picked, tip))
}

fn commit_id(repo: &Repository, spec: &str) -> Result<Oid, String> {
    repo.revparse_single(spec)
        .and_then(|o| o.peel_to_commit())
        .map(|c| c.id())
        .map_err(|e| format!("`{spec}` names no commit: {}", e.message()))
}
