//! Postmortem reminders ([`reminder`]): the sweep queues them, the job writes them once.

use super::{Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::event::ItemState;
use crate::lane::job::{Job, Subject};
use crate::lane::lifecycle::{Detail, LifecycleEvent};
use crate::lane::membership::Membership;
use crate::lane::reminder::{self, Reminder};
use crate::lane::track::PullFacts;
use crate::store::{Millis, Store, StoreError, Write};

/// The milestones of every hotfix merged in the sweep's horizon whose postmortem may call for a
/// reminder now, by change: read once per sweep rather than once per change, and only those,
/// so that the sweep's memory follows the postmortems that are due, not the lane's history.
pub(super) struct Recorded(std::collections::HashMap<(String, String, u64), Vec<LifecycleEvent>>);

impl Recorded {
    pub(super) async fn load(store: &Store, since: Millis, now: Millis) -> Result<Recorded, StoreError> {
        let mut by_change: std::collections::HashMap<_, Vec<LifecycleEvent>> = Default::default();
        for e in store.lifecycle_awaiting_postmortem(since, now + reminder::AHEAD).await? {
            by_change.entry((e.forge.clone(), e.repo.clone(), e.number)).or_default().push(e);
        }
        Ok(Recorded(by_change))
    }
}

/// The reminder a merged hotfix calls for now, as a job to queue.
pub(super) fn sweep(
    recorded: &Recorded,
    forge: crate::lane::event::Forge,
    facts: &PullFacts,
    now: Millis,
) -> Option<Job> {
    let (Some(repo), Membership::Hotfix { .. }, ItemState::Merged) = (&facts.repo, &facts.lane.membership, facts.state)
    else {
        return None;
    };
    let events = recorded.0.get(&(forge.as_str().to_string(), repo.full_name.clone(), facts.number))?;
    reminder::due(events, now).map(|(reminder, _)| Job::Remind {
        change: Subject { forge, repo: repo.clone(), number: facts.number, installation_id: facts.installation_id },
        reminder,
    })
}

/// Writes `reminder` on the change and its postmortem issue, unless it was written already or
/// is no longer due (the postmortem was closed meanwhile). The comments carry a marker, so a
/// job run again edits what it wrote instead of adding to it.
pub(super) async fn run<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    change: &Subject,
    reminder: Reminder,
) -> Result<Vec<Write>, StepError> {
    let now = d.clock.now_ms();
    let repo = change.repo.full_name.as_str();
    let events = d.store.lifecycle_of(change.forge.as_str(), repo, change.number).await?;
    let Some((due, due_at)) = reminder::due(&events, now) else { return Ok(vec![]) };
    if due != reminder {
        return Ok(vec![]);
    }
    let (facts, _) = d.change_state(change.key()).await?;
    let postmortem = facts.and_then(|f| f.lane.postmortem);
    let reference = forge.conventions().change_ref(change.number);
    let body = reminder::text(reminder, &reference, due_at, postmortem.as_ref().map(|p| p.to_string()).as_deref());
    if let Some(issue) = &postmortem {
        forge.upsert_issue_comment(&issue.repo, issue.number, reminder.marker(), &body).await?;
    }
    forge.upsert_comment(repo, change.number, None, reminder.marker(), &body).await?;
    d.metrics.postmortem_reminder(reminder.as_str());
    Ok(vec![Write::Lifecycle(LifecycleEvent {
        forge: change.forge.as_str().into(),
        repo: repo.into(),
        number: change.number,
        milestone: reminder.milestone(),
        key: String::new(),
        at: now,
        actor: "hotfix-lane".into(),
        detail: Detail { reference: postmortem.map(|p| p.to_string()), ..Detail::default() },
    })])
}
