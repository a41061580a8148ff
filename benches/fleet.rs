//! The cost of fleet mode's shared quota per call: a whole call (loopback server, no quota
//! binding) with the local limiter, and with the fleet's quota on a real `redis-server` at
//! `lease = 10` and `lease = 1`.
//!
//! `cargo bench --features fleet --bench fleet` (needs `redis-server` on PATH)
//!
//! CPU is the calling thread's own time on CPU (`/proc/thread-self/schedstat`): the client runs
//! on a current-thread runtime, the server on another thread and Redis in its own process, so
//! neither is counted. Latency is per call, wall clock.

#[path = "../tests/support/redis.rs"]
#[allow(dead_code)]
mod redis_server;
#[path = "../tests/support/server.rs"]
mod server;

use std::time::Instant;

use outbound::SecretString;
use redis_server::RedisServer;
use server::{Reply, TestServer};

const CALLS: usize = 20_000;
const ROUNDS: usize = 5;

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Sample {
    cpu_ns: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn measure(client: &outbound::Client) -> Sample {
    for _ in 0..1_000 {
        client.get("/").send().await.expect("warm-up");
    }
    let mut latencies = Vec::with_capacity(CALLS);
    let cpu = thread_cpu_ns();
    for _ in 0..CALLS {
        let started = Instant::now();
        client.get("/").send().await.expect("call");
        latencies.push(started.elapsed());
    }
    let cpu_ns = (thread_cpu_ns() - cpu) as f64 / CALLS as f64;
    latencies.sort_unstable();
    let at = |q: f64| latencies[(CALLS as f64 * q) as usize].as_secs_f64() * 1e6;
    Sample {
        cpu_ns,
        p50_us: at(0.5),
        p99_us: at(0.99),
    }
}

fn main() {
    let redis = RedisServer::start();
    // The server on its own thread and runtime, so its work is not the client thread's.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async {
            let server = TestServer::always(Reply::ok(""));
            let server = server.await;
            server.stop_recording();
            tx.send(server.origin()).expect("origin");
            std::future::pending::<()>().await;
        });
    });
    let origin = rx.recv().expect("server");
    let client = |lease: Option<u32>| {
        let b = outbound::Client::builder()
            .base_url(&origin)
            .allow_insecure_http(true)
            // A quota that never binds: what is measured is the cost of asking.
            .rate_limit(1e6, Some(1_000_000));
        match lease {
            None => b,
            Some(lease) => b.fleet(SecretString::from(redis.url())).fleet_lease(lease),
        }
        .build()
        .expect("client")
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let variants = [
        ("local limiter", None),
        ("fleet, lease = 10", Some(10)),
        ("fleet, lease = 1", Some(1)),
    ];
    let mut results: Vec<Vec<Sample>> = variants.iter().map(|_| Vec::new()).collect();
    runtime.block_on(async {
        // Rounds interleave the variants, so drift on the machine hits all alike.
        for _ in 0..ROUNDS {
            for (i, (_, lease)) in variants.iter().enumerate() {
                results[i].push(measure(&client(*lease)).await);
            }
        }
    });
    let median = |samples: &[Sample], f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&results[0], |s| s.cpu_ns);
    println!("{CALLS} sequential calls per round, median of {ROUNDS} rounds\n");
    println!(
        "{:<20} {:>12} {:>10} {:>10} {:>10}",
        "quota", "CPU/call", "vs local", "p50", "p99"
    );
    for ((name, _), samples) in variants.iter().zip(&results) {
        let cpu = median(samples, |s| s.cpu_ns);
        println!(
            "{name:<20} {:>9.1} µs {:>9.3}x {:>7.1} µs {:>7.1} µs",
            cpu / 1e3,
            cpu / base,
            median(samples, |s| s.p50_us),
            median(samples, |s| s.p99_us)
        );
    }
}
