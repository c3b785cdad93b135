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
    /// What precedes a change's number in a reference (`#2` on GitHub, `!2` on GitLab, where
    /// `#2` is an issue).
    pub change_sigil: &'static str,
    /// Where git keeps each change's own commits: `<change_refs>/<number>/head`.
    pub change_refs: &'static str,
}

pub const GITHUB: Conventions = Conventions {
    forge: Forge::Github,
    name: "GitHub",
    policy_path: ".github/hotfix-lane.toml",
    change_noun: "pull request",
    change_sigil: "#",
    change_refs: "refs/pull",
};

pub const GITLAB: Conventions = Conventions {
    forge: Forge::Gitlab,
    name: "GitLab",
    policy_path: ".gitlab/hotfix-lane.toml",
    change_noun: "merge request",
    change_sigil: "!",
    change_refs: "refs/merge-requests",
};

impl Conventions {
    pub fn of(forge: Forge) -> &'static Conventions {
        match forge {
            Forge::Github => &GITHUB,
            Forge::Gitlab => &GITLAB,
        }
    }

    /// Change `number` as the forge's Markdown links it.
    pub fn change_ref(&self, number: u64) -> String {
        format!("{}{number}", self.change_sigil)
    }

    /// [`Conventions::change_noun`] starting a sentence or a heading.
    pub fn change_noun_capitalized(&self) -> String {
        let mut chars = self.change_noun.chars();
        chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
    }
}
