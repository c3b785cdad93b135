//! Merge-train pipelines. A train pipeline tests its merge request on top of every car ahead of
//! it, so it runs the smoke suite only when every one of those merge requests is a hotfix too;
//! one change outside the lane ahead of it means the full suite. A pipeline the train does not
//! list (it left the train, or GitLab has not listed it yet) runs the full suite.

use crate::ci::{Decision, Job};
use crate::forge::gitlab::GitLab;
use crate::forge::Forge;
use crate::lane::membership::Membership;
use crate::lane::report::{CheckState, Report, LANE_CONTEXT};

/// `decision` for the train pipeline on commit `sha`: unchanged when every car up to this one
/// is in the lane, else the normal lane with the reason.
pub async fn decide(job: &Job<'_, GitLab>, mut decision: Decision, sha: &str) -> Result<Decision, String> {
    if !decision.membership.in_lane() {
        return Ok(decision);
    }
    let (repo, base) = (&job.repo.full_name, &decision.pull.base_ref);
    let groups = job.forge.queue_groups(repo, base).await.map_err(|e| e.to_string())?;
    let why = match groups.iter().find(|g| g.head_sha == sha) {
        None => Some(format!("the merge train of {base} does not list this pipeline's commit")),
        Some(group) => {
            let mut outside = None;
            for &number in group.changes.iter().filter(|&&n| n != decision.number) {
                let pull = job.forge.pull(repo, number).await.map_err(|e| e.to_string())?;
                let ahead = match pull {
                    Some(pull) => job.decide(pull).await?,
                    None => {
                        outside = Some(number);
                        break;
                    }
                };
                if !ahead.membership.in_lane() {
                    outside = Some(number);
                    break;
                }
            }
            outside.map(|n| format!("!{n} ahead of it in the merge train is not in the hotfix lane"))
        }
    };
    if let Some(why) = why {
        job.runner.line(&format!("merge train: {why}, so this pipeline runs the full suite"));
        decision.membership = Membership::Normal;
        decision.lane =
            Report::new(LANE_CONTEXT, CheckState::Success, format!("normal (merge train: {why})"), String::new());
    }
    Ok(decision)
}
