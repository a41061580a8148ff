//! Entry points for the crate's own benchmarks and fuzz targets.
//!
//! Not part of the public API: hidden from the docs and exempt from semver. Each item is a thin
//! wrapper over a pure function the client uses, so benchmarks and fuzzers exercise exactly the
//! code that runs in production.

use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, StatusCode};

use crate::profile::sections::Retry;
use crate::retry::{Attempt, Decision, Outcome, RetryBudget, RetryPolicy};

/// Parses a `Retry-After` value (RFC 9110 §10.2.3) as the client does.
pub fn retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    crate::retry::parse_retry_after(value, now)
}

/// The full-jitter backoff after `attempt`, with `unit` in `[0, 1)`.
pub fn backoff_delay(
    attempt: u32,
    initial: Duration,
    max: Duration,
    multiplier: f64,
    unit: f64,
) -> Duration {
    crate::retry::Backoff {
        initial,
        max,
        multiplier,
    }
    .delay(attempt, unit)
}

/// The retry decision of a client with the default `[retry]` settings.
#[derive(Debug)]
pub struct RetryDecider {
    policy: RetryPolicy,
    budget: RetryBudget,
}

impl Default for RetryDecider {
    fn default() -> Self {
        let retry = Retry::default();
        RetryDecider {
            policy: RetryPolicy::new(&retry),
            budget: RetryBudget::new(retry.budget_percent),
        }
    }
}

impl RetryDecider {
    /// Records one call in the budget, as the first attempt of every call does.
    pub fn deposit(&self) {
        self.budget.deposit();
    }

    /// After attempt `number` got `status`: the wait before the next attempt, or `None` to stop.
    pub fn decide(
        &self,
        method: &Method,
        status: StatusCode,
        retry_after: Option<&HeaderValue>,
        number: u32,
        has_idempotency_key: bool,
    ) -> Option<Duration> {
        let attempt = Attempt {
            number,
            method,
            has_idempotency_key,
            outcome: Outcome::Response {
                status,
                retry_after,
            },
            time_left: Duration::from_secs(60),
            wall_clock: SystemTime::now,
        };
        match self.policy.decide(&attempt, &self.budget, fastrand::f64()) {
            Decision::Retry { after } => Some(after),
            Decision::Stop(_) => None,
        }
    }
}
