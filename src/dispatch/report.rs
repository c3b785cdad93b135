//! What the lane reports on a change: the lane and postmortem checks on its head, the one
//! comment kept up to date, and the merge they may lead to.

use super::merge;
use super::StepError;
use crate::forge::Forge;
use crate::lane::comment::{self, MARKER};
use crate::lane::event::RepoRef;
use crate::lane::membership::{self, Membership};
use crate::lane::policy::Policy;
use crate::lane::postmortem::{self, IssueLookup, IssueRef};
use crate::lane::report::{Report, LANE_CONTEXT, POSTMORTEM_CONTEXT};
use crate::lane::track::PullFacts;
use crate::store::{Millis, Write};

/// The lane and postmortem reports for a change's current state.
pub(super) fn evaluate(
    facts: &PullFacts,
    reference: &Result<Option<IssueRef>, String>,
    this_repo: &str,
    lookup: Option<&IssueLookup>,
    policy: &Policy,
) -> [Report; 2] {
    let membership = &facts.lane.membership;
    [
        membership::report(membership, policy),
        postmortem::verdict(membership.in_lane(), reference, this_repo, lookup, policy),
    ]
}

/// Posts what changed since the last time (reports on the head commit, the one comment) and
/// returns the postmortem report if its state changed, for the audit log.
/// After a change's checks moved: merge if the lane now may, and update the comment, from the
/// reports last posted on the head (no lookups needed).
pub(super) async fn refresh<F: Forge>(
    forge: &F,
    forge_name: &str,
    repo: &RepoRef,
    facts: &mut PullFacts,
    policy: &Policy,
    policy_error: Option<&crate::lane::policy::PolicyError>,
    now: Millis,
) -> Result<Vec<Write>, StepError> {
    let last =
        |context: &str| facts.lane.reported.get(context).filter(|r| r.sha == facts.head_sha).map(|r| r.report.clone());
    let (Some(lane), Some(postmortem)) = (last(LANE_CONTEXT), last(POSTMORTEM_CONTEXT)) else {
        return merge::try_merge(forge, forge_name, repo, facts, policy, now).await;
    };
    Ok(publish(forge, forge_name, repo, facts, &[lane, postmortem], policy, policy_error, now).await?.merge)
}

/// What publishing led to: the postmortem report if its state changed, and the audit entries
/// of a merge attempt.
pub(super) struct Published {
    pub postmortem_changed: Option<Report>,
    pub merge: Vec<Write>,
}

/// Posts the reports, merges if the lane now may, and brings the lane's comment up to date.
#[allow(clippy::too_many_arguments)]
pub(super) async fn publish<F: Forge>(
    forge: &F,
    forge_name: &str,
    repo: &RepoRef,
    facts: &mut PullFacts,
    reports: &[Report; 2],
    policy: &Policy,
    policy_error: Option<&crate::lane::policy::PolicyError>,
    now: Millis,
) -> Result<Published, StepError> {
    let [lane, postmortem] = reports;
    let pm_changed = facts.lane.reported.get(&postmortem.context).is_none_or(|r| r.report.state != postmortem.state);
    for report in reports {
        if facts.lane.is_news(&facts.head_sha, report) {
            forge.report(&repo.full_name, &facts.head_sha, report).await?;
            facts.lane.remember(&facts.head_sha.clone(), report);
        }
    }
    let merge = merge::try_merge(forge, forge_name, repo, facts, policy, now).await?;
    if facts.lane.membership != Membership::Normal || facts.lane.comment_id.is_some() {
        let status = merge::status_line(facts, policy, now);
        let mut body = comment::render(&facts.lane.membership, lane, postmortem, status.as_deref(), policy);
        if let Some(error) = policy_error {
            body.push_str(&format!(
                "\n⚠️ `.github/hotfix-lane.toml` on the default branch is invalid ({error}); the last valid policy applies.\n"
            ));
        }
        if facts.lane.comment.as_deref() != Some(body.as_str()) {
            let id = forge.upsert_comment(&repo.full_name, facts.number, facts.lane.comment_id, MARKER, &body).await?;
            facts.lane.comment_id = Some(id);
            facts.lane.comment = Some(body);
        }
    }
    Ok(Published { postmortem_changed: pm_changed.then(|| postmortem.clone()), merge })
}

pub(super) fn state_word(r: &Report) -> &'static str {
    match r.state {
        crate::lane::report::CheckState::Success => "success",
        crate::lane::report::CheckState::Failure => "failure",
        crate::lane::report::CheckState::Pending => "pending",
    }
}
