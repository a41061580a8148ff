//! Adaptive pacing, shown: a partner with a hidden quota and no rate-limit headers.
//!
//! `cargo run --release --example adaptive`
//!
//! The loopback partner admits 100 requests/s (a token bucket a tenth of a second deep) and
//! answers anything beyond it with a bare `429`: no `Retry-After`, no quota headers, nothing to
//! go by. The caller offers 400 calls/s for 10 s (one attempt each, a 1 s deadline). One row
//! per client setting:
//!
//! - **no `[rate_limit]`**: nothing paces until the 429s form a pattern; then the origin pauses
//!   and is paced at a learned rate from then on (the same pacing as adaptive mode, engaged by
//!   the evidence);
//! - **fixed 50/s**: a quota set too low by hand: no 429s, half the partner's quota left unused;
//! - **adaptive**: `rate_limit.adaptive = true`, learning the quota from the 429s.
//!
//! Columns: requests the partner saw per second, of them admitted per second, admitted as a
//! share of the hidden quota, the share of requests throttled, and calls refused by the client
//! before sending (`is_rate_limited()`: their deadline came before their slot).
//!
//! Ends with one line, `adaptive: of quota …%, throttled …%`, and exits non-zero when adaptive
//! mode gets less than 90 % of the quota or more than 5 % of its requests are throttled.

#[path = "../tests/support/server.rs"]
mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::ensure;
use server::{Reply, TestServer};
use tokio::time::{Instant, MissedTickBehavior};

const QUOTA: f64 = 100.0;
const DEPTH: f64 = 0.1;
const OFFERED: f64 = 400.0;
const RUN: Duration = Duration::from_secs(10);

/// The partner's books: its token bucket, and what it admitted and throttled.
#[derive(Default)]
struct Partner {
    bucket: Mutex<Option<(f64, Instant)>>,
    admitted: AtomicU64,
    throttled: AtomicU64,
}

impl Partner {
    fn answer(&self) -> Reply {
        let now = Instant::now();
        let mut bucket = self.bucket.lock().expect("lock");
        let (level, at) = bucket.get_or_insert((QUOTA * DEPTH, now));
        *level = (*level + (now - *at).as_secs_f64() * QUOTA).min(QUOTA * DEPTH);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            self.admitted.fetch_add(1, Ordering::Relaxed);
            Reply::ok("{}")
        } else {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            Reply::status(429)
        }
    }

    fn reset(&self) {
        *self.bucket.lock().expect("lock") = None;
        self.admitted.store(0, Ordering::Relaxed);
        self.throttled.store(0, Ordering::Relaxed);
    }
}

struct Row {
    name: &'static str,
    sent_per_s: f64,
    ok_per_s: f64,
    of_quota: f64,
    throttled: f64,
    refused: u64,
}

async fn run(
    name: &'static str,
    server: &TestServer,
    partner: &Partner,
    setting: impl FnOnce(outbound::ClientBuilder) -> outbound::ClientBuilder,
) -> anyhow::Result<Row> {
    partner.reset();
    let client = setting(
        outbound::Client::builder()
            .base_url(server.origin())
            .allowed_hosts(["127.0.0.1"])
            .allow_insecure_http(true)
            .max_attempts(1)
            .total_timeout(Duration::from_secs(1))
            .circuit_breaker_enabled(false),
    )
    .build()?;
    let refused = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / OFFERED));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut calls = Vec::new();
    while start.elapsed() < RUN {
        tick.tick().await;
        let (client, refused) = (client.clone(), refused.clone());
        calls.push(tokio::spawn(async move {
            if let Err(e) = client.get("/api").send().await
                && e.is_rate_limited()
                && e.status().is_none()
            {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for call in calls {
        call.await?;
    }
    // The last calls finish after the last is offered: the partner's seconds run until then.
    let secs = start.elapsed().as_secs_f64();
    let ok = partner.admitted.load(Ordering::Relaxed) as f64;
    let no = partner.throttled.load(Ordering::Relaxed) as f64;
    Ok(Row {
        name,
        sent_per_s: (ok + no) / secs,
        ok_per_s: ok / secs,
        of_quota: ok / secs / QUOTA,
        throttled: if ok + no > 0.0 { no / (ok + no) } else { 0.0 },
        refused: refused.load(Ordering::Relaxed),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let partner = Arc::new(Partner::default());
    let books = partner.clone();
    let server = TestServer::start(move |_| books.answer()).await;
    server.stop_recording();

    println!(
        "hidden quota {QUOTA:.0}/s (bare 429 beyond it), offered {OFFERED:.0} calls/s for {} s",
        RUN.as_secs()
    );
    let rows = [
        run("no [rate_limit]", &server, &partner, |b| b).await?,
        // A burst no deeper than the partner's: a deeper one after each pause would be met by
        // 429s, which would pause the origin again.
        run("fixed 50/s", &server, &partner, |b| {
            b.rate_limit(50.0, Some(5))
        })
        .await?,
        run("adaptive", &server, &partner, |b| {
            b.adaptive_rate_limit(true)
        })
        .await?,
    ];
    println!(
        "| {:<15} | {:>8} | {:>7} | {:>8} | {:>9} | {:>14} |",
        "client", "sent/s", "ok/s", "of quota", "throttled", "refused locally"
    );
    println!(
        "|{:-<17}|{:->10}|{:->9}|{:->10}|{:->11}|{:->16}|",
        ":", ":", ":", ":", ":", ":"
    );
    for r in &rows {
        println!(
            "| {:<15} | {:>8.1} | {:>7.1} | {:>7.1}% | {:>8.1}% | {:>15} |",
            r.name,
            r.sent_per_s,
            r.ok_per_s,
            r.of_quota * 100.0,
            r.throttled * 100.0,
            r.refused
        );
    }
    let adaptive = &rows[2];
    println!(
        "adaptive: of quota {:.1}%, throttled {:.1}%",
        adaptive.of_quota * 100.0,
        adaptive.throttled * 100.0
    );
    ensure!(
        adaptive.of_quota >= 0.90,
        "adaptive mode got less than 90% of the quota"
    );
    ensure!(
        adaptive.throttled < 0.05,
        "adaptive mode had 5% or more of its requests throttled"
    );
    Ok(())
}
