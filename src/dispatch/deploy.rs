//! Deployments: a successful production deployment records `deployed` on every merged hotfix
//! of the repository it contains, for the time to deploy (M4).

use super::{Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::event::{Envelope, RepoRef};
use crate::lane::lifecycle::{Detail, LifecycleEvent, Milestone};
use crate::store::{Millis, Write};

/// How far back a deployment looks for hotfixes it may contain.
const HORIZON_MS: Millis = 30 * 24 * 3600 * 1000;
/// The most hotfixes one deployment compares against (one API call each).
const MOST: i64 = 50;

pub(super) async fn on_deployment<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    sha: &str,
    environment: &str,
    tier: Option<&str>,
) -> Result<Vec<Write>, StepError> {
    let loaded = d.policies.get(forge, &repo.full_name).await?;
    let production = loaded.policy.metrics.is_production(environment) || tier == Some("production");
    if !production {
        return Ok(vec![]);
    }
    let now = d.clock.now_ms();
    let (forge_name, name) = (envelope.forge.as_str(), repo.full_name.as_str());
    let mut writes = Vec::new();
    for hotfix in d.store.undeployed(forge_name, name, now - HORIZON_MS, now, MOST).await? {
        let Some(merge_sha) = &hotfix.merge_sha else { continue };
        if !forge.commit_contains(name, merge_sha, sha).await? {
            continue;
        }
        d.metrics.time_to_deploy(std::time::Duration::from_millis((now - hotfix.merged_at).max(0) as u64));
        writes.push(Write::Lifecycle(LifecycleEvent {
            forge: forge_name.into(),
            repo: name.into(),
            number: hotfix.number,
            milestone: Milestone::Deployed,
            key: environment.to_string(),
            at: now,
            actor: envelope.sender.login.clone(),
            detail: Detail { sha: Some(sha.to_string()), ..Detail::default() },
        }));
    }
    Ok(writes)
}
