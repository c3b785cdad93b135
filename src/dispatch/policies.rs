//! Repository policies, read from the repository's default branch and nowhere else.
//!
//! Every read revalidates the cached copy with a conditional request (a `304` costs nothing
//! against GitHub's rate limit), so a responder removed from the policy loses the power at the
//! next decision on every replica, whether or not the push webhook arrived. Parsed policies are
//! kept by repository and blob id.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::forge::{Forge, ForgeError, Revalidated};
use crate::lane::policy::{Policy, PolicyError};

#[derive(Clone)]
struct Cached {
    etag: Option<String>,
    loaded: Loaded,
}

#[derive(Default)]
pub struct Policies {
    /// By forge and repository: a path names different projects on different forges.
    cache: Mutex<HashMap<(crate::lane::event::Forge, String), Cached>>,
}

/// A repository's policy, and the problem with its file if the file is invalid.
#[derive(Clone)]
pub struct Loaded {
    pub policy: Policy,
    pub error: Option<PolicyError>,
    /// Blob id of the file the policy came from; `None` when the file is absent (defaults).
    pub blob: Option<String>,
}

impl Policies {
    /// The policy last read for `repo`, without asking the forge: for cues that only decide
    /// whether to queue work, which revalidates before it decides anything.
    pub fn last_read(&self, forge: crate::lane::event::Forge, repo: &str) -> Option<Loaded> {
        self.cache.lock().expect("policy cache lock").get(&(forge, repo.to_string())).map(|c| c.loaded.clone())
    }

    /// The policy on `repo`'s default branch now.
    pub async fn get<F: Forge>(&self, forge: &F, repo: &str) -> Result<Loaded, ForgeError> {
        let key = (forge.conventions().forge, repo.to_string());
        let known = self.cache.lock().expect("policy cache lock").get(&key).cloned();
        let etag = known.as_ref().and_then(|c| c.etag.as_deref());
        let path = forge.conventions().policy_path;
        let fresh = match forge.default_branch_file(repo, path, etag).await? {
            Revalidated::Unchanged => match known {
                Some(cached) => return Ok(cached.loaded),
                None => return Err(ForgeError::Failed(format!("{repo}: an unconditional read answered 304"))),
            },
            Revalidated::Absent => {
                Cached { etag: None, loaded: Loaded { policy: Policy::default(), error: None, blob: None } }
            }
            Revalidated::Changed { file, etag } => {
                let same_blob = known.as_ref().filter(|c| c.loaded.blob.as_deref() == Some(&file.sha));
                let loaded = match (same_blob, Policy::parse_for(&file.text, key.0)) {
                    (Some(cached), _) => cached.loaded.clone(),
                    (None, Ok(policy)) => Loaded { policy, error: None, blob: Some(file.sha) },
                    (None, Err(error)) => {
                        tracing::warn!(repo, %error, "invalid policy file; keeping the last good policy");
                        let last_good = known.map(|c| c.loaded.policy).unwrap_or_default();
                        Loaded { policy: last_good, error: Some(error), blob: Some(file.sha) }
                    }
                };
                Cached { etag, loaded }
            }
        };
        let loaded = fresh.loaded.clone();
        self.cache.lock().expect("policy cache lock").insert(key, fresh);
        Ok(loaded)
    }
}
