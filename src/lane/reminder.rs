//! Postmortem reminders: one comment when a hotfix's postmortem is due within a day, one when
//! it is overdue — never more than one of each, whatever the sweeps and replicas do.

use serde::{Deserialize, Serialize};

use super::lifecycle::{LifecycleEvent, Milestone};
use crate::store::Millis;

const DAY: Millis = 24 * 3600 * 1000;
/// How long before its due time a postmortem is first reminded of.
pub const AHEAD: Millis = DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reminder {
    Due,
    Overdue,
}

impl Reminder {
    pub fn milestone(self) -> Milestone {
        match self {
            Reminder::Due => Milestone::RemindedDue,
            Reminder::Overdue => Milestone::RemindedOverdue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reminder::Due => "due",
            Reminder::Overdue => "overdue",
        }
    }

    /// Marks the reminder's comment, so a retry edits it instead of adding another.
    pub fn marker(self) -> &'static str {
        match self {
            Reminder::Due => "<!-- hotfix-lane:postmortem-due -->",
            Reminder::Overdue => "<!-- hotfix-lane:postmortem-overdue -->",
        }
    }
}

/// The reminder one change's milestones call for at `now`, if any, with the due time: a merged
/// hotfix whose postmortem is not done, within a day of its due time (or past it), not yet
/// reminded so.
pub fn due(events: &[LifecycleEvent], now: Millis) -> Option<(Reminder, Millis)> {
    let merged = events.iter().find(|e| e.milestone == Milestone::Merged && e.detail.hotfix)?;
    let due_at = merged.detail.due_at?;
    let has = |m: Milestone| events.iter().any(|e| e.milestone == m);
    if has(Milestone::PostmortemClosed) {
        return None;
    }
    let reminder = match now {
        _ if now >= due_at => Reminder::Overdue,
        _ if now >= due_at - AHEAD => Reminder::Due,
        _ => return None,
    };
    (!has(reminder.milestone())).then_some((reminder, due_at))
}

/// The reminder's comment. `change`: the change as its forge writes a reference to it.
pub fn text(reminder: Reminder, change: &str, due_at: Millis, postmortem: Option<&str>) -> String {
    let when = super::incident::format_utc(due_at);
    let issue = postmortem.map_or_else(|| "its postmortem issue".to_string(), |p| format!("the postmortem {p}"));
    let what = match reminder {
        Reminder::Due => format!("⏰ The postmortem of hotfix {change} is due by {when}, within a day."),
        Reminder::Overdue => format!("⚠️ The postmortem of hotfix {change} is overdue: it was due by {when}."),
    };
    format!(
        "{}\n### hotfix-lane\n\n{what} Close {issue} (or give it the policy's done label) once it is written.\n",
        reminder.marker()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::lifecycle::Detail;

    fn event(milestone: Milestone, at: Millis, detail: Detail) -> LifecycleEvent {
        LifecycleEvent {
            forge: "github".into(),
            repo: "o/r".into(),
            number: 1,
            milestone,
            key: String::new(),
            at,
            actor: "x".into(),
            detail,
        }
    }

    fn merged(due_at: Millis) -> LifecycleEvent {
        event(Milestone::Merged, 0, Detail { hotfix: true, due_at: Some(due_at), ..Detail::default() })
    }

    #[test]
    fn a_day_before_it_is_due_then_once_overdue_and_never_twice() {
        let due_at = 7 * DAY;
        let mut events = vec![merged(due_at)];
        assert_eq!(due(&events, due_at - DAY - 1), None, "too early");
        assert_eq!(due(&events, due_at - DAY), Some((Reminder::Due, due_at)));
        events.push(event(Milestone::RemindedDue, due_at - DAY, Detail::default()));
        assert_eq!(due(&events, due_at - 1), None, "reminded already");
        assert_eq!(due(&events, due_at), Some((Reminder::Overdue, due_at)));
        events.push(event(Milestone::RemindedOverdue, due_at, Detail::default()));
        assert_eq!(due(&events, due_at + 30 * DAY), None);
    }

    #[test]
    fn a_done_postmortem_or_a_normal_change_is_never_reminded() {
        let due_at = 7 * DAY;
        let done = vec![merged(due_at), event(Milestone::PostmortemClosed, DAY, Detail::default())];
        assert_eq!(due(&done, due_at + DAY), None);
        let normal = vec![event(Milestone::Merged, 0, Detail::default())];
        assert_eq!(due(&normal, due_at + DAY), None);
    }

    #[test]
    fn the_text_names_the_change_the_issue_and_the_time() {
        let text = text(Reminder::Overdue, "#12", 0, Some("o/r#40"));
        assert!(text.starts_with(Reminder::Overdue.marker()));
        assert!(text.contains("#12 is overdue") && text.contains("1970-01-01 00:00 UTC") && text.contains("o/r#40"));
    }
}
