//! The lane on one change: membership, the postmortem check, the lane's comment, the audit.

use serde::{Deserialize, Serialize};

use super::observe::{head_author, job_forge, look_up, own_event, recorded_labeler};
use super::postmortem_issue;
use super::report::{evaluate, publish, state_word};
use super::{backport, change_key, lane_state_write, AuditScope, Dispatch, StepError, GITHUB_POLICY_PATH};
use crate::forge::{Forge, Forges};
use crate::lane::backport as decide;
use crate::lane::event::{Envelope, Event, ItemState, PullRequest, PullRequestAction, RepoRef};
use crate::lane::grant::{self, Grant};
use crate::lane::incident::format_utc;
use crate::lane::markdown;
use crate::lane::membership::{self, Labeler, Membership};
use crate::lane::policy::Policy;
use crate::lane::postmortem::{self, IssueRef};
use crate::lane::report::{CheckState, Report, POLICY_CONTEXT};
use crate::lane::track::{self, PullFacts};
use crate::store::{ClaimedJob, Millis, NewJob, Write};

/// Re-reads one change from the forge and evaluates it as if it had just been edited.
pub const RECONCILE_JOB: &str = "reconcile";

#[derive(Serialize, Deserialize)]
struct Reconcile {
    repo: RepoRef,
    number: u64,
    installation_id: Option<u64>,
}

pub(super) fn reconcile_job(forge: &str, facts: &PullFacts, repo: &RepoRef, now: crate::store::Millis) -> NewJob {
    let (number, installation_id) = (facts.number, facts.installation_id);
    NewJob {
        kind: RECONCILE_JOB.into(),
        ordering_key: change_key(forge, repo.id, number),
        payload: serde_json::to_value(Reconcile { repo: repo.clone(), number, installation_id }).expect("serializes"),
        delivery_id: None,
        max_attempts: 3,
        run_at: now,
    }
}

pub(super) async fn reconcile<P: Forges>(
    d: &Dispatch<P>,
    forges: &P,
    job: &ClaimedJob,
) -> Result<Vec<Write>, StepError> {
    let Reconcile { repo, number, installation_id } = serde_json::from_value(job.payload.clone())
        .map_err(|e| StepError::Invalid(format!("reconcile payload does not parse: {e}")))?;
    let client = forges.client(installation_id)?;
    let forge = &client;
    let forge_name = job_forge(job);
    let Some(pull) = forge.pull(&repo.full_name, number).await? else { return Ok(vec![]) };
    let prior = d.pull_state(forge_name, repo.id, number).await?;
    let edited = Event::PullRequest { action: PullRequestAction::Edited, pull: pull.clone(), label: None };
    let envelope = own_event(forge_name, &repo, installation_id, edited);
    on_pull(d, forge, &envelope, &repo, PullRequestAction::Edited, &pull, None, prior).await
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn on_pull<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    action: PullRequestAction,
    pull: &PullRequest,
    label: Option<&str>,
    prior: Option<PullFacts>,
) -> Result<Vec<Write>, StepError> {
    // GitHub never reopens a merged change: an event that shows it open is older than the merge
    // (a redelivery, or one that arrived late), and deciding on it would grant and audit again.
    if prior.as_ref().is_some_and(|p| p.state == ItemState::Merged) && pull.state != ItemState::Merged {
        return Ok(vec![]);
    }
    let now = d.clock.now_ms();
    let mut facts = track::observe(prior.clone(), envelope).expect("a pull request event has a subject");
    let scope = AuditScope {
        at: now,
        forge: envelope.forge.as_str(),
        repo: &repo.full_name,
        number: pull.number,
        actor: &envelope.sender.login,
        sha: &pull.head_sha,
    };
    // Authority this event takes away needs no look-ups, and is kept even when the evaluation
    // after it fails: nothing a change's author can make fail may keep a grant alive.
    let mut lapsed = Vec::new();
    if let Some((action, why)) = grant::drop_lapsed(&mut facts) {
        lapsed.push(scope.entry(action, why));
    }
    let had_labels = prior.as_ref().map(|p| p.labels.clone());
    let was = Prior { membership: prior.map(|p| p.lane.membership).unwrap_or_default(), labels: had_labels };
    let evaluated = decide_pull(d, forge, envelope, repo, action, pull, label, was, facts.clone(), now).await;
    lapsed_first(envelope, repo, &facts, lapsed, evaluated, now)
}

/// Commits `lapsed` (authority taken away) with the evaluation's writes, or on their own with
/// a re-evaluation queued behind them when the evaluation failed.
pub(super) fn lapsed_first(
    envelope: &Envelope,
    repo: &RepoRef,
    facts: &PullFacts,
    mut lapsed: Vec<Write>,
    evaluated: Result<Vec<Write>, StepError>,
    now: Millis,
) -> Result<Vec<Write>, StepError> {
    match evaluated {
        Ok(writes) => {
            lapsed.extend(writes);
            Ok(lapsed)
        }
        Err(err) if lapsed.is_empty() => Err(err),
        Err(err) => {
            tracing::warn!(repo = %repo.full_name, number = facts.number, error = %err,
                "evaluation failed after a grant lapsed; the lapse is kept and the change is looked at again");
            let forge_name = envelope.forge.as_str();
            lapsed.push(lane_state_write(forge_name, repo.id, facts));
            lapsed.push(Write::Enqueue(reconcile_job(forge_name, facts, repo, now + RETRY_AFTER_LAPSE_MS)));
            Ok(lapsed)
        }
    }
}

/// What the lane knew of a change before this event.
struct Prior {
    membership: Membership,
    /// `None` for a change never seen.
    labels: Option<Vec<String>>,
}

/// How long after a failed evaluation the change is looked at again.
const RETRY_AFTER_LAPSE_MS: Millis = 30_000;

#[allow(clippy::too_many_arguments)]
async fn decide_pull<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    action: PullRequestAction,
    pull: &PullRequest,
    label: Option<&str>,
    was: Prior,
    mut facts: PullFacts,
    now: Millis,
) -> Result<Vec<Write>, StepError> {
    let loaded = d.policies.get(forge, &repo.full_name).await?;
    let policy = &loaded.policy;
    let lane_label = &policy.lane.label;
    let has_label = pull.labels.iter().any(|l| l.eq_ignore_ascii_case(lane_label));
    let sender = &envelope.sender.login;
    let applied_now = match action {
        // GitHub sends `labeled` only for a label that was not on: one for a label the change
        // already carries is older than what the lane knows (a redelivery, or late), and must
        // not grant again after a revoke or an expiry.
        PullRequestAction::Labeled => {
            let already = was.labels.as_ref().is_some_and(|l| l.iter().any(|l| l.eq_ignore_ascii_case(lane_label)));
            !already && label.is_some_and(|l| l.eq_ignore_ascii_case(lane_label))
        }
        // Labels set while opening the pull request were set by whoever opened it.
        PullRequestAction::Opened => has_label,
        _ => false,
    };
    let labeler = if !has_label {
        None
    } else if applied_now {
        let responder = d.responders.check(forge, &repo.full_name, sender, &loaded, now).await?;
        Some(Labeler { login: sender.clone(), responder, at: now })
    } else if let Some(known) = facts.lane.labeler.clone() {
        Some(known)
    } else {
        // Labelled while hotfix-lane was not listening: ask the forge who did it.
        recorded_labeler(forge, &repo.full_name, pull.number, policy).await?
    };
    facts.lane.labeler = labeler;
    facts.lane.membership = membership::evaluate(pull, policy, facts.lane.labeler.as_ref());
    let mut writes = Vec::new();
    let scope = AuditScope {
        at: now,
        forge: envelope.forge.as_str(),
        repo: &repo.full_name,
        number: pull.number,
        actor: sender,
        sha: &pull.head_sha,
    };
    let audit = |action: &str, detail: String| scope.entry(action, detail);
    if facts.lane.membership != was.membership {
        writes.push(audit(
            membership_action(&facts.lane.membership),
            membership::report(&facts.lane.membership, policy).details,
        ));
    }
    // A responder applying the label authorizes the head commit (unless they wrote it);
    // leaving the lane ends the grant.
    if applied_now && facts.lane.membership.in_lane() {
        let head_author = head_author(forge, repo, pull, sender, policy).await?;
        let request = grant::Request { by: sender, duration: None, reason: None, head_author: head_author.as_deref() };
        match grant::authorize(pull, request, policy, now) {
            Err(why) => writes.push(audit("grant.refused", why)),
            Ok(g) => {
                let detail = format!("by applying the lane label, until {}", format_utc(g.expires_at));
                writes.push(audit("grant.created", self_marked(detail, &g)));
                facts.lane.grant = Some(g);
                facts.lane.lapsed = None;
            }
        }
    } else if !facts.lane.membership.in_lane() && facts.lane.grant.is_some() {
        facts.lane.grant = None;
        writes.push(audit("grant.cleared", "the change left the lane".into()));
    }
    let mut pull = pull.clone();
    if applied_now && facts.lane.membership.in_lane() && policy.postmortem.open_on_label {
        let labeler = facts.lane.labeler.as_ref();
        if let Some(issue) = postmortem_issue::ensure(d, forge, repo, &mut pull, labeler, policy).await? {
            writes
                .push(audit("postmortem.opened", format!("#{issue} opened as the lane label was applied, and linked")));
        }
    }
    let pull = &pull;
    let reference = postmortem::find_reference(&pull.body, &repo.full_name);
    facts.lane.postmortem = reference.clone().ok().flatten();
    if pull.state == ItemState::Open {
        let lookup = look_up(forge, &facts.lane.membership, &reference, &repo.full_name, policy).await?;
        let reports = evaluate(&facts, &reference, &repo.full_name, lookup.as_ref(), policy);
        let forge_name = envelope.forge.as_str();
        let published =
            publish(forge, forge_name, repo, &mut facts, &reports, policy, loaded.error.as_ref(), now).await?;
        if let Some(r) = published.postmortem_changed {
            writes.push(audit(&format!("postmortem.{}", state_word(&r)), r.description.clone()));
        }
        writes.extend(published.merge);
        if matches!(action, PullRequestAction::Opened | PullRequestAction::Synchronize | PullRequestAction::Reopened) {
            check_policy_edit(forge, repo, pull, &mut facts).await?;
        }
    }
    if let Some((original, target)) = decide::parse_branch(&pull.head_ref).filter(|_| !pull.from_fork) {
        let followup = backport::Followup {
            repo: repo.clone(),
            number: original,
            target: target.to_string(),
            installation_id: envelope.installation_id,
            pull: pull.number,
            head_sha: pull.head_sha.clone(),
            state: pull.state,
        };
        writes.push(backport::followup_job(envelope.forge.as_str(), &followup, now));
    }
    if pull.state == ItemState::Merged && facts.lane.membership.in_lane() {
        let merger = (action == PullRequestAction::Closed).then_some(sender.as_str());
        facts.lane.merged_at.get_or_insert(now);
        facts.lane.merge_commit = pull.merge_commit_sha.clone().or(facts.lane.merge_commit.take());
        let requested = &facts.lane.backport_requests;
        let targets = decide::targets(policy, &repo.default_branch, &pull.base_ref, &pull.labels, requested);
        let started = backport::start(envelope.forge.as_str(), repo, &mut facts, targets, policy, merger, now);
        // Pending from the start: the merge commit never looks done while backports are made.
        if let Some(sha) = pull.merge_commit_sha.as_deref().filter(|_| !started.is_empty()) {
            forge.report(&repo.full_name, sha, &decide::summary_report(&facts.lane.backports)).await?;
        }
        writes.extend(started);
    }
    let issue = (facts.lane.membership.in_lane()).then(|| facts.lane.postmortem.clone()).flatten();
    writes.push(link_write(envelope.forge.as_str(), repo, pull.number, issue));
    writes.push(lane_state_write(envelope.forge.as_str(), repo.id, &facts));
    Ok(writes)
}

/// An audit detail, marked when the grant is the authorizer's own.
pub(super) fn self_marked(detail: String, g: &Grant) -> String {
    if g.self_authorized {
        format!("{detail} (self-authorized: @{} wrote the change)", g.by)
    } else {
        detail
    }
}

/// Marks the comment that explains an invalid policy file in a change.
const POLICY_MARKER: &str = "<!-- hotfix-lane:policy -->";

/// A change that edits the policy file gets the new version validated before it can merge:
/// reported as `hotfix-lane/policy`, with the problems spelled out in a comment.
async fn check_policy_edit<F: Forge>(
    forge: &F,
    repo: &RepoRef,
    pull: &PullRequest,
    facts: &mut PullFacts,
) -> Result<(), StepError> {
    let files = forge.changed_files(&repo.full_name, pull.number).await?;
    if !files.iter().any(|f| f == GITHUB_POLICY_PATH) {
        return Ok(());
    }
    let (state, description, details) = match forge.file(&repo.full_name, GITHUB_POLICY_PATH, &pull.head_sha).await? {
        None => (CheckState::Success, "policy file removed: defaults apply".to_string(), String::new()),
        Some(file) => match Policy::parse(&file.text) {
            Ok(_) => (CheckState::Success, "policy file valid".to_string(), String::new()),
            Err(error) => {
                // The message quotes the change's file: fenced, no markup in it renders.
                let message = markdown::fence(&format!("{GITHUB_POLICY_PATH}:{error}"));
                let body = format!(
                    "{POLICY_MARKER}\n### hotfix-lane\n\n❌ `{GITHUB_POLICY_PATH}` in this change is invalid:\n\n{message}\n\nThe lane keeps using the policy on the default branch until a valid one is merged.\n"
                );
                forge.upsert_comment(&repo.full_name, pull.number, None, POLICY_MARKER, &body).await?;
                (CheckState::Failure, format!("policy file invalid: {error}"), message)
            }
        },
    };
    // A check run shows the details (or else the description) as Markdown: the fenced message.
    let report = Report::new(POLICY_CONTEXT, state, description, details);
    if facts.lane.is_news(&pull.head_sha, &report) {
        forge.report(&repo.full_name, &pull.head_sha, &report).await?;
        facts.lane.remember(&pull.head_sha, &report);
    }
    Ok(())
}

fn link_write(forge: &str, repo: &RepoRef, number: u64, issue: Option<IssueRef>) -> Write {
    Write::PostmortemLink {
        forge: forge.into(),
        repo_id: repo.id as i64,
        repo: repo.full_name.clone(),
        number: number as i64,
        issue: issue.map(|i| (i.repo, i.number as i64)),
    }
}

fn membership_action(m: &Membership) -> &'static str {
    match m {
        Membership::Normal => "lane.normal",
        Membership::Hotfix { .. } => "lane.hotfix",
        Membership::NotAuthorized { .. } => "lane.not_authorized",
        Membership::BranchMismatch => "lane.branch_mismatch",
    }
}
