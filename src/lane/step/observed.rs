//! What the glue observed on the forge for one input: each answer kept under the need it
//! answers, so a step run again finds it.

use std::collections::BTreeMap;

use crate::lane::event::PullRequest;
use crate::lane::membership::Labeler;
use crate::lane::postmortem::{IssueLookup, IssueRef};
use crate::lane::smoke::Seen;

/// Something a step must see on the forge before it decides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Whether `login` is a responder under the policy.
    Responder(String),
    /// Who last applied the lane label, as the forge recorded it, and whether they are a responder.
    Labeler,
    /// Who the forge says wrote commit `sha`.
    HeadAuthor(String),
    /// The issue a change names.
    Issue { repo: String, number: u64 },
    /// Every check run and status on commit `sha`.
    Checks(String),
    /// The change as the forge has it now.
    Change,
    /// The paths the change touches.
    ChangedFiles,
    /// A file at a commit (`None` text when absent).
    File { path: String, sha: String },
    /// A file on the default branch.
    Template(String),
    /// Who with write access approved commit `sha` of the change (their latest review).
    Approvers(String),
}

/// The forge's answer to a [`Need`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Responder(bool),
    Labeler(Option<Labeler>),
    HeadAuthor(Option<String>),
    Issue(IssueLookup),
    Checks(Vec<Seen>),
    Change(Option<PullRequest>),
    ChangedFiles(Vec<String>),
    /// For [`Need::File`] and [`Need::Template`].
    File(Option<String>),
    Approvers(Vec<String>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    answers: BTreeMap<Need, Answer>,
}

impl Observed {
    /// Keeps `answer` to `need`. An answer of the wrong shape is a bug in the glue.
    pub fn record(&mut self, need: Need, answer: Answer) {
        self.answers.insert(need, answer);
    }

    /// Whether `need` was observed already.
    pub fn has(&self, need: &Need) -> bool {
        self.answers.contains_key(need)
    }

    fn get(&self, need: Need) -> Result<&Answer, Need> {
        self.answers.get(&need).ok_or(need)
    }

    pub(super) fn responder(&self, login: &str) -> Result<bool, Need> {
        match self.get(Need::Responder(login.to_string()))? {
            Answer::Responder(r) => Ok(*r),
            other => panic!("a responder need answered with {other:?}"),
        }
    }

    /// Only ever answered `true` or `false`, never asked: for what is known already.
    pub(super) fn known_responder(&self, login: &str) -> Option<bool> {
        self.responder(login).ok()
    }

    pub(super) fn labeler(&self) -> Result<Option<Labeler>, Need> {
        match self.get(Need::Labeler)? {
            Answer::Labeler(l) => Ok(l.clone()),
            other => panic!("a labeler need answered with {other:?}"),
        }
    }

    pub(super) fn head_author(&self, sha: &str) -> Result<Option<String>, Need> {
        match self.get(Need::HeadAuthor(sha.to_string()))? {
            Answer::HeadAuthor(a) => Ok(a.clone()),
            other => panic!("a head author need answered with {other:?}"),
        }
    }

    pub(super) fn issue(&self, r: &IssueRef) -> Result<IssueLookup, Need> {
        match self.get(Need::Issue { repo: r.repo.clone(), number: r.number })? {
            Answer::Issue(lookup) => Ok(lookup.clone()),
            other => panic!("an issue need answered with {other:?}"),
        }
    }

    pub(super) fn checks(&self, sha: &str) -> Result<&[Seen], Need> {
        match self.get(Need::Checks(sha.to_string()))? {
            Answer::Checks(seen) => Ok(seen),
            other => panic!("a checks need answered with {other:?}"),
        }
    }

    pub(super) fn change(&self) -> Result<Option<&PullRequest>, Need> {
        match self.get(Need::Change)? {
            Answer::Change(change) => Ok(change.as_ref()),
            other => panic!("a change need answered with {other:?}"),
        }
    }

    pub(super) fn changed_files(&self) -> Result<&[String], Need> {
        match self.get(Need::ChangedFiles)? {
            Answer::ChangedFiles(files) => Ok(files),
            other => panic!("a changed-files need answered with {other:?}"),
        }
    }

    pub(super) fn file(&self, path: &str, sha: &str) -> Result<Option<&str>, Need> {
        match self.get(Need::File { path: path.to_string(), sha: sha.to_string() })? {
            Answer::File(text) => Ok(text.as_deref()),
            other => panic!("a file need answered with {other:?}"),
        }
    }

    pub(super) fn approvers(&self, sha: &str) -> Result<&[String], Need> {
        match self.get(Need::Approvers(sha.to_string()))? {
            Answer::Approvers(who) => Ok(who),
            other => panic!("an approvers need answered with {other:?}"),
        }
    }

    pub(super) fn template(&self, path: &str) -> Result<Option<&str>, Need> {
        match self.get(Need::Template(path.to_string()))? {
            Answer::File(text) => Ok(text.as_deref()),
            other => panic!("a template need answered with {other:?}"),
        }
    }
}
