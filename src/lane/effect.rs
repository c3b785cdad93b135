//! What the lane asks the forge (and the job queue) to do, as data. The glue's applier is the
//! only code that carries these out; answers that matter to the lane come back to
//! [`step`](super::step) as inputs.

use super::job::Job;
use super::policy::MergeMethod;
use super::report::Report;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Reports a check result on a commit.
    Report { sha: String, report: Report },
    /// Creates or edits the lane's one comment on the change; the id comes back as
    /// [`Input::CommentWritten`](super::step::Input::CommentWritten).
    LaneComment { known: Option<u64>, body: String },
    /// Creates or edits another comment of the lane's, found by its marker among the lane's own:
    /// on change `number`, or with `issue`, on an issue (GitLab keeps the two apart).
    Comment { repo: String, number: u64, issue: bool, marker: &'static str, body: String },
    /// Merges the change pinned to `sha`; the answer comes back as
    /// [`Input::MergeAnswered`](super::step::Input::MergeAnswered). With `approval`, its pass is
    /// posted right before the merge and taken back by any outcome but a merge.
    Merge { sha: String, method: MergeMethod, approval: Option<Box<MergeApproval>> },
    /// Puts the change at the front of its merge queue, pinned to `sha`.
    EnqueueFirst { sha: String },
    /// Finds the postmortem issue the lane opened for this change (by `marker`), or opens it;
    /// its number comes back as [`Input::PostmortemOpened`](super::step::Input::PostmortemOpened).
    OpenPostmortem { opening: Box<Opening> },
    /// Replaces the change's description.
    SetBody { body: String },
    /// Queues a job, committed with this one.
    Enqueue(Job),
    /// The job cannot finish now. `failed`: counts as a failed attempt (with backoff); else it
    /// is tried again shortly.
    Retry { reason: String, failed: bool },
}

/// The `hotfix-lane/approval` check around a merge on a grant: `pass` for the moment of the
/// merge, `otherwise` (what reviews say) when the merge does not happen — an error, a refusal,
/// a lost answer — so a pass never outlives the merge it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeApproval {
    pub pass: Report,
    pub otherwise: Report,
}

/// A postmortem issue to find or open, and what to carry on with once it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub title: String,
    pub body: String,
    pub label: String,
    pub marker: String,
    /// The change as it was read, whose description gets the issue linked.
    pub change: super::event::PullRequest,
    /// Why it is opened, for the audit log.
    pub why: &'static str,
    /// Who asked (the labeler or the commenter).
    pub actor: String,
    /// The change's action that led here: the evaluation goes on as for it.
    pub action: super::event::PullRequestAction,
}
