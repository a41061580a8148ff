//! The one error type of the crate.
//!
//! Like `reqwest::Error`, [`Error`] is opaque: callers branch on [`Error::kind`] or the `is_*`
//! predicates, never on message text. Its `Display` names what happened in words an on-call
//! engineer can act on (the method, the *redacted* URL, the status, the attempts, which limit was
//! hit) and its `Debug` shows the same fields; neither ever holds a header value, a body or a
//! secret.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::time::Duration;

use http::{Method, StatusCode};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// A `Result` alias whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for matching. Obtained with [`Error::kind`].
///
/// ```
/// # fn demo(err: outbound::Error) {
/// match err.kind() {
///     outbound::ErrorKind::Timeout => { /* the partner is slow: alert */ }
///     outbound::ErrorKind::Config => { /* our mistake: fix the profile */ }
///     _ => {}
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A profile or builder setting is invalid, or a secret could not be resolved.
    Config,
    /// The request could not be built: an invalid URL, header name or value, or a body that
    /// failed to serialize. Nothing was sent.
    Builder,
    /// The profile does not allow this request to go where it points: a foreign host, plain
    /// `http` without `allow_insecure_http`, or credentials in the URL. Nothing was sent.
    Disallowed,
    /// The connection could not be established (refused, DNS failure, TLS handshake failure).
    Connect,
    /// A time limit passed: connect, read (between bytes), attempt or the total deadline.
    Timeout,
    /// The request failed in flight (for example the connection was reset).
    Request,
    /// A redirect was refused or there were too many hops.
    Redirect,
    /// Reading the response body failed.
    Body,
    /// The response body is larger than `max_response_bytes`.
    BodyTooLarge,
    /// The response body could not be decoded (for example invalid JSON).
    Decode,
    /// [`Response::error_for_status`](crate::Response::error_for_status) found a 4xx or 5xx.
    Status,
    /// The circuit breaker for the origin is open; nothing was sent.
    CircuitOpen,
    /// The call would have to wait for a rate limit past its deadline; nothing was sent.
    RateLimited,
    /// Credentials could not be obtained or were refused.
    Auth,
    /// The client is isolated ([`Client::isolate`](crate::Client::isolate)); nothing was sent.
    Isolated,
    /// The profile's spending ceiling (`[budget] max_calls` per period) is reached; nothing was
    /// sent.
    BudgetExhausted,
    /// The origin's bulkhead (`[concurrency] max_in_flight`) had no slot before the deadline;
    /// nothing was sent.
    Overloaded,
}

mod show;

impl ErrorKind {
    /// A short snake_case name, for the `error.type` span field and metric labels.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Builder => "builder",
            ErrorKind::Disallowed => "disallowed",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Request => "request",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Body => "body",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::Decode => "decode",
            ErrorKind::Status => "status",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Auth => "auth",
            ErrorKind::Isolated => "isolated",
            ErrorKind::BudgetExhausted => "budget_exhausted",
            ErrorKind::Overloaded => "overloaded",
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Builder => "invalid request",
            ErrorKind::Disallowed => "request not allowed by the profile",
            ErrorKind::Connect => "connection failed",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Request => "request failed",
            ErrorKind::Redirect => "redirect refused",
            ErrorKind::Body => "reading the response body failed",
            ErrorKind::BodyTooLarge => "response body too large",
            ErrorKind::Decode => "response body could not be decoded",
            ErrorKind::Status => "error status",
            ErrorKind::CircuitOpen => "circuit breaker open",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Auth => "authentication failed",
            ErrorKind::Isolated => "client isolated",
            ErrorKind::BudgetExhausted => "spending ceiling reached",
            ErrorKind::Overloaded => "too many calls in flight",
        }
    }
}

/// The error of every fallible operation in this crate.
///
/// ```
/// let err = outbound::Profiles::from_toml_str("[crm]\nbase_url = 'http://api.crm.example'")
///     .and_then(|p| p.get("crm").cloned())
///     .and_then(|p| outbound::Client::from_profile(&p))
///     .unwrap_err();
/// assert!(err.is_config());
/// assert!(err.to_string().contains("allow_insecure_http"));
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    /// Our own words: which limit, which key, which rule. Never a secret, header value or body.
    detail: Option<Cow<'static, str>>,
    source: Option<BoxError>,
    method: Option<Method>,
    /// Already redacted.
    url: Option<String>,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    attempts: u32,
    /// Why the call was not retried, when that is not self-evident.
    note: Option<&'static str>,
    /// The failure proves the server never received the request.
    never_sent: bool,
    /// Trying again meets the same cause (a certificate the client refuses): never retried.
    permanent: bool,
    /// The partner's id for the last answer (or the id this call sent), already bounded and
    /// escaped.
    request_id: Option<Box<str>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                detail: None,
                source: None,
                method: None,
                url: None,
                status: None,
                retry_after: None,
                attempts: 0,
                note: None,
                never_sent: false,
                permanent: false,
                request_id: None,
            }),
        }
    }

    pub(crate) fn config(source: crate::profile::ConfigError) -> Error {
        Error::new(ErrorKind::Config).with_detail(source.to_string())
    }

    pub(crate) fn builder(detail: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Builder).with_detail(detail)
    }

    pub(crate) fn disallowed(detail: impl Into<Cow<'static, str>>) -> Error {
        Error::new(ErrorKind::Disallowed).with_detail(detail)
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Error {
        self.inner.detail = Some(detail.into());
        self
    }

    /// Keeps `source` in the chain. Callers strip URLs from it first (`without_url`).
    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    pub(crate) fn with_request(mut self, method: &Method, redacted_url: String) -> Error {
        self.inner.method = Some(method.clone());
        self.inner.url = Some(redacted_url);
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Error {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_retry_after(mut self, after: Duration) -> Error {
        self.inner.retry_after = Some(after);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Error {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_note(mut self, note: Option<&'static str>) -> Error {
        self.inner.note = note;
        self
    }

    pub(crate) fn with_never_sent(mut self) -> Error {
        self.inner.never_sent = true;
        self
    }

    /// Our own words about what went wrong, if any.
    pub(crate) fn detail(&self) -> Option<&str> {
        self.inner.detail.as_deref()
    }

    /// Keeps `id` (bounded and escaped by the caller) unless the error already has one.
    pub(crate) fn with_request_id(mut self, id: Option<&str>) -> Error {
        if self.inner.request_id.is_none() {
            self.inner.request_id = id.map(Into::into);
        }
        self
    }

    /// The partner's request id from the last answer the call got (`Request-Id`,
    /// `X-Request-Id`, `X-Amzn-RequestId`, `CF-Ray` or `log.request_id_headers`), or, with
    /// `log.send_request_id`, the id the call sent: the one to quote in a support ticket.
    /// Length-bounded, with control characters escaped.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    pub(crate) fn with_permanent(mut self, permanent: bool) -> Error {
        self.inner.permanent = permanent;
        self
    }

    /// Whether trying again could not succeed (a refused certificate, no common TLS version).
    pub(crate) fn is_permanent(&self) -> bool {
        self.inner.permanent
    }

    /// Forgets a never-sent mark: an earlier hop of this attempt was answered, so the request
    /// as the caller sent it did reach the server.
    pub(crate) fn maybe_received(mut self) -> Error {
        self.inner.never_sent = false;
        self
    }

    /// Whether the failure proves the server never received the request (connection refused,
    /// DNS or TLS handshake failure), which makes any request safe to send again.
    pub(crate) fn never_sent(&self) -> bool {
        self.inner.never_sent
    }

    /// What went wrong, for `match`.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// A profile or builder setting is invalid or a secret could not be resolved.
    pub fn is_config(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Config)
    }

    /// The request could not be built (bad URL, header or body); nothing was sent.
    pub fn is_builder(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Builder)
    }

    /// The profile does not allow the request's destination; nothing was sent.
    pub fn is_disallowed(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Disallowed)
    }

    /// A time limit passed (connect, read, attempt or total deadline).
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Timeout)
    }

    /// The connection could not be established.
    pub fn is_connect(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Connect)
    }

    /// A redirect was refused or there were too many hops.
    pub fn is_redirect(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Redirect)
    }

    /// The response body exceeded `max_response_bytes`.
    pub fn is_body_too_large(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::BodyTooLarge)
    }

    /// The response body could not be decoded.
    pub fn is_decode(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Decode)
    }

    /// The error came from [`Response::error_for_status`](crate::Response::error_for_status).
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Status)
    }

    /// The origin's circuit breaker is open; nothing was sent.
    pub fn is_circuit_open(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::CircuitOpen)
    }

    /// The call was refused by a rate limit; see [`Error::retry_after`].
    pub fn is_rate_limited(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::RateLimited)
    }

    /// Credentials could not be obtained or were refused.
    pub fn is_auth(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Auth)
    }

    /// The client is isolated by its kill switch; nothing was sent.
    pub fn is_isolated(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Isolated)
    }

    /// The profile's spending ceiling is reached (`[budget]`); nothing was sent.
    /// [`retry_after`](Error::retry_after) says when the period ends.
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::BudgetExhausted)
    }

    /// The origin's bulkhead (`[concurrency] max_in_flight`) had no free slot before the
    /// call's deadline; nothing was sent.
    pub fn is_overloaded(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Overloaded)
    }

    /// The HTTP status of the last response, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// How long the server (or a limiter) asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// How many attempts were sent before the call failed (0 when nothing was sent).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }
}
