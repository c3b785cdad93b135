//! How the page writes times, durations and figures: every figure with its universe, and an
//! absent figure as words, never as zero.

use crate::lane::incident::format_utc;
use crate::report::model::{Share, Spread};
use crate::store::Millis;

pub fn time(ms: Millis) -> String {
    format_utc(ms)
}

/// `45 s`, `12 min`, `2 h 5 min`, `3 d 4 h`.
pub fn duration_s(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match (s % 86_400) / 3600 {
            0 => format!("{} d", s / 86_400),
            h => format!("{} d {h} h", s / 86_400),
        },
    }
}

pub fn duration_ms(ms: Millis) -> String {
    duration_s(ms as f64 / 1000.0)
}

/// `3 of 41`.
pub fn universe(n: usize, of: usize) -> String {
    format!("{n} of {of}")
}

/// `93 %`, or `no data` when nothing is counted.
pub fn percent(share: &Share) -> String {
    match share.rate() {
        Some(rate) => format!("{} %", (rate * 100.0).round() as i64),
        None => "no data".into(),
    }
}

/// A duration figure: its median and p90, or `absent` when none of its universe has one.
pub fn spread(spread: &Spread, absent: &str) -> (String, String) {
    match (spread.median_s, spread.p90_s) {
        (Some(median), Some(p90)) if spread.n > 0 => (duration_s(median), duration_s(p90)),
        _ => (absent.to_string(), absent.to_string()),
    }
}

/// What a change waits for, as a sentence fragment.
pub fn waiting_for(what: &str) -> &'static str {
    match what {
        "authorization" => "a responder's authorization",
        "postmortem" => "a postmortem",
        "smoke" => "green smoke checks",
        "merge" => "the merge",
        _ => "something unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_largest_units() {
        assert_eq!(duration_s(45.0), "45 s");
        assert_eq!(duration_s(720.0), "12 min");
        assert_eq!(duration_s(7500.0), "2 h 5 min");
        assert_eq!(duration_s(7200.0), "2 h");
        assert_eq!(duration_s(3.0 * 86_400.0 + 4.0 * 3600.0), "3 d 4 h");
    }

    #[test]
    fn an_absent_figure_reads_as_words_never_zero() {
        let none = Spread { n: 0, of: 5, median_s: None, p90_s: None };
        assert_eq!(spread(&none, "not reported"), ("not reported".into(), "not reported".into()));
        assert_eq!(percent(&Share { hits: 0, of: 0 }), "no data");
        assert_eq!(percent(&Share { hits: 3, of: 4 }), "75 %");
    }
}
