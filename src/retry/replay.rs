//! The rule every retry is gated on: may this request be sent again?

use http::Method;

/// What is known about whether the server received a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The failure proves the request never reached the server: connection refused, DNS
    /// failure, TLS handshake failure (reqwest itself re-sends on HTTP/2 REFUSED_STREAM).
    NeverSent,
    /// The server may have received it, or did (it answered).
    MaybeReceived,
}

/// A request may be sent again only if its method is idempotent, or it carries an idempotency
/// key, or the failure proves the server never received it.
pub(crate) fn is_replay_safe(
    method: &Method,
    has_idempotency_key: bool,
    delivery: Delivery,
) -> bool {
    is_idempotent(method) || has_idempotency_key || delivery == Delivery::NeverSent
}

/// RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT and DELETE.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn method() -> impl Strategy<Value = Method> {
        prop_oneof![
            Just(Method::GET),
            Just(Method::HEAD),
            Just(Method::OPTIONS),
            Just(Method::TRACE),
            Just(Method::PUT),
            Just(Method::DELETE),
            Just(Method::POST),
            Just(Method::PATCH),
            Just(Method::CONNECT),
        ]
    }

    #[test]
    fn post_and_patch_without_key_are_not_replayed_once_received() {
        for method in [Method::POST, Method::PATCH] {
            assert!(!is_replay_safe(&method, false, Delivery::MaybeReceived));
            assert!(is_replay_safe(&method, true, Delivery::MaybeReceived));
            assert!(is_replay_safe(&method, false, Delivery::NeverSent));
        }
    }

    proptest! {
        #[test]
        fn a_keyless_non_idempotent_request_the_server_may_have_seen_is_never_replayed(
            method in method(),
            key in any::<bool>(),
            never_sent in any::<bool>(),
        ) {
            let delivery = if never_sent { Delivery::NeverSent } else { Delivery::MaybeReceived };
            let safe = is_replay_safe(&method, key, delivery);
            if !is_idempotent(&method) && !key && !never_sent {
                prop_assert!(!safe);
            } else {
                prop_assert!(safe);
            }
        }
    }
}
