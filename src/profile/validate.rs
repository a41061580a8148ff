//! The checks a profile must pass, shared by profile files and [`ClientBuilder`]: whichever way a
//! setting came in, a bad value gets the same message naming the same key.
//!
//! [`ClientBuilder`]: crate::ClientBuilder

use std::fmt;
use std::time::Duration;

use http::HeaderName;
use url::Url;

use governor::Quota;

use super::sections::{Auth, RateLimit, Settings};

/// What validation proved, in the types the client is built from: `build` consumes these as they
/// are, so nothing is parsed twice and no check is repeated where it cannot fail.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) base_url: Url,
    /// The quota of `[rate_limit]`, if the profile has one.
    pub(crate) quota: Option<Quota>,
    /// `[headers]`, parsed.
    pub(crate) headers: http::HeaderMap,
}

/// A problem with one key of one profile. Never holds the value of a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) struct ConfigError {
    profile: String,
    key: String,
    problem: String,
}

impl ConfigError {
    pub(crate) fn new(profile: &str, key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            profile: profile.to_owned(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The same problem, said more precisely (where the value came from).
    pub(crate) fn with_suffix(mut self, suffix: &str) -> Self {
        self.problem.push_str(suffix);
        self
    }

    /// The same problem, named after the environment variable that set the value.
    pub(crate) fn named_after(self, variable: &str) -> Self {
        ConfigError {
            profile: self.profile,
            key: variable.to_owned(),
            problem: format!("({}) {}", self.key, self.problem),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.profile.is_empty() {
            write!(f, "profile {:?}: ", self.profile)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.problem)
    }
}

/// `rate_limit.requests_per_second` bounds: below, governor's period overflows; above, it rounds
/// to zero and the quota would silently vanish.
const MIN_RATE: f64 = 1e-6;
const MAX_RATE: f64 = 1e9;
/// About 31 years: the longest refill of a burst (`(burst - 1) / rate`).
const MAX_BURST_REFILL_SECS: f64 = 1e9;

/// Checks every value and every relation between values of one profile.
pub(crate) fn validate(profile: &str, s: &Settings) -> Result<Checked, ConfigError> {
    let err = |key: &str, problem: String| Err(ConfigError::new(profile, key, problem));

    let Some(base_url) = &s.base_url else {
        return err("base_url", "is required".into());
    };
    check_url(profile, "base_url", base_url, s.allow_insecure_http)?;
    if base_url.query().is_some() || base_url.fragment().is_some() {
        return err(
            "base_url",
            "must not have a query or fragment; add query parameters per call".into(),
        );
    }
    if let Some(hosts) = &s.allowed_hosts {
        for host in hosts {
            if host.is_empty() || host.contains(['/', ':', '@', '?', '#', ' ']) {
                return err(
                    "allowed_hosts",
                    format!("{host:?} is not a bare host name (no scheme, port or path)"),
                );
            }
        }
        let base_host = base_url.host_str().unwrap_or_default();
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(base_host)) {
            return err(
                "allowed_hosts",
                format!("must include base_url's host {base_host:?}"),
            );
        }
    }
    if s.max_response_bytes == 0 {
        return err("max_response_bytes", "must be greater than 0".into());
    }

    let t = &s.timeouts;
    for (key, value) in [
        ("timeouts.connect", t.connect),
        ("timeouts.read", t.read),
        ("timeouts.attempt", t.attempt()),
        ("timeouts.total", t.total),
    ] {
        if value.is_zero() {
            return err(key, "must be greater than 0".into());
        }
    }
    if t.attempt() > t.total {
        return err(
            "timeouts.attempt",
            format!(
                "must not be greater than timeouts.total ({})",
                humantime::format_duration(t.total)
            ),
        );
    }

    let r = &s.retry;
    if !(1..=10).contains(&r.max_attempts) {
        return err("retry.max_attempts", "must be between 1 and 10".into());
    }
    if r.initial_backoff.is_zero() {
        return err("retry.initial_backoff", "must be greater than 0".into());
    }
    if r.max_backoff < r.initial_backoff {
        return err(
            "retry.max_backoff",
            "must not be less than retry.initial_backoff".into(),
        );
    }
    if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
        return err("retry.multiplier", "must be >= 1.0".into());
    }
    if let Some(code) = r.retry_on_status.iter().find(|c| !(100..=599).contains(*c)) {
        return err(
            "retry.retry_on_status",
            format!("{code} is not an HTTP status"),
        );
    }
    if r.max_retry_after.is_zero() {
        return err("retry.max_retry_after", "must be greater than 0".into());
    }
    if r.budget_percent > 100 {
        return err("retry.budget_percent", "must be between 0 and 100".into());
    }

    let b = &s.circuit_breaker;
    if !(b.failure_ratio > 0.0 && b.failure_ratio <= 1.0) {
        return err(
            "circuit_breaker.failure_ratio",
            "must be greater than 0 and at most 1".into(),
        );
    }
    for (key, value) in [
        ("circuit_breaker.minimum_requests", b.minimum_requests),
        ("circuit_breaker.half_open_requests", b.half_open_requests),
    ] {
        if value == 0 {
            return err(key, "must be at least 1".into());
        }
    }
    for (key, value) in [
        ("circuit_breaker.window", b.window),
        ("circuit_breaker.open_for", b.open_for),
    ] {
        if value.is_zero() {
            return err(key, "must be greater than 0".into());
        }
    }

    let mut quota = None;
    if let Some(limit) = &s.rate_limit {
        quota = rate_limit(profile, limit)?;
    }

    if let Some(c) = &s.concurrency
        && !(1..=1_000_000).contains(&c.max_in_flight)
    {
        return err(
            "concurrency.max_in_flight",
            "must be between 1 and 1000000".into(),
        );
    }

    if let Some(budget) = &s.budget {
        if budget.max_calls == 0 {
            return err(
                "budget.max_calls",
                "must be at least 1 (to stop every call, use Client::isolate)".into(),
            );
        }
        if budget.per < Duration::from_secs(1) || budget.per > Duration::from_secs(366 * 86_400) {
            return err("budget.per", "must be between 1s and 366d".into());
        }
    }

    if s.propagate_trace_context && !cfg!(feature = "opentelemetry") {
        return err(
            "propagate_trace_context",
            "needs outbound's `opentelemetry` feature (features = [\"opentelemetry\"])".into(),
        );
    }

    if let Some(fleet) = &s.fleet {
        super::fleet::validate(profile, fleet, s.rate_limit.as_ref())?;
    }

    if let Some(auth) = &s.auth {
        validate_auth(profile, auth, s.allow_insecure_http)?;
        let base_host = base_url.host_str().unwrap_or_default();
        let allowed = |host: &str| match &s.allowed_hosts {
            Some(hosts) => hosts.iter().any(|h| h.eq_ignore_ascii_case(host)),
            None => host.eq_ignore_ascii_case(base_host),
        };
        if let Some(host) = auth.hosts().iter().find(|host| !allowed(host)) {
            return err(
                "auth.hosts",
                format!("{host:?} is not in allowed_hosts; credentials go only where calls may"),
            );
        }
    }

    if s.tls.client_cert_file.is_some() != s.tls.client_key_file.is_some() {
        let missing = if s.tls.client_cert_file.is_some() {
            "tls.client_key_file"
        } else {
            "tls.client_cert_file"
        };
        return err(
            missing,
            "is required with the other half of the client identity".into(),
        );
    }
    if !(1..=1024 * 1024).contains(&s.log.max_body_bytes) {
        return err("log.max_body_bytes", "must be between 1 and 1048576".into());
    }
    if let Some(bad) = s
        .redact
        .headers
        .iter()
        .find(|h| HeaderName::from_bytes(h.as_bytes()).is_err())
    {
        return err(
            "redact.headers",
            format!("{bad:?} is not a valid header name"),
        );
    }
    let headers = super::headers::check(profile, &s.headers, s)?;
    Ok(Checked {
        base_url: base_url.clone(),
        quota,
        headers,
    })
}

fn validate_auth(profile: &str, auth: &Auth, allow_insecure_http: bool) -> Result<(), ConfigError> {
    let err = |key: &str, problem: &str| Err(ConfigError::new(profile, key, problem));
    match auth {
        Auth::Oauth2ClientCredentials {
            token_url,
            client_id,
            refresh_before_expiry,
            default_token_lifetime,
            ..
        } => {
            check_url(profile, "auth.token_url", token_url, allow_insecure_http)?;
            if client_id.is_empty() {
                return err("auth.client_id", "must not be empty");
            }
            if refresh_before_expiry.is_zero() {
                return err("auth.refresh_before_expiry", "must be greater than 0");
            }
            if *default_token_lifetime < Duration::from_secs(1) {
                return err("auth.default_token_lifetime", "must be at least 1s");
            }
        }
        Auth::ApiKey {
            header,
            query_param,
            ..
        } => match (header, query_param) {
            (Some(_), Some(_)) => {
                return err(
                    "auth.query_param",
                    "give either auth.header or auth.query_param",
                );
            }
            (None, Some(name)) if name.is_empty() => {
                return err("auth.query_param", "must not be empty");
            }
            _ => {}
        },
        Auth::Bearer { .. } => {}
    }
    Ok(())
}

/// The rules every URL in a profile follows: http(s) with a host, https unless the profile opts
/// out, and no credentials. Never quotes the URL, which may hold credentials.
fn check_url(
    profile: &str,
    key: &str,
    url: &Url,
    allow_insecure_http: bool,
) -> Result<(), ConfigError> {
    let err = |problem: &str| Err(ConfigError::new(profile, key, problem));
    if !url.username().is_empty() || url.password().is_some() {
        return err("must not contain credentials");
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http => {}
        "http" => return err("must be https unless allow_insecure_http = true"),
        _ => return err("must be an http(s) URL"),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return err("must have a host");
    }
    Ok(())
}

/// Checks `[rate_limit]`; its fixed quota, if it sets one.
fn rate_limit(profile: &str, limit: &RateLimit) -> Result<Option<Quota>, ConfigError> {
    let err = |key: &str, problem: String| Err(ConfigError::new(profile, key, problem));
    let Some(rate) = limit.requests_per_second else {
        if limit.burst.is_some() {
            return err(
                "rate_limit.burst",
                "needs rate_limit.requests_per_second: the adaptive rate keeps its own burst"
                    .into(),
            );
        }
        if limit.adaptive.is_none() {
            return err(
                "rate_limit",
                "sets neither requests_per_second nor adaptive (or remove [rate_limit])".into(),
            );
        }
        return Ok(None);
    };
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return err(
            "rate_limit.requests_per_second",
            format!("must be between {MIN_RATE} (one call in about 12 days) and {MAX_RATE}"),
        );
    }
    match limit.burst {
        Some(0) => return err("rate_limit.burst", "must be at least 1".into()),
        // Refilling the burst must take a span a clock can count (governor's GCRA works
        // in u64 nanoseconds).
        Some(burst) if f64::from(burst - 1) / rate > MAX_BURST_REFILL_SECS => {
            return err(
                "rate_limit.burst",
                format!(
                    "is too large for requests_per_second = {rate}: refilling it must take \
                     at most {MAX_BURST_REFILL_SECS} seconds"
                ),
            );
        }
        _ => {}
    }
    match crate::ratelimit::quota(limit) {
        Some(quota) => Ok(Some(quota)),
        None => err(
            "rate_limit.requests_per_second",
            format!("{rate} cannot be paced"),
        ),
    }
}
