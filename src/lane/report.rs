//! What the lane reports on a commit: a status (plain token) or a check run (GitHub App), under
//! fixed context names that branch protection can require.

use serde::{Deserialize, Serialize};

pub const POSTMORTEM_CONTEXT: &str = "hotfix-lane/postmortem";
pub const LANE_CONTEXT: &str = "hotfix-lane/lane";
/// Reported on changes that edit the policy file: is the new version valid?
pub const POLICY_CONTEXT: &str = "hotfix-lane/policy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    Success,
    Failure,
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub context: String,
    pub state: CheckState,
    /// One line, shown next to the context (GitHub cuts statuses at 140 characters).
    pub description: String,
    /// Markdown for the check run's summary: what is wrong and how to fix it.
    pub details: String,
}

impl Report {
    pub fn new(context: &str, state: CheckState, description: String, details: String) -> Report {
        let description = if description.chars().count() > 140 {
            description.chars().take(139).chain(['…']).collect()
        } else {
            description
        };
        Report { context: context.to_string(), state, description, details }
    }
}
