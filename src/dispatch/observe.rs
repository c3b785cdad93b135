//! Reads about a change that more than the lane's step makes: who applied the label, and the
//! postmortem issue a merge-queue group's change names.

use crate::forge::{Forge, ForgeError};
use crate::lane::membership::{Labeler, Membership};
use crate::lane::policy::Policy;
use crate::lane::postmortem::{self, IssueLookup, IssueRef};

/// Who applied the lane label, as the forge recorded it, and whether they are a responder:
/// for a label applied while nobody was listening.
pub(crate) async fn recorded_labeler<F: Forge>(
    forge: &F,
    repo: &str,
    number: u64,
    policy: &Policy,
) -> Result<Option<Labeler>, ForgeError> {
    let Some((login, at)) = forge.labeler(repo, number, &policy.lane.label).await? else { return Ok(None) };
    let responder = forge.is_responder(repo, &login, &policy.responders).await?;
    Ok(Some(Labeler { login, responder, at }))
}

/// Looks up the referenced issue when the check needs it: only for changes in the lane, and
/// only in allowed repositories.
pub(crate) async fn look_up<F: Forge>(
    forge: &F,
    membership: &Membership,
    reference: &Result<Option<IssueRef>, String>,
    this_repo: &str,
    policy: &Policy,
) -> Result<Option<IssueLookup>, ForgeError> {
    match postmortem::to_look_up(membership.in_lane(), reference, this_repo, policy) {
        Some(r) => Ok(Some(forge.issue(&r.repo, r.number).await?)),
        None => Ok(None),
    }
}
