//! W3C trace context on the wire (feature `opentelemetry`, `propagate_trace_context = true`):
//! each attempt carries a `traceparent` naming the call's span, so the partner's traces join
//! ours. Never `baggage` or `tracestate`: what a third party learns is one trace id and one span
//! id, no more.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The HTTP client attributes only an OpenTelemetry exporter uses, set on the call's
/// OpenTelemetry span directly so that no formatting layer pays for them (see
/// `telemetry::span`). Without an OpenTelemetry layer this does nothing.
pub(crate) fn http_attributes(span: &tracing::Span, method: &http::Method, url: &url::Url) {
    span.set_attribute("http.request.method", method.as_str().to_owned());
    if let Some(host) = url.host_str() {
        span.set_attribute("server.address", host.to_owned());
    }
    if let Some(port) = url.port_or_known_default() {
        span.set_attribute("server.port", i64::from(port));
    }
}

/// Sets `traceparent` from the current span (the call's), if it has a valid OpenTelemetry
/// context; without an OpenTelemetry layer there is none, and nothing is sent.
pub(crate) fn inject(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return;
    }
    let value = format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    );
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(TRACEPARENT.clone(), value);
    }
}
