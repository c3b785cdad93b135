//! `POST /webhooks/github`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use tracing::Instrument;

use super::signature::{Secrets, Signature};
use super::{id_header, Ingress, Outcome};
use crate::forge::github::payload::{self as github_payload, PayloadError};

pub struct GithubIngress {
    pub secrets: Secrets,
}

pub async fn webhook(State(ingress): State<Arc<Ingress>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let delivery = id_header(&headers, "x-github-delivery").unwrap_or("-").to_string();
    let event = id_header(&headers, "x-github-event").unwrap_or("-").to_string();
    let span = tracing::info_span!("delivery", forge = "github", id = %delivery, event = %event);
    async {
        let (outcome, authenticated) = intake(&ingress, &headers, body).await;
        ingress.finish("github", authenticated.then_some(event.as_str()), started, outcome)
    }
    .instrument(span)
    .await
}

/// The outcome, and whether the delivery was authenticated.
async fn intake(ingress: &Ingress, headers: &HeaderMap, body: Body) -> (Outcome, bool) {
    let Some(github) = &ingress.github else {
        return (Outcome::NotConfigured, false);
    };
    // Every GitHub delivery carries these three: without them the body is not worth reading.
    let signature = match Signature::parse(headers.get("x-hub-signature-256").map(|v| v.as_bytes())) {
        Ok(signature) => signature,
        Err(err) => return (Outcome::Unauthorized(err.to_string()), false),
    };
    let Some(event) = id_header(headers, "x-github-event") else {
        return (Outcome::BadRequest("missing X-GitHub-Event header".into()), false);
    };
    let Some(delivery) = id_header(headers, "x-github-delivery") else {
        return (Outcome::BadRequest("missing X-GitHub-Delivery header".into()), false);
    };
    let body = match ingress.read_body(headers, body).await {
        Ok(body) => body,
        Err(outcome) => return (outcome, false),
    };
    if let Err(err) = github.secrets.verify(&signature, &body.bytes) {
        return (Outcome::Unauthorized(err.to_string()), false);
    }
    let outcome = match github_payload::parse(event, &body.bytes) {
        Ok(Some(envelope)) if event == "ping" => {
            tracing::info!(repo = ?envelope.repo.map(|r| r.full_name), "ping");
            Outcome::Pong
        }
        Ok(Some(envelope)) => ingress.accept(delivery, event, envelope).await,
        Ok(None) => Outcome::Ignored("event type not handled by the lane"),
        Err(err @ (PayloadError::NotJson(_) | PayloadError::WrongShape { .. })) => Outcome::BadRequest(err.to_string()),
    };
    (outcome, true)
}
