//! Metric names, and the low-cardinality labels and registered handles of one origin's calls.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use http::Method;
use metrics::{Counter, Histogram, SharedString};
use url::Url;

/// Metric names (OpenTelemetry HTTP client conventions, then ours under `outbound.`).
pub(crate) mod metric {
    /// Histogram, seconds: from `send` to the response head (or the error).
    pub(crate) const REQUEST_DURATION: &str = "http.client.request.duration";
    /// Counter: logical calls.
    pub(crate) const REQUESTS: &str = "outbound.client.requests";
    /// Histogram: requests sent per logical call.
    pub(crate) const ATTEMPTS: &str = "outbound.client.attempts";
    /// Counter: retries, by reason.
    pub(crate) const RETRIES: &str = "outbound.client.retries";
    /// Counter: retryable outcomes that were not retried, by reason.
    pub(crate) const RETRIES_REFUSED: &str = "outbound.client.retries_refused";
    /// Gauge: 0 closed, 1 half-open, 2 open.
    pub(crate) const BREAKER_STATE: &str = "outbound.client.circuit_breaker.state";
    /// Histogram, seconds: time spent waiting for a rate limit slot or pause.
    pub(crate) const RATE_LIMIT_WAIT: &str = "outbound.client.rate_limit.wait";
    /// Counter: server-requested pauses of a whole origin, by reason.
    pub(crate) const RATE_LIMIT_PAUSES: &str = "outbound.client.rate_limit.pauses";
    /// Counter: lone 429s, which delayed only their own call.
    pub(crate) const RATE_LIMIT_CALL_ONLY: &str = "outbound.client.rate_limit.call_only";
    /// Gauge, requests/s: the rate learned for an origin (`rate_limit.adaptive`), set on a cut.
    pub(crate) const RATE_LIMIT_ADAPTIVE: &str = "outbound.client.rate_limit.adaptive_rate";
    /// Gauge: calls left under the spending ceiling (`[budget]`), by profile.
    pub(crate) const BUDGET_LEFT: &str = "outbound.client.budget.remaining";
    /// Counter: token requests, by result.
    pub(crate) const TOKEN_REQUESTS: &str = "outbound.client.token.requests";
}

/// The low-cardinality labels of one origin's calls, and its registered metric handles, so a
/// call neither allocates labels nor registers metrics. Handles are registered on first use:
/// install the metrics recorder before the first call.
#[derive(Debug)]
pub(crate) struct Labels {
    pub(crate) profile: Arc<str>,
    pub(crate) host: Arc<str>,
    /// A handful of entries: a list is faster than hashing.
    handles: Mutex<Vec<(CallKey, Histogram, Counter)>>,
    attempts: OnceLock<Histogram>,
}

/// Method, status class, outcome.
type CallKey = (&'static str, &'static str, &'static str);

impl Labels {
    /// Labels for `origin` (`scheme://host:port`, or a placeholder for the overflow entry).
    pub(crate) fn new(profile: &str, origin: &str) -> Labels {
        let profile = if profile.is_empty() {
            "default"
        } else {
            profile
        };
        let host = Url::parse(origin)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| origin.to_owned());
        Labels {
            profile: profile.into(),
            host: host.into(),
            handles: Mutex::new(Vec::new()),
            attempts: OnceLock::new(),
        }
    }

    pub(super) fn call_handles(&self, key: CallKey) -> (Histogram, Counter) {
        let mut handles = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, duration, count)) = handles.iter().find(|(k, ..)| *k == key) {
            return (duration.clone(), count.clone());
        }
        let (method, class, outcome) = key;
        let tags = [
            ("outbound.profile", SharedString::from(self.profile.clone())),
            ("server.address", SharedString::from(self.host.clone())),
            ("http.request.method", SharedString::const_str(method)),
            ("http.response.status_class", SharedString::const_str(class)),
            ("outcome", SharedString::const_str(outcome)),
        ];
        let duration = metrics::histogram!(metric::REQUEST_DURATION, &tags);
        let count = metrics::counter!(metric::REQUESTS, &tags);
        handles.push((key, duration.clone(), count.clone()));
        (duration, count)
    }

    pub(super) fn attempts(&self) -> &Histogram {
        self.attempts.get_or_init(|| {
            metrics::histogram!(
                metric::ATTEMPTS,
                "outbound.profile" => self.profile.clone(),
                "server.address" => self.host.clone()
            )
        })
    }
}

/// The method as a label: the standard ones by name, any other as `_OTHER` (OpenTelemetry).
pub(super) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

// ===== spans =====
