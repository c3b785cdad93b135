//! The postmortem issue hotfix-lane opens for a hotfix: title, body (from the policy's template
//! or a built-in one with the incident timeline) and the marker that makes opening idempotent.

use super::markdown;
use super::membership::Labeler;
use crate::store::Millis;

/// What the issue records about the change.
pub struct Incident<'a> {
    pub repo: &'a str,
    pub number: u64,
    pub title: &'a str,
    pub labeler: Option<&'a Labeler>,
    pub label: &'a str,
    pub now: Millis,
}

const DEFAULT_TEMPLATE: &str = "\
## Postmortem: {{title}}

Hotfix: {{pr}}

### Timeline (UTC)

| when | what |
| --- | --- |
| {{labeled_at}} | {{labeled}} |
| {{opened_at}} | this postmortem opened by hotfix-lane |

Add when the incident was detected and mitigated, and when the hotfix merged and was backported.

### Impact

### Root cause

### Resolution

### Follow-up actions

- [ ] 
";

/// Hidden in the issue body: lets a retried job find the issue it already opened.
pub fn marker(repo: &str, number: u64) -> String {
    format!("<!-- hotfix-lane:postmortem-for {repo}#{number} -->")
}

pub fn title(incident: &Incident) -> String {
    let title: String = incident.title.chars().take(200).collect();
    format!("Postmortem: {title}")
}

/// The issue body. A template may use `{{title}}`, `{{pr}}`, `{{labeled}}`, `{{labeled_at}}`
/// and `{{opened_at}}`. The change's title is escaped: it renders as the text it is.
pub fn body(template: Option<&str>, incident: &Incident) -> String {
    let labeled = match incident.labeler {
        Some(l) => format!(
            "{} label applied by @{}: the change enters the hotfix lane",
            markdown::code(incident.label),
            markdown::text(&l.login)
        ),
        None => format!("{} label applied", markdown::code(incident.label)),
    };
    let text = expand(template.unwrap_or(DEFAULT_TEMPLATE), |name| match name {
        "title" => Some(markdown::text(incident.title)),
        "pr" => Some(format!("#{}", incident.number)),
        "labeled_at" => Some(incident.labeler.map_or("—".into(), |l| format_utc(l.at))),
        "labeled" => Some(labeled.clone()),
        "opened_at" => Some(format_utc(incident.now)),
        _ => None,
    });
    format!("{text}\n{}\n", marker(incident.repo, incident.number))
}

/// Replaces each `{{name}}` of `template` that `value` knows, in one pass over the template:
/// what a value brings in is never read again, so a `{{pr}}` in a title stays as written.
/// Unknown names stay as they are.
fn expand(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}").and_then(|close| Some((close, value(&after[..close])?))) {
            Some((close, v)) => {
                out.push_str(&v);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Milliseconds since the epoch of a forge timestamp like `2026-11-26T13:24:00Z`.
pub fn parse_utc(text: &str) -> Option<Millis> {
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + hour * 3600 + minute * 60 + second) * 1000)
}

/// `2026-11-26 13:24 UTC`.
pub fn format_utc(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_795_699_440_000), "2026-11-26 13:24 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(parse_utc("2026-11-26T13:24:00Z"), Some(1_795_699_440_000));
        assert_eq!(parse_utc("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_utc("soon"), None);
    }

    #[test]
    fn templates_are_filled_and_marked() {
        let labeler = Labeler { login: "alice".into(), responder: true, at: 0 };
        let incident = Incident {
            repo: "acme/shop",
            number: 2,
            title: "Fix checkout",
            labeler: Some(&labeler),
            label: "hotfix",
            now: 60_000,
        };
        let text = body(Some("PR {{pr}} ({{title}}) by {{labeled}} at {{labeled_at}}"), &incident);
        assert!(text.starts_with("PR #2 (Fix checkout) by `hotfix` label applied by @alice"), "{text}");
        assert!(text.contains("at 1970-01-01 00:00 UTC"), "{text}");
        assert!(text.contains(&marker("acme/shop", 2)));
        assert!(body(None, &incident).contains("| 1970-01-01 00:01 UTC | this postmortem opened by hotfix-lane |"));
        assert_eq!(title(&incident), "Postmortem: Fix checkout");
    }

    #[test]
    fn placeholders_are_expanded_once_and_titles_escaped() {
        let incident = Incident {
            repo: "acme/shop",
            number: 2,
            title: "Fix {{pr}} {{labeled}} <img src=x> @acme/everyone **now**",
            labeler: None,
            label: "hotfix",
            now: 0,
        };
        let text = body(Some("{{title}} | {{pr}} | {{unknown}} | {{pr"), &incident);
        assert!(
            text.starts_with(
                "Fix {{pr}} {{labeled}} &lt;img src=x&gt; @&#8203;acme/everyone \\*\\*now\\*\\* | #2 | {{unknown}} | {{pr\n"
            ),
            "{text}"
        );
    }
}
