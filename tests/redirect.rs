//! Redirects: off by default; when on, every hop is checked and credentials never cross origins.
//! Two servers on different ports are two origins of one allowed host.

mod support;

use outbound::{Client, SecretString};
use support::{Reply, TestServer, client_for};

fn following(server: &TestServer) -> Client {
    client_for(server)
        .follow_redirects(true)
        .redact_headers(["x-partner-signature"])
        .build()
        .expect("client")
}

#[tokio::test]
async fn redirects_are_not_followed_by_default() {
    let target = TestServer::always(Reply::ok("moved here")).await;
    let origin = TestServer::always(Reply::redirect(302, &target.url("/new"))).await;
    let client = client_for(&origin).build().expect("client");
    let response = client
        .get("/old")
        .send()
        .await
        .expect("the 3xx is returned");
    assert_eq!(response.status(), 302);
    assert_eq!(target.hits(), 0);
}

#[tokio::test]
async fn cross_origin_hop_drops_every_credential_header() {
    let target = TestServer::always(Reply::ok("")).await;
    let origin = TestServer::always(Reply::redirect(302, &target.url("/landing"))).await;
    let client = following(&origin);
    let response = client
        .get("/start")
        .header("authorization", "Bearer tok-canary")
        .header("x-api-key", "key-canary")
        .header("cookie", "session=cookie-canary")
        .header("proxy-authorization", "Basic cHJveHk=")
        .header("x-partner-signature", "sig-canary")
        .header("x-trace", "kept")
        .send()
        .await
        .expect("followed");
    assert_eq!(response.status(), 200);
    let first = &origin.requests()[0];
    assert_eq!(
        first.header("x-api-key"),
        Some("key-canary"),
        "the first hop carries it"
    );
    let landed = &target.requests()[0];
    for dropped in [
        "authorization",
        "x-api-key",
        "cookie",
        "proxy-authorization",
        "x-partner-signature",
    ] {
        assert_eq!(landed.header(dropped), None, "{dropped} crossed origins");
    }
    assert_eq!(landed.header("x-trace"), Some("kept"));
    assert_eq!(landed.header("referer"), None);
}

#[tokio::test]
async fn authorization_is_dropped_even_after_a_same_origin_second_hop() {
    let target = TestServer::always(Reply::ok("")).await;
    let to_target = target.url("/third");
    let origin = TestServer::start(move |request| match request.path() {
        "/first" => Reply::redirect(302, "/second"),
        _ => Reply::redirect(302, &to_target),
    })
    .await;
    let client = client_for(&origin)
        .follow_redirects(true)
        .bearer_token(SecretString::from("tok-canary"))
        .build()
        .expect("client");
    client.get("/first").send().await.expect("followed");
    let hops = origin.requests();
    assert_eq!(hops.len(), 2);
    assert_eq!(
        hops[1].header("authorization"),
        Some("Bearer tok-canary"),
        "same origin keeps it"
    );
    assert_eq!(target.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn redirect_to_a_host_outside_the_profile_is_refused() {
    let origin = TestServer::always(Reply::redirect(302, "http://localhost:1/x")).await;
    let err = following(&origin)
        .get("/")
        .send()
        .await
        .expect_err("foreign host");
    assert!(err.is_redirect(), "{err}");
    assert!(err.to_string().contains("not in allowed_hosts"), "{err}");
}

#[tokio::test]
async fn at_most_five_hops_are_followed() {
    let server = TestServer::start(|request| {
        let n: u32 = request.path().trim_start_matches('/').parse().unwrap_or(0);
        Reply::redirect(302, &format!("/{}", n + 1))
    })
    .await;
    let err = following(&server)
        .get("/0")
        .send()
        .await
        .expect_err("endless redirects");
    assert!(
        err.is_redirect() && err.to_string().contains("more than 5 redirects"),
        "{err}"
    );
    assert_eq!(server.hits(), 6);
}

#[tokio::test]
async fn see_other_becomes_a_bodyless_get() {
    let target = TestServer::always(Reply::ok("")).await;
    let origin = TestServer::always(Reply::redirect(303, &target.url("/result"))).await;
    following(&origin)
        .post("/submit")
        .json(&serde_json::json!({ "amount": 10 }))
        .send()
        .await
        .expect("followed");
    let landed = &target.requests()[0];
    assert_eq!(landed.method, "GET");
    assert!(landed.body.is_empty());
    assert_eq!(landed.header("content-type"), None);
}

#[tokio::test]
async fn found_after_post_becomes_get() {
    let origin = TestServer::start(|request| match request.path() {
        "/submit" => Reply::redirect(302, "/done"),
        _ => Reply::ok(""),
    })
    .await;
    following(&origin)
        .post("/submit")
        .body("x=1")
        .send()
        .await
        .expect("followed");
    assert_eq!(origin.requests()[1].method, "GET");
}

#[tokio::test]
async fn temporary_redirect_resends_the_body_to_the_same_origin() {
    let origin = TestServer::start(|request| match request.path() {
        "/v1/orders" => Reply::redirect(307, "/v2/orders"),
        _ => Reply::status(201),
    })
    .await;
    let response = following(&origin)
        .post("/v1/orders")
        .body("order-body")
        .send()
        .await
        .expect("followed");
    assert_eq!(response.status(), 201);
    let second = &origin.requests()[1];
    assert_eq!(
        (second.method.as_str(), second.body.as_slice()),
        ("POST", &b"order-body"[..])
    );
}

#[tokio::test]
async fn body_is_never_resent_to_another_origin() {
    let target = TestServer::always(Reply::status(201)).await;
    let origin = TestServer::always(Reply::redirect(308, &target.url("/orders"))).await;
    let err = following(&origin)
        .post("/orders")
        .body("card=4242")
        .send()
        .await
        .expect_err("cross-origin body");
    assert!(
        err.is_redirect() && err.to_string().contains("another origin"),
        "{err}"
    );
    assert_eq!(target.hits(), 0);
}
