//! Retry settings of [`ClientBuilder`].

use std::time::Duration;

use super::ClientBuilder;
use crate::profile::sections::parse_header_name;

impl ClientBuilder {
    /// Attempts per call, the first included (1 disables retries). Profile key:
    /// `retry.max_attempts`. Default: 3; at most 10.
    pub fn max_attempts(mut self, attempts: u32) -> ClientBuilder {
        self.settings.retry.max_attempts = attempts;
        self
    }

    /// The ceiling of the first backoff. Profile key: `retry.initial_backoff`. Default: 100 ms.
    pub fn initial_backoff(mut self, backoff: Duration) -> ClientBuilder {
        self.settings.retry.initial_backoff = backoff;
        self
    }

    /// The largest backoff. Profile key: `retry.max_backoff`. Default: 10 s.
    pub fn max_backoff(mut self, backoff: Duration) -> ClientBuilder {
        self.settings.retry.max_backoff = backoff;
        self
    }

    /// Growth of the backoff ceiling per attempt. Profile key: `retry.multiplier`. Default: 2.0.
    pub fn backoff_multiplier(mut self, multiplier: f64) -> ClientBuilder {
        self.settings.retry.multiplier = multiplier;
        self
    }

    /// Statuses worth another attempt. Profile key: `retry.retry_on_status`. Default: 408, 429,
    /// 500, 502, 503, 504.
    pub fn retry_on_status(mut self, statuses: impl IntoIterator<Item = u16>) -> ClientBuilder {
        self.settings.retry.retry_on_status = statuses.into_iter().collect();
        self
    }

    /// Generates an idempotency key (a UUID v4) for each call of a non-idempotent method that
    /// has none, so that POST and PATCH can be retried. Profile key:
    /// `retry.auto_idempotency_key`. Default: `false`; only turn it on for APIs that honour the
    /// header.
    pub fn auto_idempotency_key(mut self, auto: bool) -> ClientBuilder {
        self.settings.retry.auto_idempotency_key = auto;
        self
    }

    /// The longest `Retry-After` the client waits for; a longer one ends the call at once with
    /// [`Error::is_rate_limited`](crate::Error::is_rate_limited). Profile key: `retry.max_retry_after`. Default: 60 s.
    pub fn max_retry_after(mut self, max: Duration) -> ClientBuilder {
        self.settings.retry.max_retry_after = max;
        self
    }

    /// The share of calls that retries may add, per origin, over a 10 s window (plus a reserve of
    /// 10 retries per window). Profile key: `retry.budget_percent`. Default: 20.
    pub fn retry_budget_percent(mut self, percent: u32) -> ClientBuilder {
        self.settings.retry.budget_percent = percent;
        self
    }

    /// The header that carries idempotency keys. Profile key: `retry.idempotency_header`.
    /// Default: `Idempotency-Key`.
    pub fn idempotency_header(mut self, name: impl AsRef<str>) -> ClientBuilder {
        match parse_header_name(name.as_ref()) {
            Ok(name) => {
                self.settings.retry.idempotency_header = name;
                self
            }
            Err(problem) => self.fail("retry.idempotency_header", problem),
        }
    }

    /// A response header in which the server says whether its error is worth retrying
    /// (`Stripe-Should-Retry`, `x-should-retry`): `true` makes the answer retryable, `false`
    /// final, whatever `retry.retry_on_status` says. Replay safety still decides: a hint never
    /// makes a POST without an idempotency key retryable. Profile key: `retry.hint_header`.
    /// Default: none.
    ///
    /// ```
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.stripe.example")
    ///     .retry_hint_header("Stripe-Should-Retry")
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn retry_hint_header(mut self, name: impl AsRef<str>) -> ClientBuilder {
        match parse_header_name(name.as_ref()) {
            Ok(name) => {
                self.settings.retry.hint_header = Some(name);
                self
            }
            Err(problem) => self.fail("retry.hint_header", problem),
        }
    }
}
