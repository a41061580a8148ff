//! Request ids: the partner's id of each answer (for the support ticket at 3 a.m.), and,
//! optionally, one id of ours per call, sent on every attempt in `X-Request-Id`. Values from a
//! server are bounded and escaped before they reach a span, an error or a response.

use std::sync::{Mutex, PoisonError};

use http::{HeaderMap, HeaderName, HeaderValue};
use tracing::Span;

use crate::profile::sections::Log;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id kept, in characters.
const MAX_ID: usize = 120;

/// An id as it may be shown: printable ASCII, anything else escaped (a bidi override or a
/// line separator in a server's header cannot reorder or split a log line), bounded.
fn shown(value: &HeaderValue) -> Box<str> {
    let mut id = String::new();
    for c in String::from_utf8_lossy(value.as_bytes()).chars() {
        if id.len() >= MAX_ID {
            id.push('…');
            break;
        }
        if c.is_ascii_graphic() || c == ' ' {
            id.push(c);
        } else {
            id.extend(c.escape_default());
        }
    }
    id.into()
}

/// The ids of one call.
pub(crate) struct RequestIds<'a> {
    names: &'a [HeaderName],
    /// The id this call sends, if it sends one.
    sent: Option<Box<str>>,
    /// The partner's id of the last answer (behind a lock so that the call's error paths can
    /// read it while the loop updates it; never contended).
    last: Mutex<Option<Box<str>>>,
}

impl<'a> RequestIds<'a> {
    /// With `log.send_request_id`, puts one id in `headers` (the caller's own, if it set one)
    /// and on the call's span.
    pub(crate) fn start(log: &'a Log, headers: &mut HeaderMap, span: &Span) -> RequestIds<'a> {
        let mut sent = None;
        if log.send_request_id {
            let value = headers.entry(X_REQUEST_ID.clone()).or_insert_with(|| {
                HeaderValue::try_from(uuid::Uuid::new_v4().hyphenated().to_string())
                    .unwrap_or(HeaderValue::from_static("unset"))
            });
            let id = shown(value);
            span.record("outbound.request_id.sent", &*id);
            sent = Some(id);
        }
        RequestIds {
            names: &log.request_id_headers,
            sent,
            last: Mutex::new(None),
        }
    }

    /// Takes the partner's id from an answer, and records it on the call's span.
    pub(crate) fn saw(&self, headers: &HeaderMap, span: &Span) {
        // One pass over the answer's few headers, in the order of `names`' preference among
        // those present: cheaper than hashing every configured name.
        let mut best: Option<(usize, &HeaderValue)> = None;
        for (name, value) in headers {
            if let Some(rank) = self.names.iter().position(|n| n == name)
                && !value.is_empty()
                && best.is_none_or(|(b, _)| rank < b)
            {
                best = Some((rank, value));
            }
        }
        let Some((_, value)) = best else {
            return;
        };
        let id = shown(value);
        span.record("outbound.request_id", &*id);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(id);
    }

    /// The id to quote: the partner's last one, else the one this call sent.
    pub(crate) fn current(&self) -> Option<Box<str>> {
        self.last().or_else(|| self.sent.clone())
    }

    /// The partner's id of the last answer.
    pub(crate) fn last(&self) -> Option<Box<str>> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
