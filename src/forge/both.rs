//! The forges one server serves: GitHub, GitLab or both, each with its own client, handed out
//! per event by the event's forge.

use super::github::{GitHub, GitHubClients};
use super::gitlab::GitLab;
use super::Revalidated;
use super::{AuthoredPull, FileContent, Forge, ForgeError, Forges, GitRemote, MergeOutcome, NewPull, QueueGroup};
use crate::lane::event::{Forge as Kind, PullRequest};
use crate::lane::policy::{MergeMethod, Responders};
use crate::lane::postmortem::IssueLookup;
use crate::lane::report::Report;
use crate::lane::smoke::Seen;
use crate::store::Millis;

pub struct Clients {
    pub github: Option<GitHubClients>,
    pub gitlab: Option<GitLab>,
}

/// The client for one event's forge.
#[derive(Clone)]
pub enum Client {
    Github(Box<GitHub>),
    Gitlab(GitLab),
}

impl Forges for Clients {
    type Client = Client;

    fn client(&self, forge: Kind, installation: Option<u64>) -> Result<Client, ForgeError> {
        let none = || ForgeError::Failed(format!("no {} credentials are configured", forge.as_str()));
        match forge {
            Kind::Github => {
                self.github.as_ref().ok_or_else(none)?.client(forge, installation).map(|c| Client::Github(Box::new(c)))
            }
            Kind::Gitlab => self.gitlab.clone().map(Client::Gitlab).ok_or_else(none),
        }
    }
}

/// Each method asks the event's own client.
macro_rules! each {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty;)+) => {
        $(
            async fn $name(&self $(, $arg: $ty)*) -> Result<$out, ForgeError> {
                match self {
                    Client::Github(c) => c.$name($($arg),*).await,
                    Client::Gitlab(c) => c.$name($($arg),*).await,
                }
            }
        )+
    };
}

impl Forge for Client {
    fn conventions(&self) -> &'static crate::lane::conventions::Conventions {
        match self {
            Client::Github(c) => c.conventions(),
            Client::Gitlab(c) => c.conventions(),
        }
    }

    fn pinned_reports(&self) -> bool {
        match self {
            Client::Github(c) => c.pinned_reports(),
            Client::Gitlab(c) => c.pinned_reports(),
        }
    }

    each! {
        fn identity(&self) -> String;
        fn file(&self, repo: &str, path: &str, branch: &str) -> Option<FileContent>;
        fn default_branch_file(&self, repo: &str, path: &str, etag: Option<&str>) -> Revalidated;
        fn commit_author(&self, repo: &str, sha: &str) -> Option<String>;
        fn issue(&self, repo: &str, number: u64) -> IssueLookup;
        fn pull(&self, repo: &str, number: u64) -> Option<PullRequest>;
        fn merge(&self, repo: &str, number: u64, sha: &str, method: MergeMethod) -> MergeOutcome;
        fn enqueue_first(&self, repo: &str, number: u64, sha: &str) -> ();
        fn queue_branches(&self, repo: &str) -> Vec<String>;
        fn queue_groups(&self, repo: &str, base: &str) -> Vec<QueueGroup>;
        fn has_report(&self, repo: &str, sha: &str, context: &str) -> bool;
        fn pulls_for_commit(&self, repo: &str, sha: &str) -> Vec<u64>;
        fn commit_contains(&self, repo: &str, ancestor: &str, descendant: &str) -> bool;
        fn changed_files(&self, repo: &str, number: u64) -> Vec<String>;
        fn approvals(&self, repo: &str, number: u64, sha: &str) -> Vec<String>;
        fn report(&self, repo: &str, sha: &str, report: &Report) -> ();
        fn upsert_comment(&self, repo: &str, number: u64, known: Option<u64>, marker: &str, body: &str) -> u64;
        fn labeler(&self, repo: &str, number: u64, label: &str) -> Option<(String, Millis)>;
        fn create_issue(&self, repo: &str, title: &str, body: &str, labels: &[String]) -> u64;
        fn find_issue(&self, repo: &str, label: &str, marker: &str) -> Option<u64>;
        fn set_pull_body(&self, repo: &str, number: u64, body: &str) -> ();
        fn git_remote(&self, repo: &str) -> GitRemote;
        fn pulls_for_branch(&self, repo: &str, branch: &str) -> Vec<AuthoredPull>;
        fn create_pull(&self, repo: &str, pull: &NewPull<'_>) -> u64;
        fn decorate_pull(&self, repo: &str, number: u64, labels: &[String], people: &[String]) -> ();
        fn commit_checks(&self, repo: &str, sha: &str) -> Vec<Seen>;
        fn is_responder(&self, repo: &str, login: &str, responders: &Responders) -> bool;
    }
}
