//! The per-repository policy file (`.github/hotfix-lane.toml` / `.gitlab/hotfix-lane.toml`).
//!
//! Absent means defaults. Unknown keys and bad values are errors whose message names the place
//! (`line:column`) and says what would be valid, so a wrong policy is fixed, not guessed at.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event::Forge;

mod check;

use check::Problem;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub lane: LanePolicy,
    pub responders: Responders,
    pub postmortem: PostmortemPolicy,
    pub backport: BackportPolicy,
    pub merge: MergePolicy,
    pub approval: ApprovalPolicy,
    pub metrics: MetricsPolicy,
}

/// How the hotfix figures read a repository: which deployments count as production, and which
/// label gives a change's severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsPolicy {
    /// Environments whose successful deployments count as reaching production (time to
    /// deploy). Compared case-insensitively.
    pub production: Vec<String>,
    /// The label prefix of a severity: `severity` reads `severity:1` and `severity::1`.
    pub severity_label: String,
}

impl Default for MetricsPolicy {
    fn default() -> Self {
        MetricsPolicy { production: vec!["production".into()], severity_label: "severity".into() }
    }
}

impl MetricsPolicy {
    pub fn is_production(&self, environment: &str) -> bool {
        self.production.iter().any(|e| e.eq_ignore_ascii_case(environment))
    }
}

/// The `hotfix-lane/approval` check, for branch protection that requires it instead of a review
/// count (the lane then merges through ordinary protection, with no bypass list): green when
/// `reviews` people with write access approved the head commit, or while the lane merges that
/// commit on a responder's live grant. Off unless `reviews` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalPolicy {
    pub reviews: Option<u32>,
}

impl ApprovalPolicy {
    /// The approving reviews the check asks for; `None` when it is not reported.
    pub fn required(&self) -> Option<u32> {
        self.reviews
    }
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
    // GitHub's repository roles.
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
    // GitLab's access levels (members of a parent group hold theirs in every project below).
    Guest,
    Reporter,
    Developer,
    Maintainer,
    Owner,
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
    /// How long after the merge the postmortem is due (closed, or labelled `done_label`).
    #[serde(with = "duration_text")]
    pub due_after: Duration,
    /// A label that marks the postmortem done while its issue stays open.
    pub done_label: Option<String>,
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
    /// Checks that must be green before a hotfix merges, each from the source it names.
    pub smoke_checks: Vec<SmokeCheck>,
    /// A `neutral` (or `skipped`) conclusion counts as a pass only when the policy says so:
    /// otherwise a smoke job that decided not to run would let a hotfix through untested.
    pub neutral_passes: bool,
    pub skipped_passes: bool,
    pub allow_forks: bool,
    /// Lets a responder authorize a change they wrote (for a team whose on-call is alone at
    /// night); such merges are marked as self-authorized everywhere they are reported.
    pub allow_self_authorize: bool,
}

/// A smoke check and who may report it. A check counts only from the source named: the App
/// that created a check run (`app`, its slug), or the user who posted a commit status
/// (`creator`). A plain name counts from anyone who can post statuses — every writer, and every
/// workflow a change adds — which `config check` warns about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmokeCheck {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
}

impl SmokeCheck {
    pub fn named(name: &str) -> SmokeCheck {
        SmokeCheck { name: name.to_string(), app: None, creator: None }
    }

    /// Whether anyone with write access could post this check.
    pub fn is_unpinned(&self) -> bool {
        self.app.is_none() && self.creator.is_none()
    }
}

/// `"smoke"` or `{ name = "smoke", app = "github-actions" }`; unknown keys in the table are
/// errors like everywhere else in the file.
impl<'de> Deserialize<'de> for SmokeCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            name: String,
            app: Option<String>,
            creator: Option<String>,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SmokeCheck;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a check name, or a table like `{ name = \"smoke\", app = \"github-actions\" }`")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<SmokeCheck, E> {
                Ok(SmokeCheck::named(name))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SmokeCheck, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if t.app.is_some() && t.creator.is_some() {
                    return Err(serde::de::Error::custom(
                        "a smoke check comes from an App (`app`, for check runs) or a user (`creator`, for statuses), not both",
                    ));
                }
                Ok(SmokeCheck { name: t.name, app: t.app, creator: t.creator })
            }
        }
        d.deserialize_any(Visitor)
    }
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
        PostmortemPolicy {
            label: "postmortem".into(),
            allowed_repos: vec![],
            template: None,
            open_on_label: false,
            due_after: Duration::from_secs(7 * 24 * 3600),
            done_label: None,
        }
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
            neutral_passes: false,
            skipped_passes: false,
            allow_forks: false,
            allow_self_authorize: false,
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
    /// The GitHub policy in `text`, or its first problem.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse_for(text, Forge::Github)
    }

    /// The policy in `text` for a repository on `forge`, or its first problem.
    pub fn parse_for(text: &str, forge: Forge) -> Result<Policy, PolicyError> {
        Policy::check_for(text, forge)
            .map_err(|errors| errors.into_iter().next().expect("a refusal names its problems"))
    }

    /// The GitHub policy in `text`, or every problem found in it, in the order of the file.
    pub fn check(text: &str) -> Result<Policy, Vec<PolicyError>> {
        Policy::check_for(text, Forge::Github)
    }

    /// The policy in `text` for a repository on `forge`, or every problem found in it, in the
    /// order of the file. The schema is the same on every forge; responders are named as the
    /// forge knows them.
    pub fn check_for(text: &str, forge: Forge) -> Result<Policy, Vec<PolicyError>> {
        let policy: Policy = toml::from_str(text).map_err(|first| check::errors(text, first, forge))?;
        let problems = policy.problems(forge);
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(check::locate(text, problems))
        }
    }

    /// Values that deserialize but break a rule, each with the key it is about.
    fn problems(&self, forge: Forge) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut at = |section, key, entry, message: String| out.push(Problem { section, key, entry, message });
        if self.lane.label.trim().is_empty() {
            at("lane", "label", None, "lane.label must not be empty".into());
        }
        if self.postmortem.label.trim().is_empty() {
            at("postmortem", "label", None, "postmortem.label must not be empty".into());
        }
        for (i, bad) in self.responders.teams.iter().enumerate().filter(|(_, t)| !is_team(t, forge)) {
            let shape = match forge {
                Forge::Github => "is not a team; write it as `@org/team`",
                Forge::Gitlab => "is not a group; write it as `@group` or `@group/subgroup`",
            };
            at("responders", "teams", Some(i), format!("responders.teams: `{bad}` {shape}"));
        }
        for (i, bad) in self.postmortem.allowed_repos.iter().enumerate().filter(|(_, r)| !is_repo(r)) {
            at(
                "postmortem",
                "allowed_repos",
                Some(i),
                format!("postmortem.allowed_repos: `{bad}` is not `owner/repo`"),
            );
        }
        if self.merge.max_grant.is_zero() {
            at("merge", "max_grant", None, "merge.max_grant must be longer than zero".into());
        }
        if let Some(min) = self.responders.min_permission {
            let allowed = match forge {
                Forge::Github => "use \"write\", \"maintain\" or \"admin\"",
                Forge::Gitlab => "use \"developer\", \"maintainer\" or \"owner\"",
            };
            let message = if min.forge() != forge {
                Some(format!(
                    "responders.min_permission = \"{}\" is not a {} role; {allowed}",
                    min.word(),
                    forge_name(forge)
                ))
            } else if matches!(min, Permission::Read | Permission::Triage | Permission::Guest | Permission::Reporter) {
                Some(format!(
                    "responders.min_permission = \"{}\" would let people who cannot even push merge past reviews; \
                     {allowed}",
                    min.word()
                ))
            } else {
                None
            };
            if let Some(message) = message {
                at("responders", "min_permission", None, message);
            }
        }
        match (self.approval.reviews, forge) {
            (Some(0), _) | (Some(11..), _) => {
                at("approval", "reviews", None, "approval.reviews must be between 1 and 10".into())
            }
            (Some(_), Forge::Gitlab) => at(
                "approval",
                "reviews",
                None,
                "approval.reviews: the `hotfix-lane/approval` check is for GitHub branch protection; on GitLab \
                 use approval rules"
                    .into(),
            ),
            _ => {}
        }
        for (i, _) in self.merge.smoke_checks.iter().enumerate().filter(|(_, c)| c.name.trim().is_empty()) {
            at("merge", "smoke_checks", Some(i), "merge.smoke_checks: a check needs a `name`".into());
        }
        out
    }

    /// What is valid but weaker than it looks, worded for the person who edits the file.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for check in self.merge.smoke_checks.iter().filter(|c| c.is_unpinned()) {
            out.push(format!(
                "merge.smoke_checks: `{}` counts from anyone who can post a status or check run, including \
                 workflows a change adds; pin it to its source: {{ name = \"{}\", app = \"<your CI App>\" }}",
                check.name, check.name
            ));
        }
        if self.approval.reviews.is_some() {
            out.push(
                "approval.reviews: hotfix-lane reports `hotfix-lane/approval` only as a GitHub App; require it with \
                 the hotfix-lane App as its source, or anyone who can push can post it"
                    .into(),
            );
        }
        if self.merge.allow_self_authorize {
            out.push(
                "merge.allow_self_authorize = true: a responder can merge their own change with no second person"
                    .into(),
            );
        }
        if self.merge.allow_forks {
            out.push("merge.allow_forks = true: changes from forks can be merged on authorization".into());
        }
        for bad in self.responders.users.iter().filter(|u| u.starts_with('@')) {
            let login = bad.trim_start_matches('@');
            out.push(if login.contains('/') {
                format!("responders.users: `{bad}` looks like a team; list it under `responders.teams`")
            } else {
                format!(
                    "responders.users: `{bad}` matches no login, so that person is not a responder; \
                     write `{login}` without the `@`"
                )
            });
        }
        if self.responders.users.iter().any(|u| u.trim().is_empty()) {
            out.push("responders.users: an empty login matches nobody; remove it".into());
        }
        let r = &self.responders;
        if r.users.is_empty() && r.teams.is_empty() && r.min_permission.is_none() {
            out.push(
                "no responders are listed: nobody can put a change in the lane; list `responders.users`, \
                 `responders.teams` or set `responders.min_permission`"
                    .into(),
            );
        }
        out
    }
}

impl Permission {
    pub fn word(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Triage => "triage",
            Permission::Write => "write",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
            Permission::Guest => "guest",
            Permission::Reporter => "reporter",
            Permission::Developer => "developer",
            Permission::Maintainer => "maintainer",
            Permission::Owner => "owner",
        }
    }

    /// The forge whose role this is.
    pub fn forge(self) -> Forge {
        match self {
            Permission::Read | Permission::Triage | Permission::Write | Permission::Maintain | Permission::Admin => {
                Forge::Github
            }
            _ => Forge::Gitlab,
        }
    }

    /// GitLab's number for an access level (`None` for GitHub's roles).
    pub fn gitlab_access_level(self) -> Option<u64> {
        match self {
            Permission::Guest => Some(10),
            Permission::Reporter => Some(20),
            Permission::Developer => Some(30),
            Permission::Maintainer => Some(40),
            Permission::Owner => Some(50),
            _ => None,
        }
    }
}

fn forge_name(forge: Forge) -> &'static str {
    crate::lane::conventions::Conventions::of(forge).name
}

/// GitHub: `@org/team`. GitLab: `@group`, `@group/subgroup/…`.
fn is_team(t: &str, forge: Forge) -> bool {
    let Some(path) = t.strip_prefix('@') else { return false };
    let parts: Vec<&str> = path.split('/').collect();
    let named =
        parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    named
        && match forge {
            Forge::Github => parts.len() == 2,
            Forge::Gitlab => parts.len() <= 20,
        }
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
    let bad = || format!("`{text}` is not a duration; write it like `90s`, `30m`, `4h`, `2d` or `1h30m`");
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
allow_self_authorize = true
"#,
        )
        .unwrap();
        assert_eq!(p.lane.label, "sev1");
        assert_eq!(p.responders.min_permission, Some(Permission::Maintain));
        assert_eq!(p.merge.max_grant, Duration::from_secs(5400));
        assert_eq!(p.merge.method, MergeMethod::Merge);
        assert_eq!(p.merge.smoke_checks, [SmokeCheck::named("smoke")]);
        assert!(p.merge.allow_self_authorize);
    }

    #[test]
    fn unknown_key_is_an_error_with_its_place() {
        let err = Policy::parse("[lane]\nlabel = \"hotfix\"\nlabels = [\"x\"]\n").unwrap_err();
        assert_eq!(err.location, Some((3, 1)), "{err}");
        assert!(err.message.contains("unknown field `labels`"), "{err}");
        assert!(err.to_string().starts_with("3:1: "), "{err}");
    }

    #[test]
    fn gitlab_responders_are_groups_and_access_levels() {
        let gitlab = |text: &str| Policy::parse_for(text, Forge::Gitlab);
        let p = gitlab("[responders]\nteams = [\"@acme\", \"@acme/platform/sre\"]\nmin_permission = \"maintainer\"\n")
            .unwrap();
        assert_eq!(p.responders.min_permission.and_then(Permission::gitlab_access_level), Some(40));
        for low in ["guest", "reporter"] {
            let err = gitlab(&format!("[responders]\nmin_permission = \"{low}\"\n")).unwrap_err();
            assert!(err.message.contains("cannot even push") && err.message.contains("\"developer\""), "{err}");
        }
        let err = gitlab("[responders]\nmin_permission = \"write\"\n").unwrap_err();
        assert!(err.message.contains("\"write\" is not a GitLab role"), "{err}");
        let err = gitlab("[responders]\nteams = [\"acme/sre\"]\n").unwrap_err();
        assert!(err.message.contains("`@group/subgroup`"), "{err}");
        let err = Policy::parse("[responders]\nteams = [\"@acme\"]\n").unwrap_err();
        assert!(err.message.contains("`@org/team`"), "a lone org is no GitHub team: {err}");
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Policy::parse("[merge]\nmax_grant = \"soon\"\n").unwrap_err();
        assert_eq!(err.location, Some((2, 13)), "{err}");
        assert!(err.message.contains("`soon` is not a duration"), "{err}");
        let err = Policy::parse("[responders]\nteams = [\"oncall\"]\n").unwrap_err();
        assert!(err.message.contains("`@org/team`"), "{err}");
        let err = Policy::parse("[responders]\nmin_permission = \"owner\"\n").unwrap_err();
        assert!(err.message.contains("\"owner\" is not a GitHub role"), "{err}");
        let err = Policy::parse("[responders]\nmin_permission = \"sovereign\"\n").unwrap_err();
        assert!(err.message.contains("unknown variant `sovereign`"), "{err}");
        for low in ["read", "triage"] {
            let err = Policy::parse(&format!("[responders]\nmin_permission = \"{low}\"\n")).unwrap_err();
            assert!(err.message.contains("cannot even push"), "{err}");
        }
    }

    #[test]
    fn smoke_checks_name_their_source() {
        let p = Policy::parse(
            "[merge]\nsmoke_checks = [\"lint\", { name = \"smoke\", app = \"github-actions\" }, \
             { name = \"e2e\", creator = \"ci-bot\" }]\n",
        )
        .unwrap();
        assert_eq!(
            p.merge.smoke_checks,
            [
                SmokeCheck::named("lint"),
                SmokeCheck { name: "smoke".into(), app: Some("github-actions".into()), creator: None },
                SmokeCheck { name: "e2e".into(), app: None, creator: Some("ci-bot".into()) },
            ]
        );
        let warnings = p.warnings();
        assert!(warnings.iter().any(|w| w.contains("`lint` counts from anyone")), "{warnings:?}");
        assert!(!warnings.iter().any(|w| w.contains("`smoke`")), "{warnings:?}");
        let err = Policy::parse("[merge]\nsmoke_checks = [{ name = \"smoke\", ap = \"x\" }]\n").unwrap_err();
        assert!(err.message.contains("unknown field `ap`"), "{err}");
        assert_eq!(err.location.map(|l| l.0), Some(2), "{err}");
        let err =
            Policy::parse("[merge]\nsmoke_checks = [{ name = \"s\", app = \"a\", creator = \"c\" }]\n").unwrap_err();
        assert!(err.message.contains("not both"), "{err}");
    }

    #[test]
    fn weaker_settings_are_warned_about() {
        let p = Policy::parse("[merge]\nallow_self_authorize = true\n").unwrap();
        let w = p.warnings();
        assert!(w.iter().any(|w| w.contains("no second person")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("nobody can put a change in the lane")), "{w:?}");
        assert!(Policy::parse("[responders]\nusers = [\"alice\"]\n").unwrap().warnings().is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_its_place() {
        let text = "[lane]\nlabel = \"\"\ncolour = \"red\"\n[responders]\nteams = [\"@acme/oncall\", \"oncall\"]\n\
                    min_permission = \"owner\"\n[merge]\nmax_grant = \"soon\"\n[extra]\nx = 1\n";
        let errors = Policy::check(text).unwrap_err();
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "2:9: lane.label must not be empty",
                "3:1: unknown field `colour`, expected `label` or `branch_patterns`",
                "5:26: responders.teams: `oncall` is not a team; write it as `@org/team`",
                "6:18: responders.min_permission = \"owner\" is not a GitHub role; use \"write\", \"maintain\" or \"admin\"",
                "8:13: `soon` is not a duration; write it like `90s`, `30m`, `4h`, `2d` or `1h30m`",
                "9:2: unknown field `extra`, expected one of `lane`, `responders`, `postmortem`, `backport`, `merge`, `approval`, `metrics`",
            ],
            "{shown:#?}"
        );
        assert_eq!(Policy::parse(text).unwrap_err(), errors[0], "parse names the first of them");
    }

    #[test]
    fn semantic_problems_name_their_line_and_column() {
        let errors = Policy::check(
            "[postmortem]\nlabel = \" \"\nallowed_repos = [\"acme\"]\n[merge]\nmax_grant = \"0s\"\n\
             smoke_checks = [\"ok\", { name = \"\", app = \"ci\" }]\n[responders]\nmin_permission = \"triage\"\n",
        )
        .unwrap_err();
        let places: Vec<_> = errors.iter().map(|e| e.location).collect();
        assert_eq!(places, [Some((2, 9)), Some((3, 18)), Some((5, 13)), Some((6, 23)), Some((8, 18))], "{errors:#?}");
        // Dotted keys and inline sections are found too.
        let errors = Policy::check("lane.label = \"\"\nmerge = { max_grant = \"0s\" }\n").unwrap_err();
        assert_eq!(errors.iter().map(|e| e.location).collect::<Vec<_>>(), [Some((1, 14)), Some((2, 23))]);
    }

    #[test]
    fn a_syntax_error_is_reported_alone() {
        let errors = Policy::check("[lane\nlabel = \"\"\n").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].location.map(|l| l.0), Some(1), "{errors:#?}");
    }

    #[test]
    fn sections_are_the_policy_fields() {
        let value = toml::Value::try_from(Policy::default()).unwrap();
        let keys: Vec<&str> = value.as_table().unwrap().keys().map(String::as_str).collect();
        let mut sections = check::SECTIONS.to_vec();
        sections.sort_unstable();
        assert_eq!(keys, sections);
    }

    #[test]
    fn responders_nobody_can_be_are_warned_about() {
        let w = Policy::parse("[responders]\nusers = [\"@alice\", \"bob\", \"@acme/oncall\"]\n").unwrap().warnings();
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(w[0].contains("`@alice` matches no login") && w[0].contains("write `alice` without the `@`"), "{w:#?}");
        assert!(w[1].contains("`@acme/oncall` looks like a team"), "{w:#?}");
        let w = Policy::parse("[responders]\nusers = []\nteams = []\n").unwrap().warnings();
        assert!(w.iter().any(|w| w.contains("nobody can put a change in the lane")), "{w:#?}");
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
