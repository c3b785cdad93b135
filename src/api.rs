//! The admin API: `GET /api/audit`, behind a bearer token (`HOTFIX_LANE_ADMIN_TOKEN`). With
//! no token configured the API is off and answers 404.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use subtle::ConstantTimeEq;

use crate::audit_view::parse_since;
use crate::clock::Clock;
use crate::store::Store;

pub struct Api {
    pub store: Store,
    pub token: Option<String>,
    pub clock: Arc<dyn Clock>,
}

fn refuse(status: StatusCode, detail: &str) -> Response {
    (status, Json(serde_json::json!({ "detail": detail }))).into_response()
}

/// `?repo=owner/name&since=24h`: audit entries, oldest first, as JSON.
pub async fn audit(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(token) = &api.token else {
        return refuse(StatusCode::NOT_FOUND, "the admin API is off: set HOTFIX_LANE_ADMIN_TOKEN");
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let since = match q.get("since").map(|s| parse_since(s, api.clock.now_ms())).transpose() {
        Ok(since) => since,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    match api.store.audit(q.get("repo").map(String::as_str), since).await {
        Ok(entries) => Json(entries).into_response(),
        Err(err) => refuse(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    }
}
