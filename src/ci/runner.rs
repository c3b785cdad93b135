//! What a CI job's runner offers the lane, whichever forge runs the job: lines and annotations
//! in the job's log, outputs for later steps or jobs, a summary, collapsible log sections. Each
//! forge's runner escapes what its log would interpret, so text from a change (titles,
//! descriptions, branch names, labels) can be printed but never acts.

use std::io;

/// What a mode publishes for later steps (GitHub) or jobs (GitLab); each runner names them in
/// its own convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `hotfix` or `normal`.
    Lane,
    /// `smoke` or `full`.
    Suite,
    /// The change's number (iid on GitLab).
    Change,
    /// `success` or `failure`.
    Postmortem,
    /// The backports, as JSON on one line.
    Backports,
    /// `merged`, `enqueued` or `none`.
    Merged,
}

pub trait Runner {
    /// A line of the job's log.
    fn line(&self, text: &str);
    fn warning(&self, text: &str);
    fn error(&self, text: &str);
    fn output(&self, name: Output, value: &str) -> io::Result<()>;
    /// The job's summary, in Markdown.
    fn summary(&self, markdown: &str) -> io::Result<()>;
    /// Opens a collapsible section of the log called `name` (the lane's own word), shown as
    /// `title`.
    fn start_section(&self, name: &'static str, title: &str);
    fn end_section(&self, name: &'static str);
}
