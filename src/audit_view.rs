//! Reading the audit log, for people (`hotfix-lane audit`) and for tools (`GET /api/audit`).

use crate::lane::incident::{format_utc, parse_utc};
use crate::lane::policy::parse_duration;
use crate::store::{AuditEntry, Millis};

/// `--since`: a duration back from now (`24h`, `7d`), a date (`2026-11-01`) or a UTC time
/// (`2026-11-01T08:00:00Z`).
pub fn parse_since(text: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(ago) = parse_duration(text) {
        return Ok(now - ago.as_millis() as Millis);
    }
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    parse_utc(&full)
        .ok_or_else(|| format!("`{text}` is not a time: write `24h`, `2026-11-01` or `2026-11-01T08:00:00Z`"))
}

/// A plain-text table, one entry a line, oldest first.
pub fn table(entries: &[AuditEntry]) -> String {
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            [
                format_utc(e.at),
                match e.number {
                    Some(n) => format!("{}#{n}", e.repo),
                    None => e.repo.clone(),
                },
                e.actor.clone(),
                e.action.clone(),
                e.sha.as_deref().map_or("-".into(), |s| s.chars().take(10).collect()),
                e.detail.replace('\n', " "),
            ]
        })
        .collect();
    let header = ["when", "change", "actor", "action", "commit", "why"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row).take(5) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String; 6]| {
        let cells: Vec<String> = row.iter().zip(widths).take(5).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}  {}", cells.join("  "), row[5]).trim_end().to_string()
    };
    std::iter::once(line(&header)).chain(rows.iter().map(line)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_dates_and_times() {
        let now = 1_795_699_440_000;
        assert_eq!(parse_since("1h", now), Ok(now - 3_600_000));
        assert_eq!(parse_since("2026-11-26", now), Ok(1_795_651_200_000));
        assert_eq!(parse_since("2026-11-26T13:24:00Z", now), Ok(now));
        assert!(parse_since("yesterday", now).unwrap_err().contains("is not a time"));
    }

    #[test]
    fn tables_line_up() {
        let entry = AuditEntry {
            at: 1_795_699_440_000,
            forge: "github".into(),
            repo: "acme/shop".into(),
            number: Some(2),
            actor: "alice".into(),
            action: "lane.hotfix".into(),
            sha: Some("ec26c3e57ca3a959ca5a".into()),
            detail: "labelled\nby a responder".into(),
        };
        assert_eq!(
            table(&[entry]),
            "when                  change       actor  action       commit      why\n\
             2026-11-26 13:24 UTC  acme/shop#2  alice  lane.hotfix  ec26c3e57c  labelled by a responder"
        );
    }
}
