//! A response whose body can only be read within the call's limits.
//!
//! The body is bounded by `max_response_bytes`, counted after decompression (so a gzip bomb is
//! stopped, not inflated), and refused before reading when `Content-Length` already says it is
//! too large. Reading is bounded by the same deadline as the attempt that produced the response.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::error::{Error, ErrorKind, Result};
use crate::profile::sections::Timeouts;
use crate::redact::{RedactedUrl, Redactor};
use crate::telemetry;
use crate::transport::{self, Timer};

mod json;
mod stream;

/// An HTTP response. Its body is read at most once, by [`bytes`](Response::bytes),
/// [`text`](Response::text) or [`json`](Response::json).
///
/// ```no_run
/// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
/// let response = client.get("/v1/contacts/42").send().await?.error_for_status()?;
/// let contact: serde_json::Value = response.json().await?;
/// # Ok(()) }
/// ```
pub struct Response {
    inner: reqwest::Response,
    method: Method,
    ctx: Arc<BodyContext>,
    timer: Timer,
    attempts: u32,
    note: Option<&'static str>,
    /// `max_response_bytes`, or this call's own limit.
    max_bytes: u64,
    /// Bytes read so far by [`chunk`](Response::chunk), after decompression.
    read: u64,
    /// `chunk` has started reading (and checked `Content-Length`).
    streaming: bool,
    /// How the body failed, once it has: every later `chunk` fails the same way, so a body
    /// cut short never looks complete.
    failed: Option<Box<(ErrorKind, String)>>,
    /// The server's `Retry-After` on a 429 or 503, kept for `error_for_status`.
    retry_after: Option<std::time::Duration>,
    /// The partner's request id (or the one the call sent), bounded and escaped.
    request_id: Option<Box<str>>,
}

/// What the pipeline knows of a call that ends with an answer.
pub(crate) struct Answered {
    pub(crate) method: Method,
    pub(crate) attempts: u32,
    pub(crate) note: Option<&'static str>,
    /// This call's own `max_response_bytes`, if it set one.
    pub(crate) max_bytes: Option<u64>,
    pub(crate) request_id: Option<Box<str>>,
    /// The answer's `Retry-After`, kept for a 429 or 503.
    pub(crate) retry_after: Option<std::time::Duration>,
}

/// What reading a body needs from the client.
#[derive(Debug)]
pub(crate) struct BodyContext {
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) max_bytes: u64,
    pub(crate) timeouts: Timeouts,
    /// `Some(max)` when the profile logs bodies.
    pub(crate) log: Option<usize>,
}

impl Response {
    /// The answer `inner` to a call that ends with it. Built in one go: a `Response` is a few
    /// hundred bytes, copied by each step that takes and returns it.
    pub(crate) fn new(
        inner: reqwest::Response,
        ctx: Arc<BodyContext>,
        timer: Timer,
        call: Answered,
    ) -> Response {
        let Answered {
            method,
            attempts,
            note,
            max_bytes,
            request_id,
            retry_after,
        } = call;
        // The `Retry-After` a 429 or 503 carried (saturated like every wait here), for the
        // error `error_for_status` makes of it.
        let retry_after = retry_after
            .filter(|_| crate::retry::asks_to_slow_down(inner.status()))
            .map(|w| w.min(transport::FAR_FUTURE));
        Response {
            max_bytes: max_bytes.unwrap_or(ctx.max_bytes),
            read: 0,
            streaming: false,
            failed: None,
            retry_after,
            request_id,
            inner,
            method,
            ctx,
            timer,
            attempts,
            note,
        }
    }

    /// The partner's request id for this answer (`Request-Id`, `X-Request-Id`,
    /// `X-Amzn-RequestId`, `CF-Ray`, or `log.request_id_headers`), or, with
    /// `log.send_request_id`, the id the call sent. Length-bounded, control characters escaped.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The final URL (after redirects, if the profile follows them). Its `Display` masks
    /// credentials and sensitive query parameters; [`RedactedUrl::expose`] gives the real one.
    pub fn url(&self) -> RedactedUrl<'_> {
        // The transport follows no redirect itself: its answer's URL is the last hop's.
        self.ctx.redactor.url(self.inner.url())
    }

    /// How many attempts the call took.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Turns a 4xx or 5xx status into an [`Error`] with [`Error::status`] set.
    ///
    /// # Errors
    ///
    /// [`Error::is_status`] for a 4xx or 5xx response.
    pub fn error_for_status(self) -> Result<Response> {
        let status = self.status();
        if status.is_client_error() || status.is_server_error() {
            let err = self.error(ErrorKind::Status, None).with_note(self.note);
            Err(match self.retry_after {
                // A 429 or 503 out of attempts still says when to come back.
                Some(wait) => err.with_retry_after(wait),
                None => err,
            })
        } else {
            Ok(self)
        }
    }

    /// Reads the whole body.
    ///
    /// # Errors
    ///
    /// [`Error::is_body_too_large`] past `max_response_bytes` (after decompression);
    /// [`Error::is_timeout`] when the attempt deadline or the read timeout passes;
    /// `ErrorKind::Body` when the connection fails mid-body.
    pub async fn bytes(mut self) -> Result<Bytes> {
        if self.has_no_body() {
            return Ok(Bytes::new());
        }
        let limit = transport::BodyLimit {
            max: self.max_bytes,
            key: "max_response_bytes",
        };
        match transport::read_body(&mut self.inner, limit, &mut self.timer, &self.ctx.timeouts)
            .await
        {
            Ok(body) => {
                if let Some(max) = self.ctx.log {
                    let content_type = self
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok());
                    telemetry::body("response", content_type, &body, &self.ctx.redactor, max);
                }
                Ok(body)
            }
            Err(err) => Err(self.with_context(err)),
        }
    }

    /// Reads the body as text. Invalid UTF-8 is replaced with U+FFFD.
    ///
    /// # Errors
    ///
    /// As [`Response::bytes`].
    pub async fn text(self) -> Result<String> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The call stops here because the server asked to wait `wait`, longer than the profile or
    /// the deadline allows.
    pub(crate) fn rate_limited(self, wait: std::time::Duration) -> Error {
        self.error(ErrorKind::RateLimited, None)
            .with_retry_after(wait)
            .with_note(self.note)
    }

    fn error(&self, kind: ErrorKind, detail: Option<String>) -> Error {
        let err = Error::new(kind);
        let err = match detail {
            Some(detail) => err.with_detail(detail),
            None => err,
        };
        self.with_context(err)
    }

    fn with_context(&self, err: Error) -> Error {
        err.with_request(&self.method, self.url().to_string())
            .with_status(self.status())
            .with_attempts(self.attempts)
            .with_request_id(self.request_id.as_deref())
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status())
            .field("url", &self.url())
            .field("headers", &self.ctx.redactor.headers(self.headers()))
            .finish_non_exhaustive()
    }
}
