//! The GitLab CI runner's conventions: the job log (ANSI colours, collapsible sections), a
//! dotenv report for later jobs, exit codes. GitLab interprets `ESC[0K` section markers and
//! other escape sequences in the log, so every control character of printed text is shown as an
//! escape (`\u{1b}`) instead: a merge request's words can be read in the log but never open a
//! section, colour it or rewrite a line.

use std::io::Write as _;
use std::path::PathBuf;

use crate::ci::runner::{Output, Runner};

/// Where the dotenv report goes unless `HOTFIX_LANE_DOTENV` says otherwise.
pub const DEFAULT_DOTENV: &str = "hotfix-lane.env";

pub struct GitLabCi {
    /// The dotenv report (`artifacts: reports: dotenv:`).
    pub dotenv: PathBuf,
}

/// `text` with every control character (newlines too) written as an escape.
pub fn escape_log(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The variable a later job reads, as the template documents them.
pub fn variable(output: Output) -> &'static str {
    match output {
        Output::Lane => "HOTFIX_LANE",
        Output::Suite => "HOTFIX_SUITE",
        Output::Change => "HOTFIX_LANE_MR_IID",
        Output::Postmortem => "HOTFIX_LANE_POSTMORTEM",
        Output::Backports => "HOTFIX_LANE_BACKPORTS",
        Output::Merged => "HOTFIX_LANE_MERGED",
    }
}

fn seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn print(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed log is no reason to stop the lane.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl Runner for GitLabCi {
    fn line(&self, text: &str) {
        print(&escape_log(text));
    }

    fn warning(&self, text: &str) {
        print(&format!("\x1b[33;1mWARNING: {}\x1b[0m", escape_log(text)));
    }

    fn error(&self, text: &str) {
        print(&format!("\x1b[31;1mERROR: {}\x1b[0m", escape_log(text)));
    }

    /// `NAME=value` lines. GitLab's dotenv has no multi-line values and no escapes, so a value
    /// that would need one is refused rather than allowed to set a second variable.
    fn output(&self, output: Output, value: &str) -> std::io::Result<()> {
        if value.chars().any(char::is_control) {
            let name = variable(output);
            return Err(std::io::Error::other(format!("{name} would hold a control character")));
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.dotenv)?;
        writeln!(file, "{}={value}", variable(output))
    }

    /// GitLab has no job summary: the summary is a collapsed section of the log.
    fn summary(&self, markdown: &str) -> std::io::Result<()> {
        print(&format!("\x1b[0Ksection_start:{}:hotfix_lane_summary[collapsed=true]\r\x1b[0KSummary", seconds()));
        for line in markdown.lines() {
            print(&escape_log(line));
        }
        self.end_section("hotfix_lane_summary");
        Ok(())
    }

    fn start_section(&self, name: &'static str, title: &str) {
        print(&format!("\x1b[0Ksection_start:{}:{name}\r\x1b[0K{}", seconds(), escape_log(title)));
    }

    fn end_section(&self, name: &'static str) {
        print(&format!("\x1b[0Ksection_end:{}:{name}\r\x1b[0K", seconds()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_request_text_cannot_open_a_section_or_forge_a_line() {
        let title = "x\x1b[0Ksection_start:1:evil\r\x1b[0Kfake\nhotfix-lane/lane: hotfix";
        let shown = escape_log(title);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(shown, "x\\u{1b}[0Ksection_start:1:evil\\u{d}\\u{1b}[0Kfake\\u{a}hotfix-lane/lane: hotfix");
    }

    #[test]
    fn a_value_cannot_set_a_second_variable() {
        let dir = tempfile::tempdir().unwrap();
        let runner = GitLabCi { dotenv: dir.path().join("report.env") };
        runner.output(Output::Lane, "hotfix").unwrap();
        assert!(runner.output(Output::Backports, "[]\nHOTFIX_SUITE=smoke").is_err());
        assert_eq!(std::fs::read_to_string(dir.path().join("report.env")).unwrap(), "HOTFIX_LANE=hotfix\n");
    }
}
