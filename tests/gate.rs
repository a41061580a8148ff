//! The origin gate: requests go only where the profile allows, and a refusal sends nothing.

mod support;

use outbound::{Client, ErrorKind};
use support::{Reply, TestServer};

/// A client whose only allowed host is `localhost`; the servers listen on 127.0.0.1, which is
/// therefore a foreign host for it.
fn localhost_client(server: &TestServer, allowed: &[&str]) -> Client {
    Client::builder()
        .base_url(format!("http://localhost:{}", server.addr().port()))
        .allowed_hosts(allowed.iter().copied())
        .allow_insecure_http(true)
        .build()
        .expect("client")
}

#[tokio::test]
async fn foreign_host_is_refused_before_any_io() {
    let foreign = TestServer::always(Reply::ok("secret data")).await;
    let client = localhost_client(&foreign, &["localhost"]);
    let err = client
        .get(foreign.url("/steal"))
        .send()
        .await
        .expect_err("foreign host");
    assert_eq!(err.kind(), ErrorKind::Disallowed);
    assert!(
        err.to_string()
            .contains("\"127.0.0.1\" is not in allowed_hosts"),
        "{err}"
    );
    assert_eq!(err.attempts(), 0);
    assert_eq!(foreign.hits(), 0);
    assert_eq!(foreign.connections(), 0);
}

#[tokio::test]
async fn http_without_the_opt_in_is_refused_before_any_io() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = Client::builder()
        .base_url("https://api.partner.example")
        .allowed_hosts(["api.partner.example", "127.0.0.1"])
        .build()
        .expect("client");
    let err = client
        .get(server.url("/"))
        .send()
        .await
        .expect_err("plain http");
    assert!(err.is_disallowed(), "{err}");
    assert!(err.to_string().contains("allow_insecure_http"), "{err}");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn crlf_in_a_header_is_refused_and_nothing_is_sent() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = support::client_for(&server).build().expect("client");
    let err = client
        .get("/")
        .header("x-note", "a\r\nx-injected: 1")
        .send()
        .await
        .expect_err("header injection");
    assert!(err.is_builder(), "{err}");
    assert!(
        err.to_string()
            .contains("invalid value for header `x-note`"),
        "{err}"
    );
    assert!(!err.to_string().contains("x-injected"), "{err}");
    let err = client
        .get("/")
        .header("bad name", "v")
        .send()
        .await
        .expect_err("bad name");
    assert!(err.is_builder(), "{err}");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn userinfo_in_an_absolute_url_is_refused_without_being_shown() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = support::client_for(&server).build().expect("client");
    let url = format!("http://admin:hunter2@{}/", server.addr());
    let err = client
        .get(url)
        .send()
        .await
        .expect_err("credentials in URL");
    assert!(err.is_disallowed(), "{err}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn other_schemes_are_refused() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = support::client_for(&server).build().expect("client");
    for url in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "gopher://127.0.0.1/",
    ] {
        let err = client.get(url).send().await.expect_err("scheme");
        assert!(err.is_disallowed(), "{url}: {err}");
    }
}

#[tokio::test]
async fn scheme_relative_path_stays_on_the_base_host() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = support::client_for(&server).build().expect("client");
    client
        .get("//evil.example/x")
        .send()
        .await
        .expect("stays on base host");
    assert_eq!(server.requests()[0].target, "/evil.example/x");
}

// Least privilege: credentials go to base_url's origin; another allowed origin gets them only
// when `auth.hosts` names its host.
#[tokio::test]
async fn credentials_go_to_the_base_origin_only_unless_auth_hosts_names_another() {
    let api = TestServer::always(Reply::ok("")).await;
    let cdn = TestServer::always(Reply::ok("")).await;
    let keyed = |scoped: bool| {
        let builder = support::client_for(&api)
            .api_key("x-api-key", outbound::SecretString::from("key-canary"));
        let builder = if scoped {
            builder.auth_hosts(["127.0.0.1"])
        } else {
            builder
        };
        builder.build().expect("client")
    };
    let client = keyed(false);
    client.get("/x").send().await.expect("base origin");
    client.get(cdn.url("/asset")).send().await.expect("CDN");
    assert_eq!(api.requests()[0].header("x-api-key"), Some("key-canary"));
    assert_eq!(
        cdn.requests()[0].header("x-api-key"),
        None,
        "the CDN got the key"
    );

    keyed(true)
        .get(cdn.url("/asset"))
        .send()
        .await
        .expect("CDN in auth.hosts");
    assert_eq!(cdn.requests()[1].header("x-api-key"), Some("key-canary"));
}

#[tokio::test]
async fn auth_hosts_outside_allowed_hosts_are_refused() {
    let api = TestServer::always(Reply::ok("")).await;
    let err = support::client_for(&api)
        .bearer_token(outbound::SecretString::from("tok"))
        .auth_hosts(["elsewhere.example"])
        .build()
        .expect_err("not allowed");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("auth.hosts"), "{err}");
}

#[tokio::test]
async fn a_relative_path_cannot_climb_out_of_the_base_path() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = support::client_for(&server)
        .base_url(server.url("/v2"))
        .build()
        .expect("client");
    for path in [
        "../admin",
        "/%2e%2e/admin",
        "/users/..%2f..%2fadmin",
        "/users/..;/..;/admin",
        "\t//localhost/v2/x",
        "/\\/localhost/v2/x",
    ] {
        let err = client.get(path).send().await.expect_err(path);
        assert!(err.is_builder(), "{path}: {err}");
    }
    assert_eq!(server.hits(), 0);
}
