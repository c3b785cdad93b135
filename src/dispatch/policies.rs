//! Repository policies, read from the default branch and cached until a push to it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::forge::{Forge, ForgeError};
use crate::lane::event::RepoRef;
use crate::lane::policy::{Policy, PolicyError};

/// Where the policy lives in a GitHub repository.
pub const GITHUB_POLICY_PATH: &str = ".github/hotfix-lane.toml";

#[derive(Clone)]
struct Cached {
    /// Blob id of the file the policy came from; `None` when the file is absent.
    sha: Option<String>,
    policy: Policy,
    /// Set when the file on the default branch is invalid; `policy` is then the last good one.
    error: Option<PolicyError>,
    /// A push to the default branch happened since this was read.
    stale: bool,
}

#[derive(Default)]
pub struct Policies {
    cache: Mutex<HashMap<String, Cached>>,
}

/// A repository's policy, and the problem with its file if the file is invalid.
pub struct Loaded {
    pub policy: Policy,
    pub error: Option<PolicyError>,
}

impl Policies {
    pub async fn get<F: Forge>(&self, forge: &F, repo: &RepoRef) -> Result<Loaded, ForgeError> {
        let known = self.cache.lock().expect("policy cache lock").get(&repo.full_name).cloned();
        if let Some(c) = &known {
            if !c.stale {
                return Ok(Loaded { policy: c.policy.clone(), error: c.error.clone() });
            }
        }
        let file = forge.file(&repo.full_name, GITHUB_POLICY_PATH, &repo.default_branch).await?;
        let fresh = match file {
            None => Cached { sha: None, policy: Policy::default(), error: None, stale: false },
            Some(f) if known.as_ref().is_some_and(|c| c.sha.as_deref() == Some(&f.sha)) => {
                Cached { stale: false, ..known.clone().expect("checked above") }
            }
            Some(f) => match Policy::parse(&f.text) {
                Ok(policy) => Cached { sha: Some(f.sha), policy, error: None, stale: false },
                Err(error) => {
                    tracing::warn!(repo = %repo.full_name, %error, "invalid policy file; keeping the last good policy");
                    let last_good = known.map(|c| c.policy).unwrap_or_default();
                    Cached { sha: Some(f.sha), policy: last_good, error: Some(error), stale: false }
                }
            },
        };
        let loaded = Loaded { policy: fresh.policy.clone(), error: fresh.error.clone() };
        self.cache.lock().expect("policy cache lock").insert(repo.full_name.clone(), fresh);
        Ok(loaded)
    }

    /// Marks a repository's policy for re-reading (after a push to its default branch).
    pub fn invalidate(&self, repo: &str) {
        if let Some(c) = self.cache.lock().expect("policy cache lock").get_mut(repo) {
            c.stale = true;
        }
    }
}
