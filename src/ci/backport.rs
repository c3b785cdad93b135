//! Mode `backport`: a merged hotfix's backports from inside the job, with the same engine,
//! branches, changes and reports as the server, for teams that run no server. Reruns find what
//! an earlier run made. The job fails when any target needs work by hand.

use std::collections::BTreeMap;
use std::process::ExitCode;

use super::runner::Output;
use super::{Decision, Job, Settings};
use crate::backport::mirror::Mirrors;
use crate::backport::open::{self, MakeError, Request};
use crate::forge::Forge;
use crate::lane::backport::{self as decide, Backport, BackportState};
use crate::lane::event::ItemState;

impl<F: Forge> Job<'_, F> {
    /// `merger`: who merged the change, as the forge says.
    pub async fn backport(
        &self,
        decision: &Decision,
        settings: &Settings,
        merger: Option<&str>,
    ) -> Result<ExitCode, String> {
        let (forge, runner, repo) = (self.forge, self.runner, self.repo);
        let write = |e: std::io::Error| format!("cannot write the job's outputs: {e}");
        let pull = &decision.pull;
        let reference = self.reference(pull.number);
        let skip = if pull.state != ItemState::Merged {
            Some(format!("{reference} is not merged: nothing to backport yet"))
        } else if !decision.membership.in_lane() {
            Some(format!("{reference} is not in the hotfix lane: {}", decision.lane.description))
        } else {
            None
        };
        if let Some(why) = skip {
            runner.line(&why);
            runner.output(Output::Backports, "[]").map_err(write)?;
            runner.summary(&format!("### hotfix-lane backports\n\n{why}\n")).map_err(write)?;
            return Ok(ExitCode::SUCCESS);
        }
        let policy = &decision.policy;
        let targets = decide::targets(policy, &repo.default_branch, &pull.base_ref, &pull.labels, &settings.targets);
        let mirrors = Mirrors::new(settings.temp.join("hotfix-lane-mirrors"), u64::MAX);
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let mut backports = BTreeMap::new();
        for target in targets {
            let mut record = Backport::pending(now, policy);
            let request = Request {
                forge_name: forge.conventions().forge.as_str(),
                repo,
                pull,
                target: &target,
                policy,
                merger,
                postmortem: None,
                final_attempt: true,
            };
            match open::make(forge, &mirrors, &request, &mut record, now).await {
                Ok((_, detail)) => runner.line(&detail),
                Err(MakeError::Forge(err)) => {
                    record.state = BackportState::Failed;
                    record.detail = Some(err.to_string());
                }
                Err(MakeError::Retry(why)) => {
                    record.state = BackportState::Failed;
                    record.detail = Some(why);
                }
            }
            backports.insert(target, record);
        }
        let merge_commit = pull.merge_commit_sha.clone().unwrap_or_default();
        open::publish(forge, &repo.full_name, pull.number, &backports, None, &merge_commit)
            .await
            .map_err(|e| e.to_string())?;
        let listed: Vec<serde_json::Value> = backports
            .iter()
            .map(|(target, b)| serde_json::json!({ "target": target, "state": b.state, "pull": b.pull }))
            .collect();
        runner.output(Output::Backports, &serde_json::Value::Array(listed).to_string()).map_err(write)?;
        runner
            .summary(&decide::comment(&backports, forge.conventions()).replace(decide::BACKPORT_MARKER, ""))
            .map_err(write)?;
        let failing: Vec<&str> = backports
            .iter()
            .filter(|(_, b)| matches!(b.state, BackportState::Conflict | BackportState::Failed))
            .map(|(t, _)| t.as_str())
            .collect();
        if failing.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        runner.error(&format!("backports need work by hand: {}", failing.join(", ")));
        Ok(ExitCode::FAILURE)
    }
}
