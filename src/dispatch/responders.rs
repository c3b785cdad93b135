//! Who is a responder, with refusals remembered for a few minutes per (repository, login,
//! policy blob): anyone can comment `/hotfix authorize`, and each refusal must not cost the
//! lane team and permission look-ups from its rate limit. Positive answers are never cached: a
//! responder taken off a team loses the power at the next decision.

use std::collections::HashMap;
use std::sync::Mutex;

use super::policies::Loaded;
use crate::forge::{Forge, ForgeError};
use crate::store::Millis;

/// How long a refusal is remembered. A policy edit (a new blob) forgets it at once; a new team
/// member waits at most this long.
const REMEMBER_MS: Millis = 3 * 60 * 1000;
/// Bounds the memory a flood of distinct commenters can take.
const MAX_REMEMBERED: usize = 10_000;

type Key = (String, String, Option<String>);

#[derive(Default)]
pub struct Responders {
    refused: Mutex<HashMap<Key, Millis>>,
}

impl Responders {
    pub async fn check<F: Forge>(
        &self,
        forge: &F,
        repo: &str,
        login: &str,
        loaded: &Loaded,
        now: Millis,
    ) -> Result<bool, ForgeError> {
        let key = (repo.to_string(), login.to_ascii_lowercase(), loaded.blob.clone());
        if self.refused.lock().expect("responder cache lock").get(&key).is_some_and(|at| now - at < REMEMBER_MS) {
            return Ok(false);
        }
        let responder = forge.is_responder(repo, login, &loaded.policy.responders).await?;
        let mut refused = self.refused.lock().expect("responder cache lock");
        if responder {
            refused.remove(&key);
        } else {
            if refused.len() >= MAX_REMEMBERED {
                refused.retain(|_, at| now - *at < REMEMBER_MS);
            }
            if refused.len() < MAX_REMEMBERED {
                refused.insert(key, now);
            }
        }
        Ok(responder)
    }
}
