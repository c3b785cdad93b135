//! The `hotfix-lane/approval` check: for branch protection that requires it in place of a
//! review count, so the lane merges a hotfix through ordinary protection with no bypass list.
//!
//! It passes on the usual rule — enough people with write access approved the head commit
//! (approvals of earlier commits do not count, nor the author's) — or, for the head the lane is
//! about to merge, on a responder's live grant. The grant's pass is posted only with the merge
//! itself, never ahead of it: a green check left standing would let anyone with merge rights
//! merge past reviews after the grant lapsed.

use super::grant::Grant;
use super::incident::format_utc;
use super::report::{CheckState, Report};

pub const APPROVAL_CONTEXT: &str = "hotfix-lane/approval";

/// The check from reviews: `approvers` approved the head and have write access; `excluded`
/// wrote the change or its head commit, or pushed it, and never approve their own code.
pub fn by_reviews(approvers: &[String], excluded: &[&str], required: u32) -> Report {
    let own = |a: &str| excluded.iter().any(|e| !e.is_empty() && e.eq_ignore_ascii_case(a));
    let mut counted: Vec<&str> = approvers.iter().map(String::as_str).filter(|a| !own(a)).collect();
    counted.sort_unstable_by_key(|a| a.to_ascii_lowercase());
    counted.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let have = counted.len() as u32;
    if have >= required {
        let who = counted.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(", ");
        return Report::new(APPROVAL_CONTEXT, CheckState::Success, format!("approved by {who}"), String::new());
    }
    let description = format!("{have} of {required} approving review(s) of this commit, or a responder's hotfix grant");
    let details = format!(
        "This check passes when {required} people with write access approve the head commit, or when \
         hotfix-lane merges it on a responder's `/hotfix authorize`."
    );
    Report::new(APPROVAL_CONTEXT, CheckState::Pending, description, details)
}

/// The check as the lane merges on `grant`.
pub fn by_grant(grant: &Grant) -> Report {
    let description = format!("merging on @{}'s hotfix grant (until {})", grant.by, format_utc(grant.expires_at));
    Report::new(APPROVAL_CONTEXT, CheckState::Success, description, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn enough_approvals_pass_and_the_authors_own_never_counts() {
        assert_eq!(by_reviews(&names(&["bob"]), &["alice"], 1).state, CheckState::Success);
        assert_eq!(by_reviews(&names(&["alice"]), &["alice"], 1).state, CheckState::Pending);
        assert_eq!(by_reviews(&names(&["Bob", "bob"]), &["alice"], 2).state, CheckState::Pending, "one person, twice");
        let two = by_reviews(&names(&["carol", "bob"]), &["alice"], 2);
        assert_eq!((two.state, two.description.as_str()), (CheckState::Success, "approved by @bob, @carol"));
    }

    #[test]
    fn whoever_wrote_or_pushed_the_head_cannot_approve_it() {
        let excluded = ["carol", "mallory", ""];
        assert_eq!(by_reviews(&names(&["Mallory"]), &excluded, 1).state, CheckState::Pending);
        assert_eq!(by_reviews(&names(&["mallory", "bob"]), &excluded, 1).description, "approved by @bob");
    }

    #[test]
    fn too_few_approvals_say_what_is_missing() {
        let r = by_reviews(&names(&["bob"]), &["alice"], 2);
        assert_eq!(r.state, CheckState::Pending);
        assert_eq!(r.description, "1 of 2 approving review(s) of this commit, or a responder's hotfix grant");
    }
}
