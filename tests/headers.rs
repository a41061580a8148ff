//! Default headers per profile, and a User-Agent that names the integration.

mod support;

use support::{Reply, TestServer};

fn profile(server: &TestServer, headers: &str) -> Result<outbound::Client, outbound::Error> {
    let text = format!(
        "[billing]\nbase_url = \"{}\"\nallow_insecure_http = true\n[billing.headers]\n{headers}\n",
        server.origin()
    );
    let profiles = outbound::Profiles::from_toml_str(&text)?;
    outbound::Client::from_profile(profiles.get("billing")?)
}

#[tokio::test]
async fn default_headers_go_on_every_call_unless_the_call_sets_its_own() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = profile(
        &server,
        "Stripe-Version = \"2024-06-20\"\nAccept = \"application/json\"",
    )
    .expect("client");
    client.get("/a").send().await.expect("a");
    client
        .get("/b")
        .header("accept", "text/csv")
        .send()
        .await
        .expect("b");
    let requests = server.requests();
    assert_eq!(requests[0].header("stripe-version"), Some("2024-06-20"));
    assert_eq!(requests[0].header("accept"), Some("application/json"));
    assert_eq!(
        requests[1].header("accept"),
        Some("text/csv"),
        "the call's own wins"
    );
    assert_eq!(requests[1].header("stripe-version"), Some("2024-06-20"));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        requests[0].header("user-agent"),
        Some(format!("outbound/{version} (billing)").as_str())
    );
}

#[tokio::test]
async fn the_user_agent_can_be_overridden() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = profile(&server, "User-Agent = \"orders-service/7.1\"").expect("client");
    client.get("/").send().await.expect("sent");
    assert_eq!(
        server.requests()[0].header("user-agent"),
        Some("orders-service/7.1")
    );
}

#[tokio::test]
async fn credentials_cannot_be_default_headers() {
    let server = TestServer::always(Reply::ok("")).await;
    for (line, key) in [
        (
            "Authorization = \"Bearer sk_live_canary\"",
            "headers.Authorization",
        ),
        ("cookie = \"session=canary\"", "headers.cookie"),
        ("X-Api-Key = \"canary\"", "headers.X-Api-Key"),
        ("\"Bad Name\" = \"x\"", "headers.Bad Name"),
        (
            "X-Trace = \"line\\r\\nInjected: canary\"",
            "headers.X-Trace",
        ),
    ] {
        let err = profile(&server, line).expect_err(line);
        assert!(err.is_config(), "{line}: {err}");
        let shown = err.to_string();
        assert!(shown.contains(key), "{line}: {shown}");
        assert!(!shown.contains("canary"), "{line}: {shown}");
    }
    // The configured credential header too, whatever its name.
    let text = format!(
        "[p]\nbase_url = \"{}\"\nallow_insecure_http = true\n[p.auth]\ntype = \"api_key\"\nkey = {{ env = \"PATH\" }}\nheader = \"X-Partner-Key\"\n[p.headers]\nX-Partner-Key = \"canary\"\n",
        server.origin()
    );
    let err = outbound::Profiles::from_toml_str(&text).expect_err("credential header");
    assert!(err.to_string().contains("headers.X-Partner-Key"), "{err}");
    let err = outbound::Client::builder()
        .base_url("https://a.example")
        .default_header("Authorization", "Bearer canary")
        .build()
        .expect_err("builder too");
    assert!(
        err.is_config() && !err.to_string().contains("canary"),
        "{err}"
    );
}

#[tokio::test]
async fn per_call_headers_cannot_be_default_headers() {
    let server = TestServer::always(Reply::ok("")).await;
    for (line, key) in [
        ("Idempotency-Key = \"fixed\"", "headers.Idempotency-Key"),
        ("X-Request-Id = \"fixed\"", "headers.X-Request-Id"),
        ("Host = \"evil.example\"", "headers.Host"),
        ("Content-Length = \"0\"", "headers.Content-Length"),
        ("X-Auth-Token = \"canary\"", "headers.X-Auth-Token"),
    ] {
        let err = profile(&server, line).expect_err(line);
        let shown = err.to_string();
        assert!(err.is_config() && shown.contains(key), "{line}: {shown}");
        assert!(
            !shown.contains("canary") && !shown.contains("fixed"),
            "{shown}"
        );
    }
}
