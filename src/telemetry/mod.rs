//! Spans, events and metrics: the one place that names them.
//!
//! - **Spans** follow the OpenTelemetry HTTP client conventions: one INFO span per logical call,
//!   named after its method, and a DEBUG event per attempt; see [`span`] for its fields and
//!   what they cost a subscriber.
//! - **Events** for the decisions a person needs to see: a retry scheduled or refused (and why),
//!   breaker state changes, pauses and waits for rate limits, token fetches and failures (never
//!   the token), isolation on and off.
//! - **Metrics** through the `metrics` facade, named after the OpenTelemetry conventions
//!   (durations in seconds) and labelled with low-cardinality values only: profile, origin host,
//!   method, status class, outcome, reason. Never a URL, a path or an id.
//!
//! Field values are formatted lazily (`%` display adapters), so with no subscriber, or with the
//! level disabled, a call pays for little more than a few atomic loads.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::error::Error;
use crate::redact::Redactor;
use crate::retry::{Attempt, Outcome, StopReason};

#[cfg(feature = "fleet")]
pub(crate) mod fleet;
mod labels;
mod span;
#[cfg(feature = "opentelemetry")]
pub(crate) mod trace_context;

use labels::method_label;
pub(crate) use labels::{Labels, metric};
pub(crate) use span::CallSpan;

/// Records how a call ended: span fields, one DEBUG event, and the call metrics.
pub(crate) fn call_finished(
    call: &CallSpan<'_>,
    labels: &Labels,
    method: &Method,
    outcome: Result<(StatusCode, u32), &Error>,
    elapsed: Duration,
) {
    let (status, attempts) = match outcome {
        Ok((status, attempts)) => (Some(status), attempts),
        Err(err) => (err.status(), err.attempts()),
    };
    let error_type: Option<&'static str> = match outcome {
        Ok((status, _)) if status.as_u16() >= 400 => Some(status_str(status)),
        Ok(_) => None,
        Err(err) => Some(err.kind().as_str()),
    };
    let span = call.span();
    if !span.is_disabled() {
        call.finish(status, attempts, error_type);
        // `parent:` rather than entering the span: entering costs a subscriber even when the
        // event is off.
        match outcome {
            Ok((status, _)) => tracing::debug!(
                parent: span,
                status = status.as_u16(),
                attempts,
                "call finished"
            ),
            Err(err) => tracing::debug!(parent: span, error = %err, attempts, "call failed"),
        }
    }
    let outcome_label = match outcome {
        Ok((status, _)) if status.as_u16() >= 400 => "http_error",
        Ok(_) => "ok",
        Err(err) => err.kind().as_str(),
    };
    let class = status.map_or("none", status_class);
    let (duration, count) = labels.call_handles((method_label(method), class, outcome_label));
    duration.record(elapsed.as_secs_f64());
    count.increment(1);
    labels.attempts().record(f64::from(attempts));
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn status_str(status: StatusCode) -> &'static str {
    // Low cardinality by construction: common codes as themselves, others by class.
    match status.as_u16() {
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        408 => "408",
        409 => "409",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => status_class(status),
    }
}

// ===== attempts and retries =====

/// Why an attempt was (or would have been) retried, for events and the `reason` label.
fn reason(outcome: &Outcome) -> &'static str {
    match *outcome {
        Outcome::Response { status, .. } => status_str(status),
        Outcome::Failed { kind, .. } => kind.as_str(),
    }
}

/// One attempt finished, `waited` after the previous one (its backoff or `Retry-After`).
pub(crate) fn attempt_finished(
    attempt: &Attempt<'_>,
    waited: Duration,
    elapsed: Duration,
    request_id: Option<&str>,
) {
    tracing::debug!(
        attempt = attempt.number,
        request_id,
        outcome = reason(&attempt.outcome),
        backoff_waited_ms = millis(waited),
        elapsed_ms = millis(elapsed),
        "attempt finished"
    );
}

/// A retry is coming: why, and after how long.
pub(crate) fn retry_scheduled(
    attempt: &Attempt<'_>,
    after: Duration,
    labels: &Labels,
    call: &CallSpan<'_>,
) {
    call.identify();
    let reason = reason(&attempt.outcome);
    tracing::info!(
        attempt = attempt.number,
        reason,
        backoff_ms = millis(after),
        "retry scheduled"
    );
    metrics::counter!(
        metric::RETRIES,
        "outbound.profile" => labels.profile.clone(),
        "server.address" => labels.host.clone(),
        "reason" => reason
    )
    .increment(1);
}

/// The call ends with this attempt. When its outcome was retryable, say why it was not retried.
pub(crate) fn retry_stopped(
    attempt: &Attempt<'_>,
    stop: StopReason,
    labels: &Labels,
    call: &CallSpan<'_>,
) {
    let why = match stop {
        StopReason::Final | StopReason::AttemptsExhausted => return,
        StopReason::NotReplaySafe => "not_replay_safe",
        StopReason::BudgetExhausted => "budget_exhausted",
        StopReason::RetryAfterTooLong { .. } => "retry_after_too_long",
        StopReason::DeadlinePassed { .. } => "deadline",
    };
    call.identify();
    tracing::info!(
        attempt = attempt.number,
        outcome = reason(&attempt.outcome),
        why,
        "retry refused"
    );
    metrics::counter!(
        metric::RETRIES_REFUSED,
        "outbound.profile" => labels.profile.clone(),
        "server.address" => labels.host.clone(),
        "reason" => why
    )
    .increment(1);
}

// ===== breaker, pacing, isolation =====

/// A circuit breaker changed state.
pub(crate) fn breaker_transition(
    origin: &Arc<str>,
    from: &'static str,
    to: &'static str,
    why: &'static str,
) {
    if to == "open" {
        tracing::warn!(origin = %origin, from, to, reason = why, "circuit breaker state changed");
    } else {
        tracing::info!(origin = %origin, from, to, reason = why, "circuit breaker state changed");
    }
    let value = match to {
        "closed" => 0.0,
        "half_open" => 1.0,
        _ => 2.0,
    };
    metrics::gauge!(metric::BREAKER_STATE, "server.address" => origin.clone()).set(value);
}

/// The server asked to slow down: every call to `origin` pauses (`reason`: `quota_exhausted`,
/// `unavailable` or `throttling`).
pub(crate) fn paused(origin: &Arc<str>, status: StatusCode, wait: Duration, reason: &'static str) {
    tracing::info!(
        origin = %origin,
        status = status.as_u16(),
        pause_ms = millis(wait),
        reason,
        "calls to origin paused"
    );
    metrics::counter!(metric::RATE_LIMIT_PAUSES, "server.address" => origin.clone(), "reason" => reason)
        .increment(1);
}

/// A lone 429: only the call that got it waits; the origin's other calls go on.
pub(crate) fn throttled_call(origin: &Arc<str>, wait: Duration) {
    tracing::debug!(
        origin = %origin,
        wait_ms = millis(wait),
        "a lone 429: only this call waits"
    );
    metrics::counter!(metric::RATE_LIMIT_CALL_ONLY, "server.address" => origin.clone())
        .increment(1);
}

/// A throttling answer that said nothing cut the learned rate of `origin` (`rate_limit.adaptive`).
pub(crate) fn adaptive_cut(origin: &Arc<str>, rate: f64) {
    tracing::debug!(
        origin = %origin,
        rate,
        "a 429 without a wait: the adaptive rate is cut"
    );
    metrics::gauge!(metric::RATE_LIMIT_ADAPTIVE, "server.address" => origin.clone()).set(rate);
}

/// 429s that say nothing formed a pattern: `origin` is paced at a learned rate from now on.
pub(crate) fn adaptive_engaged(origin: &Arc<str>, rate: f64) {
    tracing::info!(
        origin = %origin,
        rate,
        "429s without a wait form a pattern: calls are paced at a learned rate from now on"
    );
    metrics::gauge!(metric::RATE_LIMIT_ADAPTIVE, "server.address" => origin.clone()).set(rate);
}

/// A call waits for a rate limit (`cause`: `quota`, `adaptive` or `pause`).
pub(crate) fn rate_limit_wait(origin: &Arc<str>, cause: &'static str, wait: Duration) {
    tracing::debug!(origin = %origin, cause, wait_ms = millis(wait), "waiting for rate limit");
    metrics::histogram!(metric::RATE_LIMIT_WAIT, "server.address" => origin.clone(), "cause" => cause)
        .record(wait.as_secs_f64());
}

/// The kill switch was turned on or off.
pub(crate) fn isolation(profile: &str, isolated: bool) {
    if isolated {
        tracing::warn!(
            outbound.profile = profile,
            "client isolated: every call fails fast"
        );
    } else {
        tracing::warn!(
            outbound.profile = profile,
            "client restored: calls go out again"
        );
    }
}

// ===== spending ceiling =====

/// Calls left under the spending ceiling.
pub(crate) fn budget_left(profile: &str, left: u64) {
    metrics::gauge!(metric::BUDGET_LEFT, "outbound.profile" => profile.to_owned()).set(left as f64);
}

/// 80 % or all of the spending ceiling is used.
pub(crate) fn budget_warning(profile: &str, used: u64, max: u64, exhausted: bool) {
    if exhausted {
        tracing::warn!(
            outbound.profile = profile,
            used,
            max,
            "spending ceiling used up: calls fail until the period ends"
        );
    } else {
        tracing::warn!(
            outbound.profile = profile,
            used,
            max,
            "80 % of the spending ceiling used"
        );
    }
}

// ===== tokens =====

/// A token was fetched (never the token itself).
pub(crate) fn token_fetched(token_url: &str, lifetime: Duration, refresh: bool) {
    tracing::debug!(
        token_url,
        lifetime_s = lifetime.as_secs(),
        refresh,
        "access token fetched"
    );
    metrics::counter!(metric::TOKEN_REQUESTS, "result" => "ok").increment(1);
}

/// A token request failed.
pub(crate) fn token_failed(token_url: &str, cause: &str, retry_in: Duration) {
    tracing::warn!(
        token_url,
        cause,
        retry_in_ms = millis(retry_in),
        "access token request failed"
    );
    metrics::counter!(metric::TOKEN_REQUESTS, "result" => "error").increment(1);
}

// ===== bodies =====

/// Logs a request or response body at DEBUG, masked, if the profile opted in.
pub(crate) fn body(
    direction: &'static str,
    content_type: Option<&str>,
    body: &[u8],
    redactor: &Redactor,
    max: usize,
) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let shown = redactor.body(content_type, body, max);
        tracing::debug!(direction, bytes = body.len(), body = %shown, "body");
    }
}

/// `d` in whole milliseconds, saturating: a server can ask for a wait no `u64` of them holds.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A `Display` of `d` rounded to whole milliseconds, for messages.
pub(crate) fn shown(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(millis(d)))
}
