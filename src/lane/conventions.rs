//! What differs between forges in the lane's words and paths, in one place per forge: the glue
//! and the lane's texts take these instead of naming a forge.

use super::event::Forge;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conventions {
    pub forge: Forge,
    /// The forge's name in the lane's sentences ("GitHub refused to merge …").
    pub name: &'static str,
    /// Where the policy lives on the default branch.
    pub policy_path: &'static str,
    /// What the forge calls a change.
    pub change_noun: &'static str,
}

pub const GITHUB: Conventions = Conventions {
    forge: Forge::Github,
    name: "GitHub",
    policy_path: ".github/hotfix-lane.toml",
    change_noun: "pull request",
};

pub const GITLAB: Conventions = Conventions {
    forge: Forge::Gitlab,
    name: "GitLab",
    policy_path: ".gitlab/hotfix-lane.toml",
    change_noun: "merge request",
};

impl Conventions {
    pub fn of(forge: Forge) -> &'static Conventions {
        match forge {
            Forge::Github => &GITHUB,
            Forge::Gitlab => &GITLAB,
        }
    }
}
