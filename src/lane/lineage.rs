//! What a change says about earlier ones: the change or commit it reverts, and the changes it
//! fixes. Read from the texts each forge's own revert writes, so that reverts made by a button,
//! by `git revert` or by `/hotfix revert` are all found:
//!
//! * GitHub's Revert button: body `Reverts owner/repo#N`, branch `revert-N-<head>`;
//! * GitLab's Revert: `This reverts merge request !N`;
//! * `git revert`: `This reverts commit <40 hex>` (a pull request of one commit carries its
//!   message as the description);
//! * a fix: a `Fixes: #N` line (`!N` on GitLab, `owner/repo#N` of the same repository).
//!
//! A revert of a revert names the first revert, so a reland counts against the revert, never
//! against the change relanded. References to other repositories are not followed.

use super::conventions::Conventions;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverted {
    Change(u64),
    /// A commit: the glue finds the change it belongs to.
    Commit(String),
}

/// What the change `title`/`body`/`head_ref` of `repo` reverts, if it is a revert.
pub fn reverted(body: &str, head_ref: &str, repo: &str, conventions: &Conventions) -> Option<Reverted> {
    for line in body.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Reverts ") {
            if let Some(n) = reference(rest.trim_end_matches('.'), repo, conventions) {
                return Some(Reverted::Change(n));
            }
        }
        if let Some(rest) = line.strip_prefix("This reverts merge request ") {
            if let Some(n) = reference(rest.trim_end_matches('.'), repo, conventions) {
                return Some(Reverted::Change(n));
            }
        }
        if let Some(rest) = line.strip_prefix("This reverts commit ") {
            let sha: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            if sha.len() == 40 {
                return Some(Reverted::Commit(sha.to_ascii_lowercase()));
            }
        }
    }
    // GitHub names the branch of its Revert button `revert-<N>-<head branch>`.
    let number = head_ref.strip_prefix("revert-")?.split_once('-')?.0;
    parse_number(number).map(Reverted::Change)
}

/// The changes of `repo` a `Fixes:` line of `body` names.
pub fn fixes(body: &str, repo: &str, conventions: &Conventions) -> Vec<u64> {
    let mut out = Vec::new();
    for line in body.lines().map(str::trim) {
        let Some((key, rest)) = line.split_once(':') else { continue };
        if !key.trim().eq_ignore_ascii_case("fixes") {
            continue;
        }
        for part in rest.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(n) = reference(part, repo, conventions) {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// `#N` (`!N` on GitLab) or `repo#N` naming a change of `repo`.
fn reference(text: &str, repo: &str, conventions: &Conventions) -> Option<u64> {
    let sigil = conventions.change_sigil;
    let (owner, number) = text.rsplit_once(sigil)?;
    if !owner.is_empty() && !owner.eq_ignore_ascii_case(repo) {
        return None;
    }
    parse_number(number)
}

fn parse_number(digits: &str) -> Option<u64> {
    (!digits.is_empty() && digits.len() <= 12 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
        .filter(|n| *n > 0)
}

/// The `Incident-Started: <RFC 3339>` line of a postmortem, as milliseconds since the epoch.
pub fn incident_started(body: &str) -> Option<i64> {
    body.lines().find_map(|line| {
        let (key, value) = line.trim().split_once(':')?;
        if !key.trim().eq_ignore_ascii_case("incident-started") {
            return None;
        }
        chrono::DateTime::parse_from_rfc3339(value.trim()).ok().map(|t| t.timestamp_millis())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::event::Forge;

    fn github() -> &'static Conventions {
        Conventions::of(Forge::Github)
    }

    fn gitlab() -> &'static Conventions {
        Conventions::of(Forge::Gitlab)
    }

    #[test]
    fn github_revert_button_is_read_from_the_body_and_the_branch() {
        // What GitHub writes: title `Revert "…"`, body `Reverts owner/repo#N`.
        let body = "Reverts acme/shop#42";
        assert_eq!(reverted(body, "revert-42-fix-login", "acme/shop", github()), Some(Reverted::Change(42)));
        assert_eq!(reverted("", "revert-42-fix-login", "acme/shop", github()), Some(Reverted::Change(42)));
        assert_eq!(reverted("Reverts #42", "x", "acme/shop", github()), Some(Reverted::Change(42)));
        // Another repository's change is not this one's.
        assert_eq!(reverted("Reverts other/shop#42", "x", "acme/shop", github()), None);
        assert_eq!(reverted("", "revert-login", "acme/shop", github()), None);
    }

    #[test]
    fn gitlab_revert_names_the_merge_request() {
        // GitLab's `Commit#revert_description` for a merge request's merge commit.
        let body = "Revert \"Fix login\"\n\nThis reverts merge request !17";
        assert_eq!(reverted(body, "revert-1a2b3c4d", "group/shop", gitlab()), Some(Reverted::Change(17)));
        assert_eq!(reverted("This reverts merge request #17", "x", "group/shop", gitlab()), None);
    }

    #[test]
    fn git_revert_names_the_commit_also_for_merges() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let plain = format!("Revert \"Fix login\"\n\nThis reverts commit {sha}.");
        assert_eq!(reverted(&plain, "x", "acme/shop", github()), Some(Reverted::Commit(sha.into())));
        let merge =
            format!("Revert \"Merge pull request #5\"\n\nThis reverts commit {sha}, reversing\nchanges made to {sha}.");
        assert_eq!(reverted(&merge, "x", "acme/shop", github()), Some(Reverted::Commit(sha.into())));
        assert_eq!(
            reverted("This reverts commit 0123abc.", "x", "acme/shop", github()),
            None,
            "a short sha is ambiguous"
        );
    }

    #[test]
    fn a_reland_names_the_revert_it_reverts() {
        // `git revert` of a revert: `Reapply "…"` (recent git) or `Revert "Revert …"`.
        let sha = "fedcba9876543210fedcba9876543210fedcba98";
        let body = format!("Reapply \"Fix login\"\n\nThis reverts commit {sha}.");
        assert_eq!(reverted(&body, "x", "acme/shop", github()), Some(Reverted::Commit(sha.into())));
    }

    #[test]
    fn fixes_lines_name_changes_of_this_repository() {
        let body = "Stops the crash.\n\nFixes: #12, acme/shop#13\nfixes: other/repo#14\nFixes #15\nFIXES: #12";
        assert_eq!(fixes(body, "acme/shop", github()), vec![12, 13]);
        assert_eq!(fixes("Fixes: !8 #9", "group/shop", gitlab()), vec![8]);
        assert!(fixes("Fixes: #0 #abc #99999999999999", "acme/shop", github()).is_empty());
    }

    #[test]
    fn incident_start_is_read_from_its_line() {
        let body = "## Timeline\nIncident-Started: 2026-11-30T22:15:00Z\n";
        assert_eq!(incident_started(body), Some(1_796_076_900_000));
        assert_eq!(incident_started("Incident-Started: last night"), None);
        assert_eq!(incident_started("nothing"), None);
    }
}
