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
                hint: None,
            },
            time_left: Duration::from_secs(60),
            vouched: false,
            max_attempts: None,
            resendable: true,
            origin_paused: false,
        };
        match self.policy.decide(&attempt, &self.budget, fastrand::f64()) {
            Decision::Retry { after, .. } => Some(after),
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
                hosts: Vec::new(),
            }),
            ..Default::default()
        };
        let http = crate::reload::Transport::build("probe", &settings)?;
        match crate::auth::Credentials::resolve(
            "probe",
            settings.auth.as_ref(),
            &http,
            &settings.timeouts,
            #[cfg(feature = "fleet")]
            None,
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
                requests_per_second: Some(rps),
                ..Default::default()
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
            .acquire(crate::transport::later(
                tokio::time::Instant::now(),
                Duration::from_secs(60),
            ))
            .await
    }
}

/// How long `headers` ask to pause, as the rate limiter reads them.
pub fn ratelimit_pause(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    crate::ratelimit::exhausted_for(headers, now)
}

/// `url` as every log line and error shows it.
pub fn redact_url(url: &url::Url) -> String {
    crate::redact::Redactor::default().url(url).to_string()
}

/// `headers` as every `Debug` shows them.
pub fn redact_headers(headers: &http::HeaderMap) -> String {
    format!("{:?}", crate::redact::Redactor::default().headers(headers))
}

/// A JSON body as the body log shows it.
pub fn mask_json_body(body: &[u8]) -> String {
    crate::redact::Redactor::default().body(Some("application/json"), body, usize::MAX)
}

/// What the client makes of a token endpoint's answer: `Ok(lifetime)` or the error it reports.
pub fn token_response(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Option<Duration>, String> {
    use std::sync::{Mutex, OnceLock};

    static ENDPOINT: OnceLock<crate::auth::TokenEndpoint> = OnceLock::new();
    let endpoint = ENDPOINT.get_or_init(crate::auth::TokenEndpoint::probe);
    let status = http::StatusCode::from_u16(status).map_err(|_| "not a status".to_owned())?;
    let mut response = http::Response::builder().status(status);
    if let Some(content_type) = content_type {
        response = response.header(http::header::CONTENT_TYPE, content_type);
    }
    let response = response
        .body(body.to_vec())
        .map_err(|_| "not a header value".to_owned())?;
    let recorded = Mutex::new(None);
    let canned = Canned {
        response,
        status: &recorded,
    };
    let fetched = endpoint.fetch_via(&canned, &recorded);
    let mut fetched = std::pin::pin!(fetched);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fetched.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(issued)) => Ok(issued.lifetime),
        std::task::Poll::Ready(Err(failure)) => Err(failure.to_error().to_string()),
        std::task::Poll::Pending => Err("pending".to_owned()),
    }
}

/// A token endpoint that answers with one canned response.
struct Canned<'a> {
    response: http::Response<Vec<u8>>,
    status: &'a std::sync::Mutex<Option<http::StatusCode>>,
}

impl<'c> oauth2::AsyncHttpClient<'c> for Canned<'_> {
    type Error = crate::Error;
    type Future = std::future::Ready<Result<oauth2::HttpResponse, crate::Error>>;

    fn call(&'c self, _request: oauth2::HttpRequest) -> Self::Future {
        if let Ok(mut status) = self.status.lock() {
            *status = Some(self.response.status());
        }
        let mut copy = http::Response::builder().status(self.response.status());
        for (name, value) in self.response.headers() {
            copy = copy.header(name, value);
        }
        std::future::ready(
            copy.body(self.response.body().clone())
                .map_err(|_| crate::Error::builder("canned response")),
        )
    }
}
