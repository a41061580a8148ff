//! The span of one logical call, and what it costs a subscriber.
//!
//! A formatting subscriber (the JSON one, for instance) serializes a span's fields when the span
//! opens, and parses and re-serializes all of them on every later record, although a successful
//! call prints no line at INFO. So the span opens with the one field an OpenTelemetry layer needs
//! before its span starts (`otel.kind`), named after the method as the HTTP conventions name
//! client spans ("HTTP", with a `method` field, for a method they do not list). The rest goes in
//! one record: at the end of the call (or when a cancelled call is dropped), or earlier, before
//! a retry's line (so that line shows which call it is about), or at once when DEBUG is on. The attributes only an
//! OpenTelemetry exporter uses (`http.request.method`, `server.address`, `server.port`) are set
//! on its span directly (feature `opentelemetry`), where no formatting layer pays for them.
//! Fields are found by position: [`check_positions`] (a test) holds every arm to the order.

use std::sync::atomic::{AtomicBool, Ordering};

use http::{Method, StatusCode};
use tracing::Span;
use tracing::field::{Field, Value};
use url::Url;

use crate::redact::Redactor;
use crate::request::CallPolicy;

/// A call dropped before it ended (its caller timed out or was cancelled) still says which call
/// it was, and that it did not finish.
impl Drop for CallSpan<'_> {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Relaxed) {
            self.record(None, 0, Some("cancelled"));
        }
    }
}

/// The fields of every call span, in the order of [`CallSpan::new`]'s macro.
const URL_FULL: usize = 1;
const PROFILE: usize = 2;
const STATUS: usize = 3;
const RESEND_COUNT: usize = 4;
const ATTEMPTS: usize = 5;
const MAX_ATTEMPTS: usize = 6;
const IDEMPOTENT: usize = 7;
const ERROR_TYPE: usize = 10;

/// One call's span, and the identity it records once.
pub(crate) struct CallSpan<'a> {
    span: Span,
    /// `url.full` (redacted) and the profile; `None` when no subscriber wants the span.
    identity: Option<(String, &'a str)>,
    max_attempts: Option<u32>,
    idempotent: bool,
    identified: AtomicBool,
    finished: AtomicBool,
}

impl<'a> CallSpan<'a> {
    pub(crate) fn new(
        profile: &'a str,
        method: &Method,
        url: &Url,
        redactor: &Redactor,
        policy: &CallPolicy,
    ) -> CallSpan<'a> {
        macro_rules! span {
            ($name:literal $(, $field:ident = $value:expr)?) => {
                tracing::info_span!(
                    $name,
                    otel.kind = "client",
                    url.full = tracing::field::Empty,
                    outbound.profile = tracing::field::Empty,
                    http.response.status_code = tracing::field::Empty,
                    http.request.resend_count = tracing::field::Empty,
                    outbound.attempts = tracing::field::Empty,
                    outbound.max_attempts = tracing::field::Empty,
                    outbound.idempotent = tracing::field::Empty,
                    outbound.request_id = tracing::field::Empty,
                    outbound.request_id.sent = tracing::field::Empty,
                    error.type = tracing::field::Empty,
                    $($field = $value,)?
                )
            };
        }
        let span = match *method {
            Method::GET => span!("GET"),
            Method::POST => span!("POST"),
            Method::PUT => span!("PUT"),
            Method::DELETE => span!("DELETE"),
            Method::PATCH => span!("PATCH"),
            Method::HEAD => span!("HEAD"),
            Method::OPTIONS => span!("OPTIONS"),
            _ => span!("HTTP", method = method.as_str()),
        };
        let identity = (!span.is_disabled()).then(|| {
            let full = redactor.url(url).to_string();
            #[cfg(feature = "opentelemetry")]
            super::trace_context::http_attributes(&span, method, url);
            let profile = if profile.is_empty() {
                "default"
            } else {
                profile
            };
            (full, profile)
        });
        let call = CallSpan {
            span,
            identity,
            max_attempts: policy.max_attempts,
            idempotent: policy.idempotent,
            identified: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        };
        // At DEBUG every attempt logs a line: they all say which call they are about.
        if tracing::enabled!(tracing::Level::DEBUG) {
            call.identify();
        }
        call
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records which call this is, unless done already: before the call logs a line of its own.
    pub(crate) fn identify(&self) {
        self.record(None, 1, None);
    }

    /// Records how the call ended (with its identity, if not recorded yet), in one record. The
    /// common case (one attempt, no error, identity not yet recorded) adds four fields.
    pub(crate) fn finish(&self, status: Option<StatusCode>, attempts: u32, error: Option<&str>) {
        self.finished.store(true, Ordering::Relaxed);
        self.record(status.map(|s| s.as_u16()), attempts, error);
    }

    fn record(&self, status: Option<u16>, attempts: u32, error: Option<&str>) {
        let Some((url, profile)) = &self.identity else {
            return;
        };
        let Some(fields) = self.span.metadata().map(|m| m.fields()) else {
            return;
        };
        let identify = !self.identified.swap(true, Ordering::Relaxed);
        if !identify && status.is_none() && error.is_none() {
            return;
        }
        let retried = (attempts > 1).then(|| (attempts, attempts - 1));
        let (url, profile) = (url.as_str(), *profile);
        let idempotent = self.idempotent.then_some(true);
        let values: [(usize, Option<&dyn Value>); 8] = [
            (URL_FULL, identify.then_some(&url as &dyn Value)),
            (PROFILE, identify.then_some(&profile as &dyn Value)),
            (
                MAX_ATTEMPTS,
                self.max_attempts
                    .as_ref()
                    .filter(|_| identify)
                    .map(|m| m as &dyn Value),
            ),
            (
                IDEMPOTENT,
                idempotent
                    .as_ref()
                    .filter(|_| identify)
                    .map(|i| i as &dyn Value),
            ),
            (STATUS, status.as_ref().map(|s| s as &dyn Value)),
            (RESEND_COUNT, retried.as_ref().map(|(_, r)| r as &dyn Value)),
            (ATTEMPTS, retried.as_ref().map(|(a, _)| a as &dyn Value)),
            (ERROR_TYPE, error.as_ref().map(|e| e as &dyn Value)),
        ];
        // Fields by position, not by name: all call spans share the order of their first
        // fields, and a lookup by name compares strings.
        let [
            Some(a),
            Some(b),
            Some(c),
            Some(d),
            Some(e),
            Some(f),
            Some(g),
            Some(h),
        ] = values.map(|(i, _)| fields.iter().nth(i))
        else {
            return;
        };
        let at = [a, b, c, d, e, f, g, h];
        let set: [(&Field, Option<&dyn Value>); 8] = std::array::from_fn(|i| (&at[i], values[i].1));
        self.span.record_all(&fields.value_set(&set));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every arm of the macro keeps the positions the constants name.
    #[test]
    fn check_positions() {
        let subscriber = tracing_subscriber_stub();
        tracing::subscriber::with_default(subscriber, || {
            let url = Url::parse("https://a.example/x").expect("url");
            for method in [
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PURGE",
            ] {
                let method = Method::from_bytes(method.as_bytes()).expect("method");
                let call = CallSpan::new(
                    "p",
                    &method,
                    &url,
                    &Redactor::default(),
                    &CallPolicy::default(),
                );
                let fields = call.span().metadata().expect("enabled").fields();
                let name = |i: usize| fields.iter().nth(i).map(|f| f.name());
                assert_eq!(name(URL_FULL), Some("url.full"));
                assert_eq!(name(PROFILE), Some("outbound.profile"));
                assert_eq!(name(STATUS), Some("http.response.status_code"));
                assert_eq!(name(RESEND_COUNT), Some("http.request.resend_count"));
                assert_eq!(name(ATTEMPTS), Some("outbound.attempts"));
                assert_eq!(name(MAX_ATTEMPTS), Some("outbound.max_attempts"));
                assert_eq!(name(IDEMPOTENT), Some("outbound.idempotent"));
                assert_eq!(name(ERROR_TYPE), Some("error.type"));
                call.finish(Some(StatusCode::OK), 1, None);
            }
        });
    }

    /// A subscriber that enables everything and keeps nothing.
    fn tracing_subscriber_stub() -> impl tracing::Subscriber {
        struct All;
        impl tracing::Subscriber for All {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, _: &tracing::Event<'_>) {}
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        All
    }
}
