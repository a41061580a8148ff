//! The testing kit (feature `testing`), used the way a service's own tests would: a partner
//! that misbehaves on cue, and a client whose retries cost milliseconds.

#![cfg(feature = "testing")]

use std::time::{Duration, Instant};

use outbound::testing::{Reply, TestServer, fast_client};

#[tokio::test]
async fn a_retry_test_runs_in_milliseconds() {
    let partner = TestServer::script(vec![
        Reply::status(503),
        Reply::Reset,
        Reply::json(200, r#"{"id":7}"#),
    ])
    .await;
    let client = fast_client(&partner).build().expect("client");
    let started = Instant::now();
    let response = client.get("/v1/orders/7").send().await.expect("third time");
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 3));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        partner.hits_on("/v1/orders/7"),
        3,
        "every attempt reached the partner"
    );
}

#[tokio::test]
async fn error_handling_can_be_tested_against_a_stalled_partner() {
    let partner = TestServer::always(Reply::Stall).await;
    let err = fast_client(&partner)
        .max_attempts(1)
        .total_timeout(Duration::from_millis(200))
        .build()
        .expect("client")
        .get("/slow")
        .send()
        .await
        .expect_err("stalled");
    assert!(err.is_timeout(), "{err}");
}
