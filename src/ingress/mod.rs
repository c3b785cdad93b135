//! Webhook ingress: authenticate, parse into lane events, store durably, acknowledge.
//!
//! Every forge endpoint follows the same path — refuse a request whose headers cannot belong to a
//! delivery, read the body under a size limit, a deadline and the server-wide body budget,
//! authenticate it, parse it into an [`Envelope`], store it — and answers with the contract's
//! status codes. Only the forge-specific steps (authentication, headers, payload shapes) live in
//! the forge's own module.

pub mod github;
pub mod gitlab;
pub mod gitlab_signature;
pub mod signature;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::clock::Clock;
use crate::lane::event::Envelope;
use crate::metrics::Metrics;
use crate::store::{DeliveryWriter, NewDelivery, StoreOutcome};

/// GitHub's own limit for webhook payloads; anything bigger is not a GitHub delivery.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// What one client may cost the server. Tests shrink them; operators rarely need to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body: usize,
    /// A client that has not sent its whole body by then is cut off.
    pub body_timeout: Duration,
    /// Bytes of webhook bodies held in memory at once, across all requests (never less than
    /// `max_body`, so the largest delivery always fits). A body that finds it spent waits,
    /// within its body timeout, and is answered `503` if none frees up.
    pub body_budget: usize,
    /// From a connection's start, or the end of its previous answer, to the end of the next
    /// request's headers; an idle keep-alive connection is closed after it too.
    pub header_timeout: Duration,
    /// Connections served at once; any beyond are answered `503` and closed.
    pub max_connections: usize,
    /// After a shutdown begins, how long requests in flight and jobs running may take before
    /// they are dropped.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: MAX_BODY_BYTES,
            body_timeout: Duration::from_secs(10),
            body_budget: 64 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// The body budget: one permit per byte of body buffer held by any request.
pub struct BodyBudget {
    permits: Semaphore,
    total: usize,
}

impl BodyBudget {
    pub fn new(limits: &Limits) -> BodyBudget {
        let total = limits.body_budget.max(limits.max_body);
        BodyBudget { permits: Semaphore::new(total), total }
    }

    /// Bytes of body buffers held right now.
    pub fn in_flight(&self) -> usize {
        self.total - self.permits.available_permits()
    }

    async fn take(&self, bytes: usize) -> SemaphorePermit<'_> {
        let bytes = u32::try_from(bytes).expect("body buffers stay below 4 GiB");
        self.permits.acquire_many(bytes).await.expect("the body budget is never closed")
    }
}

/// A body read in full, holding its share of the budget until dropped.
struct HeldBody<'b> {
    bytes: Vec<u8>,
    budget: Option<SemaphorePermit<'b>>,
}

pub struct Ingress {
    pub writer: DeliveryWriter,
    pub github: Option<github::GithubIngress>,
    pub gitlab: Option<gitlab::GitlabIngress>,
    pub metrics: Metrics,
    pub limits: Limits,
    pub budget: Arc<BodyBudget>,
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
    /// The body budget stayed spent for the whole body timeout.
    Busy,
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
            Outcome::Busy => "busy",
            Outcome::NotConfigured => "not_configured",
            Outcome::Unavailable(_) => "unavailable",
        }
    }
}

impl Outcome {
    /// The answer's status and the words of its `detail`.
    fn answer(&self) -> (StatusCode, String) {
        match self {
            Outcome::Accepted => (StatusCode::ACCEPTED, "stored".to_string()),
            Outcome::Duplicate => (StatusCode::OK, "delivery already stored".to_string()),
            Outcome::Pong => (StatusCode::OK, "pong".to_string()),
            Outcome::Ignored(why) => (StatusCode::OK, why.to_string()),
            Outcome::Unauthorized(why) => (StatusCode::UNAUTHORIZED, why.clone()),
            Outcome::BadRequest(why) => (StatusCode::BAD_REQUEST, why.clone()),
            Outcome::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, format!("body exceeds {MAX_BODY_BYTES} bytes")),
            Outcome::Timeout => (StatusCode::REQUEST_TIMEOUT, "body not received in time".to_string()),
            Outcome::Busy => (StatusCode::SERVICE_UNAVAILABLE, "too many webhook bodies in flight; retry".to_string()),
            Outcome::NotConfigured => {
                (StatusCode::NOT_FOUND, "this forge is not configured on this server".to_string())
            }
            Outcome::Unavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, why.clone()),
        }
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let (status, detail) = self.answer();
        (status, Json(serde_json::json!({ "outcome": self.label(), "detail": detail }))).into_response()
    }
}

impl Ingress {
    /// Reads the whole body, refusing it as soon as it is known to be too large and cutting off
    /// clients that are too slow. The buffer grows with what arrives (never with what the
    /// client declares), and every byte of its capacity is taken from the body budget first.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<HeldBody<'_>, Outcome> {
        let declared = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limits.max_body as u64) {
            return Err(Outcome::TooLarge);
        }
        let max = self.limits.max_body;
        let waiting_for_budget = AtomicBool::new(false);
        let read = async {
            let mut body = body;
            let mut held = HeldBody { bytes: Vec::new(), budget: None };
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| Outcome::BadRequest(format!("could not read body: {e}")))?;
                let Ok(data) = frame.into_data() else { continue };
                let needed = held.bytes.len() + data.len();
                if needed > max {
                    return Err(Outcome::TooLarge);
                }
                if needed > held.bytes.capacity() {
                    let capacity = needed.max(held.bytes.capacity() * 2).min(max);
                    waiting_for_budget.store(true, Ordering::Relaxed);
                    let permit = self.budget.take(capacity - held.bytes.capacity()).await;
                    waiting_for_budget.store(false, Ordering::Relaxed);
                    held.bytes.reserve_exact(capacity - held.bytes.len());
                    match &mut held.budget {
                        Some(taken) => taken.merge(permit),
                        None => held.budget = Some(permit),
                    }
                }
                held.bytes.extend_from_slice(&data);
            }
            Ok(held)
        };
        match tokio::time::timeout(self.limits.body_timeout, read).await {
            Ok(read) => read,
            Err(_) if waiting_for_budget.load(Ordering::Relaxed) => Err(Outcome::Busy),
            Err(_) => Err(Outcome::Timeout),
        }
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

    /// Answers and counts a delivery. `event` is the `X-GitHub-Event` name once the delivery is
    /// authenticated: before that the header is the sender's say, never a metric label.
    fn finish(&self, forge: &str, event: Option<&str>, started: Instant, outcome: Outcome) -> Response {
        let elapsed = started.elapsed();
        self.metrics.delivery(forge, event, outcome.label(), elapsed);
        match &outcome {
            Outcome::Accepted | Outcome::Duplicate | Outcome::Pong | Outcome::Ignored(_) => {
                tracing::debug!(outcome = outcome.label(), elapsed_us = elapsed.as_micros() as u64, "delivery answered")
            }
            _ => {
                let (status, detail) = outcome.answer();
                tracing::info!(outcome = outcome.label(), status = status.as_u16(), detail, "delivery refused")
            }
        }
        outcome.into_response()
    }
}

/// A header as a string, if present and printable ASCII of a sane length.
fn id_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let v = headers.get(name)?.to_str().ok()?;
    (!v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic())).then_some(v)
}
