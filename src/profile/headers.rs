//! `[profile.headers]`: headers every call of the profile carries (an API version pin,
//! `Accept`), unless the call sets its own. Never credentials: those come only from `[auth]`,
//! where they are scoped, redacted and stripped on redirects.

use std::collections::BTreeMap;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::sections::{Auth, Settings};
use super::validate::ConfigError;

/// Names no default header may have: credentials and cookies.
const CREDENTIALS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    HeaderName::from_static("x-api-key"),
];

/// Names that belong to one call or one connection, never to every call: a fixed idempotency
/// key would make every payment look like a replay of the first.
const PER_CALL: [HeaderName; 6] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("traceparent"),
];

/// Parses and checks `headers` of `profile`. The error names the header, never its value.
pub(crate) fn check(
    profile: &str,
    headers: &BTreeMap<String, String>,
    s: &Settings,
) -> Result<HeaderMap, ConfigError> {
    let credential = match &s.auth {
        Some(Auth::ApiKey {
            header: Some(name), ..
        }) => Some(name.clone()),
        _ => None,
    };
    // What the redaction list masks is a secret; it does not go on every call either.
    let redactor = crate::redact::Redactor::new(&s.redact.headers, &[], &[]);
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let key = format!("headers.{name}");
        let err = |problem: &str| ConfigError::new(profile, key.as_str(), problem);
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| err("is not a valid header name"))?;
        if CREDENTIALS.contains(&parsed)
            || credential.as_ref() == Some(&parsed)
            || redactor.is_sensitive_header(&parsed)
        {
            return Err(err(
                "credentials and cookies cannot be default headers; use [auth], which scopes \
                 and redacts them",
            ));
        }
        if PER_CALL.contains(&parsed) || parsed == s.retry.idempotency_header {
            return Err(err(
                "belongs to one call, not every call (an idempotency key set here would make \
                 every request a replay of the first)",
            ));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| err("must be printable text without line breaks"))?;
        map.insert(parsed, value);
    }
    Ok(map)
}

/// The `User-Agent` that names the integration: `outbound/<version> (<profile>)`.
pub(crate) fn user_agent(profile: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let named: String = profile
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')'))
        .take(64)
        .collect();
    if named.is_empty() {
        format!("outbound/{version}")
    } else {
        format!("outbound/{version} ({named})")
    }
}
