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
                retry_after: retry_after
                    .and_then(|v| crate::retry::parse_retry_after(v.as_bytes(), SystemTime::now())),
            },
            time_left: Duration::from_secs(60),
        };
        match self.policy.decide(&attempt, &self.budget, fastrand::f64()) {
            Decision::Retry { after } => Some(after),
            Decision::Stop(_) => None,
        }
    }
}

/// A client's OAuth token cache on its own, for measuring cache hits and single flight.
#[derive(Debug)]
pub struct TokenCacheProbe {
    cache: std::sync::Arc<crate::auth::TokenCache>,
}

impl TokenCacheProbe {
    /// A cache fetching from `token_url` (plain http allowed), with default timeouts.
    ///
    /// # Errors
    ///
    /// A config error if `token_url` is not a URL or the transport cannot be built.
    pub fn new(token_url: &str) -> crate::Result<TokenCacheProbe> {
        let url = url::Url::parse(token_url)
            .map_err(|_| crate::Error::builder("token_url is not a URL"))?;
        let settings = crate::profile::Settings {
            base_url: Some(url.clone()),
            allow_insecure_http: true,
            auth: Some(crate::profile::sections::Auth::Oauth2ClientCredentials {
                token_url: url,
                client_id: "probe".into(),
                client_secret: crate::profile::SecretSource::Value("probe-secret".into()),
                scopes: Vec::new(),
                auth_method: crate::AuthMethod::ClientSecretBasic,
                audience: None,
                extra_params: Default::default(),
                refresh_before_expiry: Duration::from_secs(60),
                default_token_lifetime: Duration::from_secs(300),
            }),
            ..Default::default()
        };
        let http = crate::transport::build("probe", &settings)?;
        match crate::auth::Credentials::resolve(
            "probe",
            settings.auth.as_ref(),
            &http,
            &settings.timeouts,
        )? {
            crate::auth::Credentials::OAuth(cache) => Ok(TokenCacheProbe { cache }),
            _ => Err(crate::Error::builder("not an OAuth profile")),
        }
    }

    /// Gets a valid token, as every call does before it is sent.
    ///
    /// # Errors
    ///
    /// `is_auth()` when no token can be obtained.
    pub async fn token(&self) -> crate::Result<()> {
        self.cache.token().await.map(drop)
    }
}

/// One origin's circuit breaker with the default `[circuit_breaker]` settings.
#[derive(Debug)]
pub struct BreakerProbe {
    breaker: std::sync::Arc<crate::breaker::Breaker>,
}

impl Default for BreakerProbe {
    fn default() -> Self {
        let settings = crate::profile::sections::CircuitBreaker::default();
        BreakerProbe {
            breaker: std::sync::Arc::new(crate::breaker::Breaker::new(
                "https://probe.example".into(),
                &settings,
            )),
        }
    }
}

impl BreakerProbe {
    /// One attempt through the breaker: the permit, then the verdict. `false` when shed.
    pub fn attempt(&self, success: bool) -> bool {
        match self.breaker.permit() {
            Ok(permit) => {
                permit.record(if success {
                    crate::breaker::Verdict::Success
                } else {
                    crate::breaker::Verdict::Failure
                });
                true
            }
            Err(_) => false,
        }
    }
}

/// One origin's rate limiter.
#[derive(Debug)]
pub struct LimiterProbe {
    limiter: crate::ratelimit::Limiter,
}

impl LimiterProbe {
    /// A limiter with a quota of `requests_per_second` (and one second of burst), or none.
    pub fn new(requests_per_second: Option<f64>) -> LimiterProbe {
        let quota = requests_per_second.and_then(|rps| {
            crate::ratelimit::quota(&crate::profile::sections::RateLimit {
                requests_per_second: rps,
                burst: None,
            })
        });
        LimiterProbe {
            limiter: crate::ratelimit::Limiter::new("https://probe.example".into(), quota),
        }
    }

    /// Takes a slot, waiting if one comes within a minute.
    ///
    /// # Errors
    ///
    /// `is_rate_limited()` if no slot comes within a minute.
    pub async fn acquire(&self) -> crate::Result<()> {
        self.limiter
            .acquire(tokio::time::Instant::now() + Duration::from_secs(60))
            .await
    }
}
