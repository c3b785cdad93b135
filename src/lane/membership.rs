//! Lane membership: is this change a hotfix, and who put it there?

use serde::{Deserialize, Serialize};

use super::conventions::Conventions;
use super::event::PullRequest;
use super::policy::Policy;
use super::report::{CheckState, Report, LANE_CONTEXT};
use crate::store::Millis;

/// Who applied the lane label, as far as the lane knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labeler {
    pub login: String,
    pub responder: bool,
    pub at: Millis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "lane", rename_all = "snake_case")]
pub enum Membership {
    #[default]
    Normal,
    /// In the lane: labelled by a responder.
    Hotfix { by: String, since: Millis },
    /// Labelled, but not by a responder (or by someone the lane could not identify).
    NotAuthorized { by: Option<String> },
    /// Labelled by a responder, but the head branch matches none of the policy's patterns.
    BranchMismatch,
}

impl Membership {
    pub fn in_lane(&self) -> bool {
        matches!(self, Membership::Hotfix { .. })
    }
}

/// Decides membership from the change's labels and branch and from who applied the label.
pub fn evaluate(pull: &PullRequest, policy: &Policy, labeler: Option<&Labeler>) -> Membership {
    let label = &policy.lane.label;
    if !pull.labels.iter().any(|l| l.eq_ignore_ascii_case(label)) {
        return Membership::Normal;
    }
    match labeler {
        Some(l) if l.responder => {
            let patterns = &policy.lane.branch_patterns;
            if patterns.is_empty() || patterns.iter().any(|p| glob_match(p, &pull.head_ref)) {
                Membership::Hotfix { by: l.login.clone(), since: l.at }
            } else {
                Membership::BranchMismatch
            }
        }
        Some(l) => Membership::NotAuthorized { by: Some(l.login.clone()) },
        None => Membership::NotAuthorized { by: None },
    }
}

/// The `hotfix-lane/lane` report; workflows read it to run the smoke suite only.
pub fn report(membership: &Membership, policy: &Policy, conventions: &Conventions) -> Report {
    let label = &policy.lane.label;
    match membership {
        Membership::Normal => Report::new(LANE_CONTEXT, CheckState::Success, "normal".into(), String::new()),
        Membership::Hotfix { by, .. } => Report::new(
            LANE_CONTEXT,
            CheckState::Success,
            "hotfix: smoke-only".into(),
            format!("In the hotfix lane: `{label}` applied by @{by}, a responder."),
        ),
        Membership::NotAuthorized { by } => Report::new(
            LANE_CONTEXT,
            CheckState::Failure,
            format!("{label} label not authorized"),
            format!(
                "The `{label}` label was applied by {}, who is not a responder. {}",
                by.as_ref().map_or("someone hotfix-lane could not identify".to_string(), |b| format!("@{b}")),
                who_can_authorize(policy, conventions)
            ),
        ),
        Membership::BranchMismatch => Report::new(
            LANE_CONTEXT,
            CheckState::Failure,
            "hotfix branch does not match policy".into(),
            format!(
                "The policy admits only head branches matching {}.",
                policy.lane.branch_patterns.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
            ),
        ),
    }
}

/// One sentence naming the responders, for refusals.
pub fn who_can_authorize(policy: &Policy, conventions: &Conventions) -> String {
    let r = &policy.responders;
    // As code: anyone can make the lane say this, and a mention would notify every responder
    // and every member of the team.
    let mut who: Vec<String> = r.users.iter().map(|u| format!("`@{u}`")).collect();
    who.extend(r.teams.iter().map(|t| format!("`{t}`")));
    if let Some(p) = r.min_permission {
        who.push(format!("anyone with `{}` permission or more", format!("{p:?}").to_lowercase()));
    }
    if who.is_empty() {
        format!("No responders are configured: list them under `[responders]` in `{}`.", conventions.policy_path)
    } else {
        format!("Responders who can put a change in the lane: {}.", who.join(", "))
    }
}

/// `*` matches any run of characters (including `/`); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::event::{Actor, ItemState};

    fn pull(labels: &[&str], head_ref: &str) -> PullRequest {
        PullRequest {
            number: 1,
            title: "t".into(),
            body: String::new(),
            author: Actor { id: 1, login: "dev".into() },
            state: ItemState::Open,
            draft: false,
            merged: false,
            merge_commit_sha: None,
            base_sha: None,
            head_sha: "abc".into(),
            head_ref: head_ref.into(),
            base_ref: "main".into(),
            from_fork: false,
            labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn by(login: &str, responder: bool) -> Labeler {
        Labeler { login: login.into(), responder, at: 7 }
    }

    #[test]
    fn the_label_counts_only_from_a_responder() {
        let policy = Policy::default();
        assert_eq!(evaluate(&pull(&[], "fix"), &policy, None), Membership::Normal);
        assert_eq!(
            evaluate(&pull(&["HotFix"], "fix"), &policy, Some(&by("alice", true))),
            Membership::Hotfix { by: "alice".into(), since: 7 }
        );
        assert_eq!(
            evaluate(&pull(&["hotfix"], "fix"), &policy, Some(&by("mallory", false))),
            Membership::NotAuthorized { by: Some("mallory".into()) }
        );
        assert_eq!(evaluate(&pull(&["hotfix"], "fix"), &policy, None), Membership::NotAuthorized { by: None });
    }

    #[test]
    fn branch_patterns_narrow_the_lane() {
        let policy = Policy::parse("[lane]\nbranch_patterns = [\"hotfix/*\"]").unwrap();
        assert!(evaluate(&pull(&["hotfix"], "hotfix/db"), &policy, Some(&by("a", true))).in_lane());
        assert_eq!(
            evaluate(&pull(&["hotfix"], "feature/x"), &policy, Some(&by("a", true))),
            Membership::BranchMismatch
        );
    }

    #[test]
    fn reports_read_as_the_contract_says() {
        use crate::lane::conventions::GITHUB;
        let policy = Policy::parse("[responders]\nusers = [\"alice\"]\nteams = [\"@acme/oncall\"]").unwrap();
        assert_eq!(report(&Membership::Normal, &policy, &GITHUB).description, "normal");
        assert_eq!(
            report(&Membership::Hotfix { by: "alice".into(), since: 0 }, &policy, &GITHUB).description,
            "hotfix: smoke-only"
        );
        let refused = report(&Membership::NotAuthorized { by: Some("bob".into()) }, &policy, &GITHUB);
        assert_eq!((refused.state, refused.description.as_str()), (CheckState::Failure, "hotfix label not authorized"));
        assert!(refused.details.contains("`@alice`, `@acme/oncall`"), "{}", refused.details);
    }

    #[test]
    fn with_no_responders_each_forge_names_its_own_policy_file() {
        use crate::lane::conventions::{GITHUB, GITLAB};
        let nobody = Policy::default();
        assert!(who_can_authorize(&nobody, &GITHUB).contains("`.github/hotfix-lane.toml`"));
        assert!(who_can_authorize(&nobody, &GITLAB).contains("`.gitlab/hotfix-lane.toml`"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("hotfix/*", "hotfix/a/b"));
        assert!(glob_match("*-hotfix", "db-hotfix"));
        assert!(glob_match("rel-*-fix-*", "rel-1-fix-2"));
        assert!(!glob_match("hotfix/*", "hotfixes"));
        assert!(glob_match("main", "main"));
        assert!(!glob_match("a*a", "a"));
    }
}
