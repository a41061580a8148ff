//! Fleet mode, shown: four replica processes share one partner's quota, one pause and one token
//! through a real `redis-server`, and keep working when Redis dies.
//!
//! `cargo run --release --features fleet --example fleet` (needs `redis-server` on PATH)
//!
//! The example starts its own `redis-server` on a free loopback port, a loopback partner with a
//! hidden quota of 200 requests/s (429 + `Retry-After` beyond it) that counts the tokens it
//! issues, and four copies of itself as replica processes. Each scenario prints a row:
//!
//! 1. **shared quota**: `rate_limit = 200/s` shared by the fleet, every replica wanting more;
//! 2. **each alone, whole quota**: the same without fleet mode (each replica paces to 200/s);
//! 3. **each alone, a quarter** (50/s each) under uneven load: one replica busy, three idle-ish;
//!    and the same uneven load with the fleet sharing;
//! 4. **token**: 4 cold replicas x 50 concurrent calls: token requests the partner saw;
//! 5. **pause**: the partner throttles the whole account for 2 s in one answer (`429`,
//!    `Retry-After: 2`, `RateLimit-Remaining: 0`) to one replica: requests of all replicas
//!    inside the window;
//! 6. **Redis killed** (SIGKILL mid-run, restarted 1 s later) and **Redis stopped** (SIGSTOP for
//!    1 s): failed calls, p99 and worst latency beside the same load with Redis up, and how soon
//!    every replica shares again after the restart;
//! 7. **at rest**: no issued token's bytes in any Redis value or `DUMP`.
//!
//! Ends with one line: `fleet: quota 200 rps, admitted …%, throttled …%, token fetches …,
//! redis-down failures …`, and exits non-zero when a target is missed.

#[path = "../../tests/support/redis.rs"]
#[allow(dead_code)]
mod redis_server;
#[path = "../../tests/support/server.rs"]
mod server;

mod partner;
mod replica;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use partner::{Books, QUOTA};
use redis_server::RedisServer;
use replica::{Spec, Tally};
use tokio::time::Instant;

struct Run {
    redis: RedisServer,
    base: String,
    token: String,
}

/// Starts 4 replicas with `specs[i]` (plus the shared keys), in `lead` from now; returns the
/// start instant and the running processes.
fn launch(
    run: &Run,
    specs: [&str; 4],
    fleet: bool,
    lead: Duration,
) -> (Instant, Vec<std::process::Child>) {
    let exe = std::env::current_exe().expect("example binary");
    let start_unix = SystemTime::now() + lead;
    let start = Instant::now() + lead;
    let ms = start_unix
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let children = specs
        .iter()
        .map(|spec| {
            let mut full = format!("base={};token={};start={ms};{spec}", run.base, run.token);
            if fleet {
                full.push_str(&format!(";redis={}", run.redis.url()));
            }
            Command::new(&exe)
                .args(["--replica", &full])
                .stdout(Stdio::piped())
                .spawn()
                .expect("replica process")
        })
        .collect();
    (start, children)
}

async fn collect(children: Vec<std::process::Child>) -> anyhow::Result<Vec<Tally>> {
    let mut tallies = Vec::new();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(out.status.success(), "a replica failed: {text}");
        tallies.push(
            text.lines()
                .find_map(Tally::parse)
                .context("no result line")?,
        );
    }
    Ok(tallies)
}

fn total(t: &[Tally]) -> (u64, u64, u64) {
    t.iter().fold((0, 0, 0), |(o, l, f), x| {
        (o + x.ok, l + x.limited, f + x.failed)
    })
}

/// Runs a quota scenario for `seconds`; admitted share of the quota and throttled share of all
/// requests, over the steady part (after the first second).
async fn quota_row(
    run: &Run,
    books: &Books,
    name: &str,
    specs: [&str; 4],
    fleet: bool,
) -> anyhow::Result<(f64, f64)> {
    run.redis.flush();
    books.reset();
    let (start, children) = launch(run, specs, fleet, Duration::from_secs(2));
    let tallies = collect(children).await?;
    let (from, to) = (
        start + Duration::from_secs(1),
        start + Duration::from_secs(5),
    );
    let (admitted, throttled) = books.count(from, to);
    let admitted_share = admitted as f64 / (QUOTA * 4.0);
    let throttled_share = throttled as f64 / (admitted + throttled).max(1) as f64;
    let (ok, limited, failed) = total(&tallies);
    println!(
        "{name:<34} {:>9.1}% {:>10.1}% {:>8} {:>8} {:>7}",
        admitted_share * 100.0,
        throttled_share * 100.0,
        ok,
        limited,
        failed
    );
    Ok((admitted_share, throttled_share))
}

/// Load under the quota (4 x 30/s), Redis up, killed or stopped at 1.5 s for 1 s.
async fn outage_row(
    run: &mut Run,
    name: &str,
    outage: Option<&str>,
) -> anyhow::Result<(u64, Tally, Option<Duration>)> {
    run.redis.flush();
    let spec = "warm=1;rate=200;burst=50;open=30;seconds=5;timeout=3";
    let (start, children) = launch(run, [spec; 4], true, Duration::from_secs(2));
    let mut back = None;
    if let Some(kind) = outage {
        tokio::time::sleep_until(start + Duration::from_millis(1500)).await;
        match kind {
            "kill" => {
                run.redis.kill();
                tokio::time::sleep(Duration::from_secs(1)).await;
                run.redis.revive();
                // Every replica shares again once it holds a connection (its probe's PING).
                let restarted = Instant::now();
                while run.redis.clients() < 4 && restarted.elapsed() < Duration::from_secs(10) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                back = Some(restarted.elapsed());
            }
            _ => {
                run.redis.freeze();
                tokio::time::sleep(Duration::from_secs(1)).await;
                run.redis.thaw();
            }
        }
    }
    let tallies = collect(children).await?;
    let (ok, limited, failed) = total(&tallies);
    let worst = |i: usize| tallies.iter().map(|t| t.latencies_us[i]).max().unwrap_or(0);
    let tally = Tally {
        ok,
        limited,
        failed,
        latencies_us: vec![worst(0), worst(1), worst(2)],
    };
    println!(
        "{name:<34} {:>8} {:>8} {:>9.2} {:>9.2} {:>10}",
        ok,
        limited + failed,
        worst(1) as f64 / 1000.0,
        worst(2) as f64 / 1000.0,
        back.map_or("-".into(), |b| format!("{:.2} s", b.as_secs_f64()))
    );
    Ok((limited + failed, tally, back))
}

async fn tour() -> anyhow::Result<()> {
    let (server, books) = partner::start().await;
    let mut run = Run {
        redis: RedisServer::start(),
        base: server.origin(),
        token: server.url("/oauth/token"),
    };

    println!("partner quota {QUOTA} requests/s; 4 replica processes; steady state over 4 s\n");
    println!(
        "{:<34} {:>10} {:>11} {:>8} {:>8} {:>7}",
        "scenario", "of quota", "throttled", "ok", "limited", "failed"
    );
    let busy = "warm=1;rate=200;burst=50;concurrency=16;seconds=5;timeout=2";
    let (admitted, throttled) =
        quota_row(&run, &books, "fleet, shared 200/s", [busy; 4], true).await?;
    quota_row(&run, &books, "each alone at 200/s", [busy; 4], false).await?;
    let heavy = "warm=1;rate=50;burst=12;concurrency=16;seconds=5;timeout=2";
    let light = "warm=1;rate=50;burst=12;open=10;seconds=5;timeout=2";
    quota_row(
        &run,
        &books,
        "each alone at 50/s, uneven load",
        [heavy, light, light, light],
        false,
    )
    .await?;
    let heavy = "warm=1;rate=200;burst=50;concurrency=16;seconds=5;timeout=2";
    let light = "warm=1;rate=200;burst=50;open=10;seconds=5;timeout=2";
    quota_row(
        &run,
        &books,
        "fleet, shared 200/s, uneven load",
        [heavy, light, light, light],
        true,
    )
    .await?;

    // Token: cold replicas, 50 concurrent calls each.
    run.redis.flush();
    books.reset();
    let (_, children) = launch(
        &run,
        ["concurrency=50;calls=1"; 4],
        true,
        Duration::from_secs(2),
    );
    let cold = total(&collect(children).await?);
    let fetches = books.tokens.lock().expect("lock").len();
    println!(
        "\ntoken: 4 cold replicas x 50 concurrent calls: {} ok, {fetches} token request(s)",
        cold.0
    );

    // At rest: the token's bytes are in no value and no DUMP.
    let tokens = books.tokens.lock().expect("lock").clone();
    let leaked = run.redis.dump().iter().any(|(_, value, dump)| {
        tokens.iter().any(|t| {
            [value, dump]
                .iter()
                .any(|b| b.windows(t.len()).any(|w| w == t.as_bytes()))
        })
    });
    println!(
        "at rest: {} keys, token bytes readable: {leaked}",
        run.redis.dump().len()
    );

    // Pause: the partner throttles the account in one answer at 1 s.
    run.redis.flush();
    books.reset();
    let spec = "warm=1;rate=200;burst=50;open=40;seconds=4;timeout=4";
    let (start, children) = launch(&run, [spec; 4], true, Duration::from_secs(2));
    tokio::time::sleep_until(start + Duration::from_secs(1)).await;
    books
        .throttle_next
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let paused = collect(children).await?;
    let at = books
        .throttled_at
        .lock()
        .expect("lock")
        .context("the pause was never served")?;
    let early = {
        let (a, t) = books.count(
            at + Duration::from_millis(1),
            at + Duration::from_millis(250),
        );
        a + t
    };
    let inside = {
        let (a, t) = books.count(at + Duration::from_millis(250), at + Duration::from_secs(2));
        a + t
    };
    println!(
        "pause: one answer throttles the account for 2 s: {early} requests in its first 250 ms, {inside} in the rest of the window; {} calls ok, {} failed",
        total(&paused).0,
        total(&paused).1 + total(&paused).2
    );

    println!(
        "\n{:<34} {:>8} {:>8} {:>9} {:>9} {:>10}",
        "Redis (load 4 x 30/s)", "ok", "failed", "p99 ms", "max ms", "shared in"
    );
    let (_, up, _) = outage_row(&mut run, "up", None).await?;
    let (killed_failed, killed, back) = outage_row(
        &mut run,
        "killed at 1.5 s, restarted at 2.5 s",
        Some("kill"),
    )
    .await?;
    let (stopped_failed, stopped, _) =
        outage_row(&mut run, "stopped at 1.5 s for 1 s", Some("stop")).await?;
    let added = |t: &Tally| t.latencies_us[1].saturating_sub(up.latencies_us[1]) as f64 / 1000.0;
    println!(
        "p99 added by the fallback: killed {:.2} ms, stopped {:.2} ms (command_timeout 10 ms)",
        added(&killed),
        added(&stopped)
    );

    let down_failures = killed_failed + stopped_failed;
    println!(
        "\nfleet: quota {QUOTA} rps, admitted {:.1}%, throttled {:.1}%, token fetches {fetches}, redis-down failures {down_failures}",
        admitted * 100.0,
        throttled * 100.0
    );
    ensure!(
        admitted >= 0.95,
        "the fleet used {:.1}% of the quota (target 95%)",
        admitted * 100.0
    );
    ensure!(
        throttled < 0.01,
        "{:.1}% throttled (target < 1%)",
        throttled * 100.0
    );
    ensure!(
        (1..=2).contains(&fetches),
        "{fetches} token requests (target 1, at most 2)"
    );
    ensure!(!leaked, "a token is readable in Redis");
    ensure!(
        down_failures == 0,
        "{down_failures} calls failed while Redis was down"
    );
    ensure!(
        back.is_some_and(|b| b <= Duration::from_secs(2)),
        "sharing resumed after {back:?} (target 2 s)"
    );
    ensure!(
        added(&killed) <= 15.0 && added(&stopped) <= 15.0,
        "the fallback added more than command_timeout + 5 ms at p99"
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--replica") {
        replica::run(Spec(args.next().context("a replica spec")?));
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(tour())
}
