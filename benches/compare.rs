//! Head to head, in one run against the same loopback server: bare reqwest; `outbound` with its
//! default profile (timeouts, retries, breaker; no subscriber), with an INFO JSON subscriber and
//! with TRACE; `outbound` with OAuth, breaker, rate limiter and INFO JSON logs; and the peer
//! stack, reqwest-middleware + reqwest-retry + reqwest-tracing, without and with the INFO JSON
//! subscriber. At concurrency 1 and 16 it prints calls/s, the client's CPU µs per call and
//! p50/p99 latency, each with its ratio to bare reqwest.
//!
//! `cargo bench --bench compare`
//!
//! Variants run interleaved, `ROUNDS` rounds each after a warm-up; each figure is the median over
//! rounds. The server runs in a child process; with `taskset` and two CPUs the client is pinned
//! to CPU 0 and the server to CPU 1. CPU time is the client thread's own (it runs a
//! current-thread runtime, so every task of the call runs on it), which the scheduler's noise
//! moves much less than wall-clock throughput.

#[path = "../tests/support/server.rs"]
mod server;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use server::{Reply, TestServer};
use tracing::Level;

const CALLS: usize = 3_200;
const ROUNDS: usize = 9;
const PATH: &str = "/v1/orders/42";

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Reqwest,
    Outbound,
    OutboundInfoJson,
    OutboundTrace,
    OutboundFull,
    Peer,
    PeerInfoJson,
}

const VARIANTS: [Variant; 7] = [
    Variant::Reqwest,
    Variant::Outbound,
    Variant::OutboundInfoJson,
    Variant::OutboundTrace,
    Variant::OutboundFull,
    Variant::Peer,
    Variant::PeerInfoJson,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Reqwest => "bare reqwest",
            Variant::Outbound => "outbound default",
            Variant::OutboundInfoJson => "outbound default + INFO JSON",
            Variant::OutboundTrace => "outbound default + TRACE JSON",
            Variant::OutboundFull => "outbound auth+breaker+limiter+INFO JSON",
            Variant::Peer => "reqwest-middleware+retry+tracing",
            Variant::PeerInfoJson => "reqwest-middleware stack + INFO JSON",
        }
    }

    fn log_level(self) -> Option<Level> {
        match self {
            Variant::OutboundInfoJson | Variant::OutboundFull | Variant::PeerInfoJson => {
                Some(Level::INFO)
            }
            Variant::OutboundTrace => Some(Level::TRACE),
            _ => None,
        }
    }
}

/// The clients under test, one per variant family.
struct Clients {
    bare: reqwest::Client,
    url: String,
    outbound: outbound::Client,
    full: outbound::Client,
    peer: reqwest_middleware::ClientWithMiddleware,
}

impl Clients {
    fn new(origin: &str) -> Clients {
        let outbound = outbound::Client::builder()
            .base_url(origin)
            .allow_insecure_http(true)
            .build()
            .expect("outbound");
        let full = outbound::Client::builder()
            .base_url(origin)
            .allow_insecure_http(true)
            .oauth2_client_credentials(
                format!("{origin}/oauth/token"),
                "bench-client",
                SecretString::from("bench-secret"),
            )
            // High enough never to make a call wait: this measures the limiter's bookkeeping.
            .rate_limit(1_000_000.0, None)
            .build()
            .expect("outbound with auth and limiter");
        let policy =
            reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(2);
        let peer = reqwest_middleware::ClientBuilder::new(same_wire())
            .with(reqwest_tracing::TracingMiddleware::default())
            .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(
                policy,
            ))
            .build();
        Clients {
            bare: same_wire(),
            url: format!("{origin}{PATH}"),
            outbound,
            full,
            peer,
        }
    }

    async fn call(&self, variant: Variant) {
        match variant {
            Variant::Reqwest => {
                let response = self.bare.get(&self.url).send().await.expect("reqwest call");
                response.bytes().await.expect("body");
            }
            Variant::Outbound | Variant::OutboundInfoJson | Variant::OutboundTrace => {
                let response = self.outbound.get(PATH).send().await.expect("outbound call");
                response.bytes().await.expect("body");
            }
            Variant::OutboundFull => {
                let response = self.full.get(PATH).send().await.expect("outbound call");
                response.bytes().await.expect("body");
            }
            Variant::Peer | Variant::PeerInfoJson => {
                let response = self.peer.get(&self.url).send().await.expect("peer call");
                response.bytes().await.expect("body");
            }
        }
    }
}

/// A reqwest client that puts the same bytes on the wire as `outbound` (which sends its
/// User-Agent), so the server does the same work for every variant.
fn same_wire() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("outbound/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("reqwest")
}

/// Serves forever, printing the origin on stdout: the benchmark's child process.
fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = TestServer::start(|request| {
            if request.path() == "/oauth/token" {
                Reply::json(
                    200,
                    r#"{"access_token":"bench-token","token_type":"Bearer","expires_in":3600}"#,
                )
            } else {
                Reply::json(200, r#"{"ok":true}"#)
            }
        })
        .await;
        server.stop_recording();
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

/// CPU time of the calling thread, in ns.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// One measurement: calls/s, client CPU µs per call, p50 and p99 latency in µs.
#[derive(Clone, Copy, Default)]
struct Sample {
    rate: f64,
    cpu_us: f64,
    p50_us: f64,
    p99_us: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The server child (pinned to CPU 1 when possible), a current-thread runtime and the clients;
/// the server is killed on drop.
struct Harness {
    server: std::process::Child,
    runtime: tokio::runtime::Runtime,
    clients: Arc<Clients>,
}

impl Harness {
    fn start() -> Harness {
        let mut server = pinned("1", &["--serve"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("server");
        let mut origin = String::new();
        BufReader::new(server.stdout.take().expect("stdout"))
            .read_line(&mut origin)
            .expect("server origin");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let clients = Arc::new(Clients::new(origin.trim()));
        Harness {
            server,
            runtime,
            clients,
        }
    }

    /// `calls` calls of `variant`, `concurrency` at a time.
    fn run(&self, variant: Variant, concurrency: usize, calls: usize) -> Sample {
        let work = async {
            let started = Instant::now();
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..concurrency {
                let clients = self.clients.clone();
                workers.spawn(async move {
                    let mut latencies = Vec::with_capacity(calls / concurrency);
                    for _ in 0..calls / concurrency {
                        let call = Instant::now();
                        clients.call(variant).await;
                        latencies.push(call.elapsed());
                    }
                    latencies
                });
            }
            let mut latencies: Vec<Duration> = Vec::with_capacity(calls);
            while let Some(done) = workers.join_next().await {
                latencies.extend(done.expect("worker"));
            }
            (started.elapsed(), latencies)
        };
        let cpu_before = thread_cpu_ns();
        let (elapsed, mut latencies) = match variant.log_level() {
            None => self.runtime.block_on(work),
            Some(level) => {
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_max_level(level)
                    .with_writer(std::io::sink)
                    .finish();
                tracing::subscriber::with_default(subscriber, || self.runtime.block_on(work))
            }
        };
        let calls = latencies.len() as f64;
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        Sample {
            rate: calls / elapsed.as_secs_f64(),
            cpu_us: (thread_cpu_ns() - cpu_before) as f64 / 1e3 / calls,
            p50_us: at(0.50),
            p99_us: at(0.99),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Runs 200 calls of one variant to warm up, then `calls` calls, and nothing else.
fn only(variant: Variant, calls: usize) {
    let harness = Harness::start();
    harness.run(variant, 1, 200);
    harness.run(variant, 1, calls);
    println!("{}", variant.name());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve") {
        return serve();
    }
    if let Some(at) = args.iter().position(|a| a == "--only") {
        // `--only VARIANT CALLS`: one variant, sequential calls, for `benches/instructions`.
        let variant = args.get(at + 1).and_then(|v| v.parse::<usize>().ok());
        let calls = args.get(at + 2).and_then(|v| v.parse::<usize>().ok());
        let (Some(variant), Some(calls)) = (variant, calls) else {
            panic!("usage: --only VARIANT(0..{}) CALLS", VARIANTS.len());
        };
        return only(VARIANTS[variant], calls);
    }
    if !args.iter().any(|a| a == "--pinned") {
        // Run this benchmark again pinned to CPU 0; its server child goes to CPU 1.
        let status = pinned("0", &["--pinned"]).status().expect("run pinned");
        std::process::exit(status.code().unwrap_or(1));
    }
    let harness = Harness::start();

    for concurrency in [1, 16] {
        for variant in VARIANTS {
            harness.run(variant, concurrency, CALLS); // warm-up: connections, caches
        }
        let mut samples = vec![Vec::new(); VARIANTS.len()];
        for _ in 0..ROUNDS {
            for (i, variant) in VARIANTS.iter().enumerate() {
                samples[i].push(harness.run(*variant, concurrency, CALLS));
            }
        }
        let rows: Vec<Sample> = samples
            .iter()
            .map(|s| Sample {
                rate: median(s.iter().map(|x| x.rate).collect()),
                cpu_us: median(s.iter().map(|x| x.cpu_us).collect()),
                p50_us: median(s.iter().map(|x| x.p50_us).collect()),
                p99_us: median(s.iter().map(|x| x.p99_us).collect()),
            })
            .collect();
        let bare = rows[0];
        println!("\nconcurrency {concurrency}, {CALLS} calls x {ROUNDS} rounds (medians)");
        println!(
            "{:<40} {:>8} {:>6} {:>8} {:>6} {:>8} {:>6} {:>8} {:>6}",
            "variant", "calls/s", "x", "CPU µs", "x", "p50 µs", "x", "p99 µs", "x"
        );
        for (variant, row) in VARIANTS.iter().zip(&rows) {
            println!(
                "{:<40} {:>8.0} {:>6.3} {:>8.1} {:>6.3} {:>8.1} {:>6.3} {:>8.1} {:>6.3}",
                variant.name(),
                row.rate,
                row.rate / bare.rate,
                row.cpu_us,
                row.cpu_us / bare.cpu_us,
                row.p50_us,
                row.p50_us / bare.p50_us,
                row.p99_us,
                row.p99_us / bare.p99_us,
            );
        }
    }
}
