//! The HTTP under the `gitlab` crate's endpoints: its own client rather than `AsyncGitlab`, so
//! that every call has a deadline (a hung instance must not pin the lane's workers), nothing is
//! asked of GitLab at start-up (the server starts while GitLab is down), and the token travels
//! only in `PRIVATE-TOKEN`.

use std::time::Duration;

use bytes::Bytes;
use gitlab::api::{ApiError, AsyncClient, RestClient};
use http::StatusCode;
use url::Url;

use crate::forge::{ForgeError, Timeouts};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("bad request: {0}")]
    Request(#[from] http::Error),
    /// A 429, on any endpoint (the crate turns it into a rate limit on some paths only, and
    /// reads no `RateLimit-Reset` from it): the wait it asks for.
    #[error("rate limited by GitLab; retry in {0:?}")]
    RateLimited(Duration),
}

pub type Error = ApiError<TransportError>;

pub struct Transport {
    http: reqwest::Client,
    /// `<instance>/api/v4/`.
    rest: Url,
    token: http::HeaderValue,
}

impl Transport {
    /// `instance`: the instance's address (`https://gitlab.example.com`, maybe with a path).
    pub fn new(instance: &str, token: &str, timeouts: Timeouts) -> Result<Transport, ForgeError> {
        let mut base = instance.trim_end_matches('/').to_string();
        base.push_str("/api/v4/");
        let rest = Url::parse(&base).map_err(|e| ForgeError::Failed(format!("GitLab URL {instance:?}: {e}")))?;
        let mut token = http::HeaderValue::from_str(token)
            .map_err(|_| ForgeError::Failed("the GitLab token has characters a header cannot carry".into()))?;
        token.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .user_agent(concat!("hotfix-lane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ForgeError::Failed(format!("GitLab client: {e}")))?;
        Ok(Transport { http, rest, token })
    }

    /// A request the crate has no endpoint for (`HEAD` of a file): the answer's status and
    /// headers.
    pub async fn head(&self, endpoint: &str) -> Result<(StatusCode, http::HeaderMap), ForgeError> {
        let url = self.rest.join(endpoint).map_err(|e| ForgeError::Failed(e.to_string()))?;
        let rsp = self.http.head(url).header("PRIVATE-TOKEN", self.token.clone()).send().await.map_err(failed)?;
        Ok((rsp.status(), rsp.headers().clone()))
    }
}

/// A read GitLab failed (5xx), dropped or let time out is asked again this many times, at once
/// but for a short pause: a read changes nothing, and the job's own retry would repeat every
/// read and write before it. A write is repeated only inside [`repeatable`].
const READ_RETRIES: u32 = 2;

tokio::task_local! {
    static REPEATABLE: ();
}

/// Runs `call` with its writes asked again like reads when their answer is lost: only for
/// writes whose repeat leaves GitLab as one would (labels added, assignees and reviewers set to
/// the same people, a note or a description set to its whole new text). Never a create (a
/// note, issue or merge request) or a merge: a lost answer may hide that it happened, and the
/// lane reads to find out.
pub async fn repeatable<F: std::future::Future>(call: F) -> F::Output {
    REPEATABLE.scope((), call).await
}

/// A failure that may be a lost answer: GitLab's own (5xx) or the network's.
pub fn lost(err: &Error) -> bool {
    match err {
        ApiError::Client { source: TransportError::Http(err) } => {
            err.is_timeout() || err.is_connect() || err.is_request()
        }
        other => status(other).is_some_and(|s| s.is_server_error()),
    }
}

impl Transport {
    async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response, reqwest::Error> {
        let read = matches!(*request.method(), reqwest::Method::GET | reqwest::Method::HEAD);
        let again_allowed = read || REPEATABLE.try_with(|_| ()).is_ok();
        let mut attempt = 0;
        loop {
            let again = if again_allowed && attempt < READ_RETRIES { request.try_clone() } else { None };
            let Some(again) = again else { return self.http.execute(request).await };
            match self.http.execute(again).await {
                Ok(rsp) if !rsp.status().is_server_error() => return Ok(rsp),
                Err(err) if !(err.is_timeout() || err.is_connect() || err.is_request()) => return Err(err),
                _ => attempt += 1,
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        }
    }
}

fn failed(err: reqwest::Error) -> ForgeError {
    // reqwest names the URL, never the headers: the token stays out of the message.
    ForgeError::Failed(format!("GitLab request failed: {err}"))
}

impl RestClient for Transport {
    type Error = TransportError;

    fn rest_endpoint(&self, endpoint: &str) -> Result<Url, Error> {
        Ok(self.rest.join(endpoint)?)
    }
}

#[async_trait::async_trait]
impl AsyncClient for Transport {
    async fn rest_async(
        &self,
        mut request: http::request::Builder,
        body: Vec<u8>,
    ) -> Result<http::Response<Bytes>, Error> {
        if let Some(headers) = request.headers_mut() {
            headers.insert("PRIVATE-TOKEN", self.token.clone());
        }
        let request = request.body(body).map_err(|e| ApiError::Client { source: e.into() })?;
        let request = reqwest::Request::try_from(request).map_err(|e| ApiError::Client { source: e.into() })?;
        let rsp = self.execute(request).await.map_err(|e| ApiError::Client { source: e.into() })?;
        if rsp.status() == StatusCode::TOO_MANY_REQUESTS {
            let header = |name: &str| rsp.headers().get(name)?.to_str().ok()?.trim().parse::<i64>().ok();
            let retry_after = Duration::from_secs(header("retry-after").unwrap_or(0).max(0) as u64);
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let wait = limit_wait(retry_after, header("ratelimit-reset").unwrap_or(0), now);
            return Err(ApiError::Client { source: TransportError::RateLimited(wait) });
        }
        let mut answer = http::Response::builder().status(rsp.status());
        if let Some(headers) = answer.headers_mut() {
            *headers = rsp.headers().clone();
        }
        let bytes = rsp.bytes().await.map_err(|e| ApiError::Client { source: e.into() })?;
        answer.body(bytes).map_err(|e| ApiError::Client { source: e.into() })
    }
}

/// The HTTP status of an error GitLab answered, if it answered.
pub fn status(err: &Error) -> Option<StatusCode> {
    match err {
        ApiError::GitlabService { status, .. }
        | ApiError::GitlabWithStatus { status, .. }
        | ApiError::GitlabObjectWithStatus { status, .. }
        | ApiError::GitlabUnrecognizedWithStatus { status, .. } => Some(*status),
        ApiError::GitlabRateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
        _ => None,
    }
}

/// What GitLab said, for the lane's messages: its `message`, or the status.
pub fn message(err: &Error) -> String {
    match err {
        ApiError::GitlabWithStatus { msg, .. } => msg.clone(),
        ApiError::GitlabObjectWithStatus { obj, .. } | ApiError::GitlabUnrecognizedWithStatus { obj, .. } => {
            obj.get("message").map(|m| m.to_string()).unwrap_or_else(|| obj.to_string())
        }
        other => other.to_string(),
    }
}

/// A failed call as the lane's error: rate limits wait as long as GitLab asks.
pub fn forge_error(err: Error) -> ForgeError {
    match err {
        ApiError::Client { source: TransportError::RateLimited(wait) } => ForgeError::RateLimited(wait),
        ApiError::GitlabRateLimited { retry_after, rl_reset, .. } => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            ForgeError::RateLimited(limit_wait(retry_after, rl_reset.timestamp(), now))
        }
        other => ForgeError::Failed(format!("GitLab: {}", message(&other))),
    }
}

/// How long a 429 asks the lane to wait: `Retry-After`, or until `RateLimit-Reset` (a Unix time)
/// when that is later — GitLab's answer to a spent limit may name only the reset. At least a
/// second, at most an hour.
fn limit_wait(retry_after: Duration, reset: i64, now: Duration) -> Duration {
    let until_reset = u64::try_from(reset).map_or(Duration::ZERO, |r| Duration::from_secs(r).saturating_sub(now));
    retry_after.max(until_reset).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::limit_wait;
    use std::time::Duration;

    #[test]
    fn a_spent_limit_waits_until_its_reset_not_one_second() {
        let now = Duration::from_millis(1_000_000_000_400);
        let secs = Duration::from_secs;
        assert_eq!(limit_wait(Duration::ZERO, 1_000_000_002, now), Duration::from_millis(1_600), "the reset alone");
        assert_eq!(limit_wait(secs(5), 1_000_000_002, now), secs(5), "Retry-After when later");
        assert_eq!(limit_wait(Duration::ZERO, 0, now), secs(1), "neither: a second");
        assert_eq!(limit_wait(Duration::ZERO, 999_999_000, now), secs(1), "a reset already past");
        assert_eq!(limit_wait(Duration::ZERO, 2_000_000_000, now), secs(3600), "at most an hour");
    }
}
