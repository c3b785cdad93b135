//! Backport decisions: which targets a merged hotfix goes to, what the backport branch and pull
//! request are called and say, and how each target's outcome is reported. No I/O here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::valid_branch;
use super::conventions::Conventions;
use super::markdown;
use super::policy::Policy;
use super::report::{CheckState, Report};
use crate::store::Millis;

pub const BACKPORT_CONTEXT: &str = "hotfix-lane/backport";
/// Marks the one comment listing a change's backports (apart from the lane's own comment).
pub const BACKPORT_MARKER: &str = "<!-- hotfix-lane:backport -->";
pub const BRANCH_PREFIX: &str = "hotfix-lane/backport/";
pub const BACKPORT_LABEL: &str = "backport";
pub const CONFLICT_LABEL: &str = "backport-conflict";
/// Labels that ask for a backport: `backport <branch>`.
const LABEL_PREFIX: &str = "backport ";

/// One target's backport, as the lane remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backport {
    pub state: BackportState,
    /// The backport pull request, once opened.
    #[serde(default)]
    pub pull: Option<u64>,
    /// The commit hotfix-lane pushed: a later head means people worked on the branch.
    #[serde(default)]
    pub tip: Option<String>,
    #[serde(default)]
    pub conflicts: Vec<ConflictPath>,
    /// The commits still to pick after the conflicting one.
    #[serde(default)]
    pub remaining: Vec<String>,
    /// Why the backport could not be made, for `Failed`.
    #[serde(default)]
    pub detail: Option<String>,
    pub requested_at: Millis,
    #[serde(default)]
    pub opened_at: Option<Millis>,
    #[serde(default)]
    pub merged_at: Option<Millis>,
    /// How long it may stay unmerged before it is reported as stale (the policy's, when asked).
    pub stale_after_ms: Millis,
}

impl Backport {
    /// A backport requested at `now`, not made yet.
    pub fn pending(now: Millis, policy: &Policy) -> Backport {
        Backport {
            state: BackportState::Pending,
            pull: None,
            tip: None,
            conflicts: vec![],
            remaining: vec![],
            detail: None,
            requested_at: now,
            opened_at: None,
            merged_at: None,
            stale_after_ms: policy.backport.stale_after.as_millis() as Millis,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackportState {
    /// Queued, not made yet.
    Pending,
    /// A pull request is open with a clean pick.
    Opened,
    /// A draft pull request is open with conflicts to resolve.
    Conflict,
    /// Nothing to do: the change is on the target already.
    AlreadyApplied,
    Failed,
    Merged,
    /// The backport pull request was closed without merging.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictPath {
    pub path: String,
    pub kind: ConflictKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Both sides changed the text: the file carries conflict markers.
    Content,
    /// Both sides added the file: markers around both versions.
    AddedOnBoth,
    /// Binary content changed on both sides: the target's version is kept.
    Binary,
    /// The target deleted a file the commit changes: the commit's version is kept.
    DeletedOnTarget,
    /// The commit deleted a file the target changed: the target's version is kept.
    DeletedByCommit,
}

impl ConflictKind {
    /// Whether the file carries markers that show when it is resolved.
    pub fn has_markers(self) -> bool {
        matches!(self, ConflictKind::Content | ConflictKind::AddedOnBoth)
    }

    pub fn describe(self) -> &'static str {
        match self {
            ConflictKind::Content => "changed on both sides",
            ConflictKind::AddedOnBoth => "added on both sides",
            ConflictKind::Binary => "binary, changed on both sides (target's version kept)",
            ConflictKind::DeletedOnTarget => "deleted on the target, changed by the commit (commit's version kept)",
            ConflictKind::DeletedByCommit => "deleted by the commit, changed on the target (target's version kept)",
        }
    }
}

/// Lines that show an unresolved conflict: git's markers at the start of a line.
pub fn has_conflict_markers(text: &str) -> bool {
    let mut lines = text.lines();
    lines.any(|l| l.starts_with("<<<<<<< ")) && lines.any(|l| l.starts_with(">>>>>>> "))
}

/// The branch a backport lives on: one per (change, target), so a retry finds it again.
pub fn branch_name(number: u64, target: &str) -> String {
    format!("{BRANCH_PREFIX}{number}-to-{target}")
}

/// The change and target a backport branch belongs to.
pub fn parse_branch(branch: &str) -> Option<(u64, &str)> {
    let (number, target) = branch.strip_prefix(BRANCH_PREFIX)?.split_once("-to-")?;
    Some((number.parse().ok()?, target)).filter(|(_, t)| valid_branch(t))
}

/// A `backport <branch>` label's branch.
pub fn label_target(label: &str) -> Option<&str> {
    let target = label.strip_prefix(LABEL_PREFIX)?.trim();
    valid_branch(target).then_some(target)
}

/// Where a change merged into `merged_into` is backported: the policy's targets (the default
/// branch when it names none), the branches asked for by label or command; never the branch it
/// merged into.
pub fn targets(
    policy: &Policy,
    default_branch: &str,
    merged_into: &str,
    labels: &[String],
    requested: &[String],
) -> Vec<String> {
    let configured = if policy.backport.targets.is_empty() {
        vec![default_branch.to_string()]
    } else {
        policy.backport.targets.clone()
    };
    let mut all: Vec<String> = Vec::new();
    let asked = labels.iter().filter_map(|l| label_target(l)).map(str::to_string);
    for target in configured.into_iter().chain(asked).chain(requested.iter().cloned()) {
        if target != merged_into && !all.contains(&target) {
            all.push(target);
        }
    }
    all
}

/// The backport pull request's title; a title that already names a backport target is not
/// prefixed twice. Titles are plain text on the forge, so the original's is not escaped.
pub fn title(target: &str, original: &str) -> String {
    let original = match original.strip_prefix("[Backport ").and_then(|rest| rest.split_once("] ")) {
        Some((_, rest)) => rest,
        None => original,
    };
    format!("[Backport {target}] {original}")
}

/// What the backport pull request says. Paths and branch names are shown as code, so nothing
/// in them renders.
pub struct PullText<'a> {
    pub conventions: &'a Conventions,
    pub number: u64,
    pub target: &'a str,
    pub merge_commit: &'a str,
    pub postmortem: Option<String>,
    pub conflicts: &'a [ConflictPath],
    pub conflict_commit: Option<&'a str>,
    pub remaining: &'a [String],
}

pub fn body(t: &PullText) -> String {
    let mut body = format!(
        "Backport of {} to {} (merge commit {}), opened by hotfix-lane.\n",
        t.conventions.change_ref(t.number),
        markdown::code(t.target),
        t.merge_commit
    );
    if let Some(postmortem) = &t.postmortem {
        body.push_str(&format!("\nPostmortem: {postmortem}\n"));
    }
    if !t.conflicts.is_empty() {
        let branch = branch_name(t.number, t.target);
        let picked = t.conflict_commit.map(|c| format!("Picking {c} conflicted. ")).unwrap_or_default();
        body.push_str(&format!("\n### Conflicts to resolve\n\n{picked}This draft carries the conflicted files as committed, with conflict markers; `hotfix-lane/backport` fails until they are resolved.\n\n"));
        for c in t.conflicts {
            body.push_str(&format!("- {}: {}\n", markdown::code(&c.path), c.kind.describe()));
        }
        body.push_str(&format!(
            "\nTo finish locally:\n\n```sh\ngit fetch origin {branch}\ngit switch {branch}\n# edit the files above, then\ngit commit -am \"Resolve backport conflicts\"\n"
        ));
        for commit in t.remaining {
            body.push_str(&format!("git cherry-pick -x {commit}\n"));
        }
        body.push_str(&format!(
            "git push origin HEAD\n```\n\nThen mark the {} ready for review.\n",
            t.conventions.change_noun
        ));
    }
    body
}

/// The result of every target, as one check on the original merge commit.
pub fn summary_report(backports: &BTreeMap<String, Backport>, conventions: &Conventions) -> Report {
    let count = |s: &[BackportState]| backports.values().filter(|b| s.contains(&b.state)).count();
    let failing: Vec<&str> = backports
        .iter()
        .filter(|(_, b)| matches!(b.state, BackportState::Conflict | BackportState::Failed | BackportState::Closed))
        .map(|(t, _)| t.as_str())
        .collect();
    let (state, description) = if count(&[BackportState::Pending]) > 0 {
        (CheckState::Pending, format!("backporting to {} branch(es)", backports.len()))
    } else if !failing.is_empty() {
        (CheckState::Failure, format!("backport needs work on {}", failing.join(", ")))
    } else {
        (CheckState::Success, format!("backported to {}", backports.keys().cloned().collect::<Vec<_>>().join(", ")))
    };
    Report { context: BACKPORT_CONTEXT.into(), state, description, details: comment(backports, conventions) }
}

/// The check on a backport pull request's head: fails while the conflicts the pick left remain.
/// `still_marked` are the conflicted files that still carry markers at `head`. The details say
/// the same in Markdown, paths as code: a check run's summary is Markdown.
pub fn head_report(backport: &Backport, head: &str, still_marked: &[String]) -> Report {
    let untouched = backport.tip.as_deref() == Some(head);
    let unmarked: Vec<&str> =
        backport.conflicts.iter().filter(|c| !c.kind.has_markers()).map(|c| c.path.as_str()).collect();
    let marked: Vec<&str> = still_marked.iter().map(String::as_str).collect();
    let (what, paths, then) = if !marked.is_empty() {
        ("conflict markers remain in", marked, "")
    } else if untouched && !unmarked.is_empty() {
        ("resolve", unmarked, " and push")
    } else {
        return Report::new(BACKPORT_CONTEXT, CheckState::Success, "no conflicts left".into(), String::new());
    };
    let description = format!("{what} {}{then}", paths.join(", "));
    let shown: Vec<String> = paths.iter().map(|p| markdown::code(p)).collect();
    let details = format!("{what} {}{then}", shown.join(", "));
    Report { context: BACKPORT_CONTEXT.into(), state: CheckState::Failure, description, details }
}

/// The one comment on the original change, edited as targets finish. Paths and failure
/// details (from git and the forge) are escaped for the table.
pub fn comment(backports: &BTreeMap<String, Backport>, conventions: &Conventions) -> String {
    let noun = conventions.change_noun_capitalized();
    let mut text = format!("{BACKPORT_MARKER}\n### Backports\n\n| Target | State | {noun} |\n|---|---|---|\n");
    for (target, b) in backports {
        let pull = b.pull.map_or_else(|| "—".to_string(), |n| conventions.change_ref(n));
        let state = match b.state {
            BackportState::Pending => "⏳ in progress".to_string(),
            BackportState::Opened => "✅ opened".to_string(),
            BackportState::Conflict => format!(
                "⚠️ conflicts in {}",
                b.conflicts.iter().map(|c| markdown::cell(&markdown::code(&c.path))).collect::<Vec<_>>().join(", ")
            ),
            BackportState::AlreadyApplied => "✅ already on the target".to_string(),
            BackportState::Failed => {
                format!("❌ failed: {}", markdown::text(b.detail.as_deref().unwrap_or("unknown reason")))
            }
            BackportState::Merged => "✅ merged".to_string(),
            BackportState::Closed => "❌ closed without merging".to_string(),
        };
        text.push_str(&format!("| {} | {state} | {pull} |\n", markdown::cell(&markdown::code(target))));
    }
    text
}

/// A backport pull request still waiting to merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmerged {
    pub target: String,
    pub pull: Option<u64>,
    pub state: BackportState,
    /// Since it was opened.
    pub age_ms: Millis,
    /// Open longer than the policy's `backport.stale_after`.
    pub stale: bool,
}

/// The backports opened but not merged (nor closed) at `now`.
pub fn unmerged(backports: &BTreeMap<String, Backport>, now: Millis) -> Vec<Unmerged> {
    backports
        .iter()
        .filter(|(_, b)| matches!(b.state, BackportState::Opened | BackportState::Conflict))
        .filter_map(|(target, b)| {
            let age_ms = now - b.opened_at?;
            let stale = age_ms > b.stale_after_ms;
            Some(Unmerged { target: target.clone(), pull: b.pull, state: b.state, age_ms, stale })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::conventions::GITHUB;

    #[test]
    fn branch_names_round_trip_with_slashes_in_targets() {
        let branch = branch_name(42, "release/1.4");
        assert_eq!(branch, "hotfix-lane/backport/42-to-release/1.4");
        assert_eq!(parse_branch(&branch), Some((42, "release/1.4")));
        assert_eq!(parse_branch("hotfix-lane/backport/x-to-main"), None);
        assert_eq!(parse_branch("feature/42-to-main"), None);
    }

    #[test]
    fn targets_default_to_the_default_branch_and_skip_where_it_merged() {
        let policy = Policy::default();
        assert_eq!(targets(&policy, "main", "release-1", &[], &[]), vec!["main"]);
        assert!(targets(&policy, "main", "main", &[], &[]).is_empty());
        let labels = vec!["backport release-2".to_string(), "backport ../x".to_string(), "hotfix".to_string()];
        assert_eq!(
            targets(&policy, "main", "release-1", &labels, &["release-3".into(), "main".into()]),
            vec!["main", "release-2", "release-3"]
        );
    }

    #[test]
    fn unmerged_backports_turn_stale_after_the_policy_threshold() {
        let day = 24 * 3600 * 1000;
        let mut opened = Backport::pending(0, &Policy::default());
        (opened.state, opened.opened_at, opened.pull) = (BackportState::Opened, Some(0), Some(7));
        let mut merged = opened.clone();
        merged.state = BackportState::Merged;
        let all = BTreeMap::from([("main".to_string(), opened), ("release-2".to_string(), merged)]);
        assert_eq!(unmerged(&all, day).len(), 1);
        assert!(!unmerged(&all, day)[0].stale);
        assert!(unmerged(&all, 4 * day)[0].stale, "the default threshold is 3 days");
    }

    #[test]
    fn titles_are_not_prefixed_twice() {
        assert_eq!(title("main", "Fix crash"), "[Backport main] Fix crash");
        assert_eq!(title("main", "[Backport release-1] Fix crash"), "[Backport main] Fix crash");
    }

    /// A path git allows, chosen to break out of a code span, a table cell and into HTML.
    const HOSTILE_PATH: &str = "docs/``x`` | ![i](https://x/i.png) <img src=x> @acme/everyone.md";

    fn conflicted() -> Backport {
        let mut b = Backport::pending(0, &Policy::default());
        b.state = BackportState::Conflict;
        b.conflicts = vec![ConflictPath { path: HOSTILE_PATH.into(), kind: ConflictKind::Content }];
        b
    }

    /// The code spans and other inline events of `markdown`, cells ended by `|`.
    fn inline_events(markdown: &str) -> Vec<String> {
        use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
        Parser::new_ext(markdown, Options::ENABLE_TABLES)
            .filter_map(|e| match e {
                Event::Code(c) => Some(format!("code:{c}")),
                Event::End(TagEnd::TableCell) => Some("|".into()),
                Event::Html(_) | Event::InlineHtml(_) => Some("html".into()),
                Event::Start(Tag::Image { .. } | Tag::Link { .. }) => Some("link".into()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_conflicting_path_with_backticks_and_pipes_stays_in_its_table_cell() {
        let mut failed = Backport::pending(0, &Policy::default());
        failed.state = BackportState::Failed;
        failed.detail = Some("push refused: `x` | <b>y</b>".into());
        let all = BTreeMap::from([("main".to_string(), conflicted()), ("release-1".to_string(), failed)]);
        let text = comment(&all, &GITHUB);
        // After the marker and the header row.
        let row: Vec<String> = inline_events(&text).into_iter().skip(4).collect();
        assert_eq!(
            row,
            ["code:main", "|", format!("code:{HOSTILE_PATH}").as_str(), "|", "|", "code:release-1", "|", "|", "|"]
        );
    }

    #[test]
    fn a_conflicting_path_is_shown_as_code_in_the_pull_request_and_its_check() {
        let b = conflicted();
        let text = PullText {
            conventions: &GITHUB,
            number: 4,
            target: "main",
            merge_commit: "abc",
            postmortem: None,
            conflicts: &b.conflicts,
            conflict_commit: None,
            remaining: &[],
        };
        let events = inline_events(&body(&text));
        assert!(events.contains(&format!("code:{HOSTILE_PATH}")), "{events:?}");
        assert!(!events.contains(&"html".into()) && !events.contains(&"link".into()), "{events:?}");
        let check = head_report(&b, "tip", &[HOSTILE_PATH.to_string()]);
        assert_eq!(check.description, format!("conflict markers remain in {HOSTILE_PATH}"));
        assert_eq!(inline_events(&check.details), [format!("code:{HOSTILE_PATH}")]);
    }

    #[test]
    fn markers_are_seen_only_at_line_starts() {
        assert!(has_conflict_markers("a\n<<<<<<< target\nx\n=======\ny\n>>>>>>> backport\n"));
        assert!(!has_conflict_markers("a\nprintln!(\"<<<<<<< not a marker\");\n"));
        assert!(!has_conflict_markers("=======\nheading underline\n"));
    }
}
