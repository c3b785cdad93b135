//! A GitHub delivery as the webhook endpoint sees it: `X-GitHub-Event` on the first line, the
//! body after it. Covers the `X-Hub-Signature-256` parser and every payload shape.
#![no_main]

use hotfix_lane::forge::github::payload::{parse, EVENTS};
use hotfix_lane::ingress::signature::Signature;
use hotfix_lane_fuzz::check_envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // The header is parsed before the body is read: any bytes may arrive in it.
    let _ = Signature::parse(Some(first));
    // A first line that names no event still exercises every shape: the byte picks one.
    let (event, body) = match std::str::from_utf8(first).ok().filter(|e| EVENTS.contains(e)) {
        Some(event) => (event, rest),
        None => (EVENTS[usize::from(data.first().copied().unwrap_or(0)) % EVENTS.len()], data),
    };
    if let Ok(Some(envelope)) = parse(event, body) {
        check_envelope(&envelope);
        let again = parse(event, body).ok().flatten().expect("the same body parses the same way");
        assert_eq!(again, envelope);
    }
});
