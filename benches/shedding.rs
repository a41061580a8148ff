//! The cost of shedding and pacing: a whole call refused by an open breaker, and the breaker
//! and limiter on the happy path.
//!
//! `cargo bench --bench shedding`

#[path = "support.rs"]
mod support;

#[path = "../tests/support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use outbound::internals::{BreakerProbe, LimiterProbe};
use server::{Reply, TestServer};
use support::bench;

/// Median ns per iteration of `f` over 9 batches of `n`, measured inside the runtime.
async fn bench_async<F: std::future::Future>(name: &str, n: u32, mut f: impl FnMut() -> F) {
    let mut samples = Vec::new();
    for _ in 0..9 {
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(f().await);
        }
        samples.push(started.elapsed().as_nanos() as f64 / f64::from(n));
    }
    samples.sort_by(f64::total_cmp);
    println!("{name:<48} {:>10.1} ns/op", samples[samples.len() / 2]);
}

fn main() {
    let breaker = BreakerProbe::default();
    bench("breaker: permit + success (closed)", || {
        breaker.attempt(true)
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let no_quota = LimiterProbe::new(None);
        bench_async("limiter: no quota, not paused", 1_000_000, || {
            no_quota.acquire()
        })
        .await;
        let quota = LimiterProbe::new(Some(1e9));
        bench_async("limiter: quota with free slots", 1_000_000, || {
            quota.acquire()
        })
        .await;

        let server = TestServer::always(Reply::status(503)).await;
        let client = outbound::Client::builder()
            .base_url(server.origin())
            .allow_insecure_http(true)
            .max_attempts(1)
            .circuit_breaker_minimum_requests(1)
            .circuit_breaker_open_for(Duration::from_secs(3600))
            .build()
            .expect("client");
        let _ = client.get("/x").send().await;
        assert!(
            client
                .get("/x")
                .send()
                .await
                .expect_err("open")
                .is_circuit_open()
        );
        bench_async("whole call refused by an open breaker", 200_000, || async {
            client.get("/x").send().await.is_err()
        })
        .await;
    });
}
