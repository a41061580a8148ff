//! Span and event helpers. Every field that may hold a URL is recorded through the redactor.

use http::Method;
use tracing::Span;
use url::Url;

use crate::redact::Redactor;

/// The span of one logical call, named after the OpenTelemetry HTTP client convention.
pub(crate) fn call_span(profile: &str, method: &Method, url: &Url, redactor: &Redactor) -> Span {
    tracing::debug_span!(
        "http.client",
        outbound.profile = profile,
        http.request.method = %method,
        server.address = url.host_str().unwrap_or_default(),
        url.full = %redactor.url(url),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// Records how the call ended on its span and in one DEBUG event inside it.
pub(crate) fn record_outcome(span: &Span, outcome: Result<http::StatusCode, &crate::Error>) {
    let _entered = span.enter();
    match outcome {
        Ok(status) => {
            span.record("http.response.status_code", status.as_u16());
            tracing::debug!(status = status.as_u16(), "response received");
        }
        Err(err) => {
            span.record("error.type", tracing::field::debug(err.kind()));
            tracing::debug!(error = %err, "call failed");
        }
    }
}
