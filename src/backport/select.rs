//! Which commits carry a merged change, read from what landed rather than from the change's
//! branch: picking the branch's own commits drags in "merge main into my branch" commits and
//! misses squash-time edits.

use git2::{Oid, Repository, Sort};

/// How the change landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Landed {
    /// A merge commit: picked against its first parent.
    MergeCommit,
    /// One commit (a squash, or a single-commit change).
    Squash,
    /// The change's commits replayed onto the base, one new commit each.
    Rebase,
}

/// The commits to pick, oldest first, for a change that landed as `merged`. `head` is the
/// change's own branch tip when known (GitHub's `refs/pull/N/head`, GitLab's
/// `refs/merge-requests/N/head`): a rebase is recognised by the landed commits matching the
/// branch's commits one for one (author, author date, message). A fast-forward (GitLab's
/// `ff` method: `merged` is the head itself) landed the branch's own commits after `base`, the
/// target's commit the change was compared against.
pub fn landed_commits(
    repo: &Repository,
    merged: Oid,
    head: Option<Oid>,
    base: Option<Oid>,
) -> Result<(Landed, Vec<Oid>), git2::Error> {
    let commit = repo.find_commit(merged)?;
    if commit.parent_count() > 1 {
        return Ok((Landed::MergeCommit, vec![merged]));
    }
    if head == Some(merged) {
        let base = base.filter(|&b| b != merged && repo.graph_descendant_of(merged, b).unwrap_or(false));
        let own = match base {
            Some(base) => own_commits(repo, merged, base)?,
            None => vec![merged],
        };
        return Ok(if own.len() > 1 { (Landed::Rebase, own) } else { (Landed::Squash, vec![merged]) });
    }
    let (Some(head), Ok(base)) = (head, commit.parent_id(0)) else { return Ok((Landed::Squash, vec![merged])) };
    let originals = own_commits(repo, head, base)?;
    if originals.len() <= 1 {
        return Ok((Landed::Squash, vec![merged]));
    }
    let mut chain = Vec::with_capacity(originals.len());
    let mut cursor = Some(commit);
    while let Some(c) = cursor.take().filter(|_| chain.len() < originals.len()) {
        cursor = c.parent(0).ok();
        chain.push(c);
    }
    chain.reverse();
    let same = |a: &git2::Commit, b: &git2::Commit| {
        a.author().email_bytes() == b.author().email_bytes()
            && a.author().when() == b.author().when()
            && a.message_bytes() == b.message_bytes()
    };
    let rebased = chain.len() == originals.len()
        && chain.iter().zip(&originals).all(|(landed, &o)| repo.find_commit(o).is_ok_and(|o| same(landed, &o)));
    Ok(if rebased { (Landed::Rebase, chain.iter().map(|c| c.id()).collect()) } else { (Landed::Squash, vec![merged]) })
}

/// The change's own non-merge commits, oldest first: on its branch, not on the base.
fn own_commits(repo: &Repository, head: Oid, base: Oid) -> Result<Vec<Oid>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    walk.push(head)?;
    walk.hide(base)?;
    let mut own = Vec::new();
    for id in walk {
        let id = id?;
        if repo.find_commit(id)?.parent_count() == 1 {
            own.push(id);
        }
    }
    Ok(own)
}
