//! Checks shared by the fuzz targets: what must hold of anything the parsers accept.

use hotfix_lane::lane::event::Envelope;

/// A parsed delivery is stored as JSON and read back by the job runner: it must serialize (the
/// ingress `expect`s it), read back as the same envelope, and keep its ordering key, since jobs
/// with one key run in delivery order and a key that changed between the two would let two jobs
/// about one change run at once.
pub fn check_envelope(envelope: &Envelope) {
    let key = envelope.ordering_key();
    assert_eq!(key, envelope.ordering_key(), "the ordering key is a function of the envelope");
    let stored = serde_json::to_string(envelope).expect("envelopes always serialize");
    let back: Envelope = serde_json::from_str(&stored).expect("a stored envelope reads back");
    assert_eq!(&back, envelope, "an envelope survives the store");
    assert_eq!(back.ordering_key(), key, "the stored envelope keeps its ordering key");
    assert_eq!(back.is_actionable(), envelope.is_actionable());
}

/// Text a reader could type on one line: no control characters, no bidirectional overrides
/// (which the Markdown writers drop on purpose), no `@` (which they follow with a zero-width
/// space on purpose).
pub fn plain_line(text: &str) -> bool {
    text.chars().all(|c| !c.is_control() && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '@'))
}
