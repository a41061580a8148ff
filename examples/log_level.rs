//! Changing the level of `outbound`'s logs at runtime, with JSON output.
//!
//! `cargo run --example log_level`
//!
//! A service installs its subscriber once, with the filter behind a `reload` handle. During an
//! incident an operator raises `outbound` to DEBUG (per attempt, retries, waits) or TRACE without
//! a restart, then lowers it again. Here the switch is a function call; in a service it would sit
//! behind an admin endpoint or a signal.

#[path = "../tests/support/server.rs"]
mod server;

use std::time::Duration;

use server::{Reply, TestServer};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::reload;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // INFO for outbound (one span per call, decisions such as retries), WARN for the rest.
    let filter = Targets::new()
        .with_target("outbound", LevelFilter::INFO)
        .with_default(LevelFilter::WARN);
    let (filter, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false),
        )
        .init();

    let api = TestServer::script(vec![Reply::status(503), Reply::ok("{}")]).await;
    let client = outbound::Client::builder()
        .base_url(api.origin())
        .allow_insecure_http(true)
        .initial_backoff(Duration::from_millis(10))
        .build()?;

    eprintln!("--- outbound at INFO: the retry decision is logged");
    client
        .get("/v1/orders?api_key=sk_live_abc123")
        .send()
        .await?;

    eprintln!("--- raising outbound to DEBUG at runtime: every attempt is logged too");
    handle.modify(|targets| {
        *targets = Targets::new()
            .with_target("outbound", LevelFilter::DEBUG)
            .with_default(LevelFilter::WARN);
    })?;
    client.get("/v1/orders/42").send().await?;

    eprintln!("--- back to WARN: silence");
    handle.modify(|targets| *targets = Targets::new().with_default(LevelFilter::WARN))?;
    client.get("/v1/orders/43").send().await?;
    Ok(())
}
