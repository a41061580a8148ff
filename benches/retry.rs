//! The cost of the retry machinery on the hot path: one decision and one backoff computation.
//!
//! `cargo bench --bench retry`

#[path = "support.rs"]
mod support;

use std::time::{Duration, SystemTime};

use outbound::internals::{RetryDecider, backoff_delay, retry_after};
use outbound::{HeaderValue, Method, StatusCode};
use support::bench;

fn main() {
    let decider = RetryDecider::default();
    for _ in 0..1_000_000 {
        decider.deposit();
    }
    bench("decision: 200 OK (no retry)", || {
        decider.decide(&Method::GET, StatusCode::OK, None, 1, false)
    });
    // Five calls pay for one retry at the default 20 % budget, so every decision measured here is
    // a retry (the expect proves it), never a budget refusal.
    bench(
        "decision: 503 on GET (retry; 5 deposits + 1 withdraw)",
        || {
            for _ in 0..5 {
                decider.deposit();
            }
            decider
                .decide(
                    &Method::GET,
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    1,
                    false,
                )
                .expect("the retry path")
        },
    );
    bench("decision: 503 on keyless POST (refused)", || {
        decider.decide(
            &Method::POST,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            1,
            false,
        )
    });
    let value = HeaderValue::from_static("3");
    bench("decision: 429 with Retry-After: 3 (retry)", || {
        for _ in 0..5 {
            decider.deposit();
        }
        decider
            .decide(
                &Method::GET,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&value),
                1,
                false,
            )
            .expect("the retry path")
    });
    bench("backoff delay (attempt 3)", || {
        backoff_delay(
            3,
            Duration::from_millis(100),
            Duration::from_secs(10),
            2.0,
            fastrand::f64(),
        )
    });
    let now = SystemTime::now();
    bench("Retry-After parse: delay-seconds", || {
        retry_after(b"120", now)
    });
    bench("Retry-After parse: HTTP-date", || {
        retry_after(b"Sun, 06 Nov 1994 08:49:37 GMT", now)
    });
}
