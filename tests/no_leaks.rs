//! The proof that no secret gets out: one scenario through every path of the crate (success,
//! retries, a 401 refresh, token endpoint errors, an open breaker, rate limits, redirects,
//! oversized bodies, timeouts, config errors, a panic in a task) with a canary in every place a
//! secret can be: an OAuth client secret, an access token, an API key header, an `?api_key=`
//! query value, a URL userinfo password and a masked JSON field. Everything `tracing` emits at
//! TRACE is captured with both the text and the JSON formatter, along with the `Display`,
//! `Debug` and source chain of every error and the `Debug` of every public type.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outbound::{Client, Profiles, SecretString};
use support::trace::Capture;
use support::{Reply, TestServer};
use tracing_subscriber::prelude::*;

const CLIENT_SECRET: &str = "cs-canary-7a1f93";
const ACCESS_TOKEN: &str = "at-canary-2c8e55";
const API_KEY: &str = "ak-canary-91d0b7";
const QUERY_KEY: &str = "qk-canary-4be613";
const USERINFO: &str = "up-canary-e5a902";
const JSON_FIELD: &str = "jf-canary-0f3c77d1";
const CANARIES: [&str; 6] = [
    CLIENT_SECRET,
    ACCESS_TOKEN,
    API_KEY,
    QUERY_KEY,
    USERINFO,
    JSON_FIELD,
];

/// Everything the scenario shows: formatted errors and `Debug`s.
#[derive(Default)]
struct Shown(Vec<String>);

impl Shown {
    fn debug(&mut self, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{value:?}"));
    }

    fn error(&mut self, err: &outbound::Error) {
        self.0.push(format!("{err} | {err:?} | {:?}", err.kind()));
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            self.0.push(format!("{cause} | {cause:?}"));
            source = cause.source();
        }
    }

    fn result<T: std::fmt::Debug>(&mut self, result: Result<T, outbound::Error>) {
        match result {
            Ok(value) => self.debug(&value),
            Err(err) => self.error(&err),
        }
    }
}

async fn partner_api(landing: String) -> TestServer {
    let tokens = AtomicUsize::new(0);
    let flaky = AtomicUsize::new(0);
    TestServer::start(move |request| match request.path() {
        "/oauth/token" => {
            let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::json(200, &format!(r#"{{"access_token":"{ACCESS_TOKEN}-{n}","token_type":"bearer","expires_in":3600}}"#))
        }
        "/oauth/broken" => Reply::status(500)
            .header("content-type", "text/html")
            .body(format!("<html>{ACCESS_TOKEN} {CLIENT_SECRET}</html>")),
        "/oauth/refused" => Reply::json(
            400,
            r#"{"error":"invalid_client","error_description":"unknown client"}"#,
        ),
        "/api/ok" => Reply::json(200, &format!(r#"{{"user":"ada","password":"{JSON_FIELD}"}}"#)),
        "/api/flaky" if flaky.fetch_add(1, Ordering::SeqCst) == 0 => Reply::status(503),
        "/api/flaky" => Reply::ok("recovered"),
        "/api/unauthorized-once" => match request.header("authorization") {
            Some(value) if value.ends_with("-1") => Reply::status(401),
            _ => Reply::ok("fresh token accepted"),
        },
        "/api/down" => Reply::status(503),
        "/api/slow-down" => Reply::status(503).header("retry-after", "30"),
        "/api/big" => Reply::ok(vec![b'x'; 4096]),
        "/api/stall" => Reply::Stall,
        "/api/redirect" => Reply::redirect(302, &landing),
        _ => Reply::status(404),
    })
    .await
}

fn write_secret(name: &str, value: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("outbound-no-leaks-{name}-{}", std::process::id()));
    std::fs::write(&path, format!("{value}\n")).expect("secret file");
    path
}

#[tokio::test]
async fn no_canary_appears_in_any_output_on_any_path() {
    let text = Capture::default();
    let json = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(text.clone()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(json.clone()),
        )
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let _guard = tracing::subscriber::set_default(subscriber);

    let landing = TestServer::always(Reply::ok("landed")).await;
    let api = partner_api(landing.url("/landing")).await;
    let secret_file = write_secret("secret", CLIENT_SECRET);
    let key_file = write_secret("key", API_KEY);
    let origin = api.origin();
    let toml = format!(
        r#"
        [oauth]
        base_url = "{origin}/api"
        allow_insecure_http = true
        max_response_bytes = 1024
        [oauth.timeouts]
        attempt = "300ms"
        [oauth.retry]
        initial_backoff = "5ms"
        [oauth.log]
        bodies = true
        [oauth.auth]
        type = "oauth2_client_credentials"
        token_url = "{origin}/oauth/token"
        client_id = "orders-service"
        client_secret = {{ file = "{secret}" }}

        [keyed]
        base_url = "{origin}/api"
        allowed_hosts = ["127.0.0.1"]
        allow_insecure_http = true
        follow_redirects = true
        [keyed.circuit_breaker]
        minimum_requests = 3
        [keyed.retry]
        max_attempts = 1
        [keyed.auth]
        type = "api_key"
        key = {{ file = "{key}" }}
        "#,
        secret = secret_file.display(),
        key = key_file.display(),
    );
    let profiles = Profiles::from_toml_str(&toml).expect("profiles");
    let oauth = Client::from_profile(profiles.get("oauth").expect("oauth")).expect("client");
    let keyed = Client::from_profile(profiles.get("keyed").expect("keyed")).expect("client");
    let mut shown = Shown::default();
    for value in [
        &profiles as &dyn std::fmt::Debug,
        profiles.get("oauth").expect("oauth"),
        &oauth,
        &keyed,
    ] {
        shown.debug(value);
    }
    shown.debug(
        &Client::builder_from(profiles.get("oauth").expect("oauth"))
            .bearer_token(SecretString::from(ACCESS_TOKEN)),
    );
    shown.debug(
        &oauth
            .get(format!("/ok?api_key={QUERY_KEY}"))
            .header("x-api-key", API_KEY),
    );
    for value in [
        &outbound::Proxy::None as &dyn std::fmt::Debug,
        &outbound::TlsVersion::Tls13,
        &outbound::AuthMethod::ClientSecretPost,
    ] {
        shown.debug(value);
    }

    // Success, with the body log on: a JSON request and response with a masked field.
    let response = oauth
        .post(format!("/ok?api_key={QUERY_KEY}"))
        .json(&serde_json::json!({ "password": JSON_FIELD, "note": "hello" }))
        .send()
        .await
        .expect("ok");
    shown.debug(&response);
    shown.0.push(response.url().to_string());
    // The body itself is the caller's to read; only what the crate shows is checked.
    response.text().await.expect("body");
    // A retry, a 401 answered by one refresh, an open breaker, rate limits, a redirect.
    shown.result(
        oauth
            .get(format!("/flaky?api_key={QUERY_KEY}"))
            .send()
            .await,
    );
    shown.result(oauth.get("/unauthorized-once").send().await);
    for _ in 0..4 {
        shown.result(keyed.get(format!("/down?api_key={QUERY_KEY}")).send().await);
    }
    shown.result(
        keyed
            .get(format!(
                "{}/api/slow-down?api_key={QUERY_KEY}",
                landing.origin()
            ))
            .send()
            .await,
    );
    let paused = Client::builder_from(profiles.get("keyed").expect("keyed"))
        .circuit_breaker_enabled(false)
        .build()
        .expect("client");
    shown.result(paused.get("/slow-down").send().await);
    let limited = paused
        .get(format!("/slow-down?api_key={QUERY_KEY}"))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(
        limited
            .as_ref()
            .is_err_and(outbound::Error::is_rate_limited),
        "the paused origin must refuse: {limited:?}"
    );
    shown.result(limited);
    shown.result(
        paused
            .get(format!("{}/landing?api_key={QUERY_KEY}", landing.origin()))
            .send()
            .await,
    );
    let redirecting = Client::builder_from(profiles.get("keyed").expect("keyed"))
        .build()
        .expect("client");
    shown.result(
        redirecting
            .get(format!("/redirect?api_key={QUERY_KEY}"))
            .send()
            .await,
    );
    // Limits: a body too large, a stall, a foreign and a credentialed URL.
    let big = oauth
        .get(format!("/big?api_key={QUERY_KEY}"))
        .send()
        .await
        .expect("head");
    shown.result(big.bytes().await);
    shown.result(
        oauth
            .get(format!("/stall?api_key={QUERY_KEY}"))
            .send()
            .await,
    );
    shown.result(
        oauth
            .get(format!(
                "http://admin:{USERINFO}@127.0.0.1:1/x?api_key={QUERY_KEY}"
            ))
            .send()
            .await,
    );
    shown.result(
        oauth
            .get(format!("https://evil.example/?api_key={QUERY_KEY}"))
            .send()
            .await,
    );
    shown.result(
        oauth
            .get("/ok")
            .header("x-api-key", format!("{API_KEY}\n"))
            .send()
            .await,
    );
    // Token endpoint errors: an HTML page holding the canaries, and a refusal.
    for path in ["/oauth/broken", "/oauth/refused"] {
        let client = Client::builder_from(profiles.get("oauth").expect("oauth"))
            .oauth2_client_credentials(
                format!("{origin}{path}"),
                "orders-service",
                SecretString::from(CLIENT_SECRET),
            )
            .build()
            .expect("client");
        shown.result(client.get("/ok").send().await);
        shown.debug(&client);
    }
    // Config errors that would echo a secret if they quoted their input.
    for toml in [
        format!("[p]\nbase_url = 'https://u:{USERINFO}@a.example'\n"),
        format!(
            "[p]\nbase_url = 'https://a.example'\n[p.auth]\ntype = 'bearer'\ntoken = '{ACCESS_TOKEN}'\n"
        ),
        format!(
            "[p]\nbase_url = 'https://a.example'\nproxy = 'http://u:{USERINFO}@proxy:3128'\nx = \"{API_KEY}\n"
        ),
        format!("[p]\nbase_url = 'https://a.example'\nproxy = 'ftp://u:{USERINFO}@proxy'\n"),
    ] {
        shown.result(Profiles::from_toml_str(&toml));
    }
    shown.result(
        Client::builder()
            .base_url(format!("https://u:{USERINFO}@a.example"))
            .build(),
    );
    // A panic in a task, with an error and a client in its message, caught at the join.
    let err = oauth
        .get(format!("/stall?api_key={QUERY_KEY}"))
        .send()
        .await
        .expect_err("stall");
    let client = oauth.clone();
    let panic =
        tokio::spawn(async move { panic!("giving up: {err} / {err:?} / {client:?}") }).await;
    let payload = panic.expect_err("the task panicked").into_panic();
    shown.0.push(
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    );

    // The canaries were really in play.
    let seen = api.requests();
    assert!(seen.iter().any(|r| {
        r.header("authorization")
            .is_some_and(|v| v.contains(ACCESS_TOKEN))
    }));
    assert!(seen.iter().any(|r| r.header("x-api-key") == Some(API_KEY)));
    assert!(seen.iter().any(|r| r.target.contains(QUERY_KEY)));
    assert!(
        seen.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(JSON_FIELD))
    );

    let text = text.text();
    let json = json.text();
    assert!(
        text.contains("retry scheduled") && text.contains("circuit breaker state changed"),
        "{text}"
    );
    assert!(
        text.contains(r#"direction="response""#),
        "the body log ran: {text}"
    );
    assert!(
        json.lines().count() > 50,
        "the JSON formatter saw the scenario"
    );
    let everything = Arc::new(Mutex::new(vec![("text log", text), ("JSON log", json)]));
    everything
        .lock()
        .expect("lock")
        .extend(shown.0.into_iter().map(|s| ("an error or Debug", s)));
    for (place, output) in everything.lock().expect("lock").iter() {
        for canary in CANARIES {
            assert!(
                !output.contains(canary),
                "{canary} leaked in {place}:\n{output}"
            );
        }
    }
    std::fs::remove_file(secret_file).ok();
    std::fs::remove_file(key_file).ok();
}
