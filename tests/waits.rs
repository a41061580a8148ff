//! State that waits is checked again after the wait: a call that waited for its rate-limit slot
//! or its token asks the kill switch and the breaker again right before the wire, and the
//! breaker's half-open gate holds against racing callers and stragglers.

mod support;

use std::time::Duration;

use outbound::Client;
use support::{Reply, TestServer, client_for, oauth_client_for, token_server};
use tokio::task::JoinSet;

/// Starts a call to `/x`, isolates the client 100 ms later while that call still waits, and
/// checks the call ended isolated.
async fn isolate_while_a_call_waits(client: &Client) {
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.get("/x").send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.isolate();
    let err = waiting
        .await
        .expect("no panic")
        .expect_err("isolated while waiting");
    assert!(err.is_isolated(), "{err}");
}

#[tokio::test]
async fn a_call_waiting_for_its_slot_never_reaches_the_server_after_isolate() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = client_for(&server)
        .rate_limit(2.0, Some(1))
        .build()
        .expect("client");
    client.get("/x").send().await.expect("the burst slot");
    isolate_while_a_call_waits(&client).await;
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_call_waiting_for_its_token_never_reaches_the_server_after_isolate() {
    let server = token_server(Duration::from_millis(400)).await;
    let client = oauth_client_for(&server).build().expect("client");
    isolate_while_a_call_waits(&client).await;
    let api_calls = server.hits_on("/x");
    assert_eq!(api_calls, 0);
}

#[tokio::test]
async fn a_call_waiting_for_its_slot_does_not_send_after_the_breaker_opened() {
    let server = TestServer::start(|request| match request.path() {
        "/fail" => Reply::status(503).delay(Duration::from_millis(200)),
        _ => Reply::ok(""),
    })
    .await;
    let client = client_for(&server)
        .max_attempts(1)
        .rate_limit(2.0, Some(1))
        .circuit_breaker_minimum_requests(1)
        .circuit_breaker_open_for(Duration::from_secs(30))
        .build()
        .expect("client");
    let failing = tokio::spawn({
        let client = client.clone();
        async move { client.get("/fail").send().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Passes the breaker while it is closed, then waits ~450 ms for its slot; the breaker
    // opens meanwhile.
    let err = client
        .get("/ok")
        .send()
        .await
        .expect_err("the breaker opened");
    assert!(err.is_circuit_open(), "{err}");
    let _ = failing.await.expect("no panic");
    assert_eq!(server.hits(), 1);
}

/// Trips a breaker with `half_open_requests` probes (minimum one call, opens for 200 ms) and
/// waits until it lets probes through.
async fn half_open(server: &TestServer, probes: u32) -> Client {
    let client = client_for(server)
        .max_attempts(1)
        .circuit_breaker_minimum_requests(1)
        .circuit_breaker_open_for(Duration::from_millis(200))
        .circuit_breaker_half_open_requests(probes)
        .build()
        .expect("client");
    let _ = client.get("/fail").send().await;
    assert!(
        client
            .get("/ok")
            .send()
            .await
            .is_err_and(|e| e.is_circuit_open())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_lets_exactly_its_probes_through_however_many_callers_race() {
    for _ in 0..5 {
        let server = TestServer::start(|request| match request.path() {
            "/fail" => Reply::status(503),
            _ => Reply::ok("").delay(Duration::from_millis(300)),
        })
        .await;
        let client = half_open(&server, 2).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(32));
        let mut calls = JoinSet::new();
        for _ in 0..32 {
            let (client, barrier) = (client.clone(), barrier.clone());
            calls.spawn(async move {
                barrier.wait().await;
                client.get("/ok").send().await
            });
        }
        let mut passed = 0;
        while let Some(result) = calls.join_next().await {
            match result.expect("no panic") {
                Ok(response) => {
                    assert_eq!(response.status(), 200);
                    passed += 1;
                }
                Err(err) => assert!(err.is_circuit_open(), "{err}"),
            }
        }
        assert_eq!(passed, 2, "probes let through");
        let probes = server.hits_on("/ok");
        assert_eq!(probes, 2);
    }
}

#[tokio::test]
async fn a_straggler_from_before_the_opening_does_not_close_the_breaker() {
    let server = TestServer::start(|request| match request.path() {
        "/fail" => Reply::status(503),
        "/straggler" => Reply::ok("").delay(Duration::from_millis(900)),
        "/probe" => Reply::ok("").delay(Duration::from_millis(1500)),
        _ => Reply::ok(""),
    })
    .await;
    let client = client_for(&server)
        .max_attempts(1)
        .circuit_breaker_minimum_requests(2)
        .circuit_breaker_open_for(Duration::from_millis(200))
        .circuit_breaker_half_open_requests(1)
        .build()
        .expect("client");
    // Sent while the breaker is closed; answers at ~900 ms.
    let straggler = tokio::spawn({
        let client = client.clone();
        async move { client.get("/straggler").send().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..2 {
        let _ = client.get("/fail").send().await;
    }
    // Open until ~250 ms; then one probe goes out and stays in flight until ~1.8 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let probe = tokio::spawn({
        let client = client.clone();
        async move { client.get("/probe").send().await }
    });
    let response = straggler
        .await
        .expect("no panic")
        .expect("the straggler's answer");
    assert_eq!(response.status(), 200);
    // Half-open with its one probe in flight: nothing else goes through.
    let err = client.get("/ok").send().await.expect_err("still half-open");
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(server.hits_on("/ok"), 0);
    probe.await.expect("no panic").expect("the probe's answer");
    client.get("/ok").send().await.expect("closed by the probe");
}

// A fetch that is under way finishes and is cached even when its caller gave up: otherwise
// calls with a short timeout against a slow token endpoint mint a token each and never succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_fetch_outlives_the_caller_that_started_it() {
    let server = token_server(Duration::from_millis(300)).await;
    let client = oauth_client_for(&server).build().expect("client");
    let short = Duration::from_millis(100);
    let err = client
        .get("/x")
        .timeout(short)
        .send()
        .await
        .expect_err("too short");
    assert!(err.is_timeout(), "{err}");
    // A caller dropped mid-fetch does not cancel it either.
    drop(tokio::time::timeout(Duration::from_millis(20), client.get("/x").send()).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let response = client
        .get("/x")
        .timeout(short)
        .send()
        .await
        .expect("the cached token");
    assert_eq!(response.status(), 200);
    let fetched = server.hits_on("/oauth/token");
    assert_eq!(fetched, 1);
}

// A token request is I/O too: a call that waited for its slot asks the kill switch before it
// fetches a token, not only before the wire.
#[tokio::test]
async fn a_call_isolated_while_waiting_for_its_slot_fetches_no_token() {
    let server = token_server(Duration::from_secs(2)).await;
    let client = oauth_client_for(&server)
        .rate_limit(2.0, Some(1))
        .build()
        .expect("client");
    // Takes the slot and starts a token request that outlasts it (on this current-thread
    // runtime the request ends with the call), so no token is cached.
    let first = client
        .get("/x")
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(first.is_err_and(|e| e.is_timeout()));
    isolate_while_a_call_waits(&client).await;
    let token_requests = server.hits_on("/oauth/token");
    assert_eq!(token_requests, 1, "a token was requested after isolate()");
}
