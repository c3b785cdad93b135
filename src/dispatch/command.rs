//! Slash commands from change comments. `/hotfix postmortem` opens the postmortem issue.

use super::pull;
use super::{Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::command::{self, Command};
use crate::lane::event::{self, CommentAction, Envelope, Event, PullRequest, PullRequestAction, RepoRef};
use crate::lane::incident::{self, Incident};
use crate::lane::membership::Labeler;
use crate::lane::policy::Policy;
use crate::lane::postmortem;
use crate::store::{AuditEntry, Write};

pub(super) async fn on_comment<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    envelope: &Envelope,
    repo: &RepoRef,
    action: CommentAction,
    number: u64,
    comment: &event::Comment,
) -> Result<Vec<Write>, StepError> {
    // Edited and deleted comments never run commands: an edit could turn someone else's
    // harmless comment into one.
    let commands = if action == CommentAction::Created { command::parse(&comment.body) } else { vec![] };
    if !commands.contains(&Ok(Command::Postmortem)) {
        return d.track_only(envelope).await;
    }
    let Some(mut pull) = forge.pull(&repo.full_name, number).await? else {
        return Err(StepError::Invalid(format!("pull request #{number} not found")));
    };
    let loaded = d.policies.get(forge, repo).await?;
    let actor = &comment.author.login;
    let allowed = actor.eq_ignore_ascii_case(&pull.author.login)
        || forge.is_responder(&repo.full_name, actor, &loaded.policy.responders).await?;
    let head_sha = pull.head_sha.clone();
    let audit = |action: &str, detail: String| {
        Write::Audit(AuditEntry {
            at: d.clock.now_ms(),
            forge: envelope.forge.as_str().into(),
            repo: repo.full_name.clone(),
            number: Some(number as i64),
            actor: actor.clone(),
            action: action.into(),
            sha: Some(head_sha.clone()),
            detail,
        })
    };
    if !allowed {
        return Ok(vec![audit(
            "postmortem.command_refused",
            "only responders and the change's author may open its postmortem".into(),
        )]);
    }
    let prior = d.pull_state(envelope.forge.as_str(), repo.id, number).await?;
    let labeler = prior.as_ref().and_then(|p| p.lane.labeler.clone());
    let opened = ensure_postmortem(d, forge, repo, &mut pull, labeler.as_ref(), &loaded.policy).await?;
    // Evaluate the change as it now reads, as its `edited` event would.
    let edited = Envelope {
        event: Event::PullRequest { action: PullRequestAction::Edited, pull: pull.clone(), label: None },
        ..envelope.clone()
    };
    let mut writes = pull::on_pull(d, forge, &edited, repo, PullRequestAction::Edited, &pull, None, prior).await?;
    if let Some(issue) = opened {
        writes.push(audit("postmortem.opened", format!("#{issue} opened on request and linked")));
    }
    Ok(writes)
}

/// Opens (or finds the one already opened) postmortem issue for a change that names none, and
/// links it into the description. Returns the issue number when it linked one.
pub(super) async fn ensure_postmortem<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    repo: &RepoRef,
    pull: &mut PullRequest,
    labeler: Option<&Labeler>,
    policy: &Policy,
) -> Result<Option<u64>, StepError> {
    if matches!(postmortem::find_reference(&pull.body, &repo.full_name), Ok(Some(_))) {
        return Ok(None);
    }
    let label = &policy.postmortem.label;
    let marker = incident::marker(&repo.full_name, pull.number);
    let number = match forge.find_issue(&repo.full_name, label, &marker).await? {
        Some(existing) => existing,
        None => {
            let template = match &policy.postmortem.template {
                Some(path) => forge.file(&repo.full_name, path, &repo.default_branch).await?.map(|f| f.text),
                None => None,
            };
            let incident = Incident {
                repo: &repo.full_name,
                number: pull.number,
                title: &pull.title,
                labeler,
                label: &policy.lane.label,
                now: d.clock.now_ms(),
            };
            let body = incident::body(template.as_deref(), &incident);
            forge.create_issue(&repo.full_name, &incident::title(&incident), &body, std::slice::from_ref(label)).await?
        }
    };
    let separator = if pull.body.trim().is_empty() { "" } else { "\n\n" };
    pull.body = format!("{}{separator}Postmortem: #{number}", pull.body.trim_end());
    forge.set_pull_body(&repo.full_name, pull.number, &pull.body).await?;
    Ok(Some(number))
}
