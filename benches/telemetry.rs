//! The cost of observability: sequential calls over one keep-alive connection to a loopback
//! server, for bare reqwest and for `outbound` with no subscriber, an INFO JSON subscriber
//! writing to a sink, and a TRACE subscriber. Variants run interleaved, five rounds each, and
//! the median throughput is reported with its ratio to bare reqwest.
//!
//! `cargo bench --bench telemetry`

#[path = "../tests/support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use server::{Reply, TestServer};
use tracing::Level;

const CALLS: u32 = 4_000;
const ROUNDS: usize = 5;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Reqwest,
    Outbound,
    OutboundInfoJson,
    OutboundTrace,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Reqwest => "bare reqwest",
            Variant::Outbound => "outbound, no subscriber",
            Variant::OutboundInfoJson => "outbound, INFO JSON subscriber",
            Variant::OutboundTrace => "outbound, TRACE subscriber",
        }
    }
}

fn main() {
    // The server gets its own thread and runtime, so it does not share the client's.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let server = TestServer::always(Reply::json(200, r#"{"ok":true}"#)).await;
            tx.send(server.origin()).expect("send origin");
            std::future::pending::<()>().await;
        });
    });
    let origin = rx.recv().expect("server origin");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let bare = reqwest::Client::builder().build().expect("reqwest");
    let client = outbound::Client::builder()
        .base_url(&origin)
        .allow_insecure_http(true)
        .build()
        .expect("outbound");
    let url = format!("{origin}/v1/orders/42");

    let run = |variant: Variant| -> f64 {
        let calls = async {
            let started = Instant::now();
            for _ in 0..CALLS {
                if variant == Variant::Reqwest {
                    let response = bare.get(&url).send().await.expect("reqwest call");
                    response.bytes().await.expect("body");
                } else {
                    let response = client
                        .get("/v1/orders/42")
                        .send()
                        .await
                        .expect("outbound call");
                    response.bytes().await.expect("body");
                }
            }
            started.elapsed()
        };
        let elapsed: Duration = match variant {
            Variant::Reqwest | Variant::Outbound => runtime.block_on(calls),
            Variant::OutboundInfoJson => {
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_max_level(Level::INFO)
                    .with_writer(std::io::sink)
                    .finish();
                tracing::subscriber::with_default(subscriber, || runtime.block_on(calls))
            }
            Variant::OutboundTrace => {
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_max_level(Level::TRACE)
                    .with_writer(std::io::sink)
                    .finish();
                tracing::subscriber::with_default(subscriber, || runtime.block_on(calls))
            }
        };
        f64::from(CALLS) / elapsed.as_secs_f64()
    };

    let variants = [
        Variant::Reqwest,
        Variant::Outbound,
        Variant::OutboundInfoJson,
        Variant::OutboundTrace,
    ];
    for variant in variants {
        run(variant); // warm-up: connections, allocator, caches
    }
    let mut samples = vec![Vec::new(); variants.len()];
    for _ in 0..ROUNDS {
        for (i, variant) in variants.iter().enumerate() {
            samples[i].push(run(*variant));
        }
    }
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect();
    println!(
        "{:<36} {:>12} {:>10} {:>12}",
        "variant", "calls/s", "ratio", "µs/call"
    );
    for (variant, median) in variants.iter().zip(&medians) {
        println!(
            "{:<36} {:>12.0} {:>9.3}x {:>12.1}",
            variant.name(),
            median,
            median / medians[0],
            1e6 / median
        );
    }
}
