//! What the glue reads about a change before deciding: the forge a job is for, who applied
//! the label, the postmortem issue, the head commit's author.

use crate::forge::{Forge, ForgeError};
use crate::lane::event::PullRequest;
use crate::lane::event::{Envelope, Event, RepoRef};
use crate::lane::membership::{Labeler, Membership};
use crate::lane::policy::Policy;
use crate::lane::postmortem::{self, IssueLookup, IssueRef};
use crate::store::ClaimedJob;

use super::StepError;

/// The forge a job was queued for: the first part of its ordering key.
pub(super) fn job_forge(job: &ClaimedJob) -> &str {
    job.ordering_key.split(':').next().unwrap_or("github")
}

/// An event hotfix-lane raises itself (a sweep), shaped as if the forge had sent it.
pub(super) fn own_event(forge_name: &str, repo: &RepoRef, installation_id: Option<u64>, event: Event) -> Envelope {
    Envelope {
        forge: if forge_name == "gitlab" {
            crate::lane::event::Forge::Gitlab
        } else {
            crate::lane::event::Forge::Github
        },
        repo: Some(repo.clone()),
        sender: crate::lane::event::Actor { id: 0, login: "hotfix-lane".into() },
        installation_id,
        event,
    }
}

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
) -> Result<Option<IssueLookup>, StepError> {
    match reference {
        Ok(Some(r)) if membership.in_lane() && postmortem::allowed(r, this_repo, policy) => {
            Ok(Some(forge.issue(&r.repo, r.number).await?))
        }
        _ => Ok(None),
    }
}

/// The head commit's author, for the two-person rule — not asked for when the authorizer
/// wrote the change anyway, or the policy lets them authorize their own.
pub(crate) async fn head_author<F: Forge>(
    forge: &F,
    repo: &RepoRef,
    pull: &PullRequest,
    by: &str,
    policy: &Policy,
) -> Result<Option<String>, ForgeError> {
    if policy.merge.allow_self_authorize || by.eq_ignore_ascii_case(&pull.author.login) {
        return Ok(None);
    }
    forge.commit_author(&repo.full_name, &pull.head_sha).await
}
