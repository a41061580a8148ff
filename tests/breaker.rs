//! The per-origin circuit breaker: opens on failures, sheds without I/O, probes, recovers.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use outbound::{Client, ClientBuilder};
use support::{Reply, TestServer};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// No retries, so each call is one attempt; opens after 4 calls with half of them failed.
fn breaker(server: &TestServer, open_for: Duration) -> ClientBuilder {
    support::client_for(server)
        .max_attempts(1)
        .circuit_breaker_minimum_requests(4)
        .circuit_breaker_failure_ratio(0.5)
        .circuit_breaker_open_for(open_for)
}

async fn trip(client: &Client) {
    for _ in 0..4 {
        let _ = client.get("/x").send().await;
    }
}

#[tokio::test]
async fn opens_at_the_ratio_and_minimum_then_sends_nothing() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = breaker(&server, Duration::from_secs(10))
        .build()
        .expect("client");
    for _ in 0..3 {
        assert_eq!(client.get("/x").send().await.expect("a 503").status(), 503);
    }
    assert_eq!(
        client
            .get("/x")
            .send()
            .await
            .expect("the 4th still goes")
            .status(),
        503
    );
    let started = Instant::now();
    for _ in 0..20 {
        let err = client.get("/x").send().await.expect_err("open");
        assert!(err.is_circuit_open(), "{err}");
        assert!(
            err.retry_after()
                .is_some_and(|d| d > Duration::from_secs(8)),
            "{err}"
        );
        assert_eq!(err.attempts(), 0);
    }
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "shedding is immediate"
    );
    assert_eq!(server.hits(), 4, "nothing reached the server while open");
}

#[tokio::test]
async fn half_open_lets_exactly_the_probes_through_among_twenty_callers() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let server = TestServer::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            Reply::ok("").delay(Duration::from_millis(200))
        } else {
            Reply::status(503)
        }
    })
    .await;
    let client = breaker(&server, Duration::from_millis(300))
        .circuit_breaker_half_open_requests(2)
        .build()
        .expect("client");
    trip(&client).await;
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;

    let before = server.hits();
    let mut calls = JoinSet::new();
    for _ in 0..20 {
        let client = client.clone();
        calls.spawn(async move { client.get("/x").send().await.map(|r| r.status()) });
    }
    let (mut passed, mut shed) = (0, 0);
    while let Some(result) = calls.join_next().await {
        match result.expect("task") {
            Ok(status) => {
                assert_eq!(status, 200);
                passed += 1;
            }
            Err(err) => {
                assert!(err.is_circuit_open(), "{err}");
                shed += 1;
            }
        }
    }
    assert_eq!((passed, shed), (2, 18));
    assert_eq!(server.hits() - before, 2);
    // The probes succeeded: the breaker is closed again.
    assert_eq!(client.get("/x").send().await.expect("closed").status(), 200);
}

#[tokio::test]
async fn failed_probe_reopens_the_breaker() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = breaker(&server, Duration::from_millis(200))
        .build()
        .expect("client");
    trip(&client).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.get("/x").send().await.expect("the probe").status(),
        503
    );
    let err = client.get("/x").send().await.expect_err("re-opened");
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(server.hits(), 5);
}

#[tokio::test]
async fn client_errors_do_not_open_it() {
    let server = TestServer::always(Reply::status(404)).await;
    let client = breaker(&server, Duration::from_secs(10))
        .build()
        .expect("client");
    for _ in 0..30 {
        assert_eq!(
            client.get("/missing").send().await.expect("a 404").status(),
            404
        );
    }
    assert_eq!(server.hits(), 30);
}

#[tokio::test]
async fn breakers_are_per_origin() {
    let down = TestServer::always(Reply::status(503)).await;
    let up = TestServer::always(Reply::ok("")).await;
    let client = breaker(&down, Duration::from_secs(10))
        .build()
        .expect("client");
    trip(&client).await;
    assert!(
        client
            .get("/x")
            .send()
            .await
            .expect_err("open")
            .is_circuit_open()
    );
    let response = client
        .get(up.url("/y"))
        .send()
        .await
        .expect("another origin");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn disabled_breaker_never_opens() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = breaker(&server, Duration::from_secs(10))
        .circuit_breaker_enabled(false)
        .build()
        .expect("client");
    for _ in 0..20 {
        assert_eq!(client.get("/x").send().await.expect("a 503").status(), 503);
    }
    assert_eq!(server.hits(), 20);
}

#[tokio::test]
async fn retries_stop_at_an_open_breaker() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = support::client_for(&server)
        .initial_backoff(Duration::from_millis(5))
        .max_attempts(5)
        .circuit_breaker_minimum_requests(2)
        .build()
        .expect("client");
    let err = client
        .get("/x")
        .send()
        .await
        .expect_err("the breaker opened mid-call");
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(err.attempts(), 2);
    assert_eq!(server.hits(), 2);
}

// A 429 says "slow down", not "I am broken": a burst of them must not cut every endpoint of a
// healthy origin off for `open_for`.
#[tokio::test]
async fn a_burst_of_429s_never_opens_the_breaker() {
    let server = TestServer::start(|request| match request.path() {
        "/busy" => Reply::status(429),
        _ => Reply::ok(""),
    })
    .await;
    let client = breaker(&server, Duration::from_secs(10))
        .build()
        .expect("client");
    for _ in 0..20 {
        let response = client.get("/busy").send().await.expect("a 429");
        assert_eq!(response.status(), 429);
    }
    let response = client
        .get("/other")
        .send()
        .await
        .expect("the breaker is closed");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_call_refused_by_the_breaker_mid_retry_reports_the_status_it_last_saw() {
    let server = TestServer::always(Reply::status(503)).await;
    let err = support::client_for(&server)
        .initial_backoff(std::time::Duration::from_millis(1))
        .circuit_breaker_minimum_requests(1)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect_err("the breaker opened after the first 503");
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(
        err.status(),
        Some(outbound::StatusCode::SERVICE_UNAVAILABLE),
        "{err}"
    );
    assert_eq!(err.attempts(), 1);
}
