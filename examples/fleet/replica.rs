//! One replica process: builds its client from the settings it was started with, drives load
//! from a shared start time, and prints one result line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outbound::SecretString;
use tokio::time::Instant;

/// What a replica is asked to do, passed as `key=value;…` after `--replica`.
pub struct Spec(pub String);

impl Spec {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .split(';')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.parse().ok())
    }
}

/// A replica's tally.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: u64,
    /// Ended with a 429 or a refusal of the rate limiter.
    pub limited: u64,
    pub failed: u64,
    pub latencies_us: Vec<u64>,
}

impl Tally {
    pub fn line(&self) -> String {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        let q = |q: f64| {
            l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        format!(
            "replica-result ok={} limited={} failed={} p50_us={} p99_us={} max_us={}",
            self.ok,
            self.limited,
            self.failed,
            q(0.5),
            q(0.99),
            l.last().copied().unwrap_or(0)
        )
    }

    pub fn parse(line: &str) -> Option<Tally> {
        let line = line.strip_prefix("replica-result ")?;
        let field = |name: &str| -> Option<u64> {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
                .parse()
                .ok()
        };
        Some(Tally {
            ok: field("ok")?,
            limited: field("limited")?,
            failed: field("failed")?,
            // The parent needs the percentiles only: keep them as three samples.
            latencies_us: vec![field("p50_us")?, field("p99_us")?, field("max_us")?],
        })
    }
}

fn client(spec: &Spec) -> outbound::Client {
    let mut b = outbound::Client::builder()
        .base_url(spec.get("base").expect("base"))
        .allowed_hosts(["127.0.0.1"])
        .allow_insecure_http(true)
        .oauth2_client_credentials(
            spec.get("token").expect("token"),
            "replica",
            SecretString::from("the-client-secret"),
        );
    if let Some(rate) = spec.number("rate") {
        b = b.rate_limit(rate, spec.number("burst").map(|b| b as u32));
    }
    if let Some(redis) = spec.get("redis") {
        b = b
            .fleet(SecretString::from(redis))
            .fleet_replicas_hint(4)
            .fleet_lease(spec.number("lease").unwrap_or(10.0) as u32);
    }
    b.build().expect("replica client")
}

async fn one(client: &outbound::Client, timeout: Duration) -> (bool, bool, Duration) {
    let started = Instant::now();
    let outcome = client.get("/api").timeout(timeout).send().await;
    let took = started.elapsed();
    match outcome {
        Ok(r) if r.status().is_success() => (true, false, took),
        Ok(r) if r.status() == 429 => (false, true, took),
        Err(e) if e.is_rate_limited() => (false, true, took),
        Err(e) => {
            if std::env::var_os("FLEET_LOG").is_some() {
                eprintln!("call failed: {e}");
            }
            (false, false, took)
        }
        Ok(_) => (false, false, took),
    }
}

pub fn run(spec: Spec) {
    if std::env::var_os("FLEET_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(std::io::stderr)
            .init();
    }
    let client = client(&spec);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tally = runtime.block_on(async move {
        if spec.get("warm").is_some() {
            // A replica already in service: connected to Redis, holding a token.
            let _ = one(&client, Duration::from_secs(2)).await;
        }
        let start = UNIX_EPOCH + Duration::from_millis(spec.number("start").expect("start") as u64);
        if let Ok(wait) = start.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
        let timeout = Duration::from_secs_f64(spec.number("timeout").unwrap_or(2.0));
        let until = Instant::now() + Duration::from_secs_f64(spec.number("seconds").unwrap_or(0.0));
        let calls = spec.number("calls").map(|c| c as u64);
        let mut tasks = Vec::new();
        if let Some(per_second) = spec.number("open") {
            // Open loop: a call every 1/rate seconds, whatever the answers.
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
            while Instant::now() < until {
                tick.tick().await;
                let client = client.clone();
                tasks.push(tokio::spawn(
                    async move { vec![one(&client, timeout).await] },
                ));
            }
        } else {
            for _ in 0..spec.number("concurrency").unwrap_or(1.0) as usize {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut done = Vec::new();
                    while calls.is_some_and(|c| (done.len() as u64) < c)
                        || calls.is_none() && Instant::now() < until
                    {
                        done.push(one(&client, timeout).await);
                    }
                    done
                }));
            }
        }
        let mut tally = Tally::default();
        for task in tasks {
            for (ok, limited, took) in task.await.expect("task") {
                tally.ok += u64::from(ok);
                tally.limited += u64::from(limited);
                tally.failed += u64::from(!ok && !limited);
                tally.latencies_us.push(took.as_micros() as u64);
            }
        }
        tally
    });
    println!("{}", tally.line());
}
