//! `POST /webhooks/gitlab`.
//!
//! GitLab pauses a hook after 4 failed deliveries in a row and disables it after 40, counting
//! any 4xx. So only a delivery that fails authentication, a body that is not a GitLab event at
//! all (not JSON, or no `object_kind`) and an oversized body are refused; every authenticated
//! event the lane does not act on — an unknown kind, a system hook, an approval, a note on a
//! commit, even a known kind whose shape this version cannot read — is answered `200 ignored`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::gitlab_signature::{SecretTokens, SignedHeaders, SigningKeys};
use super::{id_header, Ingress, Outcome};
use crate::forge::gitlab::payload::{self as gitlab_payload, PayloadError};

/// How GitLab deliveries are authenticated.
///
/// When any signing token (`whsec_…`) is configured, every delivery must carry a valid
/// Standard Webhooks signature made with one of them; `X-Gitlab-Token` is then not enough on
/// its own, even when it matches a configured secret token (otherwise a leaked secret token
/// would bypass the signature, and replays would go unchecked). Without signing tokens,
/// `X-Gitlab-Token` must equal one of the secret tokens. Several of each may be configured
/// during a rotation.
pub struct GitlabIngress {
    secret_tokens: SecretTokens,
    signing_keys: SigningKeys,
}

impl GitlabIngress {
    /// Fails on an empty token, a signing token that does not decode, or no token at all
    /// (which would refuse every delivery). The message never contains a token.
    pub fn new(secret_tokens: &[String], signing_tokens: &[String]) -> Result<GitlabIngress, String> {
        let secret_tokens = SecretTokens::new(secret_tokens)?;
        let signing_keys = SigningKeys::new(signing_tokens)?;
        if secret_tokens.is_empty() && signing_keys.is_empty() {
            return Err("set a webhook secret token or a signing token for GitLab deliveries".into());
        }
        Ok(GitlabIngress { secret_tokens, signing_keys })
    }
}

pub async fn webhook(State(ingress): State<Arc<Ingress>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let delivery = id_header(&headers, "idempotency-key").or_else(|| id_header(&headers, "webhook-id")).unwrap_or("-");
    let event = id_header_spaced(&headers, "x-gitlab-event").unwrap_or("-");
    let span =
        tracing::info_span!("delivery", forge = "gitlab", id = %delivery, event = %event, kind = tracing::field::Empty);
    async {
        let (outcome, kind) = intake(&ingress, &headers, body).await;
        ingress.finish("gitlab", kind, started, outcome)
    }
    .instrument(span)
    .await
}

/// A header such as `X-Gitlab-Event: Merge Request Hook`: printable ASCII and spaces.
fn id_header_spaced<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let v = headers.get(name)?.to_str().ok()?;
    (!v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')).then_some(v)
}

/// The outcome, and the metric label: the body's `object_kind` once the delivery is
/// authenticated, and only when it is one the lane reads (never a sender-chosen string).
async fn intake(ingress: &Ingress, headers: &HeaderMap, body: Body) -> (Outcome, Option<&'static str>) {
    let Some(gitlab) = &ingress.gitlab else {
        return (Outcome::NotConfigured, None);
    };
    let unauthorized = |e: super::gitlab_signature::AuthError| (Outcome::Unauthorized(e.to_string()), None);
    // Everything that can be checked without the body is checked before it is read.
    let signed = if gitlab.signing_keys.is_empty() {
        if let Err(e) = gitlab.secret_tokens.verify(headers.get("x-gitlab-token").map(|v| v.as_bytes())) {
            return unauthorized(e);
        }
        None
    } else {
        let now_secs = ingress.clock.now_ms().div_euclid(1000);
        match SignedHeaders::parse(
            id_header(headers, "webhook-id"),
            headers.get("webhook-timestamp").map(|v| v.as_bytes()),
            headers.get("webhook-signature").map(|v| v.as_bytes()),
            now_secs,
        ) {
            Ok(signed) => Some(signed),
            Err(e) => return unauthorized(e),
        }
    };
    let body = match ingress.read_body(headers, body).await {
        Ok(body) => body,
        Err(outcome) => return (outcome, None),
    };
    if let Some(signed) = &signed {
        if let Err(e) = gitlab.signing_keys.verify(signed, &body.bytes) {
            return unauthorized(e);
        }
    }
    // Authenticated from here on.
    if id_header_spaced(headers, "x-gitlab-event") == Some("System Hook") {
        return (Outcome::Ignored("system hooks are not handled by the lane"), None);
    }
    let (kind, envelope) = match gitlab_payload::parse_with_kind(&body.bytes) {
        Ok((kind, Some(envelope))) => (kind, envelope),
        Ok((_, None)) => return (Outcome::Ignored("event not handled by the lane"), None),
        Err(err @ (PayloadError::NotJson(_) | PayloadError::NotAnEvent(_))) => {
            return (Outcome::BadRequest(err.to_string()), None)
        }
        // A kind the lane reads, in a shape this version does not: refusing it would count
        // towards GitLab disabling the hook, for every later event too. The sweep catches up.
        Err(err @ PayloadError::WrongShape { .. }) => {
            tracing::warn!(error = %err, "GitLab payload not understood; acknowledged and ignored");
            return (Outcome::Ignored("payload shape not understood by this version"), None);
        }
    };
    if let Some(kind) = kind {
        tracing::Span::current().record("kind", kind);
    }
    let delivery_id = delivery_id(headers, signed.as_ref(), &body.bytes);
    (ingress.accept(&delivery_id, kind.unwrap_or("other"), envelope).await, kind)
}

/// What the store dedupes on: for a signed delivery its `webhook-id` (GitLab sets it to the
/// `Idempotency-Key`, and unlike that header it is signed: a replay inside the timestamp window
/// cannot pass for a new delivery); else `Idempotency-Key`, the same across GitLab's retries and
/// a manual Resend (17.4+); else `webhook-id`; else, on older instances, the hook's and event's
/// UUIDs with the body's digest (so a resend of the same body is one delivery, and two
/// different bodies never are).
fn delivery_id(headers: &HeaderMap, signed: Option<&SignedHeaders>, body: &[u8]) -> String {
    if let Some(signed) = signed {
        return signed.id.clone();
    }
    if let Some(key) = id_header(headers, "idempotency-key").or_else(|| id_header(headers, "webhook-id")) {
        return key.to_string();
    }
    let digest = hex::encode(Sha256::digest(body));
    match (id_header(headers, "x-gitlab-webhook-uuid"), id_header(headers, "x-gitlab-event-uuid")) {
        (Some(hook), Some(event)) => format!("legacy:{hook}:{event}:{digest}"),
        (Some(hook), None) => format!("legacy:{hook}:-:{digest}"),
        (None, Some(event)) => format!("legacy:-:{event}:{digest}"),
        (None, None) => format!("body:{digest}"),
    }
}
