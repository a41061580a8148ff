//! Credentials: OAuth client-credentials tokens cached, refreshed once and never leaked; static
//! API keys and bearer tokens sent where they belong.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use outbound::{AuthMethod, Client, ClientBuilder, SecretString};
use support::trace::Capture;
use support::{Recorded, Reply, TestServer};
use tokio::task::JoinSet;
use tokio::time::Instant;

const SECRET_CANARY: &str = "secret-canary-0d15ea5e";
const TOKEN_CANARY: &str = "tok-canary";

/// A token endpoint at `/oauth/token` issuing `tok-canary-1`, `tok-canary-2`, … (each valid for
/// `lifetime_s`) and an API everywhere else answered by `api`.
async fn server(
    lifetime_s: u64,
    api: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> (TestServer, Arc<AtomicUsize>) {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let server = TestServer::start(move |request| {
        if request.path() == "/oauth/token" {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::json(
                200,
                &format!(
                    r#"{{"access_token":"{TOKEN_CANARY}-{n}","token_type":"Bearer","expires_in":{lifetime_s}}}"#
                ),
            )
            .delay(Duration::from_millis(100))
        } else {
            api(request)
        }
    })
    .await;
    (server, issued)
}

fn oauth(server: &TestServer) -> ClientBuilder {
    support::client_for(server).oauth2_client_credentials(
        server.url("/oauth/token"),
        "orders-service",
        SecretString::from(SECRET_CANARY),
    )
}

/// `n` concurrent GETs, each of which must end in 200.
async fn concurrent_gets_succeed(client: &Client, n: usize) {
    let mut calls = JoinSet::new();
    for _ in 0..n {
        let client = client.clone();
        calls.spawn(async move { client.get("/contacts").send().await.map(|r| r.status()) });
    }
    while let Some(result) = calls.join_next().await {
        assert_eq!(result.expect("task").expect("call"), 200);
    }
}

fn api_requests(server: &TestServer) -> Vec<Recorded> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path() != "/oauth/token")
        .collect()
}

fn token_requests(server: &TestServer) -> Vec<Recorded> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/oauth/token")
        .collect()
}

#[tokio::test]
async fn fifty_concurrent_first_calls_make_one_token_request() {
    let (server, _) = server(3600, |_| Reply::ok("")).await;
    let client = oauth(&server).build().expect("client");
    concurrent_gets_succeed(&client, 50).await;
    assert_eq!(token_requests(&server).len(), 1);
    let api = api_requests(&server);
    assert_eq!(api.len(), 50);
    assert!(
        api.iter()
            .all(|r| r.header("authorization") == Some("Bearer tok-canary-1"))
    );
}

#[tokio::test]
async fn refresh_ahead_happens_once_per_token_and_no_expired_token_is_sent() {
    // Tokens live 2 s, so each is refreshed 1 s after it was issued (half its lifetime).
    let (server, _) = server(2, |_| Reply::ok("")).await;
    let client = oauth(&server).build().expect("client");
    let started = Instant::now();
    let mut calls = JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        calls.spawn(async move {
            while started.elapsed() < Duration::from_millis(2600) {
                client.get("/contacts").send().await.expect("call");
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
    }
    while calls.join_next().await.is_some() {}

    let tokens = token_requests(&server);
    assert!(
        (2..=3).contains(&tokens.len()),
        "{} token requests",
        tokens.len()
    );
    for pair in tokens.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap > Duration::from_millis(800),
            "two refreshes {gap:?} apart"
        );
    }
    for request in api_requests(&server) {
        let token = request
            .header("authorization")
            .expect("every call carries a token");
        let n: usize = token
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("token number");
        let issued = tokens[n - 1].at;
        assert!(
            request.at - issued < Duration::from_secs(2),
            "{token} sent after it expired"
        );
    }
}

#[tokio::test]
async fn unauthorized_refreshes_once_and_resends_even_a_post() {
    let (server, _) = server(3600, |request| match request.header("authorization") {
        Some("Bearer tok-canary-1") => {
            Reply::status(401).header("www-authenticate", r#"Bearer error="invalid_token""#)
        }
        _ => Reply::status(201),
    })
    .await;
    let client = oauth(&server).build().expect("client");
    let response = client
        .post("/charges")
        .body("amount=1")
        .send()
        .await
        .expect("resent");
    assert_eq!(response.status(), 201);
    assert_eq!(response.attempts(), 2);
    assert_eq!(token_requests(&server).len(), 2);
    assert_eq!(api_requests(&server).len(), 2);
}

#[tokio::test]
async fn second_unauthorized_is_final() {
    let (server, _) = server(3600, |_| Reply::status(401)).await;
    let client = oauth(&server).build().expect("client");
    let err = client
        .get("/contacts")
        .send()
        .await
        .expect_err("refused twice");
    assert!(err.is_auth(), "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert_eq!(err.attempts(), 2);
    assert_eq!(api_requests(&server).len(), 2);
    assert_eq!(token_requests(&server).len(), 2);
}

#[tokio::test]
async fn twenty_concurrent_unauthorized_answers_cause_one_refresh() {
    let (server, _) = server(3600, |request| match request.header("authorization") {
        Some("Bearer tok-canary-1") => Reply::status(401).delay(Duration::from_millis(100)),
        _ => Reply::ok(""),
    })
    .await;
    let client = oauth(&server).build().expect("client");
    concurrent_gets_succeed(&client, 20).await;
    assert_eq!(
        token_requests(&server).len(),
        2,
        "one first fetch, one refresh"
    );
}

/// Standard base64 (RFC 4648), for checking the Basic header byte for byte.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn client_secret_basic_wire_format() {
    let (server, _) = server(3600, |_| Reply::ok("")).await;
    let client = support::client_for(&server)
        .oauth2_client_credentials(
            server.url("/oauth/token"),
            "orders service",
            SecretString::from("s3cr+t/="),
        )
        .oauth2_scopes(["contacts.read", "contacts.write"])
        .build()
        .expect("client");
    client.get("/contacts").send().await.expect("call");
    let token = &token_requests(&server)[0];
    assert_eq!(token.method, "POST");
    assert_eq!(
        token.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    let expected = format!("Basic {}", base64(b"orders+service:s3cr%2Bt%2F%3D"));
    assert_eq!(token.header("authorization"), Some(expected.as_str()));
    assert_eq!(
        String::from_utf8_lossy(&token.body),
        "grant_type=client_credentials&scope=contacts.read+contacts.write"
    );
}

#[tokio::test]
async fn client_secret_post_wire_format() {
    let (server, _) = server(3600, |_| Reply::ok("")).await;
    let client = support::client_for(&server)
        .oauth2_client_credentials(
            server.url("/oauth/token"),
            "orders service",
            SecretString::from("s3cr+t/="),
        )
        .oauth2_auth_method(AuthMethod::ClientSecretPost)
        .oauth2_scopes(["contacts.read"])
        .oauth2_audience("https://api.crm.example")
        .build()
        .expect("client");
    client.get("/contacts").send().await.expect("call");
    let token = &token_requests(&server)[0];
    assert_eq!(token.header("authorization"), None);
    assert_eq!(
        String::from_utf8_lossy(&token.body),
        "grant_type=client_credentials&scope=contacts.read&client_id=orders+service\
         &client_secret=s3cr%2Bt%2F%3D&audience=https%3A%2F%2Fapi.crm.example"
    );
}

/// Each broken token endpoint: a reply and the cause the error must name.
fn broken_endpoints() -> Vec<(&'static str, Reply)> {
    let token = format!(r#""access_token":"{TOKEN_CANARY}-9""#);
    vec![
        ("token endpoint answered 500", Reply::status(500)),
        (
            "refused the request: invalid_client (Client authentication failed)",
            Reply::json(
                400,
                r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
            ),
        ),
        ("not valid JSON", Reply::json(200, &format!("{{{token}"))),
        (
            "missing `access_token`",
            Reply::json(200, r#"{"token_type":"bearer","expires_in":60}"#),
        ),
        (
            "token_type \"mac\"",
            Reply::json(200, &format!(r#"{{{token},"token_type":"mac"}}"#)),
        ),
        (
            "field `expires_in` has an invalid value",
            Reply::json(
                200,
                &format!(r#"{{{token},"token_type":"bearer","expires_in":"soon"}}"#),
            ),
        ),
        (
            "expires_in 0",
            Reply::json(
                200,
                &format!(r#"{{{token},"token_type":"bearer","expires_in":0}}"#),
            ),
        ),
        (
            "text/html",
            Reply::status(200)
                .header("content-type", "text/html")
                .body(format!("<html>{TOKEN_CANARY}</html>")),
        ),
        ("never follow redirects", Reply::redirect(302, "/elsewhere")),
        ("timeouts.attempt", Reply::Stall),
        (
            "token response limit",
            Reply::json(
                200,
                &format!("{{{token},\"pad\":\"{}\"}}", "x".repeat(100_000)),
            ),
        ),
    ]
}

#[tokio::test]
async fn every_broken_token_response_is_an_auth_error_naming_the_cause() {
    let (capture, _guard) = Capture::start();
    for (cause, reply) in broken_endpoints() {
        let server = TestServer::start(move |request| {
            if request.path() == "/oauth/token" {
                reply.clone()
            } else {
                Reply::ok("")
            }
        })
        .await;
        let client = oauth(&server)
            .attempt_timeout(Duration::from_millis(300))
            .build()
            .expect("client");
        let started = Instant::now();
        let err = client.get("/contacts").send().await.expect_err(cause);
        assert!(err.is_auth(), "{cause}: {err}");
        assert!(
            err.to_string().contains(cause),
            "expected {cause:?} in {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{cause}: took {:?}",
            started.elapsed()
        );
        assert!(
            api_requests(&server).is_empty(),
            "{cause}: a call went out without a token"
        );
        let shown = format!("{err} {err:?} {client:?}");
        assert!(
            !shown.contains(SECRET_CANARY) && !shown.contains(TOKEN_CANARY),
            "{cause}: {shown}"
        );
    }
    let trace = capture.text();
    assert!(trace.contains("access token request failed"), "{trace}");
    assert!(
        !trace.contains(SECRET_CANARY) && !trace.contains(TOKEN_CANARY),
        "{trace}"
    );
}

#[tokio::test]
async fn a_token_endpoint_that_is_down_fails_calls_fast_without_hammering_it() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let server = TestServer::start(move |request| {
        if request.path() == "/oauth/token" {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Reply::status(503)
    })
    .await;
    let client = oauth(&server).build().expect("client");
    for _ in 0..20 {
        let err = client.get("/contacts").send().await.expect_err("no token");
        assert!(err.is_auth() && err.to_string().contains("503"), "{err}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "failures are shared during the backoff"
    );
}

#[tokio::test]
async fn tokens_and_secrets_never_appear_in_debug_or_trace_output() {
    let (capture, _guard) = Capture::start();
    let (server, _) = server(3600, |_| Reply::status(503)).await;
    let secret_file = std::env::temp_dir().join(format!("outbound-auth-{}", std::process::id()));
    std::fs::write(&secret_file, format!("{SECRET_CANARY}\n")).expect("secret file");
    let profiles = outbound::Profiles::from_toml_str(&format!(
        r#"
        [crm]
        base_url = "{origin}"
        allow_insecure_http = true
        [crm.auth]
        type = "oauth2_client_credentials"
        token_url = "{origin}/oauth/token"
        client_id = "orders-service"
        client_secret = {{ file = "{file}" }}
        scopes = ["contacts.read"]
        "#,
        origin = server.origin(),
        file = secret_file.display(),
    ))
    .expect("profile");
    let profile = profiles.get("crm").expect("crm");
    let client = Client::from_profile(profile).expect("client");
    let response = client.get("/contacts").send().await.expect("a 503");
    let err = response.error_for_status().expect_err("503");
    let shown = format!(
        "{profiles:?} {profile:?} {client:?} {err} {err:?} {}",
        capture.text()
    );
    assert!(
        api_requests(&server)
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer tok-canary-1"))
    );
    assert!(
        !shown.contains(SECRET_CANARY),
        "client secret leaked: {shown}"
    );
    assert!(
        !shown.contains(TOKEN_CANARY),
        "access token leaked: {shown}"
    );
    std::fs::remove_file(secret_file).ok();
}

// Regression: a custom API key header (`X-Partner-Key`) was not on the redaction list, so a
// cross-origin redirect carried it along.
#[tokio::test]
async fn static_credentials_go_in_the_right_header_and_never_cross_origins() {
    let target = TestServer::always(Reply::ok("")).await;
    let server = TestServer::always(Reply::redirect(307, &target.url("/landing"))).await;
    let api_key = support::client_for(&server)
        .api_key("X-Partner-Key", SecretString::from("key-1"))
        .follow_redirects(true)
        .build()
        .expect("client");
    let response = api_key.get("/x").send().await.expect("followed");
    assert_eq!(response.status(), 200, "the redirect was not followed");
    let bearer = support::client_for(&server)
        .bearer_token(SecretString::from("static-1"))
        .follow_redirects(true)
        .build()
        .expect("client");
    let response = bearer.get("/y").send().await.expect("followed");
    assert_eq!(response.status(), 200, "the redirect was not followed");

    assert_eq!(target.hits(), 2, "both calls reach the target");
    let sent = server.requests();
    assert_eq!(sent[0].header("x-partner-key"), Some("key-1"));
    assert_eq!(sent[1].header("authorization"), Some("Bearer static-1"));
    for landed in target.requests() {
        assert_eq!(landed.header("x-partner-key"), None);
        assert_eq!(landed.header("authorization"), None);
    }
}
