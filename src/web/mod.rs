//! The hotfix page: an on-call view, an executive view and each hotfix's timeline, rendered
//! on the server from the same store queries as the report. No JavaScript: every control is a
//! link or a form, so it works in any browser and under a strict Content-Security-Policy.
//!
//! Behind a login with the admin token or the read-only dashboard token; with neither
//! configured every route here answers 404, as the admin API does.

mod format;
mod pages;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::clock::Clock;
use crate::store::Store;
use session::Keys;

/// What the page needs from the server.
pub struct Web {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// `None`: no token is configured and the page is off.
    pub keys: Option<Keys>,
    /// Whether the session cookie is marked `Secure`: always, unless the server was told it
    /// serves plain HTTP for local use (`HOTFIX_LANE_DASHBOARD_PLAIN_HTTP`).
    pub secure_cookie: bool,
    pub links: ForgeLinks,
}

/// Where a change lives on its forge's web UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeLinks {
    pub github: String,
    pub gitlab: Option<String>,
}

impl ForgeLinks {
    /// From the API bases the server talks to: `https://api.github.com` is `github.com`, a
    /// GitHub Enterprise API is its host without `/api/v3`; GitLab's instance URL is its web UI.
    pub fn new(github_api_url: &str, gitlab_url: Option<&str>) -> ForgeLinks {
        let api = github_api_url.trim_end_matches('/');
        let github = match api.strip_suffix("/api/v3") {
            _ if api == "https://api.github.com" => "https://github.com".to_string(),
            Some(base) => base.to_string(),
            None => api.to_string(),
        };
        ForgeLinks { github, gitlab: gitlab_url.map(|u| u.trim_end_matches('/').to_string()) }
    }

    /// The change's page, or `None` for a forge this server does not serve.
    pub fn change(&self, forge: &str, repo: &str, number: u64) -> Option<String> {
        match forge {
            "github" => Some(format!("{}/{repo}/pull/{number}", self.github)),
            "gitlab" => self.gitlab.as_ref().map(|base| format!("{base}/{repo}/-/merge_requests/{number}")),
            _ => None,
        }
    }
}

pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(oncall))
        .route("/executive", get(executive))
        .route("/timeline", get(timeline))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/static/hotfix-lane.css", get(stylesheet))
        .layer(axum::middleware::map_response(page_headers))
        .with_state(web)
}

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// On every answer of the page, errors and redirects included.
async fn page_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn off() -> Response {
    (StatusCode::NOT_FOUND, "the page is off: set HOTFIX_LANE_DASHBOARD_TOKEN or HOTFIX_LANE_ADMIN_TOKEN")
        .into_response()
}

/// Where a view sends a request without a valid session: the login form, and nothing else.
fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// The answer for a request without a valid session cookie; `None` when it has one.
fn refused(web: &Web, headers: &HeaderMap) -> Option<Response> {
    let Some(keys) = &web.keys else { return Some(off()) };
    match session::from_headers(headers) {
        Some(cookie) if keys.verify(cookie, web.clock.now_ms()) => None,
        _ => Some(to_login()),
    }
}

fn render(status: StatusCode, page: Result<String, askama::Error>) -> Response {
    match page {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering a page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

fn unavailable(err: crate::store::StoreError) -> Response {
    tracing::warn!(error = %err, "reading the page's figures failed");
    (StatusCode::SERVICE_UNAVAILABLE, "the database is unreachable; try again").into_response()
}

/// A token in a URL ends up in browser history, proxy logs and `Referer` headers: refused
/// before anything else looks at the request.
fn token_in_url(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k.contains("token") || k == "password"
        })
    })
}

fn refused_url() -> Response {
    (StatusCode::BAD_REQUEST, "never put the token in a URL: type it into the login form").into_response()
}

/// Whether a state-changing POST comes from this site (CSRF). `Sec-Fetch-Site`, when present,
/// must be `same-origin` (or `none`, typed by the user); `Origin`, when present, must be this
/// host. Under `Referrer-Policy: no-referrer` browsers send a form's `Origin` as `null`, so
/// `null` passes only beside a `same-origin` `Sec-Fetch-Site`.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let site = headers.get("sec-fetch-site").map(|s| s.to_str().unwrap_or("invalid"));
    let site_ok = site.is_none_or(|s| s == "same-origin" || s == "none");
    let origin_ok = match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok("null")) => site == Some("same-origin"),
        Some(Ok(origin)) => {
            let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            authority.is_some() && authority == host
        }
        Some(Err(_)) => false,
    };
    origin_ok && site_ok
}

fn cross_site() -> Response {
    (StatusCode::FORBIDDEN, "refused: the form was sent from another site").into_response()
}

async fn login_form(State(web): State<Arc<Web>>, RawQuery(query): RawQuery) -> Response {
    if web.keys.is_none() {
        return off();
    }
    if token_in_url(query.as_deref()) {
        return refused_url();
    }
    render(StatusCode::OK, pages::login(None))
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

async fn login(
    State(web): State<Arc<Web>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Some(keys) = &web.keys else { return off() };
    if token_in_url(query.as_deref()) {
        return refused_url();
    }
    if !same_origin(&headers) {
        return cross_site();
    }
    let Ok(Form(form)) = form else {
        return render(StatusCode::BAD_REQUEST, pages::login(Some("Send the token from the form below.")));
    };
    match keys.login(&form.token, web.clock.now_ms()) {
        Some(value) => {
            let secure = if web.secure_cookie { "; Secure" } else { "" };
            let cookie = format!(
                "{}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
                session::COOKIE,
                session::LIFETIME_MS / 1000
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        None => render(StatusCode::UNAUTHORIZED, pages::login(Some("That token is not valid here. Try again."))),
    }
}

async fn logout(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if web.keys.is_none() {
        return off();
    }
    if !same_origin(&headers) {
        return cross_site();
    }
    let secure = if web.secure_cookie { "; Secure" } else { "" };
    let cookie = format!("{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}", session::COOKIE);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

async fn stylesheet(State(web): State<Arc<Web>>) -> Response {
    if web.keys.is_none() {
        return off();
    }
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("hotfix-lane.css")).into_response()
}

async fn oncall(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if let Some(res) = refused(&web, &headers) {
        return res;
    }
    match pages::oncall(&web).await {
        Ok(page) => render(StatusCode::OK, page),
        Err(err) => unavailable(err),
    }
}

async fn executive(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(res) = refused(&web, &headers) {
        return res;
    }
    let days = match q.get("days").map(String::as_str) {
        None | Some("30") => 30,
        Some("7") => 7,
        Some("90") => 90,
        Some(_) => return (StatusCode::BAD_REQUEST, "`days` is 7, 30 or 90").into_response(),
    };
    let repo = q.get("repo").filter(|r| !r.is_empty()).cloned();
    match pages::executive(&web, days, repo).await {
        Ok(page) => render(StatusCode::OK, page),
        Err(err) => unavailable(err),
    }
}

async fn timeline(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(res) = refused(&web, &headers) {
        return res;
    }
    let forge = q.get("forge").map(String::as_str).filter(|f| matches!(*f, "github" | "gitlab"));
    let number = q.get("number").and_then(|n| n.parse::<u64>().ok());
    let (Some(forge), Some(repo), Some(number)) = (forge, q.get("repo"), number) else {
        return (StatusCode::BAD_REQUEST, "name the change: ?forge=github|gitlab&repo=owner/name&number=N")
            .into_response();
    };
    match pages::timeline(&web, forge, repo, number).await {
        Ok(Some(page)) => render(StatusCode::OK, page),
        Ok(None) => render(StatusCode::NOT_FOUND, pages::not_found(forge, repo, number)),
        Err(err) => unavailable(err),
    }
}

#[cfg(test)]
mod tests;
