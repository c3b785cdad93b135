//! The one name of a change across the lane: its forge, its repository's id and its number.
//! Every job about one change runs in the queue this key names, in order.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::event::Forge;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeKey {
    pub forge: Forge,
    pub repo_id: u64,
    pub number: u64,
}

impl ChangeKey {
    pub fn new(forge: Forge, repo_id: u64, number: u64) -> ChangeKey {
        ChangeKey { forge, repo_id, number }
    }
}

/// `github:186853002:pr:2`: the ordering key of the change's queue, as ingress writes it for the
/// change's own events.
impl fmt::Display for ChangeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:pr:{}", self.forge.as_str(), self.repo_id, self.number)
    }
}

/// The queue of a repository's merge-queue sweep.
pub fn queue_sweep_key(forge: Forge, repo_id: u64) -> String {
    format!("{}:{repo_id}:queue-sweep", forge.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_key_is_the_ordering_key_of_its_events() {
        let key = ChangeKey::new(Forge::Github, 186853002, 2);
        assert_eq!(key.to_string(), "github:186853002:pr:2");
        let gitlab = ChangeKey::new(Forge::Gitlab, 7, 12);
        assert_eq!(gitlab.to_string(), "gitlab:7:pr:12");
    }
}
