//! The per-repository policy file (`.github/hotfix-lane.toml` / `.gitlab/hotfix-lane.toml`).
//!
//! Absent means defaults. Unknown keys and bad values are errors whose message names the place
//! (`line:column`) and says what would be valid, so a wrong policy is fixed, not guessed at.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub lane: LanePolicy,
    pub responders: Responders,
    pub postmortem: PostmortemPolicy,
    pub backport: BackportPolicy,
    pub merge: MergePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanePolicy {
    /// The label that puts a change in the lane.
    pub label: String,
    /// If set, the head branch must also match one of these (`*` matches any run of characters).
    pub branch_patterns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Responders {
    pub users: Vec<String>,
    /// `@org/team` entries.
    pub teams: Vec<String>,
    /// Anyone with at least this repository permission is a responder.
    pub min_permission: Option<Permission>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostmortemPolicy {
    pub label: String,
    /// Other repositories (`owner/repo`) whose issues may serve as the postmortem.
    pub allowed_repos: Vec<String>,
    /// Path (on the default branch) of the issue template; a built-in one is used otherwise.
    pub template: Option<String>,
    /// Open the postmortem issue as soon as the lane label is applied.
    pub open_on_label: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackportPolicy {
    /// Branches to backport to; empty means the repository's default branch.
    pub targets: Vec<String>,
    pub labels: Vec<String>,
    /// Report unmerged backports older than this.
    #[serde(with = "duration_text")]
    pub stale_after: Duration,
    /// What a conflicting backport becomes: a draft pull request, or an issue.
    pub on_conflict: OnConflict,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    #[default]
    Draft,
    Issue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MergePolicy {
    pub method: MergeMethod,
    /// Longest grant a responder may give.
    #[serde(with = "duration_text")]
    pub max_grant: Duration,
    /// Checks that must be green before a hotfix merges.
    pub smoke_checks: Vec<String>,
    pub allow_forks: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

impl Default for LanePolicy {
    fn default() -> Self {
        LanePolicy { label: "hotfix".into(), branch_patterns: vec![] }
    }
}

impl Default for PostmortemPolicy {
    fn default() -> Self {
        PostmortemPolicy { label: "postmortem".into(), allowed_repos: vec![], template: None, open_on_label: false }
    }
}

impl Default for BackportPolicy {
    fn default() -> Self {
        BackportPolicy {
            targets: vec![],
            labels: vec![],
            stale_after: Duration::from_secs(3 * 24 * 3600),
            on_conflict: OnConflict::Draft,
        }
    }
}

impl Default for MergePolicy {
    fn default() -> Self {
        MergePolicy {
            method: MergeMethod::Squash,
            max_grant: Duration::from_secs(4 * 3600),
            smoke_checks: vec![],
            allow_forks: false,
        }
    }
}

/// A policy file problem, worded for the person who edits the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location.map(|(l, c)| format!("{l}:{c}: ")).unwrap_or_default())]
pub struct PolicyError {
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError {
            location: e.span().map(|span| line_column(text, span.start)),
            message: e.message().trim().to_string(),
        })?;
        policy.validate().map_err(|message| PolicyError { location: None, message })?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), String> {
        if self.lane.label.trim().is_empty() {
            return Err("lane.label must not be empty".into());
        }
        if self.postmortem.label.trim().is_empty() {
            return Err("postmortem.label must not be empty".into());
        }
        if let Some(bad) = self.responders.teams.iter().find(|t| !is_team(t)) {
            return Err(format!("responders.teams: `{bad}` is not a team; write it as `@org/team`"));
        }
        if let Some(bad) = self.postmortem.allowed_repos.iter().find(|r| !is_repo(r)) {
            return Err(format!("postmortem.allowed_repos: `{bad}` is not `owner/repo`"));
        }
        if self.merge.max_grant.is_zero() {
            return Err("merge.max_grant must be longer than zero".into());
        }
        Ok(())
    }
}

fn is_team(t: &str) -> bool {
    t.strip_prefix('@')
        .and_then(|t| t.split_once('/'))
        .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
}

fn is_repo(r: &str) -> bool {
    r.split_once('/').is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses durations written as `90s`, `30m`, `4h`, `2d` or combinations like `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration; write it like `30m`, `4h` or `1h30m`");
    let mut total = 0u64;
    let mut digits = String::new();
    for ch in text.trim().chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = total.checked_add(n.checked_mul(unit).ok_or_else(bad)?).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || text.trim().is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if s >= unit {
            out.push_str(&format!("{}{name}", s / unit));
            s %= unit;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        let p = Policy::parse("").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.lane.label, "hotfix");
        assert_eq!(p.postmortem.label, "postmortem");
        assert_eq!(p.merge.max_grant, Duration::from_secs(4 * 3600));
    }

    #[test]
    fn full_file_parses() {
        let p = Policy::parse(
            r#"
[lane]
label = "sev1"
branch_patterns = ["hotfix/*"]
[responders]
users = ["alice"]
teams = ["@acme/oncall"]
min_permission = "maintain"
[postmortem]
allowed_repos = ["acme/incidents"]
[backport]
targets = ["main", "release-2"]
stale_after = "2d"
[merge]
method = "merge"
max_grant = "1h30m"
smoke_checks = ["smoke"]
"#,
        )
        .unwrap();
        assert_eq!(p.lane.label, "sev1");
        assert_eq!(p.responders.min_permission, Some(Permission::Maintain));
        assert_eq!(p.merge.max_grant, Duration::from_secs(5400));
        assert_eq!(p.merge.method, MergeMethod::Merge);
    }

    #[test]
    fn unknown_key_is_an_error_with_its_place() {
        let err = Policy::parse("[lane]\nlabel = \"hotfix\"\nlabels = [\"x\"]\n").unwrap_err();
        assert_eq!(err.location, Some((3, 1)), "{err}");
        assert!(err.message.contains("unknown field `labels`"), "{err}");
        assert!(err.to_string().starts_with("3:1: "), "{err}");
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Policy::parse("[merge]\nmax_grant = \"soon\"\n").unwrap_err();
        assert_eq!(err.location, Some((2, 13)), "{err}");
        assert!(err.message.contains("`soon` is not a duration"), "{err}");
        let err = Policy::parse("[responders]\nteams = [\"oncall\"]\n").unwrap_err();
        assert!(err.message.contains("`@org/team`"), "{err}");
        let err = Policy::parse("[responders]\nmin_permission = \"owner\"\n").unwrap_err();
        assert!(err.message.contains("unknown variant `owner`"), "{err}");
    }

    #[test]
    fn durations_round_trip() {
        for text in ["90s", "30m", "4h", "2d", "1h30m"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert!(parse_duration("4").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
    }
}
