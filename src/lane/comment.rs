//! The lane's one comment on a change, rewritten in place as the lane's view changes.

use super::membership::Membership;
use super::policy::Policy;
use super::report::{CheckState, Report};

/// Marks the lane's comment, so a retried job finds it instead of adding another.
pub const MARKER: &str = "<!-- hotfix-lane -->";

/// The comment for the current lane and postmortem reports: the lane's own words, forge
/// identifiers (logins, issue numbers) and the reports' details, which show text from the
/// change only through [`markdown`](super::markdown) (the hint for an unreadable
/// `Postmortem:` line quotes it as code).
pub fn render(
    membership: &Membership,
    lane: &Report,
    postmortem: &Report,
    status: Option<&str>,
    policy: &Policy,
) -> String {
    let mark = |state| {
        if state == CheckState::Success {
            "✅"
        } else {
            "❌"
        }
    };
    let mut out = format!("{MARKER}\n### hotfix-lane\n\n");
    match membership {
        Membership::Normal => out.push_str(&format!(
            "This pull request is no longer in the hotfix lane (no `{}` label): normal rules apply.\n",
            policy.lane.label
        )),
        _ => {
            out.push_str(&format!("{} **Lane:** {}\n", mark(lane.state), lane.description));
            if !lane.details.is_empty() {
                out.push_str(&format!("\n{}\n", lane.details));
            }
            out.push_str(&format!("\n{} **Postmortem:** {}\n", mark(postmortem.state), postmortem.description));
            if !postmortem.details.is_empty() {
                out.push_str(&format!("\n{}\n", postmortem.details));
            }
            if let Some(status) = status {
                out.push_str(&format!("\n{status}\n"));
            }
        }
    }
    out
}
