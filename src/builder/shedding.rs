//! Circuit breaker and rate limit settings of [`ClientBuilder`].

use std::time::Duration;

use super::ClientBuilder;
use crate::profile::sections::RateLimit;

impl ClientBuilder {
    /// Turns the per-origin circuit breaker on or off. Profile key: `circuit_breaker.enabled`.
    /// Default: on.
    pub fn circuit_breaker_enabled(mut self, enabled: bool) -> ClientBuilder {
        self.settings.circuit_breaker.enabled = enabled;
        self
    }

    /// The share of failed calls in the window that opens the breaker. Profile key:
    /// `circuit_breaker.failure_ratio`. Default: 0.5.
    pub fn circuit_breaker_failure_ratio(mut self, ratio: f64) -> ClientBuilder {
        self.settings.circuit_breaker.failure_ratio = ratio;
        self
    }

    /// Calls needed in the window before the ratio counts. Profile key:
    /// `circuit_breaker.minimum_requests`. Default: 10.
    pub fn circuit_breaker_minimum_requests(mut self, minimum: u32) -> ClientBuilder {
        self.settings.circuit_breaker.minimum_requests = minimum;
        self
    }

    /// The sliding window outcomes are counted over. Profile key: `circuit_breaker.window`.
    /// Default: 30 s.
    pub fn circuit_breaker_window(mut self, window: Duration) -> ClientBuilder {
        self.settings.circuit_breaker.window = window;
        self
    }

    /// How long an open breaker fails calls fast before letting probes through. Profile key:
    /// `circuit_breaker.open_for`. Default: 15 s.
    pub fn circuit_breaker_open_for(mut self, open_for: Duration) -> ClientBuilder {
        self.settings.circuit_breaker.open_for = open_for;
        self
    }

    /// Probes let through when half-open. Profile key: `circuit_breaker.half_open_requests`.
    /// Default: 1.
    pub fn circuit_breaker_half_open_requests(mut self, probes: u32) -> ClientBuilder {
        self.settings.circuit_breaker.half_open_requests = probes;
        self
    }

    /// A client-side quota per origin. Profile keys: `rate_limit.requests_per_second` and
    /// `rate_limit.burst` (`None`: one second's worth). Default: no quota.
    ///
    /// ```
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.partner.example")
    ///     .rate_limit(50.0, Some(100))
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn rate_limit(mut self, requests_per_second: f64, burst: Option<u32>) -> ClientBuilder {
        let limit = self
            .settings
            .rate_limit
            .get_or_insert_with(RateLimit::default);
        limit.requests_per_second = Some(requests_per_second);
        limit.burst = burst;
        self
    }

    /// Learns each origin's quota from throttling answers that say nothing (a 429 without
    /// `Retry-After` or quota headers), on top of any fixed [`rate_limit`](Self::rate_limit):
    /// nothing is paced until the origin throttles; then calls are paced at 0.7× the rate that
    /// was being sent, climbing back along a cubic curve (the AWS SDKs' adaptive mode). Profile
    /// key: `rate_limit.adaptive`. Default: unset, which paces the same way once such 429s form a
    /// pattern (at least half of the last second's answers, some admitted); `false` never paces.
    ///
    /// Every such 429 counts as a sign of the quota, so leave this off for an API that answers
    /// 429 for other reasons (lock contention) without a `Retry-After`: `false` turns even the
    /// pattern's pacing off.
    ///
    /// ```
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.partner.example")
    ///     .adaptive_rate_limit(true)
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn adaptive_rate_limit(mut self, on: bool) -> ClientBuilder {
        let limit = self
            .settings
            .rate_limit
            .get_or_insert_with(RateLimit::default);
        limit.adaptive = Some(on);
        self
    }

    /// A spending ceiling: at most `max_calls` requests per `per` (retries included: they are
    /// billed too), in windows aligned to the Unix epoch. Past it, calls fail at once with
    /// [`Error::is_budget_exhausted`](crate::Error::is_budget_exhausted) and nothing is sent.
    /// Profile table: `[budget] max_calls = 100000, per = "1d"`. In fleet mode the ceiling is
    /// the fleet's.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.paid-partner.example")
    ///     .budget(100_000, Duration::from_secs(86_400))
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn budget(mut self, max_calls: u64, per: std::time::Duration) -> ClientBuilder {
        self.settings.budget = Some(crate::profile::sections::Budget { max_calls, per });
        self
    }

    /// A bulkhead per origin: at most `max` calls to one origin in flight at a time; a call
    /// that gets no slot before its deadline fails with
    /// [`Error::is_overloaded`](crate::Error::is_overloaded) and sends nothing, so one slow
    /// partner cannot take every worker. Profile key: `concurrency.max_in_flight`. Default: no
    /// limit.
    pub fn max_in_flight(mut self, max: u32) -> ClientBuilder {
        self.settings.concurrency =
            Some(crate::profile::sections::Concurrency { max_in_flight: max });
        self
    }
}
