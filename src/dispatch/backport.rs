//! Backport jobs: once a hotfix merges, one job per target picks the landed commits on the
//! repository's warm mirror, pushes `hotfix-lane/backport/<pr>-to-<target>` and opens the pull
//! request (a draft with the conflicts committed when the pick conflicts).
//!
//! Idempotent by construction: the branch name is the key. A retry finds the branch it pushed
//! before (it is never pushed over, so commits people added stay), and the pull request on it.
//! Outcomes are reported as `hotfix-lane/backport` on the merge commit and in one comment on
//! the original change, edited as targets finish.

use serde::{Deserialize, Serialize};

use super::{lane_state_write, AuditScope, Dispatch, StepError};
use crate::backport::mirror::{Credentials, MirrorError, Mirrors, Pushed};
use crate::backport::{engine, select, Picked};
use crate::forge::{Forge, Forges, NewPull};
use crate::lane::backport::{
    self as decide, Backport, BackportState, ConflictPath, BACKPORT_LABEL, BACKPORT_MARKER, CONFLICT_LABEL,
};
use crate::lane::event::{ItemState, RepoRef};
use crate::lane::policy::{OnConflict, Policy};
use crate::lane::track::PullFacts;
use crate::store::{ClaimedJob, Millis, NewJob, Write};

pub const BACKPORT_JOB: &str = "backport";
/// A backport pull request changed (pushed to, merged, closed): folded into the original
/// change's record, in that change's job order.
pub const FOLLOWUP_JOB: &str = "backport_followup";

#[derive(Serialize, Deserialize)]
struct Job {
    repo: RepoRef,
    number: u64,
    target: String,
    installation_id: Option<u64>,
    /// Who merged the original change: asked to review the backport.
    merger: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Followup {
    pub repo: RepoRef,
    pub number: u64,
    pub target: String,
    pub installation_id: Option<u64>,
    pub pull: u64,
    pub head_sha: String,
    pub state: ItemState,
}

fn pull_key(forge: &str, repo: &RepoRef, number: u64) -> String {
    format!("{forge}:{}:pr:{number}", repo.id)
}

/// Records a pending backport for each new target and queues its job.
pub(super) fn start(
    forge: &str,
    repo: &RepoRef,
    facts: &mut PullFacts,
    targets: Vec<String>,
    policy: &Policy,
    merger: Option<&str>,
    now: Millis,
) -> Vec<Write> {
    let mut writes = Vec::new();
    for target in targets {
        if facts.lane.backports.contains_key(&target) {
            continue;
        }
        let stale_after_ms = policy.backport.stale_after.as_millis() as Millis;
        let pending = Backport {
            state: BackportState::Pending,
            pull: None,
            tip: None,
            conflicts: vec![],
            remaining: vec![],
            detail: None,
            requested_at: now,
            opened_at: None,
            merged_at: None,
            stale_after_ms,
        };
        facts.lane.backports.insert(target.clone(), pending);
        let job = Job {
            repo: repo.clone(),
            number: facts.number,
            target,
            installation_id: facts.installation_id,
            merger: merger.map(str::to_string),
        };
        writes.push(Write::Enqueue(NewJob {
            kind: BACKPORT_JOB.into(),
            ordering_key: pull_key(forge, repo, facts.number),
            payload: serde_json::to_value(job).expect("serializes"),
            delivery_id: None,
            max_attempts: 5,
            run_at: now,
        }));
    }
    writes
}

pub(super) fn followup_job(forge: &str, followup: &Followup, now: Millis) -> Write {
    Write::Enqueue(NewJob {
        kind: FOLLOWUP_JOB.into(),
        ordering_key: pull_key(forge, &followup.repo, followup.number),
        payload: serde_json::to_value(followup).expect("serializes"),
        delivery_id: None,
        max_attempts: 5,
        run_at: now,
    })
}

/// What the git side of a backport came to.
struct Made {
    tip: git2::Oid,
    conflicts: Vec<ConflictPath>,
    conflict_commit: Option<String>,
    remaining: Vec<String>,
}

pub(super) async fn run<P: Forges>(d: &Dispatch<P>, forges: &P, job: &ClaimedJob) -> Result<Vec<Write>, StepError> {
    let Job { repo, number, target, installation_id, merger } = serde_json::from_value(job.payload.clone())
        .map_err(|e| StepError::Invalid(format!("backport payload does not parse: {e}")))?;
    let forge_name = super::pull::job_forge(job);
    let Some(mut facts) = d.pull_state(forge_name, repo.id, number).await? else { return Ok(vec![]) };
    if facts.lane.backports.get(&target).is_none_or(|b| b.state != BackportState::Pending) {
        return Ok(vec![]);
    }
    let client = forges.client(installation_id)?;
    let forge = &client;
    let now = d.clock.now_ms();
    let policy = d.policies.get(forge, &repo).await?.policy.clone();
    let pull = forge
        .pull(&repo.full_name, number)
        .await?
        .ok_or_else(|| StepError::Invalid(format!("pull request #{number} not found")))?;
    let merge_commit = pull.merge_commit_sha.clone().unwrap_or_default();
    let scope = own_scope(now, forge_name, &repo.full_name, number, &merge_commit);
    let branch = decide::branch_name(number, &target);
    let made = if merge_commit.is_empty() {
        Err("the change merged without a merge commit to pick".to_string())
    } else {
        let remote = forge.git_remote(&repo.full_name).await?;
        let work = GitWork {
            mirrors: d.mirrors.clone(),
            key: format!("{forge_name}-{}", repo.id),
            url: remote.url,
            credentials: remote.token.map(Credentials::token).unwrap_or_default(),
            number,
            base: pull.base_ref.clone(),
            target: target.clone(),
            merge_commit: merge_commit.clone(),
            branch: branch.clone(),
        };
        match tokio::task::spawn_blocking(move || work.run()).await {
            Ok(Ok(made)) => Ok(made),
            // A transient failure (network, lock) is worth another attempt; the last one is
            // reported, never left looking green.
            Ok(Err(err)) if job.attempts < job.max_attempts => return Err(StepError::Invalid(err.to_string())),
            Ok(Err(err)) => Err(err.to_string()),
            Err(join) => Err(format!("backport task failed: {join}")),
        }
    };
    let mut writes = Vec::new();
    let record = facts.lane.backports.get_mut(&target).expect("checked above");
    match made {
        Err(why) => {
            record.state = BackportState::Failed;
            record.detail = Some(why.clone());
            writes.push(scope.entry("backport.failed", format!("to {target}: {why}")));
        }
        Ok(None) => {
            record.state = BackportState::AlreadyApplied;
            writes.push(scope.entry("backport.already_applied", format!("{target} has the change already")));
        }
        Ok(Some(made)) => {
            let text = decide::PullText {
                number,
                target: &target,
                merge_commit: &merge_commit,
                postmortem: facts.lane.postmortem.as_ref().map(|p| p.to_string()),
                conflicts: &made.conflicts,
                conflict_commit: made.conflict_commit.as_deref(),
                remaining: &made.remaining,
            };
            let body = decide::body(&text);
            let title = decide::title(&target, &pull.title);
            let conflicted = !made.conflicts.is_empty();
            let mut labels = vec![BACKPORT_LABEL.to_string()];
            labels.extend(policy.backport.labels.iter().cloned());
            let mut people: Vec<String> = vec![pull.author.login.clone()];
            people.extend(merger.filter(|m| !people.contains(m) && !m.ends_with("[bot]")));
            let opened = if conflicted && policy.backport.on_conflict == OnConflict::Issue {
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
                let number = match forge.pull_for_branch(&repo.full_name, &branch).await? {
                    Some(existing) => existing,
                    None => {
                        let new =
                            NewPull { title: &title, head: &branch, base: &target, body: &body, draft: conflicted };
                        forge.create_pull(&repo.full_name, &new).await?
                    }
                };
                if conflicted {
                    labels.push(CONFLICT_LABEL.to_string());
                }
                forge.decorate_pull(&repo.full_name, number, &labels, &people).await?;
                Some(number)
            };
            record.state = if conflicted { BackportState::Conflict } else { BackportState::Opened };
            record.pull = opened;
            record.tip = Some(made.tip.to_string());
            record.opened_at = Some(now);
            record.conflicts = made.conflicts;
            record.remaining = made.remaining;
            if let Some(merged_at) = facts.lane.merged_at {
                d.metrics
                    .backport_lead_time("opened", std::time::Duration::from_millis((now - merged_at).max(0) as u64));
            }
            let record = &*record;
            let head = decide::head_report(record, &made.tip.to_string(), &marked_paths(&record.conflicts));
            forge.report(&repo.full_name, &made.tip.to_string(), &head).await?;
            let what = match opened {
                Some(n) => format!("#{n} to {target}"),
                None => format!("to {target}: {}", record.detail.as_deref().unwrap_or_default()),
            };
            let action = if conflicted { "backport.conflict" } else { "backport.opened" };
            writes.push(scope.entry(action, what));
        }
    }
    publish(forge, &repo, &mut facts, &merge_commit).await?;
    writes.push(lane_state_write(forge_name, repo.id, &facts));
    Ok(writes)
}

/// Reports every target's state on the merge commit and in the backport comment.
async fn publish<F: Forge>(
    forge: &F,
    repo: &RepoRef,
    facts: &mut PullFacts,
    merge_commit: &str,
) -> Result<(), StepError> {
    let summary = decide::summary_report(&facts.lane.backports);
    if !merge_commit.is_empty() {
        forge.report(&repo.full_name, merge_commit, &summary).await?;
    }
    let known = facts.lane.backport_comment_id;
    let id = forge.upsert_comment(&repo.full_name, facts.number, known, BACKPORT_MARKER, &summary.details).await?;
    facts.lane.backport_comment_id = Some(id);
    Ok(())
}

/// Backports are hotfix-lane's own doing, on the merge commit (or the backport's head).
fn own_scope<'a>(at: Millis, forge: &'a str, repo: &'a str, number: u64, sha: &'a str) -> AuditScope<'a> {
    AuditScope { at, forge, repo, number, actor: "hotfix-lane", sha }
}

fn marked_paths(conflicts: &[ConflictPath]) -> Vec<String> {
    conflicts.iter().filter(|c| c.kind.has_markers()).map(|c| c.path.clone()).collect()
}

/// A backport pull request moved: its check follows the conflicts people resolve; its merge
/// or close ends the original's record for that target.
pub(super) async fn followup<P: Forges>(
    d: &Dispatch<P>,
    forges: &P,
    job: &ClaimedJob,
) -> Result<Vec<Write>, StepError> {
    let Followup { repo, number, target, installation_id, pull, head_sha, state } =
        serde_json::from_value(job.payload.clone())
            .map_err(|e| StepError::Invalid(format!("backport follow-up payload does not parse: {e}")))?;
    let forge_name = super::pull::job_forge(job);
    let Some(mut facts) = d.pull_state(forge_name, repo.id, number).await? else { return Ok(vec![]) };
    let Some(record) = facts.lane.backports.get_mut(&target).filter(|b| b.pull == Some(pull)) else {
        return Ok(vec![]);
    };
    let client = forges.client(installation_id)?;
    let forge = &client;
    let now = d.clock.now_ms();
    let scope = own_scope(now, forge_name, &repo.full_name, number, &head_sha);
    let mut writes = Vec::new();
    match state {
        ItemState::Open if record.conflicts.is_empty() => return Ok(vec![]),
        ItemState::Open => {
            let mut still_marked = Vec::new();
            for path in marked_paths(&record.conflicts) {
                let text = forge.file(&repo.full_name, &path, &head_sha).await?;
                if text.is_some_and(|f| decide::has_conflict_markers(&f.text)) {
                    still_marked.push(path);
                }
            }
            let report = decide::head_report(record, &head_sha, &still_marked);
            forge.report(&repo.full_name, &head_sha, &report).await?;
            return Ok(vec![]);
        }
        ItemState::Merged if record.state != BackportState::Merged => {
            record.state = BackportState::Merged;
            record.merged_at = Some(now);
            if let Some(merged_at) = facts.lane.merged_at {
                d.metrics
                    .backport_lead_time("merged", std::time::Duration::from_millis((now - merged_at).max(0) as u64));
            }
            writes.push(scope.entry("backport.merged", format!("#{pull} to {target}")));
        }
        ItemState::Closed if !matches!(record.state, BackportState::Merged | BackportState::Closed) => {
            record.state = BackportState::Closed;
            writes.push(scope.entry("backport.closed", format!("#{pull} to {target} closed without merging")));
        }
        _ => return Ok(vec![]),
    }
    let merge_commit = facts_merge_commit(forge, &repo, number).await?;
    publish(forge, &repo, &mut facts, &merge_commit).await?;
    writes.push(lane_state_write(forge_name, repo.id, &facts));
    Ok(writes)
}

async fn facts_merge_commit<F: Forge>(forge: &F, repo: &RepoRef, number: u64) -> Result<String, StepError> {
    Ok(forge.pull(&repo.full_name, number).await?.and_then(|p| p.merge_commit_sha).unwrap_or_default())
}

/// The blocking part: mirror, pick, push. Runs on a blocking thread.
struct GitWork {
    mirrors: Mirrors,
    key: String,
    url: String,
    credentials: Credentials,
    number: u64,
    base: String,
    target: String,
    merge_commit: String,
    branch: String,
}

impl GitWork {
    /// `None` when the target has the change already.
    fn run(self) -> Result<Option<Made>, MirrorError> {
        let mirror = self.mirrors.open(&self.key)?;
        let n = self.number;
        let remote_branch = format!("refs/hotfix-lane/remote/{}", self.branch);
        let refspecs = vec![
            format!("+refs/heads/{0}:refs/heads/{0}", self.base),
            format!("+refs/heads/{0}:refs/heads/{0}", self.target),
            // The change's own commits (to tell a rebase merge from a squash); a pattern, so
            // a forge without these refs is no error.
            format!("+refs/pull/{n}/*:refs/pull/{n}/*"),
            format!("+refs/heads/{BRANCH}*:refs/hotfix-lane/remote/{BRANCH}*", BRANCH = decide::BRANCH_PREFIX),
        ];
        mirror.fetch(&self.url, &self.credentials, &refspecs)?;
        let repo = mirror.repo();
        let result = match repo.refname_to_id(&remote_branch) {
            // Pushed before (a retry, or a crash before the pull request): adopt it as it is.
            Ok(existing) => Some(adopt(repo, existing, &self.target)?),
            Err(_) => self.pick(repo)?,
        };
        let Some(made) = result else {
            drop(mirror);
            self.mirrors.evict(&self.key)?;
            return Ok(None);
        };
        if repo.refname_to_id(&remote_branch).is_err() {
            // Someone may have created it since the fetch: then theirs stays and is adopted.
            if mirror.push_new(&self.url, &self.credentials, made.tip, &self.branch)? == Pushed::Exists {
                mirror.fetch(
                    &self.url,
                    &self.credentials,
                    &[format!("+refs/heads/{}:{remote_branch}", self.branch)],
                )?;
                let existing = repo.refname_to_id(&remote_branch)?;
                let adopted = adopt(repo, existing, &self.target)?;
                drop(mirror);
                self.mirrors.evict(&self.key)?;
                return Ok(Some(adopted));
            }
        }
        drop(mirror);
        self.mirrors.evict(&self.key)?;
        Ok(Some(made))
    }

    fn pick(&self, repo: &git2::Repository) -> Result<Option<Made>, MirrorError> {
        let merged = git2::Oid::from_str(&self.merge_commit)?;
        let head = repo.refname_to_id(&format!("refs/pull/{}/head", self.number)).ok();
        let (_, commits) = select::landed_commits(repo, merged, head)?;
        let onto = repo.refname_to_id(&format!("refs/heads/{}", self.target))?;
        let committer = crate::backport::bot_signature()?;
        Ok(match engine::pick(repo, onto, &commits, &committer)? {
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
}

/// A backport branch found on the forge: its conflicts are read back from hotfix-lane's
/// conflict commit on it, if there is one.
fn adopt(repo: &git2::Repository, tip: git2::Oid, target: &str) -> Result<Made, MirrorError> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    if let Ok(onto) = repo.refname_to_id(&format!("refs/heads/{target}")) {
        walk.hide(onto)?;
    }
    for id in walk {
        let commit = repo.find_commit(id?)?;
        if let Some((conflicts, picked)) = engine::read_conflict_commit(&commit) {
            return Ok(Made { tip, conflicts, conflict_commit: Some(picked), remaining: vec![] });
        }
    }
    Ok(Made { tip, conflicts: vec![], conflict_commit: None, remaining: vec![] })
}
