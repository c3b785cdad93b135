//! Work the lane asks for later, as data: each kind of job with what it needs to run, the queue
//! it runs in and how often it may be tried. Stored as the job's `kind` and `payload`.

use serde::{Deserialize, Serialize};

use super::event::{Forge, ItemState, RepoRef};
use super::key::{queue_sweep_key, ChangeKey};
use super::postmortem::IssueLookup;

/// The change a job is about, and whom to act as on its forge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default = "github")]
    pub forge: Forge,
    pub repo: RepoRef,
    pub number: u64,
    /// The GitHub App installation to act as; `None` for a plain token.
    pub installation_id: Option<u64>,
}

fn github() -> Forge {
    Forge::Github
}

impl Subject {
    pub fn key(&self) -> ChangeKey {
        ChangeKey::new(self.forge, self.repo.id, self.number)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Job {
    /// Reads the change from the forge again and evaluates it as if it had just been edited.
    Reconcile(Subject),
    /// A check on the change's head `sha` moved: merge if the lane now may. `new_run`: a CI
    /// run started on it, which shows only the reports posted into it: post them again.
    Refresh {
        #[serde(flatten)]
        change: Subject,
        sha: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        new_run: bool,
    },
    /// The issue the change names as its postmortem changed; the issue event said this of it.
    #[serde(rename = "postmortem_recheck")]
    Recheck {
        #[serde(flatten)]
        change: Subject,
        lookup: IssueLookup,
    },
    /// Reports the postmortem check on every merge group of a repository that lacks it.
    QueueSweep {
        #[serde(default = "github")]
        forge: Forge,
        repo: RepoRef,
        installation_id: Option<u64>,
    },
    /// Opens the backport of a merged change to `target`.
    Backport {
        #[serde(flatten)]
        change: Subject,
        target: String,
        /// Who merged the original: asked to review the backport.
        merger: Option<String>,
    },
    /// A backport pull request `pull` of the change moved (pushed to, merged, closed).
    #[serde(rename = "backport_followup")]
    BackportFollowup {
        #[serde(flatten)]
        change: Subject,
        target: String,
        pull: u64,
        head_sha: String,
        state: ItemState,
    },
    /// Opens the revert of the merged change as a new change in the lane, authorized by `by`
    /// (the responder who ran `/hotfix revert`).
    Revert {
        #[serde(flatten)]
        change: Subject,
        by: String,
    },
    /// Reminds the change and its postmortem issue that the postmortem is due or overdue.
    #[serde(rename = "postmortem_reminder")]
    Remind {
        #[serde(flatten)]
        change: Subject,
        reminder: super::reminder::Reminder,
    },
}

impl Job {
    /// The queue it runs in: a change's own, so that it runs behind the change's earlier events.
    pub fn ordering_key(&self) -> String {
        match self {
            Job::QueueSweep { forge, repo, .. } => queue_sweep_key(*forge, repo.id),
            Job::Reconcile(change)
            | Job::Refresh { change, .. }
            | Job::Recheck { change, .. }
            | Job::Backport { change, .. }
            | Job::BackportFollowup { change, .. }
            | Job::Revert { change, .. }
            | Job::Remind { change, .. } => change.key().to_string(),
        }
    }

    /// Attempts before the job is dead. A queue sweep is done again by the next sweep: three.
    /// Every other job gets the budget a delivery gets by default (`--job-max-attempts`, 8): a
    /// reconcile evaluates the change as a delivery does (and is what looks at a change again
    /// after an evaluation failed part-way); a backport, a revert or a reminder makes more
    /// forge calls per attempt than a refresh (mirror, branch, pull request, labels, people,
    /// reports, comment), so its attempts fail more often on a forge that fails some calls, and
    /// it needs at least as many of them. Each attempt takes up what the one before it made
    /// (the branch, the pull request by its branch, the comment by its marker); the last one
    /// reports the failure rather than leaving it looking green.
    pub fn max_attempts(&self) -> i64 {
        match self {
            Job::QueueSweep { .. } => 3,
            Job::Reconcile(_)
            | Job::Refresh { .. }
            | Job::Recheck { .. }
            | Job::Backport { .. }
            | Job::BackportFollowup { .. }
            | Job::Revert { .. }
            | Job::Remind { .. } => 8,
        }
    }

    /// The forge and installation to act as.
    pub fn acting_as(&self) -> (Forge, Option<u64>) {
        match self {
            Job::QueueSweep { forge, installation_id, .. } => (*forge, *installation_id),
            Job::Reconcile(change)
            | Job::Refresh { change, .. }
            | Job::Recheck { change, .. }
            | Job::Backport { change, .. }
            | Job::BackportFollowup { change, .. }
            | Job::Revert { change, .. }
            | Job::Remind { change, .. } => (change.forge, change.installation_id),
        }
    }

    /// The stored `kind` and `payload`.
    pub fn to_stored(&self) -> (String, serde_json::Value) {
        let mut tagged = serde_json::to_value(self).expect("jobs serialize");
        let kind = tagged["kind"].as_str().expect("a job has a kind").to_string();
        (kind, tagged["payload"].take())
    }

    /// A stored job back as what it asks for.
    pub fn from_stored(kind: &str, payload: &serde_json::Value) -> Result<Job, String> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "payload": payload }))
            .map_err(|e| format!("a `{kind}` job's payload does not parse: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        let repo = RepoRef { id: 7, full_name: "o/r".into(), default_branch: "main".into() };
        Subject { forge: Forge::Github, repo, number: 2, installation_id: Some(9) }
    }

    #[test]
    fn every_job_reads_back_as_it_was_stored() {
        let jobs = [
            Job::Reconcile(subject()),
            Job::Refresh { change: subject(), sha: "abc".into(), new_run: false },
            Job::Refresh { change: subject(), sha: "abc".into(), new_run: true },
            Job::Recheck { change: subject(), lookup: IssueLookup::Moved },
            Job::QueueSweep { forge: Forge::Github, repo: subject().repo, installation_id: None },
            Job::Backport { change: subject(), target: "main".into(), merger: Some("bob".into()) },
            Job::BackportFollowup {
                change: subject(),
                target: "main".into(),
                pull: 9,
                head_sha: "def".into(),
                state: ItemState::Open,
            },
            Job::Remind { change: subject(), reminder: crate::lane::reminder::Reminder::Overdue },
            Job::Revert { change: subject(), by: "alice".into() },
        ];
        for job in jobs {
            let (kind, payload) = job.to_stored();
            assert_eq!(Job::from_stored(&kind, &payload).unwrap(), job, "{kind}");
        }
    }

    #[test]
    fn a_changes_jobs_run_in_its_own_queue() {
        assert_eq!(Job::Reconcile(subject()).ordering_key(), "github:7:pr:2");
        let sweep = Job::QueueSweep { forge: Forge::Github, repo: subject().repo, installation_id: None };
        assert_eq!(sweep.ordering_key(), "github:7:queue-sweep");
    }

    #[test]
    fn a_payload_that_does_not_parse_says_which_kind() {
        let err = Job::from_stored("refresh", &serde_json::json!({"number": "two"})).unwrap_err();
        assert!(err.contains("`refresh`"), "{err}");
        assert!(Job::from_stored("no_such_job", &serde_json::json!({})).is_err());
    }
}
