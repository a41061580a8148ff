//! Step 8: retries that can never cause harm.
//!
//! A call is sent again only if the outcome is retryable (a connect error, a timeout, a reset,
//! or a status in `retry.retry_on_status`), the request is replay-safe ([`replay`]), attempts are
//! left, the wait (backoff with full jitter, or the server's `Retry-After` if longer) ends before
//! the total deadline, and the origin's [`budget`] allows it. Per-call state (the attempt
//! number, the idempotency key, the deadline) lives in `Client::call`; per-origin state (the
//! budget) is shared by the clones of a client.

mod backoff;
mod budget;
mod policy;
mod replay;
mod retry_after;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

pub(crate) use backoff::Backoff;
pub(crate) use budget::RetryBudget;
pub(crate) use policy::{Attempt, Decision, Outcome, RetryPolicy, StopReason, asks_to_slow_down};
pub(crate) use replay::Delivery;
pub(crate) use retry_after::parse as parse_retry_after;

/// Makes sure a call that needs an idempotency key has one, the same on every attempt: the
/// caller's, or (with `retry.auto_idempotency_key`) a new UUID v4 for a non-idempotent method.
/// Returns whether the request carries a key.
pub(crate) fn ensure_idempotency_key(
    headers: &mut HeaderMap,
    method: &Method,
    header: &HeaderName,
    auto: bool,
) -> bool {
    // A key set as a plain header counts only if it says something: an empty value would make
    // a POST look replay-safe while the server dedupes nothing.
    if headers
        .get(header)
        .is_some_and(|key| !key.as_bytes().trim_ascii().is_empty())
    {
        return true;
    }
    if auto && !replay::is_idempotent(method) {
        let key = uuid::Uuid::new_v4().hyphenated().to_string();
        if let Ok(value) = HeaderValue::from_str(&key) {
            headers.insert(header.clone(), value);
            return true;
        }
    }
    false
}

/// The value of `retry.hint_header` (`Stripe-Should-Retry`, `x-should-retry`): `true` or
/// `false`, ignoring case and surrounding space. Anything else is no hint.
pub(crate) fn parse_hint(value: &[u8]) -> Option<bool> {
    let value = value.trim_ascii();
    if value.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_hint_is_true_or_false_and_anything_else_is_none() {
        for (value, hint) in [
            (&b"true"[..], Some(true)),
            (b" TRUE ", Some(true)),
            (b"false", Some(false)),
            (b"False\t", Some(false)),
            (b"", None),
            (b"1", None),
            (b"yes", None),
            (b"true; really", None),
            (b"\xff\xfe", None),
        ] {
            assert_eq!(parse_hint(value), hint, "{value:?}");
        }
    }
}
