//! When and how long to retry a Machines API call.
//!
//! Transient failures — 429, 5xx other than 501, timeouts and connection errors — are retried a
//! bounded number of times with exponential backoff and full jitter (so a fleet of concurrent calls
//! that failed together does not retry together), and a server's `Retry-After` is honoured. Anything
//! else is an answer, and is returned at once.

use std::time::Duration;

/// How a client retries transient failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: never retry).
    pub attempts: u32,
    /// Backoff before the first retry; doubled each time, up to `max_delay`.
    pub base_delay: Duration,
    /// The longest pause between tries, a server's `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, 250 ms doubling to at most 8 s: a burst of 5xx lasting a few seconds is ridden
    /// out, a real outage is reported in well under a minute.
    fn default() -> Self {
        Self { attempts: 5, base_delay: Duration::from_millis(250), max_delay: Duration::from_secs(8) }
    }
}

impl RetryPolicy {
    /// Never retry (the local daemon is on loopback: a failure there is not transient).
    pub fn none() -> Self {
        Self { attempts: 1, ..Self::default() }
    }

    /// The pause before retry number `retry` (0-based): a uniform draw in [0, base·2^retry], capped,
    /// or the server's `Retry-After` when it gave one (capped at `max_delay` too, so a confused server
    /// cannot stall a deploy).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay);
        }
        let ceiling = self.base_delay.saturating_mul(1u32 << retry.min(16)).min(self.max_delay);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

/// Whether an HTTP status is worth retrying.
pub fn retryable_status(status: reqwest::StatusCode) -> bool {
    status.as_u16() == 429 || (status.is_server_error() && status.as_u16() != 501)
}

/// Whether a transport failure is worth retrying (the request may not have reached the server, or
/// its answer was lost).
pub fn retryable_error(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request()
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and read as absent).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for retry in 0..10 {
            assert!(p.delay(retry, None) <= Duration::from_millis(100 << retry.min(4)).min(p.max_delay));
        }
        assert_eq!(p.delay(0, Some(Duration::from_millis(700))), Duration::from_millis(700));
        assert_eq!(p.delay(0, Some(Duration::from_secs(60))), Duration::from_secs(1));
        use reqwest::StatusCode as S;
        assert!(retryable_status(S::TOO_MANY_REQUESTS) && retryable_status(S::BAD_GATEWAY));
        assert!(!retryable_status(S::NOT_IMPLEMENTED) && !retryable_status(S::CONFLICT));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }
}
