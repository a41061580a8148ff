//! Helpers shared by the integration tests.

#![allow(dead_code, unused_imports)]

pub mod metrics;
#[cfg(feature = "nginx-tests")]
pub mod nginx;
#[cfg(feature = "fleet")]
pub mod redis;
pub mod server;
pub mod tls;
pub mod trace;

pub use server::{Recorded, Reply, TestServer};

/// A client for `server` with loopback http allowed and short timeouts.
pub fn client_for(server: &TestServer) -> outbound::ClientBuilder {
    outbound::Client::builder()
        .base_url(server.origin())
        .allowed_hosts(["127.0.0.1"])
        .allow_insecure_http(true)
}

/// A server whose `/oauth/token` issues `{"access_token":"tok",…}` (valid 10 minutes) after
/// `delay`, and which answers every other path with an empty 200.
pub async fn token_server(delay: std::time::Duration) -> TestServer {
    TestServer::start(move |request| match request.path() {
        "/oauth/token" => Reply::json(
            200,
            r#"{"access_token":"tok","token_type":"Bearer","expires_in":600}"#,
        )
        .delay(delay),
        _ => Reply::ok(""),
    })
    .await
}

/// [`client_for`] with OAuth client credentials from the server's own `/oauth/token`.
pub fn oauth_client_for(server: &TestServer) -> outbound::ClientBuilder {
    client_for(server).oauth2_client_credentials(
        server.url("/oauth/token"),
        "orders",
        outbound::SecretString::from("client-secret"),
    )
}
