//! Redirect hops as requests of their own: "never received" is a fact about the first hop, a
//! later hop's answer or failure counts against its own origin (401, pause, breaker), every hop
//! passes its origin's breaker and quota, and credentials never follow a `Location` elsewhere.

mod support;

use outbound::SecretString;
use support::{Reply, TestServer, client_for};

/// A loopback port with nothing listening on it.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

// "Never received" is a fact about the first request: once a hop is answered, the server acted.
#[tokio::test]
async fn keyless_post_answered_with_a_redirect_to_a_dead_port_is_sent_once() {
    let dead = format!("http://127.0.0.1:{}/result", dead_port());
    let origin = TestServer::always(Reply::redirect(303, &dead)).await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .max_attempts(3)
        .initial_backoff(std::time::Duration::from_millis(1))
        .build()
        .expect("client");
    let err = client
        .post("/orders")
        .body("amount=10")
        .send()
        .await
        .expect_err("the target is down");
    assert!(err.is_connect(), "{err}");
    assert_eq!(origin.hits(), 1, "the POST was sent again");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn get_answered_with_a_redirect_to_a_dead_port_is_still_retried() {
    let dead = format!("http://127.0.0.1:{}/result", dead_port());
    let origin = TestServer::always(Reply::redirect(302, &dead)).await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .max_attempts(3)
        .initial_backoff(std::time::Duration::from_millis(1))
        .build()
        .expect("client");
    let err = client.get("/report").send().await.expect_err("down");
    assert!(err.is_connect(), "{err}");
    assert_eq!(origin.hits(), 3, "an idempotent request keeps its retries");
}

#[tokio::test]
async fn a_401_from_a_later_hop_keeps_the_token_and_is_not_resent() {
    let tokens = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let issued = tokens.clone();
    let target = TestServer::always(Reply::status(401)).await;
    let to_target = target.url("/receipt");
    let origin = TestServer::start(move |request| match request.path() {
        "/oauth/token" => {
            let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            Reply::json(
                200,
                &format!(r#"{{"access_token":"tok-{n}","token_type":"Bearer","expires_in":600}}"#),
            )
        }
        "/charges" => Reply::redirect(303, &to_target),
        _ => Reply::ok("fine"),
    })
    .await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .oauth2_client_credentials(
            origin.url("/oauth/token"),
            "orders",
            SecretString::from("client-secret"),
        )
        .build()
        .expect("client");
    let response = client
        .post("/charges")
        .body("amount=10")
        .send()
        .await
        .expect("the later hop's answer is returned");
    assert_eq!(response.status(), 401);
    let charges = origin.hits_on("/charges");
    assert_eq!(charges, 1, "the POST was resent after a later hop's 401");
    assert_eq!(target.hits(), 1);
    client.get("/other").send().await.expect("next call");
    assert_eq!(
        tokens.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the token was invalidated by another origin's 401"
    );
}

#[tokio::test]
async fn a_503_from_a_redirect_target_pauses_the_target_not_the_first_origin() {
    let target = TestServer::start(|request| match request.path() {
        "/busy" => Reply::status(503).header("retry-after", "30"),
        _ => Reply::ok("target"),
    })
    .await;
    let to_target = target.url("/busy");
    let origin = TestServer::start(move |request| match request.path() {
        "/moved" => Reply::redirect(302, &to_target),
        _ => Reply::ok("origin"),
    })
    .await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .max_attempts(1)
        .total_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("client");
    let first = client.get("/moved").send().await;
    assert_eq!(target.hits(), 1, "{first:?}");
    let response = client
        .get("/elsewhere")
        .send()
        .await
        .expect("the first origin is not paused");
    assert_eq!(response.status(), 200);
    let err = client
        .get(target.url("/fine"))
        .send()
        .await
        .expect_err("the target is paused");
    assert!(err.is_rate_limited(), "{err}");
    assert_eq!(target.hits(), 1, "the paused target was called again");
}

#[tokio::test]
async fn credential_query_params_never_follow_a_cross_origin_location() {
    let target = TestServer::always(Reply::ok("")).await;
    let location = target.url("/landing?api_key=key-canary&keep=1;sig=sig-canary&page=2");
    let origin = TestServer::always(Reply::redirect(302, &location)).await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .api_key_query_param("api_key", SecretString::from("key-canary"))
        .build()
        .expect("client");
    client.get("/start").send().await.expect("followed");
    assert!(origin.requests()[0].target.contains("api_key=key-canary"));
    let landed = &target.requests()[0];
    assert!(!landed.target.contains("canary"), "{}", landed.target);
    assert_eq!(landed.target, "/landing?keep=1&page=2");
}

// A failure on a later hop counts against the origin of that hop: the first origin answered.
#[tokio::test]
async fn a_dead_redirect_target_does_not_open_the_first_origins_breaker() {
    let dead = format!("http://127.0.0.1:{}/gone", dead_port());
    let origin = TestServer::start(move |request| match request.path() {
        "/moved" => Reply::redirect(302, &dead),
        _ => Reply::ok("fine"),
    })
    .await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .max_attempts(1)
        .circuit_breaker_minimum_requests(2)
        .circuit_breaker_open_for(std::time::Duration::from_secs(30))
        .build()
        .expect("client");
    for _ in 0..4 {
        let err = client
            .get("/moved")
            .send()
            .await
            .expect_err("the target is down");
        // The target's own breaker opens after two failures, and then sheds the hop.
        assert!(err.is_connect() || err.is_circuit_open(), "{err}");
    }
    let response = client
        .get("/fine")
        .send()
        .await
        .expect("the first origin's breaker is closed");
    assert_eq!(response.status(), 200);
}

// A redirect hop is a request like any other: it takes a slot of its origin's quota.
#[tokio::test]
async fn every_redirect_hop_takes_a_slot_of_its_origins_quota() {
    let origin = TestServer::start(|request| match request.path() {
        "/a" => Reply::redirect(302, "/b"),
        "/b" => Reply::redirect(302, "/c"),
        _ => Reply::ok("landed"),
    })
    .await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .rate_limit(4.0, Some(1))
        .build()
        .expect("client");
    let response = client.get("/a").send().await.expect("followed");
    assert_eq!(response.status(), 200);
    let seen = origin.requests();
    assert_eq!(seen.len(), 3);
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= std::time::Duration::from_millis(200),
            "a hop skipped the quota: {gap:?}"
        );
    }
}

// A hop to an origin whose breaker is open fails fast instead of adding to its load.
#[tokio::test]
async fn a_redirect_to_an_origin_whose_breaker_is_open_fails_fast() {
    let target = TestServer::always(Reply::status(503)).await;
    let to_target = target.url("/down");
    let origin = TestServer::start(move |request| match request.path() {
        "/moved" => Reply::redirect(302, &to_target),
        _ => Reply::ok(""),
    })
    .await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .max_attempts(1)
        .circuit_breaker_minimum_requests(2)
        .circuit_breaker_open_for(std::time::Duration::from_secs(30))
        .build()
        .expect("client");
    for _ in 0..2 {
        let _ = client.get(target.url("/down")).send().await;
    }
    let err = client
        .get("/moved")
        .send()
        .await
        .expect_err("the target is open");
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(
        target.hits(),
        2,
        "the open target was called through a redirect"
    );
}

#[tokio::test]
async fn a_query_api_key_goes_on_every_hop_to_the_base_origin_and_no_other() {
    // The other origin sends the client back to the base origin, without the key.
    let home = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let back = home.clone();
    let other = TestServer::start(move |_| Reply::redirect(302, &back.lock().expect("lock"))).await;
    let other_origin = other.origin();
    let server = TestServer::start(move |r| match r.path() {
        "/v1/start" => Reply::redirect(302, "/v1/next"),
        "/v1/next" => Reply::redirect(302, &format!("{other_origin}/elsewhere?keep=1")),
        _ => Reply::ok(""),
    })
    .await;
    *home.lock().expect("lock") = server.url("/v1/back?page=2");
    let client = client_for(&server)
        .follow_redirects(true)
        .api_key_query_param("api_key", SecretString::from("k-3f9a"))
        .build()
        .expect("client");
    client.get("/v1/start").send().await.expect("followed");
    let targets: Vec<_> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets[0], "/v1/start?api_key=k-3f9a");
    assert_eq!(
        targets[1], "/v1/next?api_key=k-3f9a",
        "a same-origin Location without the key"
    );
    assert_eq!(
        other.requests()[0].target,
        "/elsewhere?keep=1",
        "never to another origin"
    );
    assert_eq!(
        targets[2], "/v1/back?page=2&api_key=k-3f9a",
        "back home, the key again"
    );
}
