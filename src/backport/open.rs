//! One target's backport from start to pull request: the mirror is fetched, the landed
//! commits picked, the branch pushed (never over an existing one) and the pull request opened
//! or found, with its labels, people and check. Shared by the server's jobs and the Action.
//!
//! The branch name is predictable and anyone who can push may create it first, or open a pull
//! request from it: an existing branch or pull request is taken up only when it is provably
//! the lane's own, and otherwise the target fails, saying so.

use crate::backport::mirror::{Credentials, Mirror, MirrorError, Mirrors, Pushed};
use crate::backport::{engine, select, Picked, BOT_EMAIL, BOT_NAME};
use crate::forge::{Forge, ForgeError, NewPull};
use crate::lane::audit::AuditAction;
use crate::lane::backport::{
    self as decide, Backport, BackportState, ConflictPath, BACKPORT_LABEL, BACKPORT_MARKER, CONFLICT_LABEL,
};
use crate::lane::event::{PullRequest, RepoRef};
use crate::lane::policy::{OnConflict, Policy};
use crate::store::Millis;

/// What to backport where.
pub struct Request<'a> {
    /// `github`: with the repository id, names the mirror.
    pub forge_name: &'a str,
    pub repo: &'a RepoRef,
    /// The merged change, as the forge serves it.
    pub pull: &'a PullRequest,
    pub target: &'a str,
    pub policy: &'a Policy,
    /// Who merged the change: asked to review the backport with its author.
    pub merger: Option<&'a str>,
    pub postmortem: Option<String>,
    /// A git failure on the last attempt is recorded as the backport's failure; before that it
    /// asks for a retry.
    pub final_attempt: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error("{0}")]
    Retry(String),
}

/// A backport branch hotfix-lane made (or found it had made).
struct Made {
    tip: git2::Oid,
    conflicts: Vec<ConflictPath>,
    conflict_commit: Option<String>,
    remaining: Vec<String>,
}

/// Makes the backport `record` stands for and updates it; returns the audit action and detail.
pub async fn make<F: Forge>(
    forge: &F,
    mirrors: &Mirrors,
    req: &Request<'_>,
    record: &mut Backport,
    now: Millis,
) -> Result<(AuditAction, String), MakeError> {
    let (repo, pull, target) = (req.repo, req.pull, req.target);
    let merge_commit = pull.merge_commit_sha.clone().unwrap_or_default();
    let branch = decide::branch_name(pull.number, target);
    let outcome = if merge_commit.is_empty() {
        Err("the change merged without a merge commit to pick".to_string())
    } else {
        let remote = forge.git_remote(&repo.full_name).await?;
        let work = GitWork {
            mirrors: mirrors.clone(),
            key: format!("{}-{}", req.forge_name, repo.id),
            url: remote.url,
            credentials: remote.token.map(Credentials::token).unwrap_or_default(),
            number: pull.number,
            change_refs: forge.conventions().change_refs,
            base: pull.base_ref.clone(),
            target: target.to_string(),
            merge_commit: merge_commit.clone(),
            base_sha: pull.base_sha.clone(),
            branch: branch.clone(),
        };
        match tokio::task::spawn_blocking(move || work.run()).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(err)) if !req.final_attempt => return Err(MakeError::Retry(err.to_string())),
            Ok(Err(err)) => Err(err.to_string()),
            Err(join) => Err(format!("backport task failed: {join}")),
        }
    };
    let made = match outcome {
        Err(why) => return Ok(failed(record, target, why)),
        Ok(Outcome::NotOurs(why)) => return Ok(failed(record, target, not_ours(&branch, &why))),
        Ok(Outcome::AlreadyApplied) => {
            record.state = BackportState::AlreadyApplied;
            return Ok((AuditAction::BackportAlreadyApplied, format!("{target} has the change already")));
        }
        Ok(Outcome::Made(made)) => made,
    };
    let text = decide::PullText {
        conventions: forge.conventions(),
        number: pull.number,
        target,
        merge_commit: &merge_commit,
        postmortem: req.postmortem.clone(),
        conflicts: &made.conflicts,
        conflict_commit: made.conflict_commit.as_deref(),
        remaining: &made.remaining,
    };
    let body = decide::body(&text);
    let title = decide::title(target, &pull.title);
    let conflicted = !made.conflicts.is_empty();
    let opened = if conflicted && req.policy.backport.on_conflict == OnConflict::Issue {
        let marker = format!("<!-- hotfix-lane:backport-conflict:{branch} -->");
        let issue = match forge.find_issue(&repo.full_name, CONFLICT_LABEL, &marker).await? {
            Some(issue) => issue,
            None => {
                let body = format!("{body}\n{marker}\n");
                forge.create_issue(&repo.full_name, &title, &body, &[CONFLICT_LABEL.to_string()]).await?
            }
        };
        record.detail = Some(format!("conflicts are listed in issue #{issue}"));
        None
    } else {
        // Anyone may open a pull request from the branch: only one the lane opened is its own.
        let pulls = forge.pulls_for_branch(&repo.full_name, &branch).await?;
        let lane = if pulls.is_empty() { String::new() } else { forge.identity().await? };
        if let Some(other) = pulls.iter().find(|p| !p.author.eq_ignore_ascii_case(&lane)) {
            let (noun, reference) = (forge.conventions().change_noun, forge.conventions().change_ref(other.number));
            let why = format!("{noun} {reference} from it was opened by {}, not by hotfix-lane", other.author);
            return Ok(failed(record, target, not_ours(&branch, &why)));
        }
        let number = match pulls.first() {
            Some(existing) => existing.number,
            None => {
                let new = NewPull { title: &title, head: &branch, base: target, body: &body, draft: conflicted };
                forge.create_pull(&repo.full_name, &new).await?
            }
        };
        let mut labels = vec![BACKPORT_LABEL.to_string()];
        labels.extend(req.policy.backport.labels.iter().cloned());
        if conflicted {
            labels.push(CONFLICT_LABEL.to_string());
        }
        let mut people = vec![pull.author.login.clone()];
        people.extend(req.merger.map(str::to_string).filter(|m| !people.contains(m) && !m.ends_with("[bot]")));
        forge.decorate_pull(&repo.full_name, number, &labels, &people).await?;
        Some(number)
    };
    record.state = if conflicted { BackportState::Conflict } else { BackportState::Opened };
    record.pull = opened;
    record.tip = Some(made.tip.to_string());
    record.opened_at = Some(now);
    record.conflicts = made.conflicts;
    record.remaining = made.remaining;
    let head = decide::head_report(record, &made.tip.to_string(), &marked_paths(&record.conflicts));
    forge.report(&repo.full_name, &made.tip.to_string(), &head).await?;
    let what = match opened {
        Some(n) => format!("{} to {target}", forge.conventions().change_ref(n)),
        None => format!("to {target}: {}", record.detail.as_deref().unwrap_or_default()),
    };
    Ok((if conflicted { AuditAction::BackportConflict } else { AuditAction::BackportOpened }, what))
}

/// Records the target as failed for `why`; returns the audit action and detail.
fn failed(record: &mut Backport, target: &str, why: String) -> (AuditAction, String) {
    record.state = BackportState::Failed;
    let detail = format!("to {target}: {why}");
    record.detail = Some(why);
    (AuditAction::BackportFailed, detail)
}

/// Why an existing backport branch is left alone, in the words the backport comment shows.
fn not_ours(branch: &str, why: &str) -> String {
    format!("branch exists and is not ours: `{branch}` {why}, so hotfix-lane left it alone")
}

/// Reports every target's state as `hotfix-lane/backport` on the merge commit and in the one
/// backport comment on the change (found by its marker when `known` is `None`); returns the
/// comment's id.
pub async fn publish<F: Forge>(
    forge: &F,
    repo: &str,
    number: u64,
    backports: &std::collections::BTreeMap<String, Backport>,
    known: Option<u64>,
    merge_commit: &str,
) -> Result<u64, ForgeError> {
    let summary = decide::summary_report(backports, forge.conventions());
    if !merge_commit.is_empty() {
        forge.report(repo, merge_commit, &summary).await?;
    }
    forge.upsert_comment(repo, number, known, BACKPORT_MARKER, &summary.details).await
}

/// The conflicted files that carry markers (and so show when they are resolved).
pub fn marked_paths(conflicts: &[ConflictPath]) -> Vec<String> {
    conflicts.iter().filter(|c| c.kind.has_markers()).map(|c| c.path.clone()).collect()
}

/// The blocking part: mirror, pick, push. Runs on a blocking thread.
struct GitWork {
    mirrors: Mirrors,
    key: String,
    url: String,
    credentials: Credentials,
    number: u64,
    /// Where the forge keeps changes' own commits (`refs/pull`, `refs/merge-requests`).
    change_refs: &'static str,
    base: String,
    target: String,
    merge_commit: String,
    /// Where the change's diff started on the target, when the forge says.
    base_sha: Option<String>,
    branch: String,
}

/// What the git side of a backport came to.
enum Outcome {
    /// The target has the change already.
    AlreadyApplied,
    Made(Made),
    /// The branch exists with commits hotfix-lane did not make: why they are not its own.
    NotOurs(String),
}

impl GitWork {
    fn run(self) -> Result<Outcome, MirrorError> {
        let outcome = self.make(&self.mirrors.open(&self.key)?)?;
        // The mirror's lock is released by now: eviction may look at every mirror.
        self.mirrors.evict(&self.key)?;
        Ok(outcome)
    }

    fn make(&self, mirror: &Mirror) -> Result<Outcome, MirrorError> {
        let n = self.number;
        let remote_branch = format!("refs/hotfix-lane/remote/{}", self.branch);
        let refspecs = vec![
            format!("+refs/heads/{0}:refs/heads/{0}", self.base),
            format!("+refs/heads/{0}:refs/heads/{0}", self.target),
            // The change's own commits (to tell a rebase merge from a squash); a pattern, so
            // a forge without these refs is no error.
            format!("+{0}/{n}/*:{0}/{n}/*", self.change_refs),
            format!("+refs/heads/{BRANCH}*:refs/hotfix-lane/remote/{BRANCH}*", BRANCH = decide::BRANCH_PREFIX),
        ];
        mirror.fetch(&self.url, &self.credentials, &refspecs)?;
        let repo = mirror.repo();
        if let Ok(existing) = repo.refname_to_id(&remote_branch) {
            // Pushed before (a retry, or a crash before the pull request), or by someone else.
            return self.adopt(repo, existing);
        }
        let onto = repo.refname_to_id(&format!("refs/heads/{}", self.target))?;
        let Some(made) = self.pick(repo, onto, &crate::backport::bot_signature()?)? else {
            return Ok(Outcome::AlreadyApplied);
        };
        if mirror.push_new(&self.url, &self.credentials, made.tip, &self.branch)? == Pushed::Exists {
            // Someone created it since the fetch: it is left as it is.
            let refspec = format!("+refs/heads/{}:{remote_branch}", self.branch);
            mirror.fetch(&self.url, &self.credentials, &[refspec])?;
            return self.adopt(repo, repo.refname_to_id(&remote_branch)?);
        }
        Ok(Outcome::Made(made))
    }

    /// `None` when every commit is on `onto` already.
    fn pick(
        &self,
        repo: &git2::Repository,
        onto: git2::Oid,
        committer: &git2::Signature,
    ) -> Result<Option<Made>, MirrorError> {
        let merged = git2::Oid::from_str(&self.merge_commit)?;
        let head = repo.refname_to_id(&format!("{}/{}/head", self.change_refs, self.number)).ok();
        let base = self.base_sha.as_deref().and_then(|b| git2::Oid::from_str(b).ok());
        let (_, commits) = select::landed_commits(repo, merged, head, base)?;
        Ok(match engine::pick(repo, onto, &commits, committer, Some(merged))? {
            Picked::AlreadyApplied => None,
            Picked::Clean { tip, .. } => {
                Some(Made { tip, conflicts: vec![], conflict_commit: None, remaining: vec![] })
            }
            Picked::Conflict { tip, commit, paths, remaining } => Some(Made {
                tip,
                conflicts: paths,
                conflict_commit: Some(commit.to_string()),
                remaining: remaining.iter().map(|c| c.to_string()).collect(),
            }),
        })
    }

    /// The backport branch found at `tip`, taken as hotfix-lane's own only when it is exactly
    /// what hotfix-lane makes: the same pick onto the target commit its trailer names, on the
    /// target's history, committed by hotfix-lane at the head's commit time, gives `tip` itself.
    /// Anyone who can push may create a branch of that name, and write any committer or trailer.
    fn adopt(&self, repo: &git2::Repository, tip: git2::Oid) -> Result<Outcome, MirrorError> {
        let merged = git2::Oid::from_str(&self.merge_commit)?;
        let head = repo.find_commit(tip)?;
        let committer = head.committer().to_owned();
        let short = &self.merge_commit[..self.merge_commit.len().min(7)];
        let not_ours = |why: String| Ok(Outcome::NotOurs(why));
        if committer.name_bytes() != BOT_NAME.as_bytes() || committer.email_bytes() != BOT_EMAIL.as_bytes() {
            return not_ours("its head commit was not committed by hotfix-lane".into());
        }
        let Some(onto) = engine::backport_onto(&head, merged) else {
            return not_ours(format!("its head commit is no backport of {short}"));
        };
        let target = repo.refname_to_id(&format!("refs/heads/{}", self.target))?;
        if onto != target && !repo.graph_descendant_of(target, onto).unwrap_or(false) {
            return not_ours(format!("it is not based on `{}`", self.target));
        }
        match self.pick(repo, onto, &committer)? {
            Some(made) if made.tip == tip => Ok(Outcome::Made(made)),
            _ => not_ours(format!("its commits are not hotfix-lane's backport of {short}")),
        }
    }
}
