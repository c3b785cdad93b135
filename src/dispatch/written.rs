//! Reports written to the forge lately, by commit and context: a retried job (whose first
//! attempt posted them, then failed before its facts were committed) does not post an
//! identical report again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::lane::report::Report;

/// Bounds the memory: past this many commits' reports, the oldest knowledge is dropped (at
/// worst, one report is posted twice).
const MAX_REMEMBERED: usize = 20_000;

type Key = (String, String, String);

#[derive(Default)]
pub struct Written {
    reports: Mutex<HashMap<Key, Report>>,
}

impl Written {
    /// Whether `report` on `sha` of `repo` is what was last written there.
    pub fn is_written(&self, repo: &str, sha: &str, report: &Report) -> bool {
        let key = (repo.to_string(), sha.to_string(), report.context.clone());
        self.reports.lock().expect("written reports lock").get(&key) == Some(report)
    }

    pub fn remember(&self, repo: &str, sha: &str, report: &Report) {
        let mut reports = self.reports.lock().expect("written reports lock");
        if reports.len() >= MAX_REMEMBERED {
            reports.clear();
        }
        reports.insert((repo.to_string(), sha.to_string(), report.context.clone()), report.clone());
    }

    /// Forgets what was written on `sha`: a new CI run on it (a GitLab pipeline) shows only the
    /// reports posted into it, so the next ones are posted again.
    pub fn forget(&self, repo: &str, sha: &str) {
        self.reports.lock().expect("written reports lock").retain(|(r, s, _), _| r != repo || s != sha);
    }
}
