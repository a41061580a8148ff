//! No input makes the library panic: durations at the edge of their type, a token that never
//! expires, a per-call timeout of `Duration::MAX`. Each is either refused with a clear error
//! (see `tests/profile.rs` for the refusals) or works as a saturated value.

mod support;

use std::time::Duration;

use support::{Reply, TestServer, client_for};

#[tokio::test]
async fn durations_at_their_maximum_work_as_very_long() {
    let server = TestServer::start(|request| match request.path() {
        "/down" => Reply::status(503),
        _ => Reply::ok("fine"),
    })
    .await;
    let client = client_for(&server)
        .connect_timeout(Duration::MAX)
        .read_timeout(Duration::MAX)
        .attempt_timeout(Duration::MAX)
        .total_timeout(Duration::MAX)
        .max_backoff(Duration::MAX)
        .backoff_multiplier(1e300)
        .max_retry_after(Duration::MAX)
        .max_attempts(1)
        .circuit_breaker_window(Duration::MAX)
        .circuit_breaker_open_for(Duration::MAX)
        .circuit_breaker_minimum_requests(1)
        .circuit_breaker_failure_ratio(0.3)
        .build()
        .expect("saturated, not refused");
    let ok = client.get("/x").send().await.expect("a call");
    assert_eq!(ok.status(), 200);
    let ok = client
        .get("/x")
        .timeout(Duration::MAX)
        .send()
        .await
        .expect("a per-call timeout of Duration::MAX");
    assert_eq!(ok.status(), 200);
    // Trips the breaker: failsafe adds open_for to an Instant.
    let _ = client.get("/down").send().await;
    let err = client.get("/x").send().await.expect_err("open");
    assert!(err.is_circuit_open(), "{err}");
    assert!(err.to_string().contains("breaker"), "{err}");
}

#[tokio::test]
async fn a_pause_of_any_length_is_capped_and_does_not_panic() {
    let server = TestServer::always(
        Reply::status(429)
            .header("retry-after", "18446744073709551616")
            .header("ratelimit", "\"d\";r=0;t=18446744073709551615"),
    )
    .await;
    let client = client_for(&server)
        .max_retry_after(Duration::MAX)
        .total_timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let err = client.get("/x").send().await.expect_err("paused");
    assert!(err.is_rate_limited(), "{err}");
    let err = client.get("/x").send().await.expect_err("still paused");
    assert!(err.is_rate_limited(), "{err}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_token_that_never_expires_is_cached_not_a_panic() {
    // An `expires_in` at u64::MAX, and no `expires_in` with a default lifetime of Duration::MAX.
    for body in [
        r#"{"access_token":"tok-forever","token_type":"Bearer","expires_in":18446744073709551615}"#,
        r#"{"access_token":"tok-forever","token_type":"Bearer"}"#,
    ] {
        let server = TestServer::start(move |request| match request.path() {
            "/oauth/token" => Reply::json(200, body),
            _ => Reply::ok("fine"),
        })
        .await;
        let client = support::oauth_client_for(&server)
            .oauth2_default_token_lifetime(Duration::MAX)
            .build()
            .expect("client");
        for _ in 0..3 {
            let response = client.get("/x").send().await.expect("a call");
            assert_eq!(response.status(), 200);
        }
        let fetched = server.hits_on("/oauth/token");
        assert_eq!(fetched, 1, "{body}");
    }
}

#[test]
fn rates_no_clock_can_pace_are_refused_naming_the_key() {
    for (line, expected) in [
        (
            "requests_per_second = 1e-20",
            "rate_limit.requests_per_second: must be between",
        ),
        (
            "requests_per_second = 1e300",
            "rate_limit.requests_per_second: must be between",
        ),
        (
            "requests_per_second = nan",
            "rate_limit.requests_per_second: must be between",
        ),
        (
            "requests_per_second = inf",
            "rate_limit.requests_per_second: must be between",
        ),
        (
            "requests_per_second = 0.1\nburst = 4294967295",
            "rate_limit.burst: is too large",
        ),
    ] {
        let toml = format!("[crm]\nbase_url = 'https://a.example'\n[crm.rate_limit]\n{line}\n");
        let err = outbound::Profiles::from_toml_str(&toml).expect_err(line);
        assert_eq!(err.kind(), outbound::ErrorKind::Config, "{err}");
        let message = err.to_string();
        assert!(
            message.contains("profile \"crm\"") && message.contains(expected),
            "expected {expected:?} in {message}"
        );
    }
}
