//! The HTTP under the `gitlab` crate's endpoints: its own client rather than `AsyncGitlab`, so
//! that every call has a deadline (a hung instance must not pin the lane's workers), nothing is
//! asked of GitLab at start-up (the server starts while GitLab is down), and the token travels
//! only in `PRIVATE-TOKEN`.

use std::time::Duration;

use bytes::Bytes;
use gitlab::api::{ApiError, AsyncClient, RestClient};
use http::StatusCode;
use url::Url;

use crate::forge::ForgeError;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("bad request: {0}")]
    Request(#[from] http::Error),
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
    pub fn new(instance: &str, token: &str) -> Result<Transport, ForgeError> {
        let mut base = instance.trim_end_matches('/').to_string();
        base.push_str("/api/v4/");
        let rest = Url::parse(&base).map_err(|e| ForgeError::Failed(format!("GitLab URL {instance:?}: {e}")))?;
        let mut token = http::HeaderValue::from_str(token)
            .map_err(|_| ForgeError::Failed("the GitLab token has characters a header cannot carry".into()))?;
        token.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
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
        let rsp = self.http.execute(request).await.map_err(|e| ApiError::Client { source: e.into() })?;
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
        ApiError::GitlabRateLimited { retry_after, .. } => {
            ForgeError::RateLimited(retry_after.max(Duration::from_secs(1)))
        }
        other => ForgeError::Failed(format!("GitLab: {}", message(&other))),
    }
}
