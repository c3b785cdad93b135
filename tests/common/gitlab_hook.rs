//! GitLab deliveries for the ingress tests: a fixture body with the headers GitLab sends, and
//! either its plain secret token or a Standard Webhooks signature.

use hotfix_lane::ingress::gitlab_signature::sign;

/// The secret token the test server accepts first.
pub const TOKEN: &str = "gitlab-test-secret-token";
/// A second token, as during a rotation.
pub const ROTATED_TOKEN: &str = "gitlab-rotated-token";
/// A signing token as GitLab shows it: `whsec_` and the base64 of 32 bytes.
pub const SIGNING_TOKEN: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";
/// Another well-formed signing token, configured nowhere.
pub const OTHER_SIGNING_TOKEN: &str = "whsec_dGhpcyBpcyBub3QgdGhlIGtleSB0aGUgbGFuZSBrbm93cw==";

/// The `X-Gitlab-Event` header GitLab sends for a body's `object_kind`.
pub fn event_header(kind: &str) -> &'static str {
    match kind {
        "merge_request" => "Merge Request Hook",
        "note" => "Note Hook",
        "issue" => "Issue Hook",
        "pipeline" => "Pipeline Hook",
        "push" => "Push Hook",
        _ => "Unknown Hook",
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// One delivery: the body and every header, in the order GitLab sends them.
#[derive(Clone)]
pub struct Hook {
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Hook {
    /// A delivery of `body` under `X-Gitlab-Event: event`, with an `Idempotency-Key`.
    pub fn new(event: &str, idempotency_key: &str, body: Vec<u8>) -> Hook {
        Hook {
            body,
            headers: vec![
                ("X-Gitlab-Event".into(), event.into()),
                ("X-Gitlab-Instance".into(), "https://gitlab.example.com".into()),
                ("User-Agent".into(), "GitLab/19.4.0".into()),
                ("Idempotency-Key".into(), idempotency_key.into()),
                ("Content-Type".into(), "application/json".into()),
            ],
        }
    }

    /// The fixture `gitlab/<rel>`, byte for byte.
    pub fn fixture(rel: &str, idempotency_key: &str) -> Hook {
        let kind = rel.split('/').next().unwrap();
        Hook::new(event_header(kind), idempotency_key, super::fixture(&format!("gitlab/{rel}")))
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Hook {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn without(mut self, name: &str) -> Hook {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn token(self, token: &str) -> Hook {
        self.header("X-Gitlab-Token", token)
    }

    /// Signed as GitLab signs with `signing_token`, at `timestamp`, under `webhook-id: id`.
    pub fn signed(self, signing_token: &str, id: &str, timestamp: i64) -> Hook {
        let signature = sign(signing_token, id, timestamp, &self.body);
        self.header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
    }

    pub async fn send(&self, client: &reqwest::Client, base: &str) -> (u16, serde_json::Value) {
        let mut request = client.post(format!("{base}/webhooks/gitlab"));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.body(self.body.clone()).send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }
}
