//! The postmortem issue the lane opens for a hotfix, on request or as the label is applied.

use super::{Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::event::{PullRequest, RepoRef};
use crate::lane::incident::{self, Incident};
use crate::lane::membership::Labeler;
use crate::lane::policy::Policy;
use crate::lane::postmortem;

/// Opens (or finds the one already opened) postmortem issue for a change that names none, and
/// links it into the description. Returns the issue number when it linked one.
pub(super) async fn ensure<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    repo: &RepoRef,
    pull: &mut PullRequest,
    labeler: Option<&Labeler>,
    policy: &Policy,
) -> Result<Option<u64>, StepError> {
    if matches!(postmortem::find_reference(&pull.body, &repo.full_name), Ok(Some(_))) {
        return Ok(None);
    }
    let label = &policy.postmortem.label;
    let marker = incident::marker(&repo.full_name, pull.number);
    let number = match forge.find_issue(&repo.full_name, label, &marker).await? {
        Some(existing) => existing,
        None => {
            let template = match &policy.postmortem.template {
                Some(path) => forge.file(&repo.full_name, path, &repo.default_branch).await?.map(|f| f.text),
                None => None,
            };
            let incident = Incident {
                repo: &repo.full_name,
                number: pull.number,
                title: &pull.title,
                labeler,
                label: &policy.lane.label,
                now: d.clock.now_ms(),
            };
            let body = incident::body(template.as_deref(), &incident);
            forge.create_issue(&repo.full_name, &incident::title(&incident), &body, std::slice::from_ref(label)).await?
        }
    };
    let separator = if pull.body.trim().is_empty() { "" } else { "\n\n" };
    pull.body = format!("{}{separator}Postmortem: #{number}", pull.body.trim_end());
    forge.set_pull_body(&repo.full_name, pull.number, &pull.body).await?;
    Ok(Some(number))
}
