//! `/hotfix revert` jobs: the merged hotfix is reverted in memory on the backports' mirror,
//! pushed as `hotfix-lane/revert-<N>` (never over an existing branch) and opened as a new
//! change in the lane, labelled, with the responder's grant on its head already, so that
//! rolling back is as fast as the fix was.
//!
//! Idempotent by construction, as backports are: the branch name is the key. A retry finds the
//! branch it pushed before and the change the lane opened from it; a branch or a change that
//! is not provably the lane's is left alone and the revert fails, saying so.

use super::{audit_write, lane_state_write, new_job, Dispatch, StepError};
use crate::backport::mirror::{Credentials, Mirror, MirrorError, Mirrors, Pushed};
use crate::backport::{BOT_EMAIL, BOT_NAME};
use crate::forge::{Forge, Forges, NewPull};
use crate::lane::audit::{Audit, AuditAction};
use crate::lane::event::{ItemState, PullRequest};
use crate::lane::grant::Grant;
use crate::lane::incident::format_utc;
use crate::lane::job::{Job, Subject};
use crate::lane::markdown;
use crate::lane::membership::Labeler;
use crate::lane::track::PullFacts;
use crate::store::{Millis, Write};

/// Marks the lane's comment on the original that names its revert.
const REVERT_MARKER: &str = "<!-- hotfix-lane:revert -->";

/// The branch the revert of change `number` is pushed to.
pub fn branch_name(number: u64) -> String {
    format!("hotfix-lane/revert-{number}")
}

/// The revert commit's message, as `git revert` writes it.
pub fn message(title: &str, merge_commit: &str) -> String {
    format!("Revert \"{title}\"\n\nThis reverts commit {merge_commit}.\n")
}

/// Opens the revert of `change`, asked for by the responder `by`.
pub(super) async fn run<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    change: &Subject,
    by: &str,
    final_attempt: bool,
) -> Result<Vec<Write>, StepError> {
    let (repo, number) = (&change.repo, change.number);
    let Some(facts) = d.change_state(change.key()).await?.0 else { return Ok(vec![]) };
    let now = d.clock.now_ms();
    let policy = d.policies.get(forge, &repo.full_name).await?.policy.clone();
    let conventions = forge.conventions();
    let pull = forge.pull(&repo.full_name, number).await?.ok_or_else(|| {
        StepError::Invalid(format!("{} {} not found", conventions.change_noun, conventions.change_ref(number)))
    })?;
    let merge_commit = pull.merge_commit_sha.clone().unwrap_or_default();
    let failed = |why: String| -> Result<Vec<Write>, StepError> {
        let audit = Audit {
            action: AuditAction::RevertFailed,
            actor: "hotfix-lane".into(),
            sha: merge_commit.clone(),
            detail: why,
        };
        Ok(vec![audit_write(now, change, audit)])
    };
    if pull.state != ItemState::Merged || merge_commit.is_empty() {
        let why = format!("the {} is not merged with a merge commit", conventions.change_noun);
        return comment_failure(forge, &repo.full_name, number, &why).await.and_then(|()| failed(why));
    }
    let branch = branch_name(number);
    let remote = forge.git_remote(&repo.full_name).await?;
    let work = GitWork {
        mirrors: d.mirrors.clone(),
        key: format!("{}-{}", change.forge.as_str(), repo.id),
        url: remote.url,
        credentials: remote.token.map(Credentials::token).unwrap_or_default(),
        base: pull.base_ref.clone(),
        merge_commit: merge_commit.clone(),
        message: message(&pull.title, &merge_commit),
        branch: branch.clone(),
    };
    let tip = match tokio::task::spawn_blocking(move || work.run()).await {
        Ok(Ok(Outcome::Made(tip))) => tip,
        Ok(Ok(Outcome::Failed(why))) => {
            return comment_failure(forge, &repo.full_name, number, &why).await.and_then(|()| failed(why));
        }
        // A transient failure (network, lock) is worth another attempt; the last one is said.
        Ok(Err(err)) if !final_attempt => return Err(StepError::Invalid(err.to_string())),
        Ok(Err(err)) => {
            let why = format!("git failed: {}", markdown::text(&err.to_string()));
            return comment_failure(forge, &repo.full_name, number, &why).await.and_then(|()| failed(why));
        }
        Err(join) => return Err(StepError::Invalid(format!("revert task failed: {join}"))),
    };
    // Anyone may open a change from the branch: only one the lane opened is its own.
    let lane = forge.identity().await?;
    let pulls = forge.pulls_for_branch(&repo.full_name, &branch).await?;
    if let Some(other) = pulls.iter().find(|p| !p.author.eq_ignore_ascii_case(&lane)) {
        let why = format!(
            "branch exists and is not ours: `{branch}` has {} {} opened by {}, not by hotfix-lane, so hotfix-lane left it alone",
            conventions.change_noun,
            conventions.change_ref(other.number),
            other.author
        );
        return comment_failure(forge, &repo.full_name, number, &why).await.and_then(|()| failed(why));
    }
    let title = format!("Revert \"{}\"", pull.title);
    let mut body = format!(
        "{}\n\nOpened on @{by}'s `/hotfix revert`: their authorization is attached to its head commit.\n",
        revert_reference(conventions, &repo.full_name, number)
    );
    if let Some(postmortem) = &facts.lane.postmortem {
        body.push_str(&format!("\nPostmortem: {postmortem}\n"));
    }
    let opened = match pulls.first() {
        Some(existing) => existing.number,
        None => {
            let new = NewPull { title: &title, head: &branch, base: &pull.base_ref, body: &body, draft: false };
            forge.create_pull(&repo.full_name, &new).await?
        }
    };
    let label = policy.lane.label.clone();
    forge.decorate_pull(&repo.full_name, opened, std::slice::from_ref(&label), &[by.to_string()]).await?;

    let revert = Subject { number: opened, ..change.clone() };
    let (prior, read) = d.change_state(revert.key()).await?;
    let tip = tip.to_string();
    let grant = Grant {
        by: by.to_string(),
        sha: tip.clone(),
        base: pull.base_ref.clone(),
        label: label.clone(),
        granted_at: now,
        expires_at: now + policy.merge.max_grant.as_millis() as Millis,
        reason: Some(format!("revert of {}", conventions.change_ref(number))),
        self_authorized: false,
    };
    let reference = conventions.change_ref(opened);
    let mut writes = vec![audit_write(
        now,
        change,
        Audit {
            action: AuditAction::RevertOpened,
            actor: by.to_string(),
            sha: merge_commit.clone(),
            detail: format!("{reference}, authorized by @{by}"),
        },
    )];
    let seeded = seeded(prior, &revert, &pull, &title, &lane, grant, now);
    let granted = seeded.is_some();
    match seeded {
        Some((facts, audit)) => {
            writes.push(audit_write(now, &revert, audit));
            writes.push(lane_state_write(revert.key(), &facts, read));
        }
        None => {
            let detail = format!("{reference} was pushed to before the grant was attached: it needs a new one");
            writes.push(audit_write(
                now,
                &revert,
                Audit { action: AuditAction::GrantRefused, actor: by.to_string(), sha: tip.clone(), detail },
            ));
        }
    }
    // Evaluated in its own queue, after whatever its webhooks brought.
    writes.push(Write::Enqueue(new_job(&Job::Reconcile(revert), now)));
    let short = &tip[..tip.len().min(7)];
    let comment = if granted {
        format!(
            "{REVERT_MARKER}\n### hotfix-lane\n\nReverted in {reference}, opened on @{by}'s `/hotfix revert` with \
             their authorization on its head `{short}`: it merges once its smoke checks pass.\n"
        )
    } else {
        format!(
            "{REVERT_MARKER}\n### hotfix-lane\n\nReverted in {reference}, opened on @{by}'s `/hotfix revert`; it was \
             pushed to since, so it needs a responder's `/hotfix authorize`.\n"
        )
    };
    forge.upsert_comment(&repo.full_name, number, None, REVERT_MARKER, &comment).await?;
    Ok(writes)
}

/// The revert's facts with the responder's label and grant on its head; `None` when its head
/// is no longer the commit the lane pushed (a push voids a grant, this one too).
#[allow(clippy::too_many_arguments)]
fn seeded(
    prior: Option<PullFacts>,
    revert: &Subject,
    original: &PullRequest,
    title: &str,
    lane: &str,
    grant: Grant,
    now: Millis,
) -> Option<(PullFacts, Audit)> {
    let label = grant.label.clone();
    let mut facts = prior.unwrap_or_else(|| PullFacts {
        number: revert.number,
        title: title.to_string(),
        head_sha: grant.sha.clone(),
        head_ref: branch_name(original.number),
        base_ref: original.base_ref.clone(),
        labels: vec![],
        state: ItemState::Open,
        from_fork: false,
        author: Some(lane.to_string()),
        events: 0,
        repo: Some(revert.repo.clone()),
        installation_id: revert.installation_id,
        lane: Default::default(),
    });
    if facts.head_sha != grant.sha || facts.base_ref != grant.base {
        return None;
    }
    let shown = facts.labels.iter().any(|l| l.eq_ignore_ascii_case(&label));
    facts.lane.labeler = Some(Labeler { login: grant.by.clone(), responder: true, at: now });
    // Until an event shows the lane's label, the label that arrives is the lane's own: it
    // counts as the responder's once. Once one showed it, there is nothing left to count.
    facts.lane.revert_for = (!shown).then(|| grant.clone());
    if !shown {
        // The lane has just applied it: until an event shows it, the grant's lapse is decided
        // on the labels as the lane set them.
        facts.labels.push(label);
    }
    facts.lane.grant = Some(grant.clone());
    facts.lane.lapsed = None;
    let detail =
        format!("on @{}'s `/hotfix revert` of #{}, until {}", grant.by, original.number, format_utc(grant.expires_at));
    let audit = Audit { action: AuditAction::GrantCreated, actor: grant.by.clone(), sha: grant.sha.clone(), detail };
    Some((facts, audit))
}

/// The line the forge's own revert writes, which [`crate::lane::lineage::reverted`] reads.
fn revert_reference(conventions: &crate::lane::conventions::Conventions, repo: &str, number: u64) -> String {
    match conventions.forge {
        crate::lane::event::Forge::Github => format!("Reverts {repo}#{number}"),
        crate::lane::event::Forge::Gitlab => format!("This reverts merge request !{number}"),
    }
}

/// Says on the original why its revert was not opened.
async fn comment_failure<F: Forge>(forge: &F, repo: &str, number: u64, why: &str) -> Result<(), StepError> {
    let body = format!("{REVERT_MARKER}\n### hotfix-lane\n\nThe revert was not opened: {why}.\n");
    forge.upsert_comment(repo, number, None, REVERT_MARKER, &body).await?;
    Ok(())
}

/// The blocking part: mirror, revert, push. Runs on a blocking thread.
struct GitWork {
    mirrors: Mirrors,
    key: String,
    url: String,
    credentials: Credentials,
    base: String,
    merge_commit: String,
    message: String,
    branch: String,
}

enum Outcome {
    Made(git2::Oid),
    /// Conflicts, nothing to revert, or a branch that is not the lane's: why.
    Failed(String),
}

impl GitWork {
    fn run(self) -> Result<Outcome, MirrorError> {
        let outcome = self.make(&self.mirrors.open(&self.key)?)?;
        self.mirrors.evict(&self.key)?;
        Ok(outcome)
    }

    fn make(&self, mirror: &Mirror) -> Result<Outcome, MirrorError> {
        let remote_branch = format!("refs/hotfix-lane/remote/{}", self.branch);
        let refspecs = vec![
            format!("+refs/heads/{0}:refs/heads/{0}", self.base),
            // A pattern, so that a branch not there yet is no error.
            format!("+refs/heads/{0}*:refs/hotfix-lane/remote/{0}*", self.branch),
        ];
        mirror.fetch(&self.url, &self.credentials, &refspecs)?;
        let repo = mirror.repo();
        if let Ok(existing) = repo.refname_to_id(&remote_branch) {
            return self.adopt(repo, existing);
        }
        let onto = repo.refname_to_id(&format!("refs/heads/{}", self.base))?;
        let tip = match self.revert(repo, onto, &crate::backport::bot_signature()?)? {
            Ok(tip) => tip,
            Err(why) => return Ok(Outcome::Failed(why)),
        };
        if mirror.push_new(&self.url, &self.credentials, tip, &self.branch)? == Pushed::Exists {
            // Someone created it since the fetch: it is left as it is.
            let refspec = format!("+refs/heads/{}:{remote_branch}", self.branch);
            mirror.fetch(&self.url, &self.credentials, &[refspec])?;
            return self.adopt(repo, repo.refname_to_id(&remote_branch)?);
        }
        Ok(Outcome::Made(tip))
    }

    /// The revert of the merge commit onto `onto`, committed by `committer`: written to the
    /// object database only. `Err` says why there is none.
    fn revert(
        &self,
        repo: &git2::Repository,
        onto: git2::Oid,
        committer: &git2::Signature,
    ) -> Result<Result<git2::Oid, String>, MirrorError> {
        let short = &self.merge_commit[..self.merge_commit.len().min(7)];
        let Ok(merged) = git2::Oid::from_str(&self.merge_commit).and_then(|id| repo.find_commit(id)) else {
            return Ok(Err(format!("the merge commit {short} is not on {}", markdown::code(&self.base))));
        };
        let ours = repo.find_commit(onto)?;
        let mainline = if merged.parent_count() > 1 { 1 } else { 0 };
        let mut index = repo.revert_commit(&merged, &ours, mainline, None)?;
        if index.has_conflicts() {
            let paths: Vec<String> = index
                .conflicts()?
                .filter_map(|c| c.ok())
                .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                .collect();
            return Ok(Err(format!(
                "reverting {short} on {} conflicts in {}: revert it by hand",
                markdown::code(&self.base),
                paths.iter().map(|p| markdown::code(p)).collect::<Vec<_>>().join(", ")
            )));
        }
        let tree = repo.find_tree(index.write_tree_to(repo)?)?;
        if tree.id() == ours.tree_id() {
            return Ok(Err(format!("{} does not have the changes of {short} any more", markdown::code(&self.base))));
        }
        Ok(Ok(repo.commit(None, committer, committer, &self.message, &tree, &[&ours])?))
    }

    /// The revert branch found at `tip`, taken as the lane's own only when it is exactly what
    /// the lane makes: one commit on the base's history, committed by hotfix-lane, whose
    /// revert made again with its parent and signature gives `tip` itself. Anyone who can push
    /// may create a branch of that name, and write any committer or message.
    fn adopt(&self, repo: &git2::Repository, tip: git2::Oid) -> Result<Outcome, MirrorError> {
        let not_ours = |why: &str| {
            Ok(Outcome::Failed(format!(
                "branch exists and is not ours: `{}` {why}, so hotfix-lane left it alone",
                self.branch
            )))
        };
        let head = repo.find_commit(tip)?;
        let committer = head.committer().to_owned();
        if committer.name_bytes() != BOT_NAME.as_bytes() || committer.email_bytes() != BOT_EMAIL.as_bytes() {
            return not_ours("its head commit was not committed by hotfix-lane");
        }
        if head.parent_count() != 1 {
            return not_ours("its head commit is no revert made by hotfix-lane");
        }
        let onto = head.parent_id(0)?;
        let base = repo.refname_to_id(&format!("refs/heads/{}", self.base))?;
        if onto != base && !repo.graph_descendant_of(base, onto).unwrap_or(false) {
            return not_ours(&format!("is not based on {}", markdown::code(&self.base)));
        }
        match self.revert(repo, onto, &committer)? {
            Ok(again) if again == tip => Ok(Outcome::Made(tip)),
            _ => not_ours("does not hold hotfix-lane's revert"),
        }
    }
}
