//! The cost of observability: sequential calls over one keep-alive connection to a loopback
//! server, for bare reqwest and for `outbound` with no subscriber, an INFO JSON subscriber
//! writing to a sink, and a TRACE subscriber. Variants run interleaved, five rounds each, and
//! the median throughput is reported with its ratio to bare reqwest.
//!
//! `cargo bench --bench telemetry`
//!
//! The server runs in a child process; with `taskset` and two CPUs the client is pinned to CPU 0
//! and the server to CPU 1.

#[path = "../tests/support/server.rs"]
mod server;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use server::{Reply, TestServer};
use tracing::Level;

const CALLS: u32 = 4_000;
const ROUNDS: usize = 7;

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

/// Serves forever, printing the origin on stdout: the benchmark's child process.
fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = TestServer::always(Reply::json(200, r#"{"ok":true}"#)).await;
        println!("{}", server.origin());
        std::future::pending::<()>().await;
    });
}

/// `taskset -c CPU <this binary> args` when `taskset` exists and there are two CPUs, so the
/// client and the server do not compete for one core.
fn pinned(cpu: &str, args: &[&str]) -> Command {
    let me = std::env::current_exe().expect("current exe");
    let two_cpus = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let has_taskset = Command::new("taskset").arg("-V").output().is_ok();
    let mut command = if two_cpus && has_taskset {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu).arg(me);
        c
    } else {
        Command::new(me)
    };
    command.args(args);
    command
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve") {
        return serve();
    }
    if !args.iter().any(|a| a == "--pinned") {
        // Run this benchmark again pinned to CPU 0; its server child goes to CPU 1.
        let status = pinned("0", &["--pinned"]).status().expect("run pinned");
        std::process::exit(status.code().unwrap_or(1));
    }
    let mut server = pinned("1", &["--serve"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("server");
    let mut origin = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut origin)
        .expect("server origin");
    let origin = origin.trim().to_owned();
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

    // CPU time of this (the client's) thread, in ns: the client's own cost, whatever the
    // scheduler does with the server thread.
    let cpu_ns = || -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    };
    let run = |variant: Variant| -> (f64, f64) {
        let cpu_before = cpu_ns();
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
        let cpu_us = (cpu_ns() - cpu_before) as f64 / 1e3 / f64::from(CALLS);
        (f64::from(CALLS) / elapsed.as_secs_f64(), cpu_us)
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
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let rows: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| {
            (
                median(s.iter().map(|(rate, _)| *rate).collect()),
                median(s.iter().map(|(_, cpu)| *cpu).collect()),
            )
        })
        .collect();
    println!(
        "{:<32} {:>9} {:>7} {:>14} {:>7}",
        "variant", "calls/s", "ratio", "client CPU µs", "ratio"
    );
    for (variant, (rate, cpu)) in variants.iter().zip(&rows) {
        println!(
            "{:<32} {:>9.0} {:>6.3}x {:>14.1} {:>6.3}x",
            variant.name(),
            rate,
            rate / rows[0].0,
            cpu,
            cpu / rows[0].1
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
