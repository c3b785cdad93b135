//! What the audit log records, as one enum: the lane writes these names, metrics count them, and
//! readers filter on them (`grant.created`, `merge.merged`, …).

use std::fmt;

use super::report::CheckState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    LaneNormal,
    LaneHotfix,
    LaneNotAuthorized,
    LaneBranchMismatch,
    GrantCreated,
    GrantRefused,
    GrantCleared,
    GrantRevoked,
    GrantVoided,
    MergeMerged,
    MergeEnqueued,
    MergeRefused,
    PostmortemOpened,
    PostmortemCommandRefused,
    /// The change's postmortem check moved to this state.
    Postmortem(CheckState),
    /// The postmortem check on a merge-queue group.
    PostmortemQueue(CheckState),
    BackportRequested,
    RevertRequested,
    RevertRefused,
    RevertOpened,
    RevertFailed,
    BackportCommandRefused,
    BackportOpened,
    BackportConflict,
    BackportAlreadyApplied,
    BackportFailed,
    BackportMerged,
    BackportClosed,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        use AuditAction::*;
        use CheckState::*;
        match self {
            LaneNormal => "lane.normal",
            LaneHotfix => "lane.hotfix",
            LaneNotAuthorized => "lane.not_authorized",
            LaneBranchMismatch => "lane.branch_mismatch",
            GrantCreated => "grant.created",
            GrantRefused => "grant.refused",
            GrantCleared => "grant.cleared",
            GrantRevoked => "grant.revoked",
            GrantVoided => "grant.voided",
            MergeMerged => "merge.merged",
            MergeEnqueued => "merge.enqueued",
            MergeRefused => "merge.refused",
            PostmortemOpened => "postmortem.opened",
            PostmortemCommandRefused => "postmortem.command_refused",
            Postmortem(Success) => "postmortem.success",
            Postmortem(Failure) => "postmortem.failure",
            Postmortem(Pending) => "postmortem.pending",
            PostmortemQueue(Success) => "postmortem.queue.success",
            PostmortemQueue(Failure) => "postmortem.queue.failure",
            PostmortemQueue(Pending) => "postmortem.queue.pending",
            BackportRequested => "backport.requested",
            RevertRequested => "revert.requested",
            RevertRefused => "revert.refused",
            RevertOpened => "revert.opened",
            RevertFailed => "revert.failed",
            BackportCommandRefused => "backport.command_refused",
            BackportOpened => "backport.opened",
            BackportConflict => "backport.conflict",
            BackportAlreadyApplied => "backport.already_applied",
            BackportFailed => "backport.failed",
            BackportMerged => "backport.merged",
            BackportClosed => "backport.closed",
        }
    }

    /// The grant outcome this action counts as (`created`, `refused`, …), for the metrics.
    pub fn grant_outcome(self) -> Option<&'static str> {
        self.as_str().strip_prefix("grant.")
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decision for the audit log, as the lane makes it: the glue adds when, where and which
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub action: AuditAction,
    /// Who caused it: the event's sender, the commenter, or `hotfix-lane` for its own doing.
    pub actor: String,
    /// The commit it concerns.
    pub sha: String,
    pub detail: String,
}
