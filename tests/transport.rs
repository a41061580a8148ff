//! Time limits: every call is bounded, whichever way the server misbehaves.

mod support;

use std::time::Duration;

use support::{Reply, TestServer, client_for};
use tokio::time::Instant;

#[tokio::test]
async fn stalled_server_times_out_within_the_attempt_timeout() {
    let server = TestServer::always(Reply::Stall).await;
    let client = client_for(&server)
        .attempt_timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let started = Instant::now();
    let err = client.get("/slow").send().await.expect_err("must time out");
    let elapsed = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("timeouts.attempt"), "{err}");
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn body_trickled_slower_than_the_read_timeout_times_out() {
    let server =
        TestServer::always(Reply::ok("0123456789").trickle(Duration::from_millis(600))).await;
    let client = client_for(&server)
        .read_timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let started = Instant::now();
    let err = match client.get("/trickle").send().await {
        Ok(response) => response.bytes().await.expect_err("body must time out"),
        Err(err) => err,
    };
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("timeouts.read"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn slow_response_head_times_out_on_the_read_timeout() {
    let server = TestServer::always(Reply::ok("late").delay(Duration::from_secs(5))).await;
    let client = client_for(&server)
        .read_timeout(Duration::from_millis(300))
        .max_attempts(1)
        .build()
        .expect("client");
    let started = Instant::now();
    let err = client.get("/slow").send().await.expect_err("must time out");
    assert!(
        err.is_timeout() && err.to_string().contains("timeouts.read"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn body_trickled_within_the_read_timeout_outlasts_it() {
    // Five bytes 150 ms apart: 750 ms in all, with never more than 400 ms without data.
    let server = TestServer::always(Reply::ok("abcde").trickle(Duration::from_millis(150))).await;
    let client = client_for(&server)
        .read_timeout(Duration::from_millis(400))
        .build()
        .expect("client");
    let response = client.get("/trickle").send().await.expect("head");
    assert_eq!(response.bytes().await.expect("body"), "abcde");
}

#[tokio::test]
async fn time_before_reading_the_body_is_not_idle_time() {
    // The one body byte comes 1 s after the head; the caller starts reading after 600 ms, so
    // it waits 400 ms for data, within the 800 ms read timeout.
    let server = TestServer::always(Reply::ok("x").trickle(Duration::from_secs(1))).await;
    let client = client_for(&server)
        .read_timeout(Duration::from_millis(800))
        .build()
        .expect("client");
    let response = client.get("/later").send().await.expect("head");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(response.bytes().await.expect("body"), "x");
}

#[tokio::test]
async fn steady_trickle_is_still_bounded_by_the_attempt_timeout() {
    // Each byte comes well within the read timeout, but the whole body would take 4 s.
    let server =
        TestServer::always(Reply::ok(vec![b'x'; 40]).trickle(Duration::from_millis(100))).await;
    let client = client_for(&server)
        .read_timeout(Duration::from_secs(2))
        .attempt_timeout(Duration::from_millis(700))
        .build()
        .expect("client");
    let started = Instant::now();
    let response = client.get("/trickle").send().await.expect("head arrives");
    let err = response.bytes().await.expect_err("body must time out");
    assert!(
        err.is_timeout() && err.to_string().contains("timeouts.attempt"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn per_call_timeout_is_the_total_deadline() {
    let server = TestServer::always(Reply::StallBody { status: 200 }).await;
    let client = client_for(&server)
        .attempt_timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let started = Instant::now();
    let result = client
        .get("/x")
        .timeout(Duration::from_millis(400))
        .send()
        .await;
    let err = match result {
        Ok(response) => response.bytes().await.expect_err("body never comes"),
        Err(err) => err,
    };
    assert!(
        err.is_timeout() && err.to_string().contains("timeouts.total"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = outbound::Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .allow_insecure_http(true)
        .max_attempts(1)
        .build()
        .expect("client");
    let err = client.get("/").send().await.expect_err("nothing listens");
    assert!(err.is_connect(), "{err}");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn clones_share_one_connection_pool() {
    let server = TestServer::always(Reply::ok("hi")).await;
    let client = client_for(&server).build().expect("client");
    for _ in 0..3 {
        let clone = client.clone();
        let body = clone
            .get("/")
            .send()
            .await
            .expect("ok")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "hi");
    }
    assert_eq!(server.hits(), 3);
    assert_eq!(
        server.connections(),
        1,
        "keep-alive connection reused across clones"
    );
}
