//! The blocking postmortem check: which issue a hotfix names as its postmortem, and whether that
//! issue counts.

use super::markdown;
use super::policy::Policy;
use super::report::{CheckState, Report, POSTMORTEM_CONTEXT};

/// An issue named in a description: `#123`, `owner/repo#123` or an issue URL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IssueRef {
    /// `owner/repo`.
    pub repo: String,
    pub number: u64,
}

impl std::fmt::Display for IssueRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.repo, self.number)
    }
}

/// Finds the first `Postmortem: …` line of a description. `this_repo` resolves bare `#123`.
/// A line counts where a reader sees it, as it reads there: in a paragraph or a list item
/// (`- **Postmortem:** #12` too), never inside code, block quotes or HTML comments, which a
/// template or a quoted description may carry. Returns `Err` with a hint when the line is
/// there but its value is not a reference.
pub fn find_reference(body: &str, this_repo: &str) -> Result<Option<IssueRef>, String> {
    for line in markdown::paragraph_lines(body) {
        let Some((key, value)) = line.text.split_once(':') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("postmortem") {
            continue;
        }
        let value = value.trim();
        return parse_reference(value, this_repo).map(Some).ok_or_else(|| unreadable(value));
    }
    Ok(None)
}

/// The hint for a value that is not a reference. It quotes the value (text from the change)
/// as a code span, so nothing in it renders, cut short so the comment stays within bounds.
fn unreadable(value: &str) -> String {
    const SHOWN: usize = 80;
    let shown: String = value.chars().take(SHOWN).collect();
    let cut = if value.chars().nth(SHOWN).is_some() { "…" } else { "" };
    format!(
        "{} is not an issue reference; write `#123`, `owner/repo#123` or the issue's URL",
        markdown::code(&format!("Postmortem: {shown}{cut}"))
    )
}

fn parse_reference(value: &str, this_repo: &str) -> Option<IssueRef> {
    let value = value.split_whitespace().next()?;
    if let Some(number) = value.strip_prefix('#') {
        return Some(IssueRef { repo: this_repo.to_string(), number: number.parse().ok()? });
    }
    // https://<host>/<owner>/<repo>/issues/<n> (any host: GitHub Enterprise too)
    let Some(path) = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://")) else {
        // owner/repo#123
        let (repo, number) = value.split_once('#')?;
        return valid_repo(repo).then_some(IssueRef { repo: repo.to_string(), number: number.parse().ok()? });
    };
    let mut parts = path.trim_end_matches('/').split('/').skip(1);
    let (owner, name, kind, number) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let repo = format!("{owner}/{name}");
    if kind != "issues" || parts.next().is_some() || !valid_repo(&repo) {
        return None;
    }
    let number = number.split(['#', '?']).next()?.parse().ok()?;
    Some(IssueRef { repo, number })
}

/// `owner/name`, or a GitLab project path with its subgroups (`group/subgroup/name`, as the lane
/// itself writes a project's reference), in the characters GitHub and GitLab allow. The
/// reference comes from untrusted text and ends up in the lane's comments, so nothing else
/// (markdown, HTML) gets through.
fn valid_repo(repo: &str) -> bool {
    let part = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    repo.contains('/') && repo.split('/').all(part)
}

/// What the forge said about a referenced issue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IssueLookup {
    Found {
        is_pull_request: bool,
        labels: Vec<String>,
    },
    NotFound,
    /// Transferred to another repository (GitHub answers 301): it no longer is the issue named.
    Moved,
    /// Deleted (GitHub answers 410).
    Deleted,
}

/// The issue the postmortem check needs looked up: only for changes in the lane, and only in
/// allowed repositories.
pub fn to_look_up<'a>(
    in_lane: bool,
    reference: &'a Result<Option<IssueRef>, String>,
    this_repo: &str,
    policy: &Policy,
) -> Option<&'a IssueRef> {
    reference.as_ref().ok().and_then(Option::as_ref).filter(|r| in_lane && allowed(r, this_repo, policy))
}

/// Whether a reference may be looked up at all: this repository, or one the policy allows.
pub fn allowed(reference: &IssueRef, this_repo: &str, policy: &Policy) -> bool {
    reference.repo.eq_ignore_ascii_case(this_repo)
        || policy.postmortem.allowed_repos.iter().any(|r| r.eq_ignore_ascii_case(&reference.repo))
}

/// The postmortem check for a change. `reference` is the outcome of [`find_reference`];
/// `lookup` is what the forge said about an allowed reference (`None` when not looked up).
pub fn verdict(
    in_lane: bool,
    reference: &Result<Option<IssueRef>, String>,
    this_repo: &str,
    lookup: Option<&IssueLookup>,
    policy: &Policy,
) -> Report {
    let fail = |description: String, details: String| {
        Report::new(POSTMORTEM_CONTEXT, CheckState::Failure, description, details)
    };
    if !in_lane {
        return Report::new(POSTMORTEM_CONTEXT, CheckState::Success, "not a hotfix".into(), String::new());
    }
    let how = "Add a line `Postmortem: #<issue>` to the description (or `owner/repo#<issue>`, or the issue's URL), \
               or comment `/hotfix postmortem` to have one opened.";
    let reference = match reference {
        Err(problem) => return fail("postmortem reference unreadable".into(), format!("{problem}.\n\n{how}")),
        Ok(None) => {
            return fail("no postmortem referenced".into(), format!("This hotfix names no postmortem issue. {how}"))
        }
        Ok(Some(r)) => r,
    };
    let shown = short(reference, this_repo);
    if !allowed(reference, this_repo, policy) {
        return fail(
            format!("{shown}: repository not allowed"),
            format!(
                "`{}` is not this repository, and the policy's `postmortem.allowed_repos` does not list it. \
                 Reference an issue here, or add the repository to `allowed_repos`.",
                reference.repo
            ),
        );
    }
    let label = &policy.postmortem.label;
    match lookup {
        None | Some(IssueLookup::NotFound) => fail(
            format!("{shown} does not exist"),
            format!("{shown} was not found (or is not visible to hotfix-lane). {how}"),
        ),
        Some(IssueLookup::Moved) => fail(
            format!("{shown} was transferred"),
            format!("{shown} was moved to another repository. Reference the postmortem where it now lives. {how}"),
        ),
        Some(IssueLookup::Deleted) => fail(format!("{shown} was deleted"), format!("{shown} was deleted. {how}")),
        Some(IssueLookup::Found { is_pull_request: true, .. }) => fail(
            format!("{shown} is a pull request"),
            format!("{shown} is a pull request, not an issue: a postmortem is an issue with the `{label}` label."),
        ),
        Some(IssueLookup::Found { labels, .. }) if !labels.iter().any(|l| l.eq_ignore_ascii_case(label)) => fail(
            format!("{shown} lacks the `{label}` label"),
            format!(
                "{shown} exists but is not labelled `{label}`. Add the label to the issue and this check turns green."
            ),
        ),
        Some(IssueLookup::Found { .. }) => {
            Report::new(POSTMORTEM_CONTEXT, CheckState::Success, format!("postmortem {shown}"), String::new())
        }
    }
}

/// `#12` for this repository, `owner/repo#12` for another.
fn short(r: &IssueRef, this_repo: &str) -> String {
    if r.repo.eq_ignore_ascii_case(this_repo) {
        format!("#{}", r.number)
    } else {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(body: &str) -> Result<Option<IssueRef>, String> {
        find_reference(body, "acme/shop")
    }

    fn r(repo: &str, number: u64) -> Option<IssueRef> {
        Some(IssueRef { repo: repo.into(), number })
    }

    #[test]
    fn references_in_each_accepted_form() {
        assert_eq!(find("Fixes checkout.\n\nPostmortem: #123"), Ok(r("acme/shop", 123)));
        assert_eq!(find("postmortem: acme/incidents#7"), Ok(r("acme/incidents", 7)));
        assert_eq!(find("- **Postmortem:** https://github.com/acme/incidents/issues/9"), Ok(r("acme/incidents", 9)));
        assert_eq!(find("Postmortem: https://ghe.example/acme/shop/issues/4#issuecomment-1"), Ok(r("acme/shop", 4)));
        assert_eq!(find("no reference here\nPostmortems are good"), Ok(None));
        assert_eq!(find(""), Ok(None));
    }

    /// Found by fuzzing: backports and reverts carry `Postmortem: <project path>#N`, and on
    /// GitLab the path of a project in a subgroup has more than one `/`.
    #[test]
    fn a_reference_to_a_project_in_a_subgroup_reads_back() {
        let project = "group/sub/project";
        let issue = IssueRef { repo: project.into(), number: 50 };
        assert_eq!(find_reference(&format!("Postmortem: {issue}"), project), Ok(Some(issue.clone())));
        assert_eq!(find_reference("Postmortem: #50", project), Ok(Some(issue)));
        assert_eq!(find("Postmortem: a/b/c/d#1"), Ok(r("a/b/c/d", 1)));
        for bad in ["a//b#1", "/a/b#1", "a/b/#1", "a/<b>/c#1"] {
            assert!(find(&format!("Postmortem: {bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unreadable_reference_is_explained() {
        let err = find("Postmortem: soon").unwrap_err();
        assert!(err.contains("`Postmortem: soon` is not an issue reference"), "{err}");
        assert!(find("Postmortem: https://github.com/acme/shop/pull/4").is_err(), "a pull request URL is not an issue");
        assert!(find("Postmortem: #abc").is_err());
        assert!(find("Postmortem: https://h/x y/r/issues/1").is_err());
        assert!(find("Postmortem: a<b/r#1").is_err(), "only repository-name characters");
        assert!(find("Postmortem: x&lt;b&gt;/r#1").is_err(), "only repository-name characters");
    }

    #[test]
    fn the_value_is_read_as_shown() {
        assert_eq!(find("Postmortem: https://h/<b>x</b>/r/issues/1"), Ok(r("x/r", 1)), "the tags are not shown");
        assert_eq!(find("Postmortem: [x](javascript:alert)/r#1"), Ok(r("x/r", 1)), "a link reads as its text");
        assert_eq!(find("Postmortem: <!-- #1 --> #2"), Ok(r("acme/shop", 2)));
        assert_eq!(find("* [ ] **postmortem:** _#3_"), Ok(r("acme/shop", 3)));
        assert!(find("Postmortem: `#3`").is_err(), "code stays code");
    }

    #[test]
    fn hidden_and_quoted_postmortem_lines_do_not_count() {
        for hidden in [
            "> Postmortem: #1",
            "```\nPostmortem: #1\n```",
            "    Postmortem: #1",
            "<!--\nPostmortem: #1\n-->",
            "<!-- Postmortem: #1 -->",
            "- > Postmortem: #1",
            "`Postmortem: #1`",
        ] {
            assert_eq!(find(&format!("{hidden}\n\nPostmortem: #2")), Ok(r("acme/shop", 2)), "{hidden:?}");
            assert_eq!(find(hidden), Ok(None), "{hidden:?}");
        }
    }

    #[test]
    fn the_hint_quotes_the_value_inertly_and_briefly() {
        let err = find("Postmortem: soon` <img src=https://attacker.example/p.png> @acme/everyone").unwrap_err();
        assert!(err.starts_with("``Postmortem: soon`  @acme/everyone`` is not an issue reference"), "{err}");
        let long = find(&format!("Postmortem: {}", "x".repeat(500))).unwrap_err();
        assert!(long.len() < 200 && long.contains("x…"), "{long}");
    }

    #[test]
    fn each_failure_says_what_is_missing() {
        let policy = Policy::default();
        let check =
            |reference, lookup: Option<IssueLookup>| verdict(true, &reference, "acme/shop", lookup.as_ref(), &policy);
        let found = |pr: bool, labels: &[&str]| {
            Some(IssueLookup::Found { is_pull_request: pr, labels: labels.iter().map(|l| l.to_string()).collect() })
        };

        let ok = check(Ok(r("acme/shop", 5)), found(false, &["Postmortem"]));
        assert_eq!((ok.state, ok.description.as_str()), (CheckState::Success, "postmortem #5"));
        assert_eq!(check(Ok(None), None).description, "no postmortem referenced");
        assert_eq!(check(Ok(r("acme/shop", 5)), Some(IssueLookup::NotFound)).description, "#5 does not exist");
        assert_eq!(check(Ok(r("acme/shop", 5)), found(true, &["postmortem"])).description, "#5 is a pull request");
        assert_eq!(check(Ok(r("acme/shop", 5)), Some(IssueLookup::Moved)).description, "#5 was transferred");
        assert_eq!(check(Ok(r("acme/shop", 5)), Some(IssueLookup::Deleted)).description, "#5 was deleted");
        assert_eq!(check(Ok(r("acme/shop", 5)), found(false, &["bug"])).description, "#5 lacks the `postmortem` label");
        assert_eq!(check(Ok(r("other/repo", 5)), None).description, "other/repo#5: repository not allowed");
        assert_eq!(check(Err("bad".into()), None).description, "postmortem reference unreadable");
        let normal = verdict(false, &Ok(None), "acme/shop", None, &policy);
        assert_eq!((normal.state, normal.description.as_str()), (CheckState::Success, "not a hotfix"));
    }

    #[test]
    fn allow_listed_repositories_count() {
        let policy = Policy::parse("[postmortem]\nallowed_repos = [\"acme/incidents\"]").unwrap();
        let lookup = IssueLookup::Found { is_pull_request: false, labels: vec!["postmortem".into()] };
        let ok = verdict(true, &Ok(r("ACME/Incidents", 2)), "acme/shop", Some(&lookup), &policy);
        assert_eq!(ok.state, CheckState::Success, "{ok:?}");
        assert_eq!(ok.description, "postmortem ACME/Incidents#2");
    }
}
