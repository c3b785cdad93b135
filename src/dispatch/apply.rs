//! The one place the glue writes to a forge: each [`Effect`] the lane decided, carried out,
//! with the answers the lane asked for handed back as inputs.

use super::written::Written;
use super::StepError;
use crate::forge::{Forge, ForgeError, MergeOutcome};
use crate::lane::comment::MARKER;
use crate::lane::effect::Effect;
use crate::lane::step::{Input, MergeAnswer};

/// Carries out `effect` on change `number` of `repo`; `written` (when kept) skips a report
/// identical to the last one written for that commit and context. Queued jobs are not forge
/// writes: the caller commits them with the job.
pub(super) async fn apply<F: Forge>(
    forge: &F,
    written: Option<&Written>,
    repo: &str,
    number: u64,
    effect: Effect,
) -> Result<Option<Input>, StepError> {
    match effect {
        Effect::Report { sha, report } => {
            // The approval check is always written: the forge may show a pass posted for a
            // merge that was cut short, which this record never saw, and a green left there
            // lets anyone merge past reviews.
            let always = report.context == crate::lane::approval::APPROVAL_CONTEXT;
            if !always && written.is_some_and(|w| w.is_written(repo, &sha, &report)) {
                return Ok(None);
            }
            forge.report(repo, &sha, &report).await?;
            written.inspect(|w| w.remember(repo, &sha, &report));
        }
        Effect::LaneComment { known, body } => {
            let id = forge.upsert_comment(repo, number, known, MARKER, &body).await?;
            return Ok(Some(Input::CommentWritten { id }));
        }
        Effect::Comment { repo: on, number: on_number, issue: false, marker, body } => {
            forge.upsert_comment(&on, on_number, None, marker, &body).await?;
        }
        Effect::Comment { repo: on, number: on_number, issue: true, marker, body } => {
            forge.upsert_issue_comment(&on, on_number, marker, &body).await?;
        }
        Effect::Merge { sha, method, approval } => {
            if let Some(a) = &approval {
                forge.report(repo, &sha, &a.pass).await?;
            }
            let outcome = forge.merge(repo, number, &sha, method).await;
            if let Some(a) = approval.filter(|_| !matches!(outcome, Ok(MergeOutcome::Merged))) {
                // Taken back whatever else happened: a pass must not outlive its merge. (A lost
                // answer may hide a merge: the check then shows reviews on a merged change.)
                forge.report(repo, &sha, &a.otherwise).await?;
                written.inspect(|w| w.remember(repo, &sha, &a.otherwise));
            }
            let answer = match outcome {
                Ok(MergeOutcome::Merged) => MergeAnswer::Merged,
                Ok(MergeOutcome::BaseModified) => MergeAnswer::BaseModified,
                Ok(MergeOutcome::QueueRequired) => MergeAnswer::QueueRequired,
                Ok(MergeOutcome::Refused(why)) => MergeAnswer::Refused(why),
                // Slowed down before the merge was made: nothing happened, try again then.
                Err(err @ ForgeError::RateLimited(_)) => return Err(err.into()),
                // The merge may have happened: the lane reads the change to find out.
                Err(ForgeError::Failed(why)) => MergeAnswer::Lost(why),
            };
            return Ok(Some(Input::MergeAnswered { sha, method, answer }));
        }
        Effect::EnqueueFirst { sha } => forge.enqueue_first(repo, number, &sha).await?,
        Effect::OpenPostmortem { opening } => {
            let issue = match forge.find_issue(repo, &opening.label, &opening.marker).await? {
                Some(existing) => existing,
                None => {
                    let labels = std::slice::from_ref(&opening.label);
                    forge.create_issue(repo, &opening.title, &opening.body, labels).await?
                }
            };
            return Ok(Some(Input::PostmortemOpened { issue, opening }));
        }
        Effect::SetBody { body } => forge.set_pull_body(repo, number, &body).await?,
        Effect::Enqueue(_) => unreachable!("queued jobs are committed with the job, not applied to the forge"),
        Effect::Retry { reason, failed: false } => return Err(StepError::Retry(reason)),
        Effect::Retry { reason, failed: true } => return Err(StepError::Forge(ForgeError::Failed(reason))),
    }
    Ok(None)
}
