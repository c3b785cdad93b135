//! Webhook ingress: authenticate, parse into lane events, store durably, acknowledge.
//!
//! Every forge endpoint follows the same path — read the body under a size limit and a deadline,
//! authenticate it, parse it into an [`Envelope`], store it — and answers with the contract's
//! status codes. Only the forge-specific steps (authentication, headers, payload shapes) live in
//! the forge's own module.

pub mod github;
pub mod github_payload;
pub mod signature;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;

use crate::clock::Clock;
use crate::lane::event::Envelope;
use crate::metrics::Metrics;
use crate::store::{DeliveryWriter, NewDelivery, StoreOutcome};

/// GitHub's own limit for webhook payloads; anything bigger is not a GitHub delivery.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body: usize,
    /// A client that has not sent its whole body by then is cut off.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body: MAX_BODY_BYTES, body_timeout: Duration::from_secs(10) }
    }
}

pub struct Ingress {
    pub writer: DeliveryWriter,
    pub github: Option<github::GithubIngress>,
    pub metrics: Metrics,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
}

/// How a delivery was answered; also the `outcome` label of the deliveries metric.
#[derive(Debug)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Pong,
    Ignored(&'static str),
    Unauthorized(String),
    BadRequest(String),
    TooLarge,
    Timeout,
    NotConfigured,
    Unavailable(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Pong => "ping",
            Outcome::Ignored(_) => "ignored",
            Outcome::Unauthorized(_) => "unauthorized",
            Outcome::BadRequest(_) => "bad_request",
            Outcome::TooLarge => "too_large",
            Outcome::Timeout => "timeout",
            Outcome::NotConfigured => "not_configured",
            Outcome::Unavailable(_) => "unavailable",
        }
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let label = self.label();
        let (status, detail) = match self {
            Outcome::Accepted => (StatusCode::ACCEPTED, "stored".to_string()),
            Outcome::Duplicate => (StatusCode::OK, "delivery already stored".to_string()),
            Outcome::Pong => (StatusCode::OK, "pong".to_string()),
            Outcome::Ignored(why) => (StatusCode::OK, why.to_string()),
            Outcome::Unauthorized(why) => (StatusCode::UNAUTHORIZED, why),
            Outcome::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
            Outcome::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, format!("body exceeds {MAX_BODY_BYTES} bytes")),
            Outcome::Timeout => (StatusCode::REQUEST_TIMEOUT, "body not received in time".to_string()),
            Outcome::NotConfigured => {
                (StatusCode::NOT_FOUND, "this forge is not configured on this server".to_string())
            }
            Outcome::Unavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
        };
        (status, Json(serde_json::json!({ "outcome": label, "detail": detail }))).into_response()
    }
}

impl Ingress {
    /// Reads the whole body, refusing it as soon as it is known to be too large and cutting off
    /// clients that are too slow.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Outcome> {
        let declared = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limits.max_body as u64) {
            return Err(Outcome::TooLarge);
        }
        let max = self.limits.max_body;
        let read = async move {
            let mut body = body;
            let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| Outcome::BadRequest(format!("could not read body: {e}")))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max {
                        return Err(Outcome::TooLarge);
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Bytes::from(buf))
        };
        tokio::time::timeout(self.limits.body_timeout, read).await.unwrap_or(Err(Outcome::Timeout))
    }

    /// Stores an authenticated, parsed delivery; the shared tail of every forge endpoint.
    async fn accept(&self, delivery_id: &str, event_name: &str, envelope: Envelope) -> Outcome {
        if !envelope.is_actionable() {
            return Outcome::Ignored("event action not handled by the lane");
        }
        let delivery = NewDelivery {
            forge: envelope.forge.as_str(),
            delivery_id: delivery_id.to_string(),
            event: event_name.to_string(),
            ordering_key: envelope.ordering_key(),
            envelope: serde_json::to_string(&envelope).expect("envelopes always serialize"),
            received_at: self.clock.now_ms(),
        };
        match self.writer.store(delivery).await {
            Ok(StoreOutcome::Stored) => Outcome::Accepted,
            Ok(StoreOutcome::Duplicate) => Outcome::Duplicate,
            Err(err) => Outcome::Unavailable(format!("could not store the delivery: {err}")),
        }
    }

    fn finish(&self, forge: &str, event: &str, started: Instant, outcome: Outcome) -> Response {
        let elapsed = started.elapsed();
        self.metrics.delivery(forge, event, outcome.label(), elapsed);
        match &outcome {
            Outcome::Accepted | Outcome::Duplicate | Outcome::Pong | Outcome::Ignored(_) => {
                tracing::debug!(outcome = outcome.label(), elapsed_us = elapsed.as_micros() as u64, "delivery answered")
            }
            _ => tracing::info!(outcome = outcome.label(), ?outcome, "delivery refused"),
        }
        outcome.into_response()
    }
}

/// A header as a string, if present and printable ASCII of a sane length.
fn id_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let v = headers.get(name)?.to_str().ok()?;
    (!v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic())).then_some(v)
}
