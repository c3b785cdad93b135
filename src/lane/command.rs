//! Slash commands in change comments: `/hotfix authorize [DURATION] [REASON]`,
//! `/hotfix revoke`, `/hotfix backport <branch>`, `/hotfix postmortem`, `/hotfix revert`.

use std::time::Duration;

use super::markdown;
use super::policy::parse_duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Authorize {
        duration: Option<Duration>,
        reason: Option<String>,
    },
    Revoke,
    Backport {
        branch: String,
    },
    Postmortem,
    /// Opens the revert of a merged hotfix as a new change in the lane.
    Revert,
}

/// Every `/hotfix` line of a comment, in order. A command counts where a person reading the
/// comment sees one: a line of a paragraph that starts with the plain text `/hotfix`. Nothing
/// inside code (fenced with any fence, indented or inline), block quotes, HTML (blocks,
/// comments, or a `<details>` it wraps), headings, tables or list items runs: quoting or
/// pasting someone's command, or listing the commands, must not run them, and nothing hidden
/// from the page may act under the commenter's name. The arguments are the line as shown.
pub fn parse(body: &str) -> Vec<Result<Command, String>> {
    markdown::paragraph_lines(body)
        .into_iter()
        .filter(|line| line.plain_start && !line.in_list)
        .filter_map(|line| {
            let mut words = line.text.split_whitespace();
            (words.next() == Some("/hotfix")).then(|| parse_one(&words.collect::<Vec<_>>()))
        })
        .collect()
}

fn parse_one(args: &[&str]) -> Result<Command, String> {
    match args {
        ["authorize", rest @ ..] => {
            let (duration, reason) = match rest.first().map(|d| parse_duration(d)) {
                Some(Ok(d)) => (Some(d), &rest[1..]),
                _ => (None, rest),
            };
            let reason = (!reason.is_empty()).then(|| reason.join(" "));
            Ok(Command::Authorize { duration, reason })
        }
        ["revoke"] => Ok(Command::Revoke),
        ["backport", branch] if valid_branch(branch) => Ok(Command::Backport { branch: branch.to_string() }),
        ["backport", ..] => Err("`/hotfix backport` takes one branch name, e.g. `/hotfix backport release-2.4`".into()),
        ["postmortem"] => Ok(Command::Postmortem),
        ["revert"] => Ok(Command::Revert),
        ["revert", ..] => Err("`/hotfix revert` takes no arguments".into()),
        [other, ..] => Err(format!(
            "`/hotfix {other}` is not a command; the commands are `authorize`, `revoke`, `backport <branch>`, `postmortem` and `revert`"
        )),
        [] => Err("`/hotfix` needs a command: `authorize`, `revoke`, `backport <branch>`, `postmortem` or `revert`".into()),
    }
}

/// A branch name git accepts, in a conservative character set, that cannot be mistaken for an
/// option or a range. (Branch names come from comments: untrusted text.)
pub fn valid_branch(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_their_arguments() {
        assert_eq!(
            parse("/hotfix authorize 2h checkout is down"),
            vec![Ok(Command::Authorize {
                duration: Some(Duration::from_secs(7200)),
                reason: Some("checkout is down".into())
            })]
        );
        assert_eq!(parse("/hotfix authorize"), vec![Ok(Command::Authorize { duration: None, reason: None })]);
        assert_eq!(
            parse("/hotfix authorize db failover"),
            vec![Ok(Command::Authorize { duration: None, reason: Some("db failover".into()) })]
        );
        assert_eq!(
            parse("LGTM\n/hotfix postmortem\n/hotfix revoke"),
            vec![Ok(Command::Postmortem), Ok(Command::Revoke)]
        );
        assert_eq!(parse("/hotfix backport release-2.4"), vec![Ok(Command::Backport { branch: "release-2.4".into() })]);
        assert_eq!(parse("/hotfix revert"), vec![Ok(Command::Revert)]);
    }

    #[test]
    fn quoted_and_fenced_commands_do_not_run() {
        assert!(parse("> /hotfix authorize\n```\n/hotfix revoke\n```\n/hotfixes are great").is_empty());
    }

    /// Each way of keeping a command off the page (or out of the writer's own words), then a
    /// visible `/hotfix revoke`: only the revoke runs.
    fn only_the_visible_revoke_runs(hidden: &str) {
        let comment = format!("{hidden}\n\n/hotfix revoke");
        assert_eq!(parse(&comment), vec![Ok(Command::Revoke)], "{comment:?}");
    }

    #[test]
    fn indented_code_hides_commands() {
        only_the_visible_revoke_runs("Logs:\n\n    /hotfix authorize");
        only_the_visible_revoke_runs("\t/hotfix authorize");
    }

    #[test]
    fn a_fence_ends_only_at_its_own_kind_and_length() {
        only_the_visible_revoke_runs("```\n~~~\n/hotfix authorize\n~~~\n/hotfix authorize\n```");
        only_the_visible_revoke_runs("````\n```\n/hotfix authorize\n````");
        only_the_visible_revoke_runs("~~~~~\n~~~\n/hotfix authorize\n~~~~~");
        only_the_visible_revoke_runs("   ```sh\n/hotfix authorize\n   ```");
        // A fence that is never closed runs to the end of the comment.
        assert!(parse("```\n/hotfix authorize").is_empty());
    }

    #[test]
    fn html_comments_hide_commands() {
        only_the_visible_revoke_runs("<!--\n\n/hotfix authorize\n\n-->");
        only_the_visible_revoke_runs("Thanks <!-- \n/hotfix authorize\n --> all");
        only_the_visible_revoke_runs("<!-- -->/hotfix authorize");
        assert!(parse("<!-- never closed\n\n/hotfix authorize").is_empty());
    }

    #[test]
    fn html_blocks_and_collapsed_details_hide_commands() {
        only_the_visible_revoke_runs("<div>\n/hotfix authorize\n</div>");
        only_the_visible_revoke_runs("<details><summary>log</summary>\n\n/hotfix authorize\n\n</details>");
    }

    #[test]
    fn quotes_lists_and_inline_code_are_not_commands() {
        only_the_visible_revoke_runs("> Quoting:\n>\n> /hotfix authorize");
        only_the_visible_revoke_runs("> > /hotfix authorize");
        only_the_visible_revoke_runs("- > /hotfix authorize");
        only_the_visible_revoke_runs("1. step\n   > /hotfix authorize");
        only_the_visible_revoke_runs("The commands:\n\n- /hotfix authorize\n- /hotfix backport x");
        only_the_visible_revoke_runs("`/hotfix authorize`");
        only_the_visible_revoke_runs("**/hotfix authorize**");
        only_the_visible_revoke_runs("# /hotfix authorize");
    }

    #[test]
    fn a_visible_command_runs_with_the_arguments_as_shown() {
        assert_eq!(
            parse("Looks right.\n/hotfix authorize 1h db <!-- secret -->failover"),
            vec![Ok(Command::Authorize {
                duration: Some(Duration::from_secs(3600)),
                reason: Some("db failover".into())
            })]
        );
        assert_eq!(parse("   /hotfix revoke"), vec![Ok(Command::Revoke)], "up to three spaces is still a paragraph");
        assert_eq!(parse("/hotfix backport release\\_2"), vec![Ok(Command::Backport { branch: "release_2".into() })]);
    }

    #[test]
    fn bad_commands_are_explained() {
        assert!(parse("/hotfix merge").pop().unwrap().unwrap_err().contains("`/hotfix merge` is not a command"));
        assert!(parse("/hotfix").pop().unwrap().unwrap_err().contains("`revert`"));
        assert!(parse("/hotfix revert now").pop().unwrap().unwrap_err().contains("takes no arguments"));
        for bad in ["--force", "a..b", "x:y", "main;rm", "a b"] {
            assert!(parse(&format!("/hotfix backport {bad}")).pop().unwrap().is_err(), "{bad}");
        }
    }
}
