//! A testing kit (feature `testing`): the scripted loopback server the crate's own tests use,
//! and a client preset with almost no backoff, so that your tests of retry and error handling
//! run in milliseconds against real HTTP on loopback.
//!
//! ```
//! use outbound::testing::{Reply, TestServer, fast_client};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // A partner that fails once, then answers.
//! let partner = TestServer::script(vec![Reply::status(503), Reply::json(200, r#"{"ok":true}"#)]).await;
//! let client = fast_client(&partner).build()?;
//! let response = client.get("/v1/orders/7").send().await?;
//! assert_eq!((response.status().as_u16(), response.attempts()), (200, 2));
//! assert_eq!(partner.hits_on("/v1/orders/7"), 2);
//! # Ok::<(), outbound::Error>(())
//! # }).unwrap();
//! ```
//!
//! [`Reply`] scripts what the server does: answer (with headers, a delay, a trickled body),
//! reset the connection, stall forever, stall after the head, send an endless or truncated
//! body, or a gzip bomb. [`TestServer`] records every request (method, target, headers, body,
//! arrival time) and counts connections.

#[path = "../tests/support/server.rs"]
mod server;

pub use server::{Recorded, Reply, TestServer};

/// A builder for a client of `server`: its origin as `base_url`, plain http on loopback
/// allowed, and backoff of 1 ms (at most 10 ms), so a retry costs a test nothing. Every other
/// setting is the default profile's; set more on the builder.
pub fn fast_client(server: &TestServer) -> crate::ClientBuilder {
    crate::Client::builder()
        .base_url(server.origin())
        .allowed_hosts(["127.0.0.1"])
        .allow_insecure_http(true)
        .initial_backoff(std::time::Duration::from_millis(1))
        .max_backoff(std::time::Duration::from_millis(10))
}
