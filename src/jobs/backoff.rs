//! Retry delays: exponential with "equal jitter" (half fixed, half random), capped.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(2), cap: Duration::from_secs(15 * 60) }
    }
}

impl Backoff {
    /// Delay before the attempt after `attempts` failed ones; `unit` is a random draw in [0, 1).
    /// The jitter spreads retries of jobs that failed together (say, behind one outage).
    pub fn delay(&self, attempts: i64, unit: f64) -> Duration {
        let exp = attempts.clamp(1, 32) as u32 - 1;
        let full = self.base.saturating_mul(2u32.saturating_pow(exp)).min(self.cap);
        full / 2 + full.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_attempt_within_jitter_bounds_and_caps() {
        let b = Backoff { base: Duration::from_secs(2), cap: Duration::from_secs(60) };
        assert_eq!(b.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(20, 1.0), Duration::from_secs(60));
        assert_eq!(b.delay(20, 0.0), Duration::from_secs(30));
    }
}
