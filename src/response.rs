//! A response whose body can only be read within the call's limits.
//!
//! The body is bounded by `max_response_bytes`, counted after decompression (so a gzip bomb is
//! stopped, not inflated), and refused before reading when `Content-Length` already says it is
//! too large. Reading is bounded by the same deadline as the attempt that produced the response.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::profile::sections::Timeouts;
use crate::redact::{RedactedUrl, Redactor};
use crate::telemetry;
use crate::transport::{self, Timer};

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
    url: Url,
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
    pub(crate) fn new(
        inner: reqwest::Response,
        method: Method,
        url: Url,
        ctx: Arc<BodyContext>,
        timer: Timer,
        attempts: u32,
        note: Option<&'static str>,
    ) -> Response {
        Response {
            max_bytes: ctx.max_bytes,
            read: 0,
            streaming: false,
            failed: None,
            retry_after: None,
            request_id: None,
            inner,
            method,
            url,
            ctx,
            timer,
            attempts,
            note,
        }
    }

    /// The `Retry-After` a 429 or 503 carried (saturated like every wait here), for the error
    /// `error_for_status` makes of it.
    pub(crate) fn with_retry_after(mut self, wait: Option<std::time::Duration>) -> Response {
        if crate::retry::asks_to_slow_down(self.status()) {
            self.retry_after = wait.map(|w| w.min(transport::FAR_FUTURE));
        }
        self
    }

    pub(crate) fn with_request_id(mut self, id: Option<&str>) -> Response {
        self.request_id = id.map(Into::into);
        self
    }

    /// The partner's request id for this answer (`Request-Id`, `X-Request-Id`,
    /// `X-Amzn-RequestId`, `CF-Ray`, or `log.request_id_headers`), or, with
    /// `log.send_request_id`, the id the call sent. Length-bounded, control characters escaped.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// This call's own `max_response_bytes`, if it set one.
    pub(crate) fn with_max_bytes(mut self, max: Option<u64>) -> Response {
        if let Some(max) = max {
            self.max_bytes = max;
        }
        self
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
        self.ctx.redactor.url(&self.url)
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

    /// Reads the next chunk of the body, `None` at its end: for bodies too large to hold in
    /// memory. Every bound of [`bytes`](Response::bytes) holds across the chunks:
    /// `max_response_bytes` (or the call's own limit) counted after decompression, the read
    /// timeout between chunks, and the call's deadline.
    ///
    /// ```no_run
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// // Reading is bounded by the attempt's limit (`timeouts.attempt`): a long download needs a
    /// // profile whose attempt and total limits allow it.
    /// let mut response = client
    ///     .get("/v1/exports/2024.csv")
    ///     .max_response_bytes(8 << 30)
    ///     .send()
    ///     .await?
    ///     .error_for_status()?;
    /// let mut rows = 0;
    /// while let Some(chunk) = response.chunk().await? {
    ///     rows += chunk.iter().filter(|b| **b == b'\n').count();
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Response::bytes`], when the chunk that crosses a bound is read.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.streaming {
            self.streaming = true;
            if self.has_no_body() {
                return Ok(None);
            }
            if let Some(len) = self.inner.content_length()
                && len > self.max_bytes
            {
                let detail = format!(
                    "Content-Length of {len} bytes exceeds max_response_bytes ({})",
                    self.max_bytes
                );
                return Err(self.error(ErrorKind::BodyTooLarge, Some(detail)));
            }
            self.timer.resume();
        }
        if let Some(failed) = &self.failed {
            let (kind, detail) = &**failed;
            return Err(self.error(*kind, Some(detail.clone())));
        }
        let result =
            match transport::next_chunk(&mut self.inner, &mut self.timer, &self.ctx.timeouts).await
            {
                Ok(Some(chunk)) => {
                    self.read = self.read.saturating_add(chunk.len() as u64);
                    if self.read > self.max_bytes {
                        Err(self.too_large())
                    } else {
                        Ok(Some(chunk))
                    }
                }
                Ok(None) => Ok(None),
                Err(err) => Err(self.with_context(err)),
            };
        if let Err(err) = &result {
            let detail = err.detail().unwrap_or("the body failed").to_owned();
            self.failed = Some(Box::new((err.kind(), detail)));
        }
        result
    }

    /// The body as a stream of chunks, with the bounds of [`chunk`](Response::chunk); the
    /// stream ends after the first error.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    ///
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// let mut body = client.get("/v1/exports/7").send().await?.bytes_stream();
    /// while let Some(chunk) = body.next().await {
    ///     let chunk = chunk?;
    ///     // write `chunk` somewhere
    /// }
    /// # Ok(()) }
    /// ```
    pub fn bytes_stream(self) -> impl futures_util::Stream<Item = Result<Bytes>> + Send + Unpin {
        Box::pin(futures_util::stream::unfold(
            Some(self),
            |state| async move {
                let mut response = state?;
                match response.chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                    Ok(None) => None,
                    Err(err) => Some((Err(err), None)),
                }
            },
        ))
    }

    /// A response to HEAD, a 204, a 304 or a 1xx has no body, whatever `Content-Length` says
    /// (over HTTP/2 a HEAD answer keeps the length of the body it did not send).
    fn has_no_body(&self) -> bool {
        let status = self.status();
        self.method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status.is_informational()
    }

    fn too_large(&self) -> Error {
        let detail = format!(
            "body exceeds max_response_bytes ({}) after decompression",
            self.max_bytes
        );
        self.error(ErrorKind::BodyTooLarge, Some(detail))
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

    /// Reads the body and deserializes it from JSON.
    ///
    /// # Errors
    ///
    /// As [`Response::bytes`], and [`Error::is_decode`] when the body is not the expected JSON.
    /// The message says where the document went wrong (line and column) and never quotes the
    /// body, which may hold personal data or tokens.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T> {
        let method = self.method.clone();
        let url = self.ctx.redactor.url(&self.url).to_string();
        let status = self.status();
        let attempts = self.attempts;
        let request_id = self.request_id.clone();
        let decode_error = |detail: String| {
            Error::new(ErrorKind::Decode)
                .with_detail(detail)
                .with_request(&method, url.clone())
                .with_status(status)
                .with_attempts(attempts)
                .with_request_id(request_id.as_deref())
        };
        // An HTML error page behind a 200 is named as such, before any parsing.
        if let Some(content_type) = self.headers().get(http::header::CONTENT_TYPE)
            && !is_json(content_type.as_bytes())
        {
            let essence = String::from_utf8_lossy(content_type.as_bytes());
            let essence = essence.split(';').next().unwrap_or("").trim();
            return Err(decode_error(format!(
                "expected JSON, got {}",
                crate::redact::printable(&essence.to_ascii_lowercase())
            )));
        }
        let bytes = self.bytes().await?;
        // The path to a field that broke costs something to track: a body is parsed plainly,
        // and again with tracking only when it failed.
        if let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(value);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value: std::result::Result<T, _> = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| (shown_path(e.path()), e.into_inner()))
            .and_then(|value| {
                let end = deserializer.end();
                end.map(|()| value).map_err(|e| (String::new(), e))
            });
        value.map_err(|(path, e)| {
            let what = match e.classify() {
                serde_json::error::Category::Io => "could not be read",
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Data => "does not match the expected type",
                serde_json::error::Category::Eof => "ends before the JSON document does",
            };
            // The path names fields and indexes only; serde's own message may quote a value.
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" at {path}")
            };
            decode_error(format!(
                "body {what}{at} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
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

/// Whether a `Content-Type` is JSON (`application/json`, `text/json`, `…+json`, with any
/// parameters, any case). Compared in place: this runs on every `json()`.
fn is_json(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.is_empty()
        || essence.eq_ignore_ascii_case(b"application/json")
        || essence.eq_ignore_ascii_case(b"text/json")
        || essence.len() > 5 && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json")
}

/// A path into a JSON document (`items[3].price`) that names struct fields and indexes only:
/// a map key can be data (an email address, a token used as a key), so one that does not look
/// like a field name is shown as `…`.
fn shown_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut shown = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => shown.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                let field_like = key.len() <= 40
                    && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                shown.push_str(if field_like { key } else { "…" });
            }
            Segment::Unknown => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                shown.push('?');
            }
        }
    }
    shown
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
