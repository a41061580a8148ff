//! Masking of secrets in URLs and headers: the one place that formats them.
//!
//! Every code path that shows a URL or a header map (errors, logs, `Debug`) goes through a
//! [`Redactor`]. It replaces (never truncates) the value of every sensitive header and query
//! parameter, the URL's userinfo and its fragment. The built-in lists below are always on; a
//! profile's `[redact]` section adds to them and cannot remove from them.

mod body;
mod query;

use std::collections::HashSet;
use std::fmt;

use http::{HeaderMap, HeaderName};
use url::Url;

/// What a masked value is replaced with.
pub(crate) const MASK: &str = "REDACTED";

/// Headers whose values are never shown.
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "x-client-secret",
    "private-token",
];

/// Query parameters whose values are never shown.
const SENSITIVE_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "api-key",
    "apikey",
    "key",
    "token",
    "auth",
    "client_secret",
    "password",
    "passwd",
    "secret",
    "sig",
    "signature",
    "code",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
];

/// Masks sensitive parts of URLs and headers. Cheap to share behind the client's `Arc`.
#[derive(Clone)]
pub(crate) struct Redactor {
    headers: HashSet<HeaderName>,
    query_params: HashSet<String>,
    /// Normalized (see [`body::normalize`]).
    json_fields: HashSet<String>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(&[], &[], &[])
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("headers", &self.headers.len())
            .field("query_params", &self.query_params.len())
            .finish()
    }
}

impl Redactor {
    /// The built-in lists plus the profile's extra header names and query parameter names.
    /// Names that are not valid header names cannot occur in a request and are skipped.
    pub(crate) fn new(
        extra_headers: &[String],
        extra_query_params: &[String],
        extra_json_fields: &[String],
    ) -> Self {
        let headers = SENSITIVE_HEADERS
            .iter()
            .copied()
            .chain(extra_headers.iter().map(String::as_str))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        let query_params = SENSITIVE_QUERY_PARAMS
            .iter()
            .copied()
            .chain(extra_query_params.iter().map(String::as_str))
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        let json_fields = body::SENSITIVE_JSON_FIELDS
            .iter()
            .copied()
            .chain(extra_json_fields.iter().map(String::as_str))
            .map(body::normalize)
            .collect();
        Redactor {
            headers,
            query_params,
            json_fields,
        }
    }

    /// A body for the debug log: JSON with sensitive fields masked, a form with sensitive
    /// parameters masked, anything else only described. At most `max` bytes are considered.
    pub(crate) fn body(&self, content_type: Option<&str>, bytes: &[u8], max: usize) -> String {
        let kind = content_type.unwrap_or("no content type");
        if bytes.len() > max {
            return format!("<{} bytes of {kind}, over log.max_body_bytes>", bytes.len());
        }
        let is_json = content_type.is_some_and(|t| t.contains("json"))
            || bytes.first().is_some_and(|b| matches!(b, b'{' | b'['));
        if is_json {
            return match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(mut value) => {
                    let sensitive = |name: &str| self.json_fields.contains(&body::normalize(name));
                    body::mask_json(&mut value, &sensitive);
                    value.to_string()
                }
                Err(_) => format!("<{} bytes of invalid JSON>", bytes.len()),
            };
        }
        if content_type.is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
            && let Ok(text) = std::str::from_utf8(bytes)
        {
            return self.query(text).to_string();
        }
        format!("<{} bytes of {kind}>", bytes.len())
    }

    /// Marks every header on the redaction list sensitive, so that no `Debug` (ours, reqwest's
    /// or hyper's) prints its value.
    pub(crate) fn mark_sensitive(&self, headers: &mut HeaderMap) {
        for (name, value) in headers.iter_mut() {
            if self.is_sensitive_header(name) {
                value.set_sensitive(true);
            }
        }
    }

    /// Whether the value of header `name` must never be shown nor follow a cross-origin redirect.
    pub(crate) fn is_sensitive_header(&self, name: &HeaderName) -> bool {
        self.headers.contains(name)
    }

    /// Whether query parameter `name` (decoded) is on the redaction list.
    pub(crate) fn is_sensitive_param(&self, name: &str) -> bool {
        self.query_params.contains(&name.to_ascii_lowercase())
    }

    /// A `Display` of `url` with its userinfo, sensitive query values and fragment masked.
    pub(crate) fn url<'a>(&'a self, url: &'a Url) -> RedactedUrl<'a> {
        RedactedUrl {
            url,
            redactor: self,
        }
    }

    /// A `Debug` of `headers` with sensitive values masked.
    pub(crate) fn headers<'a>(&'a self, headers: &'a HeaderMap) -> RedactedHeaders<'a> {
        RedactedHeaders {
            headers,
            redactor: self,
        }
    }
}

/// A URL that shows itself with every secret masked.
///
/// Returned by [`Response::url`](crate::Response::url). `Display` and `Debug` mask the userinfo,
/// the fragment and the value of every sensitive query parameter (the built-in list plus the
/// profile's `redact.query_params`), so it is safe to log.
///
/// ```
/// # async fn demo(response: outbound::Response) {
/// tracing::info!(url = %response.url(), "partner answered");
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct RedactedUrl<'a> {
    url: &'a Url,
    redactor: &'a Redactor,
}

impl<'a> RedactedUrl<'a> {
    /// The URL itself, secrets included. Do not log it.
    pub fn expose(&self) -> &'a Url {
        self.url
    }
}

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url;
        // Most URLs hide nothing: no user, no query, no fragment.
        if url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none()
        {
            return f.write_str(url.as_str());
        }
        write!(f, "{}://", url.scheme())?;
        if !url.username().is_empty() || url.password().is_some() {
            write!(f, "{MASK}@")?;
        }
        if let Some(host) = url.host_str() {
            f.write_str(host)?;
        }
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())?;
        if let Some(query) = url.query() {
            write!(f, "?{}", self.redactor.query(query))?;
        }
        if url.fragment().is_some() {
            write!(f, "#{MASK}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// At most this many characters of a server's text reach an error or a log line.
const MAX_SERVER_TEXT: usize = 120;

/// Text a server chose (an OAuth `error` code, its description, a `token_type`), made safe to
/// show: control characters escaped (a newline never starts a forged log line) and long text
/// cut (a 10 KB `error` does not make a 10 KB message).
pub(crate) fn printable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len().min(MAX_SERVER_TEXT + 8));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_SERVER_TEXT {
            shown.push('…');
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Headers whose value is a URL, which may be signed (`?X-Amz-Signature=…`).
fn is_url_header(name: &HeaderName) -> bool {
    matches!(
        *name,
        http::header::LOCATION | http::header::CONTENT_LOCATION
    )
}

/// A header map that shows itself with sensitive values masked.
pub(crate) struct RedactedHeaders<'a> {
    headers: &'a HeaderMap,
    redactor: &'a Redactor,
}

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.headers {
            if self.redactor.is_sensitive_header(name) || value.is_sensitive() {
                map.entry(name, &MASK);
            } else if is_url_header(name) {
                // Lossy, so a URL with a raw non-UTF-8 byte is masked too, not printed as bytes.
                let text = String::from_utf8_lossy(value.as_bytes());
                map.entry(
                    name,
                    &format_args!("{:?}", self.redactor.reference(&text).to_string()),
                );
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const CANARY: &str = "canary-7f3a9";

    fn show(url: &str) -> String {
        let url = Url::parse(url).expect("test URL parses");
        Redactor::new(&[], &["sig2".into()], &[])
            .url(&url)
            .to_string()
    }

    #[test]
    fn sensitive_query_values_are_replaced_and_others_kept() {
        assert_eq!(
            show(&format!(
                "https://api.example/v1?page=2&api_key={CANARY}&Token={CANARY}"
            )),
            "https://api.example/v1?page=2&api_key=REDACTED&Token=REDACTED"
        );
    }

    #[test]
    fn percent_encoded_param_names_are_still_caught() {
        let shown = show(&format!(
            "https://api.example/?api%5Fkey={CANARY}&sig2={CANARY}"
        ));
        assert!(!shown.contains(CANARY), "{shown}");
    }

    #[test]
    fn userinfo_and_fragment_are_masked() {
        let shown = show(&format!(
            "https://{CANARY}:{CANARY}@api.example:8443/p#access_token={CANARY}"
        ));
        assert_eq!(shown, "https://REDACTED@api.example:8443/p#REDACTED");
    }

    #[test]
    fn sensitive_headers_are_masked_in_debug() {
        let redactor = Redactor::new(&["X-Partner-Signature".into()], &[], &[]);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static(CANARY));
        headers.insert("x-partner-signature", HeaderValue::from_static(CANARY));
        headers.insert("accept", HeaderValue::from_static("application/json"));
        let shown = format!("{:?}", redactor.headers(&headers));
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(shown.contains("application/json"), "{shown}");
    }

    #[test]
    fn signed_urls_in_location_headers_are_masked_in_debug() {
        let redactor = Redactor::default();
        let mut headers = HeaderMap::new();
        let absolute = format!("https://cdn.example/f?X-Amz-Signature={CANARY}&part=1");
        headers.insert("location", HeaderValue::try_from(absolute).expect("value"));
        let relative = format!("//user:{CANARY}@cdn.example/files/1?sig={CANARY};v=2#{CANARY}");
        headers.insert(
            "content-location",
            HeaderValue::try_from(relative).expect("value"),
        );
        let shown = format!("{:?}", redactor.headers(&headers));
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(shown.contains("part=1") && shown.contains("v=2"), "{shown}");
        let mut raw = b"https://cdn.example/\xfc?X-Amz-Signature=".to_vec();
        raw.extend_from_slice(CANARY.as_bytes());
        headers.insert("location", HeaderValue::from_bytes(&raw).expect("value"));
        let shown = format!("{:?}", redactor.headers(&headers));
        assert!(!shown.contains(CANARY), "a non-UTF-8 Location: {shown}");
    }

    #[test]
    fn server_text_is_escaped_and_bounded() {
        let long = format!("bad\nline{}", "x".repeat(10_000));
        let shown = printable(&long);
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.starts_with("bad\\nline"), "{shown}");
        assert!(shown.chars().count() <= 130, "{}", shown.len());
    }
}

#[cfg(test)]
mod properties;
