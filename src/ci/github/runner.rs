//! The GitHub Actions runner contract, as `@actions/core` implements it: workflow commands on
//! stdout (escaped), outputs and the step summary appended to the files the runner names.

use std::io::Write as _;
use std::path::PathBuf;

use crate::ci::runner::{Output, Runner};

/// Escapes a workflow command's message so text from a pull request cannot end the line and
/// start a command of its own.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Hides `secret` in every later line of the log.
pub fn mask(secret: &str) {
    if !secret.is_empty() {
        println!("::add-mask::{}", escape_data(secret));
    }
}

/// Where outputs and the summary go: the files the runner names, if it names them.
pub struct Actions {
    pub output: Option<PathBuf>,
    pub summary: Option<PathBuf>,
}

impl Actions {
    pub fn from_env() -> Actions {
        let path = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Actions { output: path("GITHUB_OUTPUT"), summary: path("GITHUB_STEP_SUMMARY") }
    }
}

fn name(output: Output) -> &'static str {
    match output {
        Output::Lane => "lane",
        Output::Suite => "suite",
        Output::Change => "pr",
        Output::Postmortem => "postmortem",
        Output::Backports => "backports",
        Output::Merged => "merged",
    }
}

impl Runner for Actions {
    fn line(&self, text: &str) {
        println!("{}", escape_data(text));
    }

    fn warning(&self, text: &str) {
        println!("::warning::{}", escape_data(text));
    }

    fn error(&self, text: &str) {
        println!("::error::{}", escape_data(text));
    }

    /// `name<<DELIMITER\nvalue\nDELIMITER`, with a random delimiter the value does not contain,
    /// so a multi-line (or hostile) value cannot set other outputs.
    fn output(&self, output: Output, value: &str) -> std::io::Result<()> {
        let Some(path) = &self.output else { return Ok(()) };
        let delimiter = loop {
            let d = format!("ghadelimiter_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
            if !value.contains(&d) {
                break d;
            }
        };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(file, "{}<<{delimiter}\n{value}\n{delimiter}", name(output))
    }

    fn summary(&self, markdown: &str) -> std::io::Result<()> {
        let Some(path) = &self.summary else { return Ok(()) };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(file, "{markdown}")
    }

    fn start_section(&self, _: &'static str, title: &str) {
        println!("::group::{}", escape_data(title));
    }

    fn end_section(&self, _: &'static str) {
        println!("::endgroup::");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_text_cannot_break_out_of_its_line() {
        assert_eq!(escape_data("a\n::set-output name=x::1%0A"), "a%0A::set-output name=x::1%250A");
    }

    #[test]
    fn outputs_use_a_delimiter_the_value_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let actions = Actions { output: Some(dir.path().join("out")), summary: None };
        actions.output(Output::Lane, "hotfix\nsuite<<EOF\nfull\nEOF").unwrap();
        let text = std::fs::read_to_string(dir.path().join("out")).unwrap();
        let (head, rest) = text.split_once('\n').unwrap();
        let delimiter = head.strip_prefix("lane<<").unwrap();
        assert!(delimiter.starts_with("ghadelimiter_"));
        assert_eq!(rest, format!("hotfix\nsuite<<EOF\nfull\nEOF\n{delimiter}\n"));
    }
}
