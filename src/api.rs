//! The admin API: `GET /api/audit`, behind a bearer token (`HOTFIX_LANE_ADMIN_TOKEN`). With
//! no token configured the API is off and answers 404.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit_view::parse_since;
use crate::clock::Clock;
use crate::store::Store;

/// Entries per page unless `limit` asks otherwise, and the most it may ask for.
pub const AUDIT_PAGE: u32 = 100;
pub const AUDIT_PAGE_MAX: u32 = 1000;

/// The admin token, kept as its SHA-256 digest. A given token is hashed and the two digests
/// compared in constant time: how long a refusal takes tells neither the token's bytes nor its
/// length (comparing the tokens themselves stops early when the lengths differ).
pub struct AdminToken([u8; 32]);

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        AdminToken(Sha256::digest(token.as_bytes()).into())
    }

    pub fn matches(&self, given: &str) -> bool {
        Sha256::digest(given.as_bytes()).ct_eq(&self.0).into()
    }
}

pub struct Api {
    pub store: Store,
    pub token: Option<AdminToken>,
    pub clock: Arc<dyn Clock>,
}

fn refuse(status: StatusCode, detail: &str) -> Response {
    (status, Json(serde_json::json!({ "detail": detail }))).into_response()
}

/// `?repo=owner/name&since=24h&limit=100&before=ID`: one page of audit entries as JSON, oldest
/// first, each with its `id`. The newest page comes first; `before=` the smallest id of a page
/// asks for the one before it.
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
    if !token.matches(given) {
        return refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let since = match q.get("since").map(|s| parse_since(s, api.clock.now_ms())).transpose() {
        Ok(since) => since,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    let limit = match q.get("limit").map(|l| l.parse::<u32>()) {
        None => AUDIT_PAGE,
        Some(Ok(limit @ 1..=AUDIT_PAGE_MAX)) => limit,
        Some(_) => return refuse(StatusCode::BAD_REQUEST, &format!("`limit` must be 1 to {AUDIT_PAGE_MAX}")),
    };
    let before = match q.get("before").map(|b| b.parse::<i64>()) {
        None => None,
        Some(Ok(id)) if id > 0 => Some(id),
        Some(_) => return refuse(StatusCode::BAD_REQUEST, "`before` must be an entry's id"),
    };
    match api.store.audit_page(q.get("repo").map(String::as_str), since, before, limit).await {
        Ok(entries) => Json(entries).into_response(),
        Err(err) => refuse(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    }
}
