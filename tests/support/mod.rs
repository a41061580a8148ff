//! Helpers shared by the integration tests.

#![allow(dead_code, unused_imports)]

pub mod metrics;
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
