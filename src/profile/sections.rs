//! The sections of a profile as they are written in TOML, with their defaults (`[auth]` is in
//! [`super::auth`]).
//!
//! These types only parse; [`super::validate`] checks values and relations between them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

pub(crate) use super::auth::Auth;
pub use super::auth::AuthMethod;
pub(crate) use super::values::parse_header_name;
use super::values::{
    deserialize_header_name, deserialize_header_names, deserialize_opt_header_name,
    deserialize_opt_url, duration, serialize_header_name, serialize_header_names,
    serialize_opt_header_name, serialize_opt_url, serialize_url,
};

/// `[profile.timeouts]`: every call is bounded; none of these can be turned off.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Timeouts {
    #[serde(with = "duration")]
    pub(crate) connect: Duration,
    #[serde(with = "duration")]
    pub(crate) read: Duration,
    /// Unset means `min(30s, total)`, so lowering `total` alone is enough.
    #[serde(
        default,
        deserialize_with = "duration::deserialize_opt",
        serialize_with = "duration::serialize_opt"
    )]
    pub(crate) attempt: Option<Duration>,
    #[serde(with = "duration")]
    pub(crate) total: Duration,
}

impl Timeouts {
    /// The attempt timeout in force: `attempt` if set, else `min(30s, total)`.
    pub(crate) fn attempt(&self) -> Duration {
        self.attempt.unwrap_or(DEFAULT_ATTEMPT.min(self.total))
    }
}

const DEFAULT_ATTEMPT: Duration = Duration::from_secs(30);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            read: Duration::from_secs(30),
            attempt: None,
            total: Duration::from_secs(60),
        }
    }
}

/// `[profile.retry]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Retry {
    pub(crate) max_attempts: u32,
    #[serde(with = "duration")]
    pub(crate) initial_backoff: Duration,
    #[serde(with = "duration")]
    pub(crate) max_backoff: Duration,
    pub(crate) multiplier: f64,
    pub(crate) retry_on_status: Vec<u16>,
    #[serde(
        deserialize_with = "deserialize_header_name",
        serialize_with = "serialize_header_name"
    )]
    pub(crate) idempotency_header: HeaderName,
    pub(crate) auto_idempotency_key: bool,
    #[serde(with = "duration")]
    pub(crate) max_retry_after: Duration,
    pub(crate) budget_percent: u32,
    /// A header in which the server says whether its error is worth retrying.
    #[serde(
        deserialize_with = "deserialize_opt_header_name",
        serialize_with = "serialize_opt_header_name"
    )]
    pub(crate) hint_header: Option<HeaderName>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
            retry_on_status: vec![408, 429, 500, 502, 503, 504],
            idempotency_header: HeaderName::from_static("idempotency-key"),
            auto_idempotency_key: false,
            max_retry_after: Duration::from_secs(60),
            budget_percent: 20,
            hint_header: None,
        }
    }
}

/// `[profile.circuit_breaker]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CircuitBreaker {
    pub(crate) enabled: bool,
    pub(crate) failure_ratio: f64,
    pub(crate) minimum_requests: u32,
    #[serde(with = "duration")]
    pub(crate) window: Duration,
    #[serde(with = "duration")]
    pub(crate) open_for: Duration,
    pub(crate) half_open_requests: u32,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            enabled: true,
            failure_ratio: 0.5,
            minimum_requests: 10,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(15),
            half_open_requests: 1,
        }
    }
}

/// `[profile.rate_limit]`: absent means no client-side quota. At least one of a fixed quota
/// (`requests_per_second`) and `adaptive` is set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimit {
    pub(crate) requests_per_second: Option<f64>,
    /// Defaults to one second's worth of requests (at least 1).
    pub(crate) burst: Option<u32>,
    /// Learn the origin's quota from throttling answers that say nothing (see
    /// `ratelimit::adaptive`). Unset: only once they form a pattern; `false`: never.
    #[serde(default)]
    pub(crate) adaptive: Option<bool>,
}

/// `[profile.concurrency]`: at most `max_in_flight` calls to one origin at a time.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Concurrency {
    pub(crate) max_in_flight: u32,
}

/// `[profile.budget]`: at most `max_calls` requests (retries included: they are billed too) per
/// period, counted in windows aligned to the Unix epoch (`per = "1d"`: UTC days).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Budget {
    pub(crate) max_calls: u64,
    #[serde(with = "duration")]
    pub(crate) per: Duration,
}

/// `tls.min_version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum TlsVersion {
    /// TLS 1.2 (the default).
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// `[profile.tls]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Tls {
    pub(crate) min_version: TlsVersion,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_cert_file: Option<PathBuf>,
    pub(crate) client_key_file: Option<PathBuf>,
}

impl Tls {
    /// The files the section names, each with its key.
    pub(crate) fn files(&self) -> [(&'static str, Option<&std::path::Path>); 3] {
        [
            ("tls.ca_file", self.ca_file.as_deref()),
            ("tls.client_cert_file", self.client_cert_file.as_deref()),
            ("tls.client_key_file", self.client_key_file.as_deref()),
        ]
    }
}

/// `[profile.redact]`: added to the built-in lists.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Redact {
    pub(crate) headers: Vec<String>,
    pub(crate) query_params: Vec<String>,
    pub(crate) json_fields: Vec<String>,
}

/// `[profile.log]`: the opt-in debug log of bodies.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Log {
    /// Log request and response bodies at DEBUG, masked. Off by default.
    pub(crate) bodies: bool,
    /// Bodies larger than this are described, not shown.
    pub(crate) max_body_bytes: u64,
    /// Response headers that carry the partner's request id, first match wins.
    #[serde(
        deserialize_with = "deserialize_header_names",
        serialize_with = "serialize_header_names"
    )]
    pub(crate) request_id_headers: Vec<HeaderName>,
    /// Send our own `X-Request-Id` per call (the same on every attempt).
    pub(crate) send_request_id: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            bodies: false,
            max_body_bytes: 4096,
            request_id_headers: ["request-id", "x-request-id", "x-amzn-requestid", "cf-ray"]
                .map(HeaderName::from_static)
                .to_vec(),
            send_request_id: false,
        }
    }
}

/// The `proxy` key: `"system"` (reqwest's environment variables), `"none"`, or a URL.
#[derive(Clone, Default, PartialEq)]
pub enum Proxy {
    /// Use `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` from the environment.
    #[default]
    System,
    /// Connect directly, whatever the environment says.
    None,
    /// Send every request through this proxy (`http://` or `https://`).
    Url(Url),
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proxy::System => f.write_str("System"),
            Proxy::None => f.write_str("None"),
            // A proxy URL may carry credentials.
            Proxy::Url(url) => write!(f, "Url({:?})", crate::redact::Redactor::default().url(url)),
        }
    }
}

impl Serialize for Proxy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Proxy::System => s.serialize_str("system"),
            Proxy::None => s.serialize_str("none"),
            Proxy::Url(url) => serialize_url(url, s),
        }
    }
}

impl<'de> Deserialize<'de> for Proxy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "system" => Ok(Proxy::System),
            "none" => Ok(Proxy::None),
            _ => match Url::parse(&text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Proxy::Url(url)),
                _ => Err(serde::de::Error::custom(
                    "must be \"system\", \"none\" or an http(s):// proxy URL",
                )),
            },
        }
    }
}

/// The whole of one profile as written (`[name]` and its sub-tables).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    #[serde(
        default,
        deserialize_with = "deserialize_opt_url",
        serialize_with = "serialize_opt_url"
    )]
    pub(crate) base_url: Option<Url>,
    #[serde(default)]
    pub(crate) allowed_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) allow_insecure_http: bool,
    #[serde(default = "default_max_response_bytes")]
    pub(crate) max_response_bytes: u64,
    #[serde(default)]
    pub(crate) follow_redirects: bool,
    /// Send a W3C `traceparent` on every attempt (feature `opentelemetry`).
    #[serde(default)]
    pub(crate) propagate_trace_context: bool,
    #[serde(default)]
    pub(crate) proxy: Proxy,
    #[serde(default)]
    pub(crate) timeouts: Timeouts,
    #[serde(default)]
    pub(crate) retry: Retry,
    #[serde(default)]
    pub(crate) circuit_breaker: CircuitBreaker,
    #[serde(default)]
    pub(crate) rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub(crate) auth: Option<Auth>,
    #[serde(default)]
    pub(crate) tls: Tls,
    #[serde(default)]
    pub(crate) redact: Redact,
    #[serde(default)]
    pub(crate) log: Log,
    /// `[concurrency]`: the bulkhead of each origin.
    #[serde(default)]
    pub(crate) concurrency: Option<Concurrency>,
    /// `[budget]`: a spending ceiling.
    #[serde(default)]
    pub(crate) budget: Option<Budget>,
    /// Headers every call carries unless it sets its own.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) fleet: Option<super::fleet::Fleet>,
}

pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}
impl Default for Settings {
    fn default() -> Self {
        Settings {
            base_url: None,
            allowed_hosts: None,
            allow_insecure_http: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            follow_redirects: false,
            propagate_trace_context: false,
            proxy: Proxy::System,
            timeouts: Timeouts::default(),
            retry: Retry::default(),
            circuit_breaker: CircuitBreaker::default(),
            rate_limit: None,
            auth: None,
            tls: Tls::default(),
            redact: Redact::default(),
            log: Log::default(),
            headers: BTreeMap::new(),
            budget: None,
            concurrency: None,
            fleet: None,
        }
    }
}
