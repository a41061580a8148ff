//! [`RequestBuilder`]: collects a request and keeps the first mistake for [`send`] to return.
//!
//! [`send`]: RequestBuilder::send

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use url::Url;

use crate::body::Body;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::response::Response;

mod policy;
mod target;

pub(crate) use policy::CallPolicy;
pub(crate) use target::resolve_url;

/// A request being built. Nothing is sent until [`send`](RequestBuilder::send).
///
/// Setters never fail: the first invalid input (a header value with a line break, a body that
/// does not serialize) is kept and returned by `send`, before any I/O.
///
/// ```no_run
/// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
/// let response = client
///     .post("/v1/orders")
///     .header("x-request-source", "checkout")
///     .json(&serde_json::json!({ "sku": "A-1", "quantity": 2 }))
///     .idempotency_key("order-8812")
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a RequestBuilder does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    request: Result<PreparedRequest>,
}

/// A request that passed every local check.
#[derive(Clone)]
pub(crate) struct PreparedRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Body>,
    /// Overrides `timeouts.total` for this call.
    pub(crate) timeout: Option<Duration>,
    /// Per-call overrides of the profile's retry and body settings.
    pub(crate) policy: CallPolicy,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, url: Result<Url>) -> RequestBuilder {
        let request = url.map(|url| PreparedRequest {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            policy: CallPolicy::default(),
        });
        RequestBuilder { client, request }
    }

    pub(super) fn update(
        mut self,
        f: impl FnOnce(&mut PreparedRequest) -> Result<()>,
    ) -> RequestBuilder {
        if let Ok(request) = &mut self.request
            && let Err(e) = f(request)
        {
            let url = self.client.redacted(&request.url);
            self.request = Err(e.with_request(&request.method, url));
        }
        self
    }

    /// Adds a header (appending to earlier values of the same name).
    ///
    /// # Errors
    ///
    /// `send` returns [`Error::is_builder`] for an invalid name or a value with a line break or
    /// other control byte. The message names the header, never the value.
    pub fn header<K, V>(self, name: K, value: V) -> RequestBuilder
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        self.update(|request| {
            let name = name
                .try_into()
                .map_err(|_| Error::builder("invalid header name"))?;
            let value = value
                .try_into()
                .map_err(|_| Error::builder(format!("invalid value for header `{name}`")))?;
            request.headers.append(name, value);
            Ok(())
        })
    }

    /// Adds all of `headers`.
    pub fn headers(self, headers: HeaderMap) -> RequestBuilder {
        self.update(|request| {
            request.headers.extend(headers);
            Ok(())
        })
    }

    /// Appends `query`, serialized as `application/x-www-form-urlencoded`, to the URL.
    ///
    /// ```no_run
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// client.get("/v1/contacts").query(&[("page", "2"), ("per_page", "50")]).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn query<T: Serialize + ?Sized>(self, query: &T) -> RequestBuilder {
        self.update(|request| {
            let encoded = serde_urlencoded::to_string(query)
                .map_err(|_| Error::builder("query could not be serialized"))?;
            if !encoded.is_empty() {
                let joined = match request.url.query() {
                    Some(existing) if !existing.is_empty() => format!("{existing}&{encoded}"),
                    _ => encoded,
                };
                request.url.set_query(Some(&joined));
            }
            Ok(())
        })
    }

    /// Sets a JSON body and, unless already set, `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, json: &T) -> RequestBuilder {
        self.update(|request| {
            let body = serde_json::to_vec(json)
                .map_err(|_| Error::builder("body could not be serialized as JSON"))?;
            request.body = Some(Body::Bytes(body.into()));
            request
                .headers
                .entry(CONTENT_TYPE)
                .or_insert(HeaderValue::from_static("application/json"));
            Ok(())
        })
    }

    /// Sets the body. It is kept in memory, so it can be sent again on a redirect.
    pub fn body(self, body: impl Into<Bytes>) -> RequestBuilder {
        self.update(|request| {
            request.body = Some(Body::Bytes(body.into()));
            Ok(())
        })
    }

    /// Sets this call's total deadline, replacing `timeouts.total`: the time from `send` until
    /// the body is read, across every attempt and wait.
    ///
    /// # Errors
    ///
    /// `send` returns [`Error::is_builder`] for a zero duration.
    pub fn timeout(self, timeout: Duration) -> RequestBuilder {
        self.update(|request| {
            if timeout.is_zero() {
                return Err(Error::builder("timeout must be greater than 0"));
            }
            request.timeout = Some(timeout);
            Ok(())
        })
    }

    /// Sets the idempotency key, sent in the profile's `retry.idempotency_header`
    /// (`Idempotency-Key` by default).
    ///
    /// # Errors
    ///
    /// `send` returns [`Error::is_builder`] if the key is empty or not a valid header value.
    pub fn idempotency_key(self, key: impl AsRef<str>) -> RequestBuilder {
        let header = self.client.idempotency_header().clone();
        self.update(|request| {
            // An empty key is no key: sent, it would make a POST look replay-safe.
            if key.as_ref().trim().is_empty() {
                return Err(Error::builder("idempotency key must not be empty"));
            }
            let value = HeaderValue::from_str(key.as_ref())
                .map_err(|_| Error::builder("idempotency key is not a valid header value"))?;
            request.headers.insert(header, value);
            Ok(())
        })
    }

    /// Sends the request and waits for the response head.
    ///
    /// # Errors
    ///
    /// [`Error::is_builder`] for invalid input and [`Error::is_disallowed`] for a destination the
    /// profile does not allow (nothing is sent in either case); [`Error::is_connect`] and
    /// [`Error::is_timeout`] for transport failures; [`Error::is_redirect`] for a refused
    /// redirect.
    ///
    /// # Cancellation
    ///
    /// Dropping the returned future cancels the request; nothing is left running.
    pub fn send(self) -> impl Future<Output = Result<Response>> + Send + 'static {
        // An invalid request fails without building the call's state.
        match self.request {
            Ok(request) => Either::Left(self.client.execute(request)),
            Err(err) => Either::Right(std::future::ready(Err(err))),
        }
    }
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RequestBuilder");
        match &self.request {
            Ok(request) => {
                d.field("method", &request.method)
                    .field("url", &self.client.redacted(&request.url))
                    .field("headers", &self.client.redacted_headers(&request.headers));
            }
            Err(err) => {
                d.field("error", err);
            }
        }
        d.finish_non_exhaustive()
    }
}
