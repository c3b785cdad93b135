//! The cherry-pick engine: commits replayed onto another branch inside the object database,
//! with no work tree and no index file, so a pick costs what its merge costs and nothing more.
//!
//! Each commit is merged against its parent (the first parent for a merge commit) onto the
//! running tip. A commit whose result changes nothing is skipped as already applied. At the
//! first conflict the engine stops and commits the conflicted tree, conflict markers included,
//! so that people can finish on a branch instead of losing the backport.

use crate::lane::backport::{ConflictKind, ConflictPath};
use git2::{Commit, IndexConflict, IndexEntry, MergeFileOptions, MergeOptions, Oid, Repository, Signature};

/// What picking a series of commits onto a branch came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    /// Every commit applied; `tip` is the last new commit.
    Clean { tip: Oid, applied: Vec<Oid>, skipped: Vec<Oid> },
    /// Nothing to do: every commit's change is already on the target.
    AlreadyApplied,
    /// `commit` conflicted. `tip` is a commit holding the conflicted tree on top of the commits
    /// that did apply; `remaining` are the commits after the conflicting one.
    Conflict { tip: Oid, commit: Oid, paths: Vec<ConflictPath>, remaining: Vec<Oid> },
}

/// Replays `commits` in order onto `onto`; new commits keep their authors and are committed
/// by `committer`. With `backport_of`, each new commit also carries the [`BACKPORT_TRAILER`]
/// naming that merge commit and `onto`. Writes objects only: no reference is moved.
pub fn pick(
    repo: &Repository,
    onto: Oid,
    commits: &[Oid],
    committer: &Signature,
    backport_of: Option<Oid>,
) -> Result<Picked, git2::Error> {
    let trailer = backport_of.map(|merge| format!("{BACKPORT_TRAILER}: {merge} onto {onto}"));
    let mut tip = repo.find_commit(onto)?;
    let (mut applied, mut skipped) = (Vec::new(), Vec::new());
    let mut options = MergeOptions::new();
    options.find_renames(true);
    for (i, &id) in commits.iter().enumerate() {
        let commit = repo.find_commit(id)?;
        let tree_id = match path_merge(repo, &commit, &tip.tree()?)? {
            Some(tree_id) => tree_id,
            None => {
                let mainline = if commit.parent_count() > 1 { 1 } else { 0 };
                let mut index = repo.cherrypick_commit(&commit, &tip, mainline, Some(&options))?;
                if index.has_conflicts() {
                    let paths = resolve_with_markers(repo, &mut index)?;
                    let tree = repo.find_tree(index.write_tree_to(repo)?)?;
                    let message = conflict_message(&commit, &paths, trailer.as_deref());
                    let conflicted = repo.commit(None, &commit.author(), committer, &message, &tree, &[&tip])?;
                    let remaining = commits[i + 1..].to_vec();
                    return Ok(Picked::Conflict { tip: conflicted, commit: id, paths, remaining });
                }
                index.write_tree_to(repo)?
            }
        };
        if tree_id == tip.tree_id() {
            skipped.push(id);
            continue;
        }
        let tree = repo.find_tree(tree_id)?;
        let message = picked_message(commit.message_raw().unwrap_or_default(), id, trailer.as_deref());
        let new = repo.commit(None, &commit.author(), committer, &message, &tree, &[&tip])?;
        tip = repo.find_commit(new)?;
        applied.push(id);
    }
    Ok(if applied.is_empty() { Picked::AlreadyApplied } else { Picked::Clean { tip: tip.id(), applied, skipped } })
}

/// The pick worked out path by path, for commits whose every touched path the target either
/// left alone (the commit's version is taken) or changed in text that merges cleanly line by
/// line: the usual backport. Found from the commit's own diff (which skips unchanged
/// directories) and one lookup per path, where libgit2's three-way tree merge reads all three
/// trees whole. `None` otherwise (a deleted or renamed file on the target, a conflict, a mode
/// change): the full three-way merge, with its rename detection, decides then.
fn path_merge(repo: &Repository, commit: &Commit, ours: &git2::Tree) -> Result<Option<Oid>, git2::Error> {
    // A merge commit is picked against its first parent, like any other.
    let Ok(parent) = commit.parent(0) else { return Ok(None) };
    let mut changes = Vec::new();
    if !changed_files(repo, Some(&parent.tree()?), Some(&commit.tree()?), "", &mut changes)? {
        return Ok(None);
    }
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (path, was, becomes) in &changes {
        let here = match ours.get_path(std::path::Path::new(path)) {
            Ok(e) if e.filemode() != 0o040000 => Some((e.id(), e.filemode())),
            Ok(_) => return Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => None,
            Err(e) => return Err(e),
        };
        if here == *becomes {
            continue;
        }
        if here == *was {
            match becomes {
                Some((id, mode)) => update.upsert(path.as_str(), *id, mode_of(*mode)),
                None => update.remove(path.as_str()),
            };
            continue;
        }
        // Both sides changed the file's text: merged line by line, as git does, when that is
        // clean. Deletions, mode changes, binaries and overlapping edits go to the full merge.
        let (Some(here), Some(was), Some(becomes)) = (here, *was, *becomes) else { return Ok(None) };
        if here.1 != was.1 || becomes.1 != was.1 {
            return Ok(None);
        }
        match merge_text(repo, path, was, here, becomes)? {
            Some(merged) => update.upsert(path.as_str(), merged, mode_of(becomes.1)),
            None => return Ok(None),
        };
    }
    update.create_updated(repo, ours).map(Some)
}

/// A clean three-way merge of one file's text, written as a blob; `None` when it conflicts.
fn merge_text(
    repo: &Repository,
    path: &str,
    base: (Oid, i32),
    ours: (Oid, i32),
    theirs: (Oid, i32),
) -> Result<Option<Oid>, git2::Error> {
    let entry = |(id, mode): (Oid, i32)| IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: mode as u32,
        uid: 0,
        gid: 0,
        file_size: 0,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    };
    for side in [base, ours, theirs] {
        if is_binary(repo.find_blob(side.0)?.content()) {
            return Ok(None);
        }
    }
    let merged = repo.merge_file_from_index(&entry(base), &entry(ours), &entry(theirs), None)?;
    if !merged.is_automergeable() {
        return Ok(None);
    }
    repo.blob(merged.content()).map(Some)
}

/// A file's blob and mode, or its absence.
type FileState = Option<(Oid, i32)>;

/// The files that differ between two trees, as (path, before, after), descending only into
/// directories whose ids differ: a commit's diff costs what it touches, not the tree's size.
/// `false` when a path is a file on one side and a directory on the other.
fn changed_files(
    repo: &Repository,
    a: Option<&git2::Tree>,
    b: Option<&git2::Tree>,
    prefix: &str,
    out: &mut Vec<(String, FileState, FileState)>,
) -> Result<bool, git2::Error> {
    let names: std::collections::BTreeSet<Vec<u8>> =
        a.into_iter().chain(b).flat_map(|t| t.iter().map(|e| e.name_bytes().to_vec())).collect();
    for name in names {
        let side = |t: Option<&git2::Tree>| t.and_then(|t| t.get_name_bytes(&name)).map(|e| (e.id(), e.filemode()));
        let (before, after) = (side(a), side(b));
        if before == after {
            continue;
        }
        let path = format!("{prefix}{}", String::from_utf8_lossy(&name));
        let is_dir = |s: FileState| s.is_some_and(|(_, mode)| mode == 0o040000);
        match (is_dir(before), is_dir(after)) {
            (false, false) => out.push((path, before, after)),
            (true, true) => {
                let (ta, tb) = (repo.find_tree(before.expect("a dir").0)?, repo.find_tree(after.expect("a dir").0)?);
                if !changed_files(repo, Some(&ta), Some(&tb), &format!("{path}/"), out)? {
                    return Ok(false);
                }
            }
            (true, false) if after.is_none() => {
                let ta = repo.find_tree(before.expect("a dir").0)?;
                if !changed_files(repo, Some(&ta), None, &format!("{path}/"), out)? {
                    return Ok(false);
                }
            }
            (false, true) if before.is_none() => {
                let tb = repo.find_tree(after.expect("a dir").0)?;
                if !changed_files(repo, None, Some(&tb), &format!("{path}/"), out)? {
                    return Ok(false);
                }
            }
            _ => return Ok(false),
        }
    }
    Ok(true)
}

fn mode_of(mode: i32) -> git2::FileMode {
    match mode {
        0o100755 => git2::FileMode::BlobExecutable,
        0o120000 => git2::FileMode::Link,
        0o160000 => git2::FileMode::Commit,
        0o040000 => git2::FileMode::Tree,
        _ => git2::FileMode::Blob,
    }
}

/// The original message with `git cherry-pick -x`'s provenance line (and `trailer`, when
/// given): inside a closing trailer block when there is one, after a blank line otherwise.
pub fn picked_message(original: &str, id: Oid, trailer: Option<&str>) -> String {
    let body = original.trim_end();
    let mut line = format!("(cherry picked from commit {id})");
    if let Some(trailer) = trailer {
        line = format!("{line}\n{trailer}");
    }
    let last_paragraph = body.rsplit("\n\n").next().unwrap_or("");
    let ends_in_trailers = body.contains("\n\n")
        && last_paragraph.lines().all(|l| is_trailer(l) || l.starts_with("(cherry picked from commit "));
    if ends_in_trailers {
        format!("{body}\n{line}\n")
    } else {
        format!("{body}\n\n{line}\n")
    }
}

fn is_trailer(line: &str) -> bool {
    line.split_once(": ")
        .is_some_and(|(key, _)| !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

fn conflict_message(commit: &Commit, paths: &[ConflictPath], trailer: Option<&str>) -> String {
    let summary = commit.summary().unwrap_or_default();
    let mut message = format!("BACKPORT-CONFLICT: {summary}\n\nConflicts to resolve before this backport can merge:\n");
    for p in paths {
        message.push_str(&format!("\t{} ({})\n", p.path, p.kind.describe()));
    }
    message.push_str(&format!("\n(cherry picked from commit {})\n", commit.id()));
    if let Some(trailer) = trailer {
        message.push_str(&format!("{trailer}\n"));
    }
    for p in paths {
        let kind = serde_json::to_value(p.kind).expect("serializes");
        message.push_str(&format!("{CONFLICT_TRAILER}: {} {}\n", kind.as_str().unwrap_or_default(), p.path));
    }
    message
}

/// Trailer lines of a conflict commit, one per conflicting path: `<kind> <path>`.
const CONFLICT_TRAILER: &str = "Hotfix-Lane-Conflict";

/// Marks every commit hotfix-lane writes for a backport: `<trailer>: <merge commit> onto
/// <target commit>`. Anyone can write it too: it says where to repeat the pick, and only the
/// same commits coming out of that pick prove a branch is hotfix-lane's.
pub const BACKPORT_TRAILER: &str = "Hotfix-Lane-Backport";

/// The target commit `commit` says its backport of `merge` was picked onto, from its last
/// [`BACKPORT_TRAILER`].
pub fn backport_onto(commit: &Commit, merge: Oid) -> Option<Oid> {
    let (named, onto) = commit
        .message()?
        .lines()
        .filter_map(|l| l.strip_prefix(BACKPORT_TRAILER)?.strip_prefix(": ")?.split_once(" onto "))
        .next_back()?;
    (Oid::from_str(named).ok()? == merge).then_some(())?;
    Oid::from_str(onto).ok()
}

/// Replaces every conflict in `index` by one stage-0 entry: text merged with conflict markers
/// where both sides changed it, one side's version otherwise. Returns what conflicted.
fn resolve_with_markers(repo: &Repository, index: &mut git2::Index) -> Result<Vec<ConflictPath>, git2::Error> {
    let conflicts: Vec<IndexConflict> = index.conflicts()?.collect::<Result<_, _>>()?;
    let mut paths = Vec::with_capacity(conflicts.len());
    for conflict in conflicts {
        let Some(settled) = settle(repo, conflict)? else { continue };
        let path = String::from_utf8_lossy(&settled.entry.path).into_owned();
        index.conflict_remove(std::path::Path::new(&path))?;
        let mut entry = settled.entry;
        entry.flags &= !STAGE_MASK;
        // The merge's index lives in memory only: the blob goes to the object database first.
        entry.id = repo.blob(&settled.content)?;
        entry.file_size = settled.content.len() as u32;
        index.add(&entry)?;
        paths.push(ConflictPath { path, kind: settled.kind });
    }
    paths.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(paths)
}

/// What a conflicted path becomes in the conflict commit.
struct Settled {
    kind: ConflictKind,
    entry: IndexEntry,
    content: Vec<u8>,
}

fn settle(repo: &Repository, c: IndexConflict) -> Result<Option<Settled>, git2::Error> {
    let blob = |e: &IndexEntry| repo.find_blob(e.id).map(|b| b.content().to_vec());
    let keep = |kind, entry: IndexEntry| Ok(Some(Settled { kind, content: blob(&entry)?, entry }));
    let (ours, theirs) = match (c.our, c.their) {
        (Some(ours), None) => return keep(ConflictKind::DeletedByCommit, ours),
        (None, Some(theirs)) => return keep(ConflictKind::DeletedOnTarget, theirs),
        // Gone on both sides: nothing to keep.
        (None, None) => return Ok(None),
        (Some(ours), Some(theirs)) => (ours, theirs),
    };
    let (our_text, their_text) = (blob(&ours)?, blob(&theirs)?);
    if is_binary(&our_text) || is_binary(&their_text) {
        return Ok(Some(Settled { kind: ConflictKind::Binary, entry: ours, content: our_text }));
    }
    let (kind, content) = match c.ancestor {
        Some(base) => {
            let mut options = MergeFileOptions::new();
            options.our_label("target").their_label("backport").ancestor_label("original parent");
            let merged = repo.merge_file_from_index(&base, &ours, &theirs, Some(&mut options))?;
            (ConflictKind::Content, merged.content().to_vec())
        }
        None => {
            let mut text = b"<<<<<<< target\n".to_vec();
            text.extend_from_slice(&our_text);
            text.extend_from_slice(b"=======\n");
            text.extend_from_slice(&their_text);
            text.extend_from_slice(b">>>>>>> backport\n");
            (ConflictKind::AddedOnBoth, text)
        }
    };
    Ok(Some(Settled { kind, entry: ours, content }))
}

/// The stage bits of an index entry's flags (`GIT_INDEX_ENTRY_STAGEMASK`): 0 once resolved.
const STAGE_MASK: u16 = 0x3000;

/// Git's own test: a NUL byte in the first 8000 bytes.
fn is_binary(content: &[u8]) -> bool {
    content.iter().take(8000).any(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_goes_after_a_blank_line_or_into_the_trailers() {
        let id = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(
            picked_message("Fix the thing\n\nLonger text.\n", id, None),
            format!("Fix the thing\n\nLonger text.\n\n(cherry picked from commit {id})\n")
        );
        assert_eq!(
            picked_message("Fix the thing\n\nSigned-off-by: A <a@x>\n", id, None),
            format!("Fix the thing\n\nSigned-off-by: A <a@x>\n(cherry picked from commit {id})\n")
        );
        assert_eq!(picked_message("One line", id, None), format!("One line\n\n(cherry picked from commit {id})\n"));
        assert_eq!(
            picked_message("One line", id, Some("Hotfix-Lane-Backport: x onto y")),
            format!("One line\n\n(cherry picked from commit {id})\nHotfix-Lane-Backport: x onto y\n")
        );
    }
}
