//! A chaos workload against a loopback server that misbehaves on purpose.
//!
//! `cargo run --release --example chaos`
//!
//! 1. A flaky origin: of every request, 20 % get a 503, 1 % a connection reset, 1 % a stall
//!    (no answer ever) and 0.1 % a 429 with `Retry-After: 1` (which pauses the whole origin for a
//!    second). 10 000 calls at concurrency 64: GETs, POSTs with an idempotency key, and POSTs
//!    without one. Reports the success rate, attempts per call and latency, and checks on the
//!    server's side that no POST without a key ever arrived twice.
//! 2. The origin fully down (every request a 503): how many requests the calls send
//!    (amplification) with the breaker off, where only the retry budget holds them back, and with
//!    the breaker on, how soon it opens and how many calls it sheds.
//!
//! Both run with the default retry settings (3 attempts, a budget of 20 % of calls) and with
//! settings for a partner known to be flaky (5 attempts, 35 %): with 22 % of requests failing,
//! a call needs 1 / 0.78 = 1.28 attempts on average, more than a 20 % budget allows, so the
//! default gives up on some calls rather than add load, which is its purpose.
//!
//! Exits non-zero if a keyless POST was sent twice or a budget let amplification pass its share.

#[path = "../tests/support/server.rs"]
mod server;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::ensure;
use server::{Reply, TestServer};
use tokio::time::Instant;

const CALLS: usize = 10_000;
const CONCURRENCY: usize = 64;
const DOWN_CALLS: usize = 2_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Get,
    KeyedPost,
    KeylessPost,
}

/// What the flaky server did, counted on its side.
#[derive(Default)]
struct Injected {
    requests: AtomicU64,
    unavailable: AtomicU64,
    resets: AtomicU64,
    stalls: AtomicU64,
    throttled: AtomicU64,
    /// Keyless POSTs by call id: any count above one is a duplicate.
    keyless_posts: Mutex<HashMap<String, u32>>,
}

fn flaky(injected: Arc<Injected>) -> impl Fn(&server::Recorded) -> Reply + Send + Sync {
    move |request| {
        injected.requests.fetch_add(1, Ordering::Relaxed);
        if request.method == "POST" && request.header("idempotency-key").is_none() {
            let id = request.header("x-call-id").unwrap_or_default().to_owned();
            *injected
                .keyless_posts
                .lock()
                .expect("lock")
                .entry(id)
                .or_default() += 1;
        }
        let roll = fastrand::f64();
        if roll < 0.20 {
            injected.unavailable.fetch_add(1, Ordering::Relaxed);
            Reply::status(503)
        } else if roll < 0.21 {
            injected.resets.fetch_add(1, Ordering::Relaxed);
            Reply::Reset
        } else if roll < 0.22 {
            injected.stalls.fetch_add(1, Ordering::Relaxed);
            Reply::Stall
        } else if roll < 0.221 {
            injected.throttled.fetch_add(1, Ordering::Relaxed);
            Reply::status(429).header("retry-after", "1")
        } else {
            Reply::json(200, r#"{"ok":true}"#)
        }
    }
}

/// One call's result, as the caller saw it.
struct Done {
    kind: Kind,
    ok: bool,
    attempts: u32,
    latency: Duration,
    shed: bool,
}

async fn call(client: &outbound::Client, kind: Kind, id: usize) -> Done {
    let started = Instant::now();
    let id = id.to_string();
    let request = match kind {
        Kind::Get => client.get(format!("/orders/{id}")),
        Kind::KeyedPost => client
            .post("/payments")
            .idempotency_key(format!("pay-{id}"))
            .json(&serde_json::json!({"amount": 1000})),
        Kind::KeylessPost => client
            .post("/events")
            .json(&serde_json::json!({"event": "seen"})),
    }
    .header("x-call-id", id.as_str());
    let (ok, attempts, shed) = match request.send().await {
        Ok(response) => {
            let (ok, attempts) = (response.status().is_success(), response.attempts());
            let read = response.bytes().await.is_ok();
            (ok && read, attempts, false)
        }
        Err(err) => (false, err.attempts(), err.is_circuit_open()),
    };
    Done {
        kind,
        ok,
        attempts,
        latency: started.elapsed(),
        shed,
    }
}

/// Runs `calls` calls, `CONCURRENCY` at a time, of the kinds `kind_of(i)` picks.
async fn drive(
    client: &outbound::Client,
    calls: usize,
    kind_of: impl Fn(usize) -> Kind + Send + Sync + Copy + 'static,
) -> Vec<(Duration, Done)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, next) = (client.clone(), next.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return done;
                }
                let result = call(&client, kind_of(i), i).await;
                done.push((started.elapsed(), result));
            }
        });
    }
    let mut all = Vec::with_capacity(calls);
    while let Some(done) = workers.join_next().await {
        all.extend(done.expect("worker"));
    }
    all
}

fn percentile(mut values: Vec<Duration>, q: f64) -> Duration {
    values.sort();
    values
        .get(((values.len().saturating_sub(1)) as f64 * q) as usize)
        .copied()
        .unwrap_or_default()
}

/// Retry settings under test.
#[derive(Clone, Copy)]
struct Retries {
    name: &'static str,
    max_attempts: u32,
    budget_percent: u32,
}

const DEFAULT: Retries = Retries {
    name: "default (3 attempts, budget 20 %)",
    max_attempts: 3,
    budget_percent: 20,
};

const FLAKY_PARTNER: Retries = Retries {
    name: "flaky partner (5 attempts, budget 35 %)",
    max_attempts: 5,
    budget_percent: 35,
};

fn client(origin: &str, retries: Retries, breaker: bool) -> outbound::Client {
    outbound::Client::builder()
        .base_url(origin)
        .allow_insecure_http(true) // loopback only
        .attempt_timeout(Duration::from_millis(300)) // a stalled attempt is abandoned quickly
        .total_timeout(Duration::from_secs(10))
        .max_attempts(retries.max_attempts)
        .retry_budget_percent(retries.budget_percent)
        .circuit_breaker_enabled(breaker)
        .build()
        .expect("client")
}

async fn flaky_origin(retries: Retries) -> anyhow::Result<()> {
    let injected = Arc::new(Injected::default());
    let server = TestServer::start(flaky(injected.clone())).await;
    server.stop_recording();
    let client = client(&server.origin(), retries, true);

    let started = Instant::now();
    // Six GETs, three keyed POSTs and one keyless POST in every ten calls.
    let done = drive(&client, CALLS, |i| match i % 10 {
        0..=5 => Kind::Get,
        6..=8 => Kind::KeyedPost,
        _ => Kind::KeylessPost,
    })
    .await;
    let elapsed = started.elapsed();

    println!(
        "\n== 1. A flaky origin, {}: {CALLS} calls at concurrency {CONCURRENCY}",
        retries.name
    );
    println!(
        "injected over {} requests: {} 503s, {} resets, {} stalls, {} 429s with Retry-After: 1",
        injected.requests.load(Ordering::Relaxed),
        injected.unavailable.load(Ordering::Relaxed),
        injected.resets.load(Ordering::Relaxed),
        injected.stalls.load(Ordering::Relaxed),
        injected.throttled.load(Ordering::Relaxed),
    );
    println!(
        "{:<28} {:>6} {:>9} {:>13} {:>9} {:>9}",
        "calls", "count", "success", "attempts/call", "p50", "p99"
    );
    let row = |name: &str, rows: Vec<&Done>| {
        let count = rows.len();
        let ok = rows.iter().filter(|d| d.ok).count();
        let attempts: u32 = rows.iter().map(|d| d.attempts).sum();
        let latencies: Vec<Duration> = rows.iter().map(|d| d.latency).collect();
        println!(
            "{:<28} {:>6} {:>8.2}% {:>13.3} {:>9.1?} {:>9.1?}",
            name,
            count,
            100.0 * ok as f64 / count as f64,
            f64::from(attempts) / count as f64,
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99),
        );
        ok as f64 / count as f64
    };
    let of = |kinds: &[Kind]| -> Vec<&Done> {
        done.iter()
            .map(|(_, d)| d)
            .filter(|d| kinds.contains(&d.kind))
            .collect()
    };
    row("GET", of(&[Kind::Get]));
    row("POST with idempotency key", of(&[Kind::KeyedPost]));
    let replayable = row("GET + keyed POST", of(&[Kind::Get, Kind::KeyedPost]));
    row("POST without key", of(&[Kind::KeylessPost]));
    row("all", of(&[Kind::Get, Kind::KeyedPost, Kind::KeylessPost]));
    let posts = injected.keyless_posts.lock().expect("lock");
    let duplicates = posts.values().filter(|n| **n > 1).count();
    let keyless_calls = of(&[Kind::KeylessPost]);
    let keyless_attempts: u32 = keyless_calls.iter().map(|d| d.attempts).sum();
    println!(
        "keyless POSTs: {} calls, {} requests on the wire, {} ids seen by the server, {} sent twice",
        keyless_calls.len(),
        keyless_attempts,
        posts.len(),
        duplicates,
    );
    println!(
        "wall time {elapsed:.1?}; replay-safe calls that failed: {:.2}%",
        100.0 * (1.0 - replayable)
    );
    ensure!(duplicates == 0, "a POST without a key was sent twice");
    Ok(())
}

async fn origin_down() -> anyhow::Result<()> {
    println!("\n== 2. The origin fully down (every request a 503): {DOWN_CALLS} GETs");
    println!(
        "{:<42} {:>9} {:>14} {:>11} {:>16}",
        "client", "requests", "amplification", "calls shed", "breaker open at"
    );
    for (retries, breaker) in [(DEFAULT, false), (FLAKY_PARTNER, false), (DEFAULT, true)] {
        let server = TestServer::always(Reply::status(503)).await;
        server.stop_recording();
        let client = client(&server.origin(), retries, breaker);
        let done = drive(&client, DOWN_CALLS, |_| Kind::Get).await;
        let requests = server.received();
        let amplification = requests as f64 / DOWN_CALLS as f64;
        let shed = done.iter().filter(|(_, d)| d.shed).count();
        // A shed call ends at once: the first one to end marks the breaker opening.
        let opened = done.iter().filter(|(_, d)| d.shed).map(|(at, _)| *at).min();
        println!(
            "{:<42} {:>9} {:>13.3}x {:>11} {:>16}",
            format!(
                "{}{}",
                retries.name,
                if breaker { " + breaker" } else { "" }
            ),
            requests,
            amplification,
            shed,
            opened.map_or("-".to_owned(), |t| format!("{t:.1?}")),
        );
        // The budget's share of the calls, plus its reserve of 10 retries per 10 s window.
        let allowed = 1.0 + f64::from(retries.budget_percent) / 100.0 + 0.05;
        ensure!(
            amplification <= allowed,
            "the retry budget let amplification reach {amplification:.3}"
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    flaky_origin(DEFAULT).await?;
    flaky_origin(FLAKY_PARTNER).await?;
    origin_down().await
}
