//! `rate_limit.adaptive`: learning a quota the partner never states.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outbound::{Client, Profiles};
use support::{Reply, TestServer, client_for};
use tokio::time::Instant;

/// A partner that admits `quota` requests/s (a bucket a tenth of a second deep) and answers
/// the rest with a bare 429; returns it with its (admitted, throttled) counters.
async fn hidden_quota(quota: f64) -> (TestServer, Arc<(AtomicU64, AtomicU64)>) {
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let books = counts.clone();
    let bucket = Mutex::new(None::<(f64, Instant)>);
    let server = TestServer::start(move |_| {
        let mut bucket = bucket.lock().expect("lock");
        let now = Instant::now();
        let (level, at) = bucket.get_or_insert((quota / 10.0, now));
        *level =
            (*level + now.saturating_duration_since(*at).as_secs_f64() * quota).min(quota / 10.0);
        *at = (*at).max(now);
        if *level >= 1.0 {
            *level -= 1.0;
            books.0.fetch_add(1, Ordering::Relaxed);
            Reply::ok("")
        } else {
            books.1.fetch_add(1, Ordering::Relaxed);
            Reply::status(429)
        }
    })
    .await;
    server.stop_recording();
    (server, counts)
}

/// Offers `rate` calls/s for `run`, one attempt each; waits for all of them.
async fn offer(client: &Client, rate: f64, run: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let start = Instant::now();
    let mut calls = Vec::new();
    while start.elapsed() < run {
        tick.tick().await;
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            let _ = client.get("/api").send().await;
        }));
    }
    for call in calls {
        call.await.expect("call task");
    }
}

/// One attempt per call, a 500 ms deadline; `adaptive` set to `true`, or left unset.
fn client(server: &TestServer, adaptive: bool) -> Client {
    let builder = client_for(server)
        .max_attempts(1)
        .total_timeout(Duration::from_millis(500))
        .circuit_breaker_enabled(false);
    let builder = if adaptive {
        builder.adaptive_rate_limit(true)
    } else {
        builder
    };
    builder.build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_pacing_learns_a_hidden_quota_and_avoids_its_429s() {
    // 4× the quota offered for 3 s. Bounds are generous: the example `adaptive` shows the
    // real numbers (≥ 90 % of the quota, < 5 % throttled).
    let (server, counts) = hidden_quota(50.0).await;
    let started = Instant::now();
    offer(&client(&server, true), 200.0, Duration::from_secs(3)).await;
    let secs = started.elapsed().as_secs_f64();
    let (ok, no) = (
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed),
    );
    let throttled = no as f64 / (ok + no) as f64;
    assert!(throttled < 0.15, "adaptive: {no} of {} throttled", ok + no);
    assert!(
        ok as f64 >= 0.6 * 50.0 * secs,
        "adaptive: only {ok} admitted in {secs:.1} s of a 50/s quota"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_of_bare_429s_engages_pacing_without_the_setting() {
    // Without pacing, the calls that waited out the pause the pattern causes would go out all
    // at once when it ends and meet the same 429s, pause after pause.
    let (server, counts) = hidden_quota(50.0).await;
    let client = client(&server, false);
    offer(&client, 200.0, Duration::from_secs(3)).await;
    let (ok, no) = (
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed),
    );
    let throttled = no as f64 / (ok + no) as f64;
    assert!(throttled < 0.25, "{no} of {} throttled", ok + no);
    let rate = client.health().origins[0].adaptive_rate;
    assert!(rate.is_some_and(|r| r < 200.0), "{rate:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_false_turns_even_the_patterns_pacing_off() {
    let (server, _counts) = hidden_quota(50.0).await;
    let client = client_for(&server)
        .max_attempts(1)
        .total_timeout(Duration::from_millis(500))
        .circuit_breaker_enabled(false)
        .adaptive_rate_limit(false)
        .build()
        .expect("client");
    offer(&client, 200.0, Duration::from_secs(1)).await;
    assert_eq!(client.health().origins[0].adaptive_rate, None);
}

#[tokio::test]
async fn one_calls_retries_meeting_a_lock_do_not_engage_pacing() {
    // Three bare 429s in a row are a pattern, but nothing was admitted: a lock on one object
    // (or an origin refusing everything), which the pause answers; pacing at a rate of zero
    // would starve every other call.
    let server = TestServer::always(Reply::status(429)).await;
    let client = client_for(&server)
        .initial_backoff(Duration::from_millis(1))
        .build()
        .expect("client");
    let answer = client.get("/locked").send().await.expect("an answer");
    assert_eq!(answer.status(), 429);
    assert_eq!(server.hits(), 3);
    assert_eq!(client.health().origins[0].adaptive_rate, None);
}

#[tokio::test]
async fn nothing_is_paced_until_the_origin_throttles() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = client(&server, true);
    let started = Instant::now();
    let calls: Vec<_> = (0..100).map(|_| client.get("/a").send()).collect();
    for result in futures_util::future::join_all(calls).await {
        result.expect("no call is refused");
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(client.health().origins[0].adaptive_rate, None);
}

#[tokio::test]
async fn only_a_429_that_says_nothing_teaches_the_rate() {
    // A 429 with Retry-After or quota headers is handled by the pause it asks for.
    for told in [
        Reply::status(429).header("Retry-After", "1"),
        Reply::status(429)
            .header("RateLimit-Remaining", "5")
            .header("RateLimit-Reset", "1"),
    ] {
        let server = TestServer::always(told).await;
        let client = client(&server, true);
        let _ = client.get("/a").send().await;
        assert_eq!(client.health().origins[0].adaptive_rate, None);
    }
    let server = TestServer::always(Reply::status(429)).await;
    let client = client(&server, true);
    let response = client.get("/a").send().await.expect("an answer");
    assert_eq!(response.status(), 429);
    let rate = client.health().origins[0].adaptive_rate;
    assert!(rate.is_some_and(|r| r >= 0.5), "{rate:?}");
}

#[tokio::test]
async fn a_few_bare_429s_among_429s_that_state_a_wait_do_not_engage_pacing() {
    // Half the answers are 429s, but most of those say how long to wait: the waits answer
    // them. Only bare 429s as a pattern of their own are a quota to learn.
    let told = || Reply::status(429).header("Retry-After", "1");
    let mut replies = vec![Reply::ok(""); 5];
    replies.extend([
        told(),
        told(),
        told(),
        Reply::status(429),
        Reply::status(429),
    ]);
    let server = TestServer::script(replies).await;
    let client = client(&server, false);
    for _ in 0..10 {
        let _ = client.get("/a").send().await;
    }
    assert_eq!(server.hits(), 10, "every call reached the server");
    assert_eq!(client.health().origins[0].adaptive_rate, None);
}

#[tokio::test]
async fn adaptive_alone_is_a_valid_rate_limit_and_refuses_a_late_slot() {
    let server = TestServer::always(Reply::status(429)).await;
    let toml = format!(
        "[p]\nbase_url = '{}'\nallowed_hosts = ['127.0.0.1']\nallow_insecure_http = true\n\
         [p.retry]\nmax_attempts = 1\n[p.circuit_breaker]\nenabled = false\n\
         [p.rate_limit]\nadaptive = true\n",
        server.origin()
    );
    let profiles = Profiles::from_toml_str(&toml).expect("adaptive without a fixed quota is valid");
    let client = Client::from_profile(profiles.get("p").expect("p")).expect("client");
    // Bare 429s cut the rate to its floor (one request every two seconds), after which a call
    // with a short deadline is refused before it is sent, naming the setting.
    for _ in 0..30 {
        let _ = client
            .get("/a")
            .timeout(Duration::from_millis(50))
            .send()
            .await;
    }
    let sent = server.hits();
    let err = client
        .get("/a")
        .timeout(Duration::from_millis(50))
        .send()
        .await
        .expect_err("refused");
    assert!(err.is_rate_limited(), "{err}");
    assert!(err.to_string().contains("rate_limit.adaptive"), "{err}");
    assert_eq!(server.hits(), sent, "the refused call sent nothing");
}
