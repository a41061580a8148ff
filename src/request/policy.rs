//! Per-call policy: what one call may do differently from its profile (attempts, replay safety,
//! the body limit), and bodies that need more than bytes (forms, uploads, streams).

use http::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;

use bytes::Bytes;
use futures_util::Stream;

use super::RequestBuilder;
use crate::body::Body;
use crate::error::Error;
use crate::multipart::Form;

/// Per-call overrides, all `None`/`false` unless the caller set them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CallPolicy {
    /// Replaces `retry.max_attempts`.
    pub(crate) max_attempts: Option<u32>,
    /// The caller vouches that this request is safe to send again.
    pub(crate) idempotent: bool,
    /// Replaces `max_response_bytes`.
    pub(crate) max_response_bytes: Option<u64>,
}

/// `retry.max_attempts`' bounds, for a call as for a profile.
const MAX_ATTEMPTS: u32 = 10;

impl RequestBuilder {
    /// Sets an `application/x-www-form-urlencoded` body (as Stripe-style APIs take) and, unless
    /// already set, its `Content-Type`. The body log masks it like a query string.
    ///
    /// ```no_run
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// client
    ///     .post("/v1/charges")
    ///     .form(&[("amount", "2000"), ("currency", "eur")])
    ///     .idempotency_key("charge-8812")
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `send` returns [`Error::is_builder`] if `form` cannot be serialized as a form (a nested
    /// map, for instance).
    pub fn form<T: Serialize + ?Sized>(self, form: &T) -> RequestBuilder {
        self.update(|request| {
            let body = serde_urlencoded::to_string(form)
                .map_err(|_| Error::builder("body could not be serialized as a form"))?;
            request.body = Some(Body::Bytes(body.into()));
            request
                .headers
                .entry(CONTENT_TYPE)
                .or_insert(HeaderValue::from_static(
                    "application/x-www-form-urlencoded",
                ));
            Ok(())
        })
    }

    /// Sets a `multipart/form-data` body (file uploads) and its `Content-Type`. The form is
    /// rebuilt for every attempt and its files read anew, so it is retried like any body: see
    /// [`multipart`](crate::multipart).
    pub fn multipart(self, form: Form) -> RequestBuilder {
        self.update(|request| {
            let content_type = HeaderValue::try_from(form.content_type())
                .map_err(|_| Error::builder("invalid multipart boundary"))?;
            request.headers.insert(CONTENT_TYPE, content_type);
            request.body = Some(Body::Multipart(form.into()));
            Ok(())
        })
    }

    /// Sets a body that is streamed, never held in memory, and therefore sent once: the call is
    /// retried only if no byte of it was taken yet (a refused connection, say), whatever the
    /// method or idempotency key; a redirect that needs the body again is refused. The attempt
    /// and total deadlines bound the upload.
    ///
    /// ```no_run
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// let chunks = futures_util::stream::iter(
    ///     ["id,amount\n", "1,20.00\n"].map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c))),
    /// );
    /// client.put("/v1/imports/7").body_stream(chunks).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn body_stream<S, E>(self, stream: S) -> RequestBuilder
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.update(|request| {
            request.body = Some(Body::stream(stream));
            Ok(())
        })
    }

    /// Replaces `retry.max_attempts` for this call: `1` sends it once, whatever the answer (a
    /// report that costs money, a GET with a side effect).
    ///
    /// ```no_run
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// client.get("/v1/reports/monthly").max_attempts(1).send().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `send` returns [`Error::is_builder`] unless `attempts` is between 1 and 10.
    pub fn max_attempts(self, attempts: u32) -> RequestBuilder {
        self.update(|request| {
            if !(1..=MAX_ATTEMPTS).contains(&attempts) {
                return Err(Error::builder(format!(
                    "max_attempts must be between 1 and {MAX_ATTEMPTS}"
                )));
            }
            request.policy.max_attempts = Some(attempts);
            Ok(())
        })
    }

    /// Vouches that sending this request again cannot repeat a side effect (a search by POST, a
    /// PATCH that sets absolute values), so it is retried like a GET. Without it, a POST or PATCH
    /// with no idempotency key is sent again only when the failure proves it never left.
    ///
    /// ```no_run
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// client
    ///     .post("/v1/search")
    ///     .json(&serde_json::json!({ "query": "status:open" }))
    ///     .idempotent()
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn idempotent(self) -> RequestBuilder {
        self.update(|request| {
            request.policy.idempotent = true;
            Ok(())
        })
    }

    /// Replaces `max_response_bytes` for this call (counted after decompression), to allow one
    /// large export or to hold one endpoint to less.
    ///
    /// # Errors
    ///
    /// `send` returns [`Error::is_builder`] for 0.
    pub fn max_response_bytes(self, max: u64) -> RequestBuilder {
        self.update(|request| {
            if max == 0 {
                return Err(Error::builder("max_response_bytes must be greater than 0"));
            }
            request.policy.max_response_bytes = Some(max);
            Ok(())
        })
    }
}
