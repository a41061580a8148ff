//! [`RequestBuilder`]: collects a request and keeps the first mistake for [`send`] to return.
//!
//! [`send`]: RequestBuilder::send

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use url::Url;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::response::Response;

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
    pub(crate) body: Option<Bytes>,
    /// Overrides `timeouts.total` for this call.
    pub(crate) timeout: Option<Duration>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, url: Result<Url>) -> RequestBuilder {
        let request = url.map(|url| PreparedRequest {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
        });
        RequestBuilder { client, request }
    }

    fn update(mut self, f: impl FnOnce(&mut PreparedRequest) -> Result<()>) -> RequestBuilder {
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
            request.body = Some(body.into());
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
            request.body = Some(body.into());
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
    pub async fn send(self) -> Result<Response> {
        self.client.execute(self.request?).await
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

/// Resolves what the caller passed to `get`/`post`/…: an absolute URL as is, anything else
/// relative to `base_url`, whose path is kept as a prefix (`https://api.example/v2` + `/users`
/// is `https://api.example/v2/users`). A scheme-relative `//host/…` stays on the base host.
pub(crate) fn resolve_url(base: &Url, input: &str) -> Result<Url> {
    // The common case, a plain absolute path, without parsing the base URL again.
    if let Some(rest) = input.strip_prefix('/')
        && !rest.starts_with('/')
        && !input.contains(['#', '\\'])
    {
        let (path, query) = input
            .split_once('?')
            .map_or((input, None), |(p, q)| (p, Some(q)));
        let dot_segment = path
            .split('/')
            .any(|s| s == "." || s == ".." || s.eq_ignore_ascii_case("%2e"));
        if !dot_segment {
            let mut url = base.clone();
            match base.path().trim_end_matches('/') {
                "" => url.set_path(path),
                prefix => url.set_path(&format!("{prefix}{path}")),
            }
            // The base has no query (the builder refuses one).
            if query.is_some() {
                url.set_query(query);
            }
            return confine(base, url);
        }
    }
    match Url::parse(input) {
        Ok(url) => Ok(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let mut dir = base.clone();
            if !dir.path().ends_with('/') {
                let path = format!("{}/", dir.path());
                dir.set_path(&path);
            }
            let url = dir
                .join(input.trim_start_matches('/'))
                .map_err(|e| Error::builder(format!("invalid URL ({e})")))?;
            confine(base, url)
        }
        Err(e) => Err(Error::builder(format!("invalid URL ({e})"))),
    }
}

/// A relative path stays under `base_url`'s path: `../`, `%2e%2e/` and `/../` cannot climb out
/// of `https://api.example/v2` to reach another API on the same host with our credentials. Dot
/// segments hidden behind an encoded slash (`..%2f`) are refused too, since some servers decode
/// the slash before they resolve the dots.
fn confine(base: &Url, url: Url) -> Result<Url> {
    // A relative input that the URL parser still reads as scheme-relative (`\t//host/…`,
    // `/\\/host/…`) would reach another host or port: same origin, or refused.
    let same_origin = crate::gate::same_origin(&url, base);
    let prefix = base.path().trim_end_matches('/');
    let path = url.path();
    let inside = path
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    let decoded = path
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace("%2f", "/")
        .replace("%5c", "/")
        .replace("%3b", ";");
    // `..;` is `..` to servers that drop path parameters (Tomcat, Jetty, Spring).
    let hidden_dots = decoded
        .split(['/', '\\'])
        .any(|segment| segment.split(';').next() == Some(".."));
    if same_origin && inside && !hidden_dots {
        Ok(url)
    } else {
        Err(Error::builder(
            "the path climbs out of base_url's path (dot segments); use an absolute URL \
             to call another path on purpose",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(base: &str, input: &str) -> String {
        resolve_url(&Url::parse(base).expect("base"), input)
            .expect("resolves")
            .to_string()
    }

    #[test]
    fn relative_paths_keep_the_base_path_prefix() {
        assert_eq!(
            resolve("https://a.example/v2", "/users/1"),
            "https://a.example/v2/users/1"
        );
        assert_eq!(
            resolve("https://a.example/v2/", "users?x=1"),
            "https://a.example/v2/users?x=1"
        );
        assert_eq!(
            resolve("https://a.example", "/users"),
            "https://a.example/users"
        );
    }

    #[test]
    fn the_fast_path_agrees_with_joining() {
        for input in ["/users/1", "/a b/ü?q=1 2&x", "/v1/../admin", "/./x", "/x?"] {
            let base = Url::parse("https://a.example/v2").expect("base");
            let fast = resolve_url(&base, input).expect("fast");
            let mut dir = base.clone();
            dir.set_path("/v2/");
            let joined = dir.join(input.trim_start_matches('/')).expect("join");
            assert_eq!(fast, joined, "{input}");
        }
    }

    #[test]
    fn relative_paths_cannot_climb_out_of_the_base_path() {
        let base = Url::parse("https://a.example/v2").expect("base");
        for input in [
            "../admin",
            "/../admin",
            "/%2e%2e/admin",
            "%2E%2E/admin",
            "/.%2e/admin",
            "/users/../../admin",
            "/..%2fadmin",
            "/users/..%2F..%2Fadmin",
            "/..%5cadmin",
            "/users/..;/..;/admin",
            "/users/%2e%2e;/admin",
            "\t//files.example/v2/x",
            " //files.example/v2/x",
            "/\\/files.example/v2/x",
            "\t//a.example:9999/v2/x",
        ] {
            let err = resolve_url(&base, input).expect_err(input);
            assert!(err.is_builder(), "{input}: {err}");
            assert!(err.to_string().contains("base_url's path"), "{err}");
        }
        // Dot segments that stay inside are fine.
        assert_eq!(
            resolve("https://a.example/v2", "/users/../orders"),
            "https://a.example/v2/orders"
        );
        assert_eq!(
            resolve("https://a.example/v2", "/"),
            "https://a.example/v2/"
        );
    }

    #[test]
    fn scheme_relative_input_cannot_leave_the_base_host() {
        assert_eq!(
            resolve("https://a.example", "//evil.example/x"),
            "https://a.example/evil.example/x"
        );
    }

    #[test]
    fn absolute_urls_are_kept_for_the_gate_to_judge() {
        assert_eq!(
            resolve("https://a.example", "https://b.example/x"),
            "https://b.example/x"
        );
    }
}
