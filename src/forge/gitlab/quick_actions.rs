//! GitLab runs quick actions (`/merge`, `/approve`, `/assign_reviewer`, …) found at the start of
//! a line in a description or note, with the rights of whoever saves the text — through the API
//! too. The lane writes texts that carry other people's words (a description it links the
//! postmortem into, a title in a backport's description) with a Maintainer's token: every such
//! line is made inert before it is sent, so nobody's `/merge` runs as the lane.

/// `text` with a backslash before the `/` that starts any line outside code: Markdown shows `\/`
/// as `/`, and GitLab's quick-action parser no longer sees a command.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut fence: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let opener = ["```", "~~~"].into_iter().find(|f| indent < 4 && trimmed.starts_with(f));
        match (fence, opener) {
            (Some(open), Some(f)) if f == open => fence = None,
            (None, Some(f)) => fence = Some(f),
            _ => {}
        }
        if fence.is_none() && opener.is_none() && indent < 4 && trimmed.starts_with('/') {
            out.push_str(&line[..indent]);
            out.push('\\');
            out.push_str(trimmed);
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn a_quick_action_in_someone_elses_text_is_made_inert() {
        let text = "Fix the outage.\n/merge\n  /approve\nPostmortem: #12\n";
        assert_eq!(inert(text), "Fix the outage.\n\\/merge\n  \\/approve\nPostmortem: #12\n");
    }

    #[test]
    fn code_and_lines_not_starting_with_a_slash_are_left_alone() {
        let text = "```sh\n/usr/bin/true\n```\n    /indented code\nsee /merge\n`/hotfix authorize`";
        assert_eq!(inert(text), text);
    }
}
