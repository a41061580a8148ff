//! `Client::health()` for readiness probes, and the bulkhead (`[concurrency] max_in_flight`).

mod support;

use std::time::Duration;

use support::{Reply, TestServer, client_for};

#[tokio::test]
async fn health_shows_the_breaker_the_pause_the_failures_and_the_token() {
    let server = TestServer::start(|r| match r.path() {
        "/oauth/token" => Reply::json(
            200,
            r#"{"access_token":"tok","token_type":"Bearer","expires_in":600}"#,
        ),
        "/busy" => Reply::status(503).header("Retry-After", "30"),
        _ => Reply::ok(""),
    })
    .await;
    let client = support::oauth_client_for(&server)
        .max_attempts(1)
        .circuit_breaker_minimum_requests(2)
        .budget(100, Duration::from_secs(86_400))
        .build()
        .expect("client");
    let fresh = client.health();
    assert_eq!(fresh.origins.len(), 1);
    assert_eq!(fresh.origins[0].breaker, "closed");
    assert_eq!(fresh.token_valid_for_ms, None, "no token yet");

    client.get("/ok").send().await.expect("ok");
    client.get("/busy").send().await.expect("503");
    let health = client.health();
    let origin = &health.origins[0];
    assert!(
        origin.paused_for_ms.is_some_and(|ms| ms > 20_000),
        "{origin:?}"
    );
    assert_eq!(origin.recent_attempts, 2);
    assert!((origin.failure_ratio - 0.5).abs() < 1e-9, "{origin:?}");
    assert!(
        health.token_valid_for_ms.is_some_and(|ms| ms > 590_000),
        "{health:?}"
    );
    assert_eq!(health.budget_remaining, Some(98));
    assert_eq!(origin.in_flight, 0);
    let json = serde_json::to_value(&health).expect("serializable");
    assert_eq!(json["origins"][0]["breaker"], origin.breaker);
    assert!(!json.to_string().contains("tok\""), "never the token");
}

#[tokio::test]
async fn an_open_breaker_says_until_when() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = client_for(&server)
        .max_attempts(1)
        .circuit_breaker_minimum_requests(1)
        .circuit_breaker_open_for(Duration::from_secs(60))
        .build()
        .expect("client");
    client.get("/").send().await.expect("503");
    let health = client.health();
    assert_eq!(health.origins[0].breaker, "open");
    let left = health.origins[0].breaker_open_for_ms.expect("until when");
    assert!((50_000..=60_000).contains(&left), "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_during_a_storm_of_calls_is_consistent() {
    let server = TestServer::always(Reply::ok("").delay(Duration::from_millis(50))).await;
    let client = client_for(&server).build().expect("client");
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/").send().await.map(|r| r.status()) })
        })
        .collect();
    let mut peak = 0;
    for _ in 0..50 {
        let health = client.health();
        let in_flight = health.origins[0].in_flight;
        assert!(in_flight <= 200, "{in_flight}");
        peak = peak.max(in_flight);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for call in calls {
        call.await.expect("task").expect("call");
    }
    assert!(peak > 0, "calls were seen in flight");
    assert_eq!(client.health().origins[0].in_flight, 0, "none left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulkhead_refuses_what_it_cannot_hold_before_the_deadline() {
    let server = TestServer::always(Reply::ok("").delay(Duration::from_secs(2))).await;
    let client = client_for(&server)
        .max_in_flight(2)
        .build()
        .expect("client");
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/").send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let err = client
            .get("/")
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .expect_err("no slot before the deadline");
        assert!(err.is_overloaded(), "{err}");
        assert_eq!(err.attempts(), 0, "nothing sent: {err}");
        assert!(
            err.to_string().contains("concurrency.max_in_flight"),
            "{err}"
        );
    }
    for holder in holders {
        holder
            .await
            .expect("task")
            .expect("the two holding slots are answered");
    }
    assert_eq!(
        server.received(),
        2,
        "only the calls holding a slot were sent"
    );
    client.get("/").send().await.expect("slots free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_give_their_bulkhead_slots_back() {
    let server = TestServer::always(Reply::Stall).await;
    let client = client_for(&server)
        .max_in_flight(2)
        .build()
        .expect("client");
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/").send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(client.health().origins[0].in_flight, 2);
    for task in &stuck {
        task.abort();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(client.health().origins[0].in_flight, 0, "no slot leaked");
    let ok = TestServer::always(Reply::ok("")).await;
    let _ = ok;
    // Both slots are free again: a call gets one at once (it then stalls like the others).
    let err = client
        .get("/")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("stalls");
    assert!(err.is_timeout(), "a slot, then the server's stall: {err}");
}

#[test]
fn a_bulkhead_of_zero_is_refused() {
    let err = outbound::Profiles::from_toml_str(
        "[p]\nbase_url = \"https://a.example\"\n[p.concurrency]\nmax_in_flight = 0\n",
    )
    .expect_err("zero");
    assert!(
        err.to_string().contains("concurrency.max_in_flight"),
        "{err}"
    );
}
