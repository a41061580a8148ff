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

/// A retry is coming: why, and after how long.
pub(crate) fn retry_scheduled(attempt: &crate::retry::Attempt<'_>, after: std::time::Duration) {
    tracing::debug!(
        attempt = attempt.number,
        outcome = %OutcomeField(&attempt.outcome),
        backoff_ms = after.as_millis() as u64,
        "retry scheduled"
    );
}

/// The call ends with this attempt; when it ended on a retryable outcome, say why it stopped.
pub(crate) fn retry_stopped(attempt: &crate::retry::Attempt<'_>, stop: crate::retry::StopReason) {
    if stop != crate::retry::StopReason::Final {
        tracing::debug!(
            attempt = attempt.number,
            outcome = %OutcomeField(&attempt.outcome),
            reason = ?stop,
            "retry refused"
        );
    }
}

struct OutcomeField<'a>(&'a crate::retry::Outcome);

impl std::fmt::Display for OutcomeField<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            crate::retry::Outcome::Response { status, .. } => {
                write!(f, "status {}", status.as_u16())
            }
            crate::retry::Outcome::Failed { kind, .. } => write!(f, "{kind:?}"),
        }
    }
}
