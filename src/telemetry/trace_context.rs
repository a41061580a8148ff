//! W3C trace context on the wire (feature `opentelemetry`, `propagate_trace_context = true`):
//! each attempt carries a `traceparent` naming the call's span, so the partner's traces join
//! ours. Never `baggage` or `tracestate`: what a third party learns is one trace id and one span
//! id, no more.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

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
