//! Slash commands in change comments: `/hotfix authorize [DURATION] [REASON]`,
//! `/hotfix revoke`, `/hotfix backport <branch>`, `/hotfix postmortem`.

use std::time::Duration;

use super::policy::parse_duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Authorize { duration: Option<Duration>, reason: Option<String> },
    Revoke,
    Backport { branch: String },
    Postmortem,
}

/// Every `/hotfix` line of a comment, in order. Lines inside code blocks and quotes are not
/// commands: quoting someone's command must not run it again.
pub fn parse(body: &str) -> Vec<Result<Command, String>> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with("```") || line.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("/hotfix") {
            continue;
        }
        let args: Vec<&str> = words.collect();
        out.push(parse_one(&args));
    }
    out
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
        [other, ..] => Err(format!(
            "`/hotfix {other}` is not a command; the commands are `authorize`, `revoke`, `backport <branch>` and `postmortem`"
        )),
        [] => Err("`/hotfix` needs a command: `authorize`, `revoke`, `backport <branch>` or `postmortem`".into()),
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
    }

    #[test]
    fn quoted_and_fenced_commands_do_not_run() {
        assert!(parse("> /hotfix authorize\n```\n/hotfix revoke\n```\n/hotfixes are great").is_empty());
    }

    #[test]
    fn bad_commands_are_explained() {
        assert!(parse("/hotfix merge").pop().unwrap().unwrap_err().contains("`/hotfix merge` is not a command"));
        assert!(parse("/hotfix").pop().unwrap().is_err());
        for bad in ["--force", "a..b", "x:y", "main;rm", "a b"] {
            assert!(parse(&format!("/hotfix backport {bad}")).pop().unwrap().is_err(), "{bad}");
        }
    }
}
