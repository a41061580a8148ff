//! No secret leaks: canaries placed in an API key header, a `?api_key=` query parameter, a
//! bearer token and URL userinfo reach the server where they belong, and never appear in any
//! error, any `Debug` of a public type, or anything `tracing` emits at TRACE.

mod support;

use std::time::Duration;

use outbound::{Client, Profiles, SecretString};
use support::trace::Capture;
use support::{Reply, TestServer};

const KEY_CANARY: &str = "key-canary-5bd1c";
const QUERY_CANARY: &str = "query-canary-91ee0";
const TOKEN_CANARY: &str = "token-canary-c0ffee";
const USERINFO_CANARY: &str = "userinfo-canary-77aa";
const CANARIES: [&str; 4] = [KEY_CANARY, QUERY_CANARY, TOKEN_CANARY, USERINFO_CANARY];

fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{canary} leaked in {what}:\n{text}");
    }
}

fn secret_file(name: &str, value: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("outbound-redaction-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    path
}

async fn server() -> TestServer {
    TestServer::start(|request| match request.path() {
        "/ok" => Reply::json(200, r#"{"ok":true}"#),
        "/fail" => Reply::status(503),
        "/stall" => Reply::Stall,
        "/big" => Reply::ok(vec![b'x'; 4096]),
        "/away" => Reply::redirect(302, "https://elsewhere.example/"),
        _ => Reply::status(404),
    })
    .await
}

#[tokio::test]
async fn canaries_never_appear_in_errors_debug_or_trace_output() {
    let (capture, _guard) = Capture::start();
    let server = server().await;
    let key_file = secret_file("api-key", KEY_CANARY);
    let profiles = Profiles::from_toml_str(&format!(
        r#"
        [partner]
        base_url = "{origin}"
        allow_insecure_http = true
        max_response_bytes = 1024
        follow_redirects = true

        [partner.timeouts]
        attempt = "300ms"

        [partner.auth]
        type = "api_key"
        key = {{ file = "{key}" }}
        "#,
        origin = server.origin(),
        key = key_file.display(),
    ))
    .expect("profiles");
    let profile = profiles.get("partner").expect("profile");
    let client = Client::from_profile(profile).expect("client");
    let bearer = support::client_for(&server)
        .bearer_token(SecretString::from(TOKEN_CANARY))
        .build()
        .expect("bearer client");

    let mut shown = vec![
        format!("{profiles:?}"),
        format!("{profile:?}"),
        format!("{client:?}"),
        format!("{bearer:?}"),
        format!("{:?}", client.get(format!("/ok?api_key={QUERY_CANARY}"))),
    ];
    let mut show_err = |err: outbound::Error| {
        shown.push(format!("{err}"));
        shown.push(format!("{err:?}"));
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            shown.push(format!("{cause} {cause:?}"));
            source = cause.source();
        }
    };

    let ok = client
        .get(format!("/ok?page=1&api_key={QUERY_CANARY}"))
        .send()
        .await
        .expect("ok");
    let response_debug = format!("{ok:?} {}", ok.url());
    ok.text().await.expect("body");
    bearer.get("/ok").send().await.expect("ok");

    show_err(
        client
            .get(format!("/fail?api_key={QUERY_CANARY}"))
            .send()
            .await
            .expect("503")
            .error_for_status()
            .unwrap_err(),
    );
    show_err(
        client
            .get(format!("/stall?api_key={QUERY_CANARY}"))
            .send()
            .await
            .unwrap_err(),
    );
    show_err(
        client
            .get(format!("/big?api_key={QUERY_CANARY}"))
            .send()
            .await
            .expect("head")
            .bytes()
            .await
            .unwrap_err(),
    );
    show_err(
        client
            .get(format!("/ok?api_key={QUERY_CANARY}"))
            .send()
            .await
            .expect("ok")
            .json::<Vec<u8>>()
            .await
            .unwrap_err(),
    );
    show_err(
        client
            .get(format!("/away?api_key={QUERY_CANARY}"))
            .send()
            .await
            .unwrap_err(),
    );
    show_err(
        bearer
            .get("/stall")
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .unwrap_err(),
    );
    let userinfo_url = format!(
        "http://admin:{USERINFO_CANARY}@{}/ok?api_key={QUERY_CANARY}",
        server.addr()
    );
    show_err(client.get(&userinfo_url).send().await.unwrap_err());
    show_err(
        client
            .get("/ok")
            .header("x-api-key", format!("{KEY_CANARY}\r\n"))
            .send()
            .await
            .unwrap_err(),
    );

    // The secrets were really in play: the server saw them where they belong.
    let seen = server.requests();
    assert!(
        seen.iter()
            .any(|r| r.header("x-api-key") == Some(KEY_CANARY))
    );
    assert!(seen.iter().any(|r| r.target.contains(QUERY_CANARY)));
    assert!(
        seen.iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN_CANARY}")))
    );

    assert_clean("a response's Debug or URL", &response_debug);
    for text in &shown {
        assert_clean("an error or Debug output", text);
    }
    let trace = capture.text();
    assert!(
        trace.contains("otel.kind=\"client\""),
        "the capture saw the call spans:\n{trace}"
    );
    assert!(
        trace.contains("api_key=REDACTED"),
        "URLs are logged, redacted:\n{trace}"
    );
    assert_clean("TRACE output", &trace);
}

#[tokio::test]
async fn api_key_in_a_query_parameter_is_always_redacted() {
    let (capture, _guard) = Capture::start();
    let server = server().await;
    let client = support::client_for(&server)
        .api_key_query_param("partner_token", SecretString::from(KEY_CANARY))
        .build()
        .expect("client");
    let response = client.get("/ok").send().await.expect("ok");
    assert!(
        response.url().expose().as_str().contains(KEY_CANARY),
        "the key was sent"
    );
    assert!(
        response
            .url()
            .to_string()
            .ends_with("partner_token=REDACTED"),
        "{}",
        response.url()
    );
    let err = response.json::<String>().await.expect_err("not a string");
    assert_clean("error", &format!("{err} {err:?}"));
    assert_clean("TRACE output", &capture.text());
    assert!(
        server.requests()[0]
            .target
            .contains(&format!("partner_token={KEY_CANARY}"))
    );
}
