//! A GitLab webhook body, whatever its `object_kind`, and the Standard Webhooks headers
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`) parsed before the body is read.
#![no_main]

use hotfix_lane::forge::gitlab::payload::{parse, parse_with_kind, KINDS};
use hotfix_lane::ingress::gitlab_signature::{SignedHeaders, TIMESTAMP_TOLERANCE_SECS};
use hotfix_lane::lane::event::Forge;
use hotfix_lane_fuzz::check_envelope;
use libfuzzer_sys::fuzz_target;

/// A fixed "now" within the tolerance of timestamps around 2026.
const NOW_SECS: i64 = 1_790_000_000;

fuzz_target!(|data: &[u8]| {
    if !data.starts_with(b"{") {
        // Three header values, one a line, as sent (the id is checked as printable first).
        let mut lines = data.splitn(3, |&b| b == b'\n');
        let (id, timestamp, signature) = (lines.next(), lines.next(), lines.next());
        let id = id.and_then(|v| std::str::from_utf8(v).ok());
        if let Ok(signed) = SignedHeaders::parse(id, timestamp, signature, NOW_SECS) {
            assert_eq!(Some(signed.id.as_str()), id);
            assert!(
                (NOW_SECS - signed.timestamp).abs() <= TIMESTAMP_TOLERANCE_SECS,
                "a stale timestamp was let through"
            );
        }
    }
    let parsed = parse_with_kind(data);
    assert_eq!(
        parse(data).ok().flatten(),
        parsed.as_ref().ok().and_then(|(_, e)| e.clone()),
        "parse and parse_with_kind agree"
    );
    if let Ok((kind, envelope)) = parsed {
        if let Some(kind) = kind {
            assert!(KINDS.contains(&kind));
        }
        if let Some(envelope) = envelope {
            assert!(kind.is_some(), "only a kind the lane reads becomes an event");
            assert_eq!(envelope.forge, Forge::Gitlab);
            check_envelope(&envelope);
        }
    }
});
