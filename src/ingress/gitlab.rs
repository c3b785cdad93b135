//! `POST /webhooks/gitlab`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{Ingress, Outcome};

/// How GitLab deliveries are authenticated: the signing tokens (`whsec_…`) when any is set,
/// else the plain secret tokens of `X-Gitlab-Token`. Several of each during a rotation.
pub struct GitlabIngress {
    pub secret_tokens: Vec<String>,
    pub signing_tokens: Vec<String>,
}

pub async fn webhook(State(ingress): State<Arc<Ingress>>, _headers: HeaderMap, _body: Body) -> Response {
    let started = std::time::Instant::now();
    ingress.finish("gitlab", None, started, Outcome::NotConfigured)
}
