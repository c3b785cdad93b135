//! GitHub's rate limits as a wait: which refusals are limits, and how long they ask for.

use std::time::Duration;

use crate::forge::ForgeError;

/// Rate limits become "retry later", everything else a failure.
pub(super) fn classify(err: octocrab::Error) -> ForgeError {
    if let octocrab::Error::GitHub { source, .. } = &err {
        let code = source.status_code.as_u16();
        let header = |name: &str| source.headers.as_ref()?.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        let limit = Limit {
            status: code,
            secondary: source.message.to_lowercase().contains("rate limit"),
            retry_after: header("retry-after"),
            remaining: header("x-ratelimit-remaining"),
            reset: source.rate_limit_reset.or_else(|| header("x-ratelimit-reset")),
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Some(wait) = limit.wait(now) {
            return ForgeError::RateLimited(wait);
        }
        return ForgeError::Failed(format!("GitHub answered {code}: {}", source.message));
    }
    ForgeError::Failed(err.to_string())
}

/// What a refusal said about GitHub's rate limits.
struct Limit {
    status: u16,
    /// The message names a rate limit (GitHub's secondary limits say so only there).
    secondary: bool,
    retry_after: Option<u64>,
    remaining: Option<u64>,
    reset: Option<u64>,
}

impl Limit {
    /// How long to wait, by GitHub's rules: `Retry-After` first; the reset time only when the
    /// primary limit is spent (`x-ratelimit-remaining: 0`); otherwise at least a minute for a
    /// secondary limit. `None`: not a rate limit.
    fn wait(&self, now: u64) -> Option<Duration> {
        if !matches!(self.status, 403 | 429) {
            return None;
        }
        let secs = if let Some(after) = self.retry_after {
            after.max(1)
        } else if self.remaining == Some(0) {
            self.reset.map_or(60, |reset| reset.saturating_sub(now).max(1))
        } else if self.secondary || self.status == 429 {
            60
        } else {
            return None;
        };
        Some(Duration::from_secs(secs.min(3600)))
    }
}

#[cfg(test)]
mod tests {
    use super::Limit;
    use std::time::Duration;

    fn limit(status: u16, secondary: bool, retry_after: Option<u64>, remaining: Option<u64>) -> Limit {
        Limit { status, secondary, retry_after, remaining, reset: Some(1_000 + 3_000) }
    }

    #[test]
    fn rate_limits_wait_as_github_says() {
        let secs = |l: Limit| l.wait(1_000).map(|d: Duration| d.as_secs());
        assert_eq!(secs(limit(403, true, Some(1), Some(4000))), Some(1), "Retry-After first, not the hourly reset");
        assert_eq!(secs(limit(403, true, None, Some(0))), Some(3_000), "the reset only when the limit is spent");
        assert_eq!(secs(limit(403, true, None, Some(12))), Some(60), "a secondary limit: at least a minute");
        assert_eq!(secs(limit(429, false, None, None)), Some(60));
        assert_eq!(secs(limit(403, false, None, Some(12))), None, "a plain 403 is a refusal, not a limit");
        assert_eq!(secs(limit(500, true, Some(5), None)), None);
    }
}
