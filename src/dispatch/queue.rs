//! The merge queue: the postmortem check on each group's head commit, so the queue enforces it
//! too, and the sweep that reports on groups whose webhook was missed.

use super::apply::apply;
use super::observe::look_up;
use super::{Dispatch, StepError};
use crate::forge::{Forge, Forges, QueueGroup};
use crate::lane::audit::AuditAction;
use crate::lane::effect::Effect;
use crate::lane::event::{Envelope, Forge as ForgeKind, MergeGroup, RepoRef};
use crate::lane::job::Subject;
use crate::lane::key::ChangeKey;
use crate::lane::membership;
use crate::lane::postmortem;
use crate::lane::report::{CheckState, POSTMORTEM_CONTEXT};
use crate::store::Write;

/// Reports the postmortem check on every merge group of a repository that lacks it.
pub(super) async fn queue_sweep<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    kind: ForgeKind,
    repo: &RepoRef,
    installation_id: Option<u64>,
) -> Result<Vec<Write>, StepError> {
    let mut writes = Vec::new();
    for base in forge.queue_branches(&repo.full_name).await? {
        for group in forge.queue_groups(&repo.full_name, &base).await? {
            if forge.has_report(&repo.full_name, &group.head_sha, POSTMORTEM_CONTEXT).await? {
                continue;
            }
            writes.extend(report_group(d, forge, kind, installation_id, "hotfix-lane", repo, &group).await?);
        }
    }
    Ok(writes)
}

/// A merge group asks for checks. What it carries comes from the queue, never from its branch's
/// name: a group the queue does not list (gone already, or never one) gets no verdict.
pub(super) async fn on_merge_group<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    group: &MergeGroup,
) -> Result<Vec<Write>, StepError> {
    let base = group.base_ref.strip_prefix("refs/heads/").unwrap_or(&group.base_ref);
    let queued = forge.queue_groups(&repo.full_name, base).await?;
    let Some(queued) = queued.iter().find(|g| g.head_sha == group.head_sha) else {
        tracing::info!(repo = %repo.full_name, head = %group.head_sha, "merge group not in the queue: no verdict");
        return Ok(vec![]);
    };
    let sender = &envelope.sender.login;
    report_group(d, forge, envelope.forge, envelope.installation_id, sender, repo, queued).await
}

/// The postmortem check on a group's head commit, so that the queue enforces it too: the first
/// failing verdict of the changes it carries, else its own change's. A change queued behind a
/// hotfix never carries the hotfix past its check.
async fn report_group<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    kind: ForgeKind,
    installation_id: Option<u64>,
    actor: &str,
    repo: &RepoRef,
    group: &QueueGroup,
) -> Result<Vec<Write>, StepError> {
    let Some(&number) = group.changes.last() else { return Ok(vec![]) };
    let loaded = d.policies.get(forge, &repo.full_name).await?;
    let policy = &loaded.policy;
    let mut verdict = None;
    for &carried in &group.changes {
        let Some(pull) = forge.pull(&repo.full_name, carried).await? else {
            return Err(StepError::Invalid(format!(
                "pull request #{carried} of merge group {} not found",
                group.head_sha
            )));
        };
        let (stored, _) = d.change_state(ChangeKey::new(kind, repo.id, carried)).await?;
        let labeler = stored.as_ref().and_then(|s| s.lane.labeler.clone());
        let membership = membership::evaluate(&pull, policy, labeler.as_ref());
        let reference = postmortem::find_reference(&pull.body, &repo.full_name);
        let lookup = look_up(forge, &membership, &reference, &repo.full_name, policy).await?;
        let mut report =
            postmortem::verdict(membership.in_lane(), &reference, &repo.full_name, lookup.as_ref(), policy);
        let failing = report.state != CheckState::Success;
        if failing && carried != number {
            report.description = format!("#{carried}: {}", report.description);
        }
        verdict = Some(report);
        if failing {
            break;
        }
    }
    let Some(report) = verdict else { return Ok(vec![]) };
    let audit = crate::lane::audit::Audit {
        action: AuditAction::PostmortemQueue(report.state),
        actor: actor.to_string(),
        sha: group.head_sha.clone(),
        detail: report.description.clone(),
    };
    apply(forge, Some(&d.written), &repo.full_name, number, Effect::Report { sha: group.head_sha.clone(), report })
        .await?;
    let subject = Subject { forge: kind, repo: repo.clone(), number, installation_id };
    Ok(vec![super::audit_write(d.clock.now_ms(), &subject, audit)])
}
