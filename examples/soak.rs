//! A bounded soak: many calls through the whole pipeline, checking that memory stays flat.
//!
//! `cargo run --release --example soak` (2 000 000 calls; `SOAK_CALLS=n` for another count)
//!
//! 64 concurrent callers spread calls over 10 000 distinct paths on 300 loopback origins (more
//! than the 256 origins whose breaker, budget and limiter state a client keeps), with OAuth
//! tokens that live 2 s (so one is fetched about every second) and a 401 on one request in
//! 50 000 (so a token is thrown away and fetched again), the breaker on, a rate limiter that binds
//! (`RATE` calls/s per origin, below what 64 callers offer the first 256 origins, so calls wait
//! for their slots all the time; one call in 1 000 goes to one of the 44 origins past the 256th,
//! which share the overflow entry and its limiter), and an INFO JSON subscriber writing every
//! span and event to a sink. RSS
//! is read from `/proc/self/status` after a warm-up and then at every tenth of the run; the run
//! fails if it grows by more than `MAX_GROWTH_KIB` from the first reading after warm-up to the
//! end, if any call fails for another reason than the rate limit, or if any origin's server saw
//! more than the limit allows.

#[path = "../tests/support/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use secrecy::SecretString;
use server::{Reply, TestServer};
use tokio::time::Instant;

const CONCURRENCY: usize = 64;
const PATHS: usize = 10_000;
const ORIGINS: usize = 300;
/// Origins whose state the client keeps apart (`MAX_ORIGINS`); the rest share one entry.
const TRACKED: usize = 256;
const MAX_GROWTH_KIB: u64 = 8 * 1024;
/// Calls per second per origin, and the burst.
const RATE: f64 = 60.0;
const BURST: u32 = 5;

fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::var("SOAK_CALLS")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .context("SOAK_CALLS must be a number")?
        .unwrap_or(2_000_000);

    let requests = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(AtomicUsize::new(0));
    let mut servers = Vec::with_capacity(ORIGINS);
    let mut per_origin = Vec::with_capacity(ORIGINS);
    for _ in 0..ORIGINS {
        let (requests, tokens) = (requests.clone(), tokens.clone());
        let seen = Arc::new(AtomicUsize::new(0));
        per_origin.push(seen.clone());
        let server = TestServer::start(move |request| {
            if request.path() == "/oauth/token" {
                tokens.fetch_add(1, Ordering::Relaxed);
                return Reply::json(
                    200,
                    r#"{"access_token":"soak-token","token_type":"Bearer","expires_in":2}"#,
                );
            }
            seen.fetch_add(1, Ordering::Relaxed);
            if requests.fetch_add(1, Ordering::Relaxed) % 50_000 == 49_999 {
                Reply::status(401)
            } else {
                Reply::json(200, r#"{"id":42,"status":"shipped"}"#)
            }
        })
        .await;
        server.stop_recording();
        servers.push(server);
    }
    let origins: Vec<String> = servers.iter().map(TestServer::origin).collect();
    let client = outbound::Client::builder()
        .base_url(&origins[0])
        .allow_insecure_http(true) // loopback only
        .oauth2_client_credentials(
            format!("{}/oauth/token", origins[0]),
            "soak-client",
            SecretString::from("soak-secret"),
        )
        .oauth2_refresh_before_expiry(Duration::from_secs(1))
        .rate_limit(RATE, Some(BURST))
        .total_timeout(Duration::from_secs(2))
        .build()?;
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::set_global_default(subscriber)?;

    let origins = Arc::new(origins);
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let paced_away = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, origins, next, failures, paced_away) = (
            client.clone(),
            origins.clone(),
            next.clone(),
            failures.clone(),
            paced_away.clone(),
        );
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return;
                }
                let origin = if i % 1000 == 999 {
                    &origins[TRACKED + (i / 1000) % (ORIGINS - TRACKED)]
                } else {
                    &origins[i % TRACKED]
                };
                let url = format!("{origin}/items/{}", i % PATHS);
                let result = match client.get(url).send().await {
                    Ok(response) => response.bytes().await.map(drop),
                    Err(err) => Err(err),
                };
                match result {
                    Err(err) if err.is_rate_limited() => {
                        paced_away.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) if failures.fetch_add(1, Ordering::Relaxed) == 0 => {
                        eprintln!("first failure: {err}");
                    }
                    _ => {}
                }
            }
        });
    }

    // RSS after a warm-up (connections to every origin, allocator arenas, the origin map full),
    // then at every tenth of the run.
    let mut readings = Vec::new();
    let mut reported = 0;
    while !workers.is_empty() {
        tokio::select! {
            done = workers.join_next() => { done.transpose()?; }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let done = next.load(Ordering::Relaxed).min(calls);
        let tenth = done * 10 / calls.max(1);
        if tenth > reported || (workers.is_empty() && reported < 10) {
            reported = if workers.is_empty() { 10 } else { tenth };
            let rss = rss_kib()?;
            println!(
                "{:>3} %  {:>9} calls  {:>7.1} s  RSS {:>7} KiB",
                reported * 10,
                done,
                started.elapsed().as_secs_f64(),
                rss
            );
            readings.push(rss);
        }
    }
    let elapsed = started.elapsed();
    let failed = failures.load(Ordering::Relaxed);
    let paced_away = paced_away.load(Ordering::Relaxed);
    // What GCRA admits in `elapsed` at RATE with BURST, plus one slot of slack per second for
    // the clock granularity of the two sides.
    let allowed =
        (RATE * elapsed.as_secs_f64() + f64::from(BURST) + elapsed.as_secs_f64()) as usize;
    let busiest = per_origin
        .iter()
        .map(|seen| seen.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    println!(
        "{calls} calls in {:.1} s ({:.0} calls/s), {failed} failed; {} API requests, {} tokens fetched",
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64(),
        requests.load(Ordering::Relaxed),
        tokens.load(Ordering::Relaxed),
    );
    let (first, last) = (readings[0], *readings.last().unwrap_or(&readings[0]));
    println!(
        "RSS after the first tenth {first} KiB, at the end {last} KiB: {:+} KiB",
        last as i64 - first as i64
    );
    ensure!(
        last <= first + MAX_GROWTH_KIB,
        "memory grew by {} KiB",
        last - first
    );
    println!(
        "rate limit {RATE}/s per origin: the busiest origin saw {busiest} requests (at most {allowed} allowed); {paced_away} calls refused by the limiter before their deadline"
    );
    ensure!(failed == 0, "{failed} calls failed");
    ensure!(
        busiest <= allowed,
        "an origin saw {busiest} requests, more than the {allowed} its quota allows"
    );
    ensure!(
        busiest as f64 >= RATE * elapsed.as_secs_f64() * 0.5,
        "the busiest origin saw only {busiest} requests: the limiter did not bind, the soak did not pace"
    );
    Ok(())
}
