//! Retries that never cause harm, against the loopback test server.

mod support;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use outbound::{Client, ClientBuilder};
use support::{Reply, TestServer};
use tokio::time::Instant;

/// Short backoffs so tests are fast; everything else at its default.
fn fast(server: &TestServer) -> ClientBuilder {
    support::client_for(server)
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(20))
}

fn client(server: &TestServer) -> Client {
    fast(server).build().expect("client")
}

#[tokio::test]
async fn get_is_retried_through_two_503s_to_success() {
    let server = TestServer::script(vec![
        Reply::status(503),
        Reply::status(503),
        Reply::ok("done"),
    ])
    .await;
    let response = client(&server)
        .get("/flaky")
        .send()
        .await
        .expect("recovered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.attempts(), 3);
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn post_without_key_on_503_is_sent_exactly_once() {
    let server = TestServer::always(Reply::status(503)).await;
    let response = client(&server)
        .post("/charges")
        .body("amount=10")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 503);
    assert_eq!(server.hits(), 1);
    let err = response.error_for_status().expect_err("503");
    assert_eq!(err.attempts(), 1);
    assert!(err.to_string().contains("no idempotency key"), "{err}");
}

#[tokio::test]
async fn post_with_key_is_retried_and_every_attempt_carries_the_same_key() {
    let server = TestServer::script(vec![
        Reply::status(503),
        Reply::status(502),
        Reply::status(201),
    ])
    .await;
    let response = client(&server)
        .post("/charges")
        .idempotency_key("charge-7781")
        .body("amount=10")
        .send()
        .await
        .expect("recovered");
    assert_eq!(response.status(), 201);
    let keys: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(keys, vec![Some("charge-7781".to_owned()); 3]);
    assert!(server.requests().iter().all(|r| r.body == b"amount=10"));
}

#[tokio::test]
async fn auto_key_is_one_uuid_per_call_reused_across_its_attempts() {
    // Each call fails once, then succeeds.
    let server = TestServer::script(vec![
        Reply::status(503),
        Reply::status(201),
        Reply::status(503),
        Reply::status(201),
    ])
    .await;
    let client = fast(&server)
        .idempotency_header("X-Idempotency-Key")
        .auto_idempotency_key(true)
        .build()
        .expect("client");
    client.post("/orders").send().await.expect("first call");
    client.post("/orders").send().await.expect("second call");
    let keys: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            r.header("x-idempotency-key")
                .expect("every attempt has a key")
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(keys[0], keys[1], "attempts of one call share the key");
    assert_eq!(keys[2], keys[3]);
    assert_ne!(keys[0], keys[2], "calls have different keys");
    assert!(
        keys.iter()
            .all(|k| uuid::Uuid::parse_str(k).is_ok_and(|u| u.get_version_num() == 4))
    );
}

#[tokio::test]
async fn auto_key_is_not_added_to_idempotent_methods() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = fast(&server)
        .auto_idempotency_key(true)
        .build()
        .expect("client");
    client.get("/x").send().await.expect("ok");
    client.put("/x").send().await.expect("ok");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("idempotency-key").is_none())
    );
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for status in [400, 401, 403, 404, 422] {
        let server = TestServer::always(Reply::status(status)).await;
        let response = client(&server)
            .get("/x")
            .idempotency_key("k")
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), status);
        assert_eq!(server.hits(), 1, "{status} was retried");
    }
}

#[tokio::test]
async fn keyed_conflict_is_retried_and_keyed_unprocessable_is_final() {
    let server = TestServer::script(vec![Reply::status(409), Reply::status(201)]).await;
    let response = client(&server)
        .post("/orders")
        .idempotency_key("k1")
        .send()
        .await
        .expect("ok");
    assert_eq!((response.status().as_u16(), server.hits()), (201, 2));

    let server = TestServer::always(Reply::status(422)).await;
    let response = client(&server)
        .post("/orders")
        .idempotency_key("k2")
        .send()
        .await
        .expect("ok");
    assert_eq!((response.status().as_u16(), server.hits()), (422, 1));
}

#[tokio::test]
async fn refused_connection_is_retried_even_for_a_keyless_post() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .allow_insecure_http(true)
        .initial_backoff(Duration::from_millis(5))
        .build()
        .expect("client");
    let err = client
        .post("/charges")
        .body("x")
        .send()
        .await
        .expect_err("nothing listens");
    assert!(err.is_connect(), "{err}");
    assert_eq!(
        err.attempts(),
        3,
        "the request never left, so every attempt was safe"
    );
}

#[tokio::test]
async fn reset_after_the_request_was_sent_is_not_retried_for_post() {
    let server = TestServer::always(Reply::Reset).await;
    let err = client(&server)
        .post("/charges")
        .body("x")
        .send()
        .await
        .expect_err("reset");
    assert_eq!(server.hits(), 1, "the server saw the POST once");
    assert_eq!(err.attempts(), 1);
    assert!(err.to_string().contains("not retried"), "{err}");

    let server = TestServer::script(vec![Reply::Reset, Reply::ok("fine")]).await;
    let response = client(&server)
        .get("/x")
        .send()
        .await
        .expect("GET is retried");
    assert_eq!((response.status().as_u16(), server.hits()), (200, 2));
}

#[tokio::test]
async fn retry_after_seconds_delay_the_next_attempt() {
    let server = TestServer::script(vec![
        Reply::status(503).header("retry-after", "1"),
        Reply::ok(""),
    ])
    .await;
    client(&server).get("/x").send().await.expect("recovered");
    let seen = server.requests();
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
    assert!(gap < Duration::from_secs(3), "{gap:?}");
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let server = TestServer::script(vec![
        Reply::status(429).header("retry-after", &at),
        Reply::ok(""),
    ])
    .await;
    client(&server).get("/x").send().await.expect("recovered");
    let seen = server.requests();
    let gap = seen[1].at - seen[0].at;
    // The date has one-second resolution, so the wait is between 1 and 2 s.
    assert!(gap >= Duration::from_millis(900), "{gap:?}");
    assert!(gap < Duration::from_secs(4), "{gap:?}");
}

#[tokio::test]
async fn retry_after_beyond_the_cap_fails_fast_as_rate_limited() {
    let server = TestServer::always(Reply::status(429).header("retry-after", "120")).await;
    let started = Instant::now();
    let err = client(&server)
        .get("/x")
        .send()
        .await
        .expect_err("too long to wait");
    assert!(err.is_rate_limited(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn garbage_retry_after_is_ignored() {
    for garbage in ["soon", "-5", "1.5", "", "\u{7f}"] {
        let server = TestServer::script(vec![
            Reply::status(503).header("retry-after", garbage),
            Reply::ok(""),
        ])
        .await;
        let started = Instant::now();
        client(&server).get("/x").send().await.expect("recovered");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{garbage} was honoured"
        );
        assert_eq!(server.hits(), 2);
    }
}

#[tokio::test]
async fn total_deadline_bounds_attempts_and_sleeps() {
    let server = TestServer::always(Reply::Stall).await;
    let client = fast(&server)
        .max_attempts(10)
        .attempt_timeout(Duration::from_millis(300))
        .total_timeout(Duration::from_millis(1000))
        .build()
        .expect("client");
    let started = Instant::now();
    let err = client.get("/x").send().await.expect_err("never answers");
    let elapsed = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert!(server.hits() <= 4, "{} attempts in 1 s", server.hits());

    let server = TestServer::always(Reply::status(503).header("retry-after", "1")).await;
    let started = Instant::now();
    let err = fast(&server)
        .max_attempts(10)
        .build()
        .expect("client")
        .get("/x")
        .timeout(Duration::from_millis(1500))
        .send()
        .await
        .expect_err("cannot wait past the deadline");
    assert!(
        err.is_rate_limited() && err.retry_after() == Some(Duration::from_secs(1)),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_millis(1600));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn one_max_attempt_means_no_retry() {
    let server = TestServer::always(Reply::status(503)).await;
    let response = fast(&server)
        .max_attempts(1)
        .build()
        .expect("client")
        .get("/x")
        .send()
        .await
        .expect("503");
    assert_eq!(
        (
            response.status().as_u16(),
            response.attempts(),
            server.hits()
        ),
        (503, 1, 1)
    );
}

#[tokio::test]
async fn retry_budget_holds_a_dead_origin_to_the_budget_share() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = fast(&server)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(1))
        // The breaker would shed this load by itself; this test is about the budget.
        .circuit_breaker_enabled(false)
        .build()
        .expect("client");
    let calls = 200;
    let mut attempts = HashSet::new();
    for _ in 0..calls {
        let response = client.get("/down").send().await.expect("a 503");
        attempts.insert(response.attempts());
    }
    let sent = server.hits();
    // 20 % of the calls plus the reserve of 10 retries per window.
    assert!(
        sent <= calls + calls / 5 + 10,
        "{sent} requests for {calls} calls"
    );
    assert!(sent > calls, "some retries were allowed");
    assert!(attempts.contains(&1), "later calls were refused retries");
    let err = client
        .get("/down")
        .send()
        .await
        .expect("503")
        .error_for_status()
        .expect_err("503");
    assert!(err.to_string().contains("retry budget"), "{err}");
}

// An empty key is no key: sent, it would make a POST look replay-safe while the server dedupes
// nothing.
#[tokio::test]
async fn an_empty_idempotency_key_does_not_make_a_post_replay_safe() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = client(&server);
    let err = client
        .post("/orders")
        .idempotency_key("  ")
        .send()
        .await
        .expect_err("refused");
    assert!(err.is_builder(), "{err}");
    let response = client
        .post("/orders")
        .header("idempotency-key", "")
        .send()
        .await
        .expect("the 503");
    assert_eq!(response.status(), 503);
    assert_eq!(server.hits(), 1, "a POST with an empty key was retried");
}
