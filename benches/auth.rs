//! The OAuth token cache: the cost of a cache hit, and how many token requests 10 000
//! concurrent calls make at a refresh boundary (the token has just expired).
//!
//! `cargo bench --bench auth`

#[path = "../tests/support/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use outbound::internals::TokenCacheProbe;
use server::{Reply, TestServer};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = issued.clone();
        let tokens = TestServer::start(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Reply::json(
                200,
                r#"{"access_token":"t","token_type":"bearer","expires_in":2}"#,
            )
            .delay(Duration::from_millis(50))
        })
        .await;
        let probe = Arc::new(TokenCacheProbe::new(&tokens.url("/token")).expect("probe"));
        probe.token().await.expect("first token");

        // Cache hits, in one task so only the cache is measured.
        let iterations = 1_000_000u32;
        let mut samples = Vec::new();
        for _ in 0..9 {
            let started = Instant::now();
            for _ in 0..iterations {
                probe.token().await.expect("hit");
            }
            samples.push(started.elapsed().as_nanos() as f64 / f64::from(iterations));
        }
        samples.sort_by(f64::total_cmp);
        println!(
            "{:<48} {:>10.1} ns/op",
            "token cache hit",
            samples[samples.len() / 2]
        );

        // Let the token expire, then 10 000 calls at once.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let before = issued.load(Ordering::SeqCst);
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..10_000 {
            let probe = probe.clone();
            calls.spawn(async move { probe.token().await });
        }
        while let Some(result) = calls.join_next().await {
            result.expect("task").expect("token");
        }
        let fetched = issued.load(Ordering::SeqCst) - before;
        println!(
            "{:<48} {:>10}",
            "token requests for 10 000 calls at expiry", fetched
        );
        assert_eq!(
            fetched, 1,
            "single flight: one token request for every waiting call"
        );
    });
}
