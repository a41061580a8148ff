//! Fleet mode against a real `redis-server`: replicas (other clients, and real OS processes)
//! share one quota, one pause and one token; Redis trouble never fails a call.
//!
//! Run with `cargo test --features fleet`; needs `redis-server` on PATH (`.ci/run` installs it).

#![cfg(feature = "fleet")]

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outbound::SecretString;
use support::metrics::Recorded;
use support::redis::RedisServer;
use support::trace::Capture;
use support::{Reply, TestServer};

/// A replica of the test integration: fleet mode on `redis`, with a command timeout that a
/// loaded debug build always meets (the tests of timeouts set their own).
fn replica(server: &TestServer, redis: &RedisServer) -> outbound::ClientBuilder {
    support::client_for(server)
        .fleet(SecretString::from(redis.url()))
        .fleet_command_timeout(Duration::from_secs(2))
}

/// Quota slots granted to leases so far.
fn granted(recorded: &Recorded) -> f64 {
    recorded
        .updates("outbound.fleet.lease.granted")
        .iter()
        .map(|u| u.value)
        .sum()
}

/// Runs `f` on a current-thread runtime recording this thread's metrics (spawned probes run on
/// the same thread, so they are recorded too).
fn with_metrics<F: std::future::Future>(recorder: &Recorded, f: impl FnOnce() -> F) -> F::Output {
    metrics::with_local_recorder(recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
}

/// Redis errors on the call path (probes excluded).
fn call_path_errors(recorded: &Recorded) -> Vec<String> {
    recorded
        .updates("outbound.fleet.redis.errors")
        .into_iter()
        .filter(|u| u.label("operation") != Some("probe"))
        .map(|u| {
            format!(
                "{}:{}",
                u.label("operation").unwrap_or("?"),
                u.label("error").unwrap_or("?")
            )
        })
        .collect()
}

fn mode(recorded: &Recorded) -> Option<f64> {
    recorded
        .updates("outbound.fleet.mode")
        .last()
        .map(|u| u.value)
}

fn keys(redis: &RedisServer) -> Vec<String> {
    redis.dump().into_iter().map(|(key, _, _)| key).collect()
}

// ===== pause =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_one_replica_is_asked_for_stops_every_replica() {
    for with_quota in [false, true] {
        let redis = RedisServer::start();
        let server = TestServer::start(|r| match r.path() {
            "/busy" => Reply::status(503).header("Retry-After", "2"),
            _ => Reply::ok(""),
        })
        .await;
        let build = || {
            let b = replica(&server, &redis).max_attempts(1);
            if with_quota {
                b.rate_limit(1000.0, None)
            } else {
                b
            }
            .build()
            .expect("client")
        };
        let (a, b) = (build(), build());
        b.get("/ok").send().await.expect("b's first call");
        let busy = a.get("/busy").send().await.expect("answered");
        assert_eq!(busy.status(), 503);
        // The contract: every replica stops within 250 ms.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let refused = b
            .get("/ok")
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .expect_err("b must see a's pause");
        assert!(
            refused.is_rate_limited(),
            "with quota {with_quota}: {refused}"
        );
        assert_eq!(
            server.hits_on("/ok"),
            1,
            "with quota {with_quota}: nothing sent in the pause"
        );
        assert!(
            keys(&redis).iter().all(|k| k.starts_with("outbound:{")),
            "every key under the prefix: {:?}",
            keys(&redis)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_429_is_not_shared() {
    let redis = RedisServer::start();
    let server = TestServer::start(|r| match r.path() {
        "/busy" => Reply::status(429).header("Retry-After", "2"),
        _ => Reply::ok(""),
    })
    .await;
    let a = replica(&server, &redis).max_attempts(1).build().expect("a");
    let b = replica(&server, &redis).build().expect("b");
    b.get("/ok").send().await.expect("b");
    let busy = a.get("/busy").send().await.expect("answered");
    assert_eq!(busy.status(), 429);
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.get("/ok")
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .expect("a lone 429 delays only its own call, on no replica");
}

// ===== token =====

/// A token endpoint that issues `tok-<n>-…` (n counting from 1) after `delay`, and an API at
/// `/api` that refuses the tokens in `revoked`.
async fn token_partner(
    delay: Duration,
    revoked: Arc<Mutex<HashSet<String>>>,
) -> (TestServer, Arc<AtomicUsize>) {
    let issued = Arc::new(AtomicUsize::new(0));
    let count = issued.clone();
    let server = TestServer::start(move |r| match r.path() {
        "/oauth/token" => {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::json(
                200,
                &format!(
                    r#"{{"access_token":"tok-{n}-d41d8cd98f00b204e9800998ecf8427e","token_type":"Bearer","expires_in":600}}"#
                ),
            )
            .delay(delay)
        }
        _ => {
            let bearer = r.header("authorization").unwrap_or_default();
            let token = bearer.trim_start_matches("Bearer ");
            if revoked.lock().expect("lock").contains(token) {
                Reply::status(401)
            } else {
                Reply::ok(token.to_owned())
            }
        }
    })
    .await;
    (server, issued)
}

fn oauth_replica(server: &TestServer, redis: &RedisServer) -> outbound::ClientBuilder {
    replica(server, redis).oauth2_client_credentials(
        server.url("/oauth/token"),
        "orders",
        SecretString::from("client-secret-5e884898da28047151d0e56f8dc629"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_replicas_share_one_token_fetch() {
    let redis = RedisServer::start();
    let (server, issued) = token_partner(Duration::from_millis(150), Default::default()).await;
    let replicas: Vec<_> = (0..4)
        .map(|_| oauth_replica(&server, &redis).build().expect("client"))
        .collect();
    let mut calls = Vec::new();
    for client in &replicas {
        for _ in 0..50 {
            let client = client.clone();
            calls.push(tokio::spawn(async move { client.get("/api").send().await }));
        }
    }
    for call in calls {
        call.await.expect("task").expect("call");
    }
    let fetched = issued.load(Ordering::SeqCst);
    assert!(
        fetched <= 2,
        "4 replicas x 50 cold calls made {fetched} token requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_token_is_stored_encrypted() {
    let redis = RedisServer::start();
    let (server, _) = token_partner(Duration::ZERO, Default::default()).await;
    let client = oauth_replica(&server, &redis).build().expect("client");
    let token = client
        .get("/api")
        .send()
        .await
        .expect("call")
        .text()
        .await
        .expect("body");
    assert!(token.starts_with("tok-1-"), "{token}");
    let dump = redis.dump();
    assert!(
        dump.iter()
            .any(|(key, value, _)| key.ends_with(":value") && !value.is_empty()),
        "the token is in Redis: {:?}",
        dump.iter().map(|(k, _, _)| k).collect::<Vec<_>>()
    );
    for (key, value, dumped) in &dump {
        for secret in [&token[..], "d41d8cd98f00b204", "client-secret", "orders"] {
            for bytes in [value, dumped] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret:?} readable in {key}"
                );
            }
            assert!(!key.contains(secret), "{secret:?} in a key name: {key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_drops_the_shared_token_only_if_it_is_still_the_refused_one() {
    let redis = RedisServer::start();
    let revoked = Arc::new(Mutex::new(HashSet::new()));
    let (server, issued) = token_partner(Duration::ZERO, revoked.clone()).await;
    let a = oauth_replica(&server, &redis).build().expect("a");
    let c = oauth_replica(&server, &redis).build().expect("c");
    let body = |r: outbound::Response| async move { r.text().await.expect("body") };
    let first = body(a.get("/api").send().await.expect("a")).await;
    assert_eq!(
        body(c.get("/api").send().await.expect("c")).await,
        first,
        "c took a's token"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 1);

    revoked.lock().expect("lock").insert(first.clone());
    let second = body(a.get("/api").send().await.expect("a after 401")).await;
    assert!(second.starts_with("tok-2-"), "{second}");
    // c still holds the refused token: its 401 must not drop a's new one.
    assert_eq!(
        body(c.get("/api").send().await.expect("c after 401")).await,
        second
    );
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "one new token for the fleet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_sealed_under_another_secret_is_a_miss() {
    let redis = RedisServer::start();
    let (server, issued) = token_partner(Duration::ZERO, Default::default()).await;
    replica(&server, &redis)
        .oauth2_client_credentials(
            server.url("/oauth/token"),
            "orders",
            SecretString::from("old"),
        )
        .build()
        .expect("old")
        .get("/api")
        .send()
        .await
        .expect("old secret");
    let fresh = oauth_replica(&server, &redis).build().expect("rotated");
    let token = fresh
        .get("/api")
        .send()
        .await
        .expect("call")
        .text()
        .await
        .expect("body");
    assert!(token.starts_with("tok-2-"), "fetched its own: {token}");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_dead_replica_delays_a_token_by_at_most_one_attempt_timeout() {
    let redis = RedisServer::start();
    let (server, issued) = token_partner(Duration::ZERO, Default::default()).await;
    let client = oauth_replica(&server, &redis)
        .attempt_timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    // Warm the connection, then plant a lock as a replica that died mid-fetch leaves it.
    client.get("/api").send().await.expect("first");
    let mut c = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*:value")
        .query(&mut c)
        .expect("keys");
    let lock = keys[0].replace(":value", ":lock");
    let _: () = redis::cmd("DEL").arg(&keys[0]).query(&mut c).expect("del");
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("dead-replica")
        .arg("PX")
        .arg(60_000)
        .query(&mut c)
        .expect("set");

    let fresh = oauth_replica(&server, &redis)
        .attempt_timeout(Duration::from_secs(1))
        .build()
        .expect("fresh");
    let started = Instant::now();
    fresh
        .get("/api")
        .send()
        .await
        .expect("the lock is never a reason to fail");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "it waited for the holder: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "then fetched itself: {waited:?}"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_token_without_an_expiry_is_replaced() {
    let redis = RedisServer::start();
    let (server, issued) = token_partner(Duration::ZERO, Default::default()).await;
    oauth_replica(&server, &redis)
        .build()
        .expect("a")
        .get("/api")
        .send()
        .await
        .expect("a");
    let mut c = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*:value")
        .query(&mut c)
        .expect("keys");
    let _: () = redis::cmd("PERSIST")
        .arg(&keys[0])
        .query(&mut c)
        .expect("persist");

    oauth_replica(&server, &redis)
        .build()
        .expect("b")
        .get("/api")
        .send()
        .await
        .expect("b");
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "an immortal token is not trusted"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query(&mut c)
        .expect("pttl");
    assert!(ttl > 0, "stored again with an expiry: {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_state_far_ahead_of_the_clock_refuses_no_call() {
    let redis = RedisServer::start();
    let server = TestServer::always(Reply::ok("")).await;
    let client = replica(&server, &redis)
        .rate_limit(2.0, Some(2))
        .fleet_lease(1)
        .build()
        .expect("client");
    client.get("/").send().await.expect("first");
    // As after a failover to a node whose clock is a day behind: the state is a day ahead.
    let mut c = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*:quota")
        .query(&mut c)
        .expect("keys");
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query(&mut c).expect("TIME");
    let ahead = ((secs - 1_700_000_000) * 1_000_000 + micros) as f64 + 86_400e6;
    let _: () = redis::cmd("SET")
        .arg(&keys[0])
        .arg(format!("{ahead}"))
        .query(&mut c)
        .expect("set");
    for _ in 0..2 {
        client
            .get("/")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("paced, not refused");
    }
}

#[test]
fn a_redis_user_limited_to_the_key_prefix_is_enough() {
    let redis = RedisServer::start();
    let mut c = redis.connection();
    // The ACL of the README's "Fleet mode" section.
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "outbound",
            "on",
            ">s3cret",
            "resetkeys",
            "~outbound:*",
            "resetchannels",
        ])
        .arg(&["-@all", "+ping", "+hello", "+get", "+set", "+pttl", "+del"])
        .arg(&["+pexpire", "+time", "+eval", "+evalsha", "+script|load"])
        .query(&mut c)
        .expect("ACL SETUSER");
    let url = redis.url().replace("redis://", "redis://outbound:s3cret@");
    let recorded = Recorded::default();
    with_metrics(&recorded, || async {
        let server = support::token_server(Duration::ZERO).await;
        let client = support::oauth_client_for(&server)
            .rate_limit(100.0, None)
            .fleet(SecretString::from(url))
            .fleet_command_timeout(Duration::from_millis(200))
            .build()
            .expect("client");
        for _ in 0..5 {
            client.get("/").send().await.expect("call");
        }
        let busy = client.get("/").send().await.expect("call");
        assert_eq!(busy.status(), 200);
    });
    assert_eq!(call_path_errors(&recorded), Vec::<String>::new());
    assert!(granted(&recorded) > 0.0, "the quota was shared");
    let sources: Vec<_> = recorded
        .updates("outbound.fleet.token.source")
        .iter()
        .map(|u| u.label("source").unwrap_or("?").to_owned())
        .collect();
    assert_eq!(
        sources,
        ["token_endpoint"],
        "the token was fetched for the fleet"
    );
}

#[test]
fn a_redis_that_answers_ping_but_refuses_scripts_is_not_taken_for_working() {
    let redis = RedisServer::start();
    let mut c = redis.connection();
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "noscript",
            "on",
            ">s3cret",
            "~*",
            "+@all",
            "-@scripting",
        ])
        .query(&mut c)
        .expect("ACL SETUSER");
    let url = redis.url().replace("redis://", "redis://noscript:s3cret@");
    let recorded = Recorded::default();
    with_metrics(&recorded, || async {
        let server = TestServer::always(Reply::ok("")).await;
        let client = support::client_for(&server)
            .rate_limit(1000.0, None)
            .fleet(SecretString::from(url))
            .fleet_command_timeout(Duration::from_millis(200))
            .build()
            .expect("client");
        let started = Instant::now();
        // Until two probes have failed (1 s, then 2 s later).
        while recorded.updates("outbound.fleet.redis.errors").len() < 3 {
            assert!(started.elapsed() < Duration::from_secs(15), "no probe");
            client.get("/").send().await.expect("never fails");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let errors = call_path_errors(&recorded);
    assert_eq!(
        errors,
        ["lease:refused"],
        "no flapping between shared and local"
    );
    assert_eq!(recorded.updates("outbound.fleet.fallbacks").len(), 1);
    let probes = recorded.updates("outbound.fleet.redis.errors").len() - 1;
    assert!(probes >= 2, "probes kept failing: {probes}");
}

// ===== spending ceiling =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_spending_ceiling_and_keep_counting_without_redis() {
    let mut redis = RedisServer::start();
    let server = TestServer::always(Reply::ok("")).await;
    let url = redis.url();
    let build = || {
        support::client_for(&server)
            .fleet(SecretString::from(url.clone()))
            .fleet_command_timeout(Duration::from_secs(2))
            .budget(10, Duration::from_secs(86_400))
            .build()
            .expect("client")
    };
    let (a, b) = (build(), build());
    for _ in 0..6 {
        a.get("/").send().await.expect("a within the ceiling");
    }
    let mut refused = 0;
    for _ in 0..6 {
        match b.get("/").send().await {
            Ok(_) => {}
            Err(err) if err.is_budget_exhausted() => refused += 1,
            Err(err) => panic!("{err}"),
        }
    }
    assert_eq!(refused, 2, "the fleet's ceiling, not each replica's");
    assert_eq!(server.hits(), 10);

    // Redis gone: calls are not failed for it; the local count goes on (b counted 4 of its own).
    redis.kill();
    let c = build();
    let mut ok = 0;
    for _ in 0..12 {
        match c.get("/").send().await {
            Ok(_) => ok += 1,
            Err(err) => assert!(err.is_budget_exhausted(), "only the ceiling refuses: {err}"),
        }
    }
    assert_eq!(ok, 10, "a fresh replica alone counts its own ceiling");
}

// ===== Redis trouble =====

#[test]
fn a_killed_redis_fails_no_call_and_sharing_resumes_after_a_restart() {
    let recorded = Recorded::default();
    let (capture, _guard) = Capture::start();
    let mut redis = RedisServer::start();
    with_metrics(&recorded, || async {
        let server = TestServer::always(Reply::ok("")).await;
        let client = replica(&server, &redis)
            .rate_limit(1000.0, None)
            .build()
            .expect("client");
        for _ in 0..20 {
            client.get("/").send().await.expect("shared");
        }
        assert!(granted(&recorded) > 0.0, "the quota is shared");

        redis.kill();
        for i in 0..200 {
            client
                .get("/")
                .send()
                .await
                .unwrap_or_else(|e| panic!("call {i}: {e}"));
        }
        let errors = call_path_errors(&recorded);
        assert_eq!(
            errors.len(),
            1,
            "only the first call met the dead Redis: {errors:?}"
        );
        assert_eq!(mode(&recorded), Some(0.0));

        redis.restart();
        let restarted = Instant::now();
        while mode(&recorded) != Some(1.0) {
            assert!(
                restarted.elapsed() < Duration::from_secs(8),
                "sharing never resumed"
            );
            client.get("/").send().await.expect("call");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = granted(&recorded);
        for _ in 0..20 {
            client.get("/").send().await.expect("call");
        }
        assert!(granted(&recorded) > before, "leases again");
    });
    let warned = capture.text().matches("Redis unreachable").count();
    assert_eq!(warned, 1, "one warning per switch");
    assert_eq!(recorded.updates("outbound.fleet.fallbacks").len(), 1);
}

#[test]
fn a_frozen_redis_costs_one_call_the_command_timeout_then_nothing() {
    let recorded = Recorded::default();
    let redis = RedisServer::start();
    with_metrics(&recorded, || async {
        let server = TestServer::always(Reply::ok("")).await;
        let client = replica(&server, &redis)
            .rate_limit(1000.0, None)
            .fleet_command_timeout(Duration::from_millis(100))
            .build()
            .expect("client");
        client.get("/").send().await.expect("shared");

        redis.freeze();
        // Past the lease taken by the first call.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        client.get("/").send().await.expect("never fails");
        let first = started.elapsed();
        assert!(
            first >= Duration::from_millis(90),
            "waited for the command timeout: {first:?}"
        );
        assert!(
            first < Duration::from_secs(2),
            "bounded by the command timeout: {first:?}"
        );
        for i in 0..100 {
            client
                .get("/")
                .send()
                .await
                .unwrap_or_else(|e| panic!("call {i}: {e}"));
        }
        assert_eq!(call_path_errors(&recorded), ["lease:timeout"]);

        redis.thaw();
        let thawed = Instant::now();
        while mode(&recorded) != Some(1.0) {
            assert!(
                thawed.elapsed() < Duration::from_secs(8),
                "sharing never resumed"
            );
            client.get("/").send().await.expect("call");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[tokio::test]
async fn no_redis_at_start_is_no_reason_to_fail() {
    // Nothing listens on port 1 of loopback: connections are refused.
    let closed = 1;
    let server = support::token_server(Duration::ZERO).await;
    for url in [
        format!("redis://127.0.0.1:{closed}"),
        // TLS to a port that is not listening, and a handshake nobody answers.
        format!("rediss://127.0.0.1:{closed}"),
        format!("rediss://{}", server.addr()),
    ] {
        let client = support::oauth_client_for(&server)
            .rate_limit(100.0, None)
            .fleet(SecretString::from(url))
            .fleet_command_timeout(Duration::from_millis(200))
            .build()
            .expect("client");
        for _ in 0..3 {
            client.get("/").send().await.expect("local mode");
        }
    }
}

#[test]
fn no_trace_line_shows_the_redis_password_the_token_or_the_client_secret() {
    let mut redis = RedisServer::start();
    let mut c = redis.connection();
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "svc",
            "on",
            ">pw-9f86d081884c7d65",
            "~*",
            "+@all",
        ])
        .query(&mut c)
        .expect("ACL SETUSER");
    let url = redis
        .url()
        .replace("redis://", "redis://svc:pw-9f86d081884c7d65@");
    let (capture, _guard) = Capture::start();
    let token = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let (server, _) = token_partner(Duration::ZERO, Default::default()).await;
            let client = replica(&server, &redis)
                .fleet(SecretString::from(url))
                .rate_limit(100.0, None)
                .oauth2_client_credentials(
                    server.url("/oauth/token"),
                    "orders",
                    SecretString::from("client-secret-5e884898da28047151d0e56f8dc629"),
                )
                .build()
                .expect("client");
            let token = client
                .get("/api")
                .send()
                .await
                .expect("call")
                .text()
                .await
                .expect("body");
            let shown = format!("{client:?}");
            redis.kill();
            tokio::time::sleep(Duration::from_millis(300)).await;
            for _ in 0..3 {
                client.get("/api").send().await.expect("local mode");
            }
            format!("{token}\n{shown}")
        });
    let (token, shown) = token.split_once('\n').expect("two parts");
    let log = capture.text();
    assert!(log.contains("Redis unreachable"), "the fallback is logged");
    for secret in ["pw-9f86d081884c7d65", token, "client-secret-5e884898"] {
        assert!(!log.contains(secret), "{secret:?} in the TRACE log");
        assert!(!shown.contains(secret), "{secret:?} in Debug");
    }
}

// ===== configuration =====

#[test]
fn fleet_settings_are_checked_and_name_the_key() {
    for (fleet, key) in [
        (
            "redis_url = \"redis://:hunter2@127.0.0.1\"",
            "fleet.redis_url",
        ),
        ("redis_url = { env = \"X\" }\nleese = 5", "leese"),
        ("redis_url = { env = \"X\" }\nlease = 0", "fleet.lease"),
        (
            "redis_url = { env = \"X\" }\ncommand_timeout = \"0s\"",
            "fleet.command_timeout",
        ),
        (
            "redis_url = { env = \"X\" }\ncommand_timeout = \"1h\"",
            "fleet.command_timeout",
        ),
        (
            "redis_url = { env = \"X\" }\nkey_prefix = \"out bound\"",
            "fleet.key_prefix",
        ),
        (
            "redis_url = { env = \"X\" }\nkey_prefix = \"a{b}\"",
            "fleet.key_prefix",
        ),
        (
            "redis_url = { env = \"X\" }\nreplicas_hint = 0",
            "fleet.replicas_hint",
        ),
        ("redis_url = { env = \"X\" }\nshare = []", "fleet.share"),
        ("redis_url = { env = \"X\" }\nshare = [\"quota\"]", "share"),
    ] {
        let text = format!("[crm]\nbase_url = \"https://api.crm.example\"\n[crm.fleet]\n{fleet}\n");
        let err = outbound::Profiles::from_toml_str(&text).expect_err(fleet);
        assert!(err.is_config(), "{err}");
        let shown = err.to_string();
        assert!(shown.contains(key), "{fleet}: {shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

#[test]
fn a_profile_with_every_fleet_key_builds_a_client() {
    let profiles = outbound::Profiles::from_toml_str(
        r#"
        [crm]
        base_url = "https://api.crm.example"
        [crm.rate_limit]
        requests_per_second = 200
        [crm.fleet]
        redis_url = { file = "/dev/null/not-read-until-build" }
        key_prefix = "svc-a:outbound"
        share = ["rate_limit", "pause", "token"]
        command_timeout = "25ms"
        lease = 1
        replicas_hint = 20
        "#,
    )
    .expect("valid");
    let err = outbound::Client::from_profile(profiles.get("crm").expect("crm"))
        .expect_err("the URL file cannot be read");
    assert!(err.to_string().contains("fleet.redis_url"), "{err}");
}

#[test]
fn a_bad_redis_url_is_refused_without_being_shown() {
    for url in [
        "http://:hunter2@127.0.0.1",
        "redis://:hunter2@[::1",
        "hunter2",
    ] {
        let err = outbound::Client::builder()
            .base_url("https://api.partner.example")
            .fleet(SecretString::from(url))
            .build()
            .expect_err(url);
        let shown = format!("{err} {err:?}");
        assert!(
            err.is_config() && shown.contains("fleet.redis_url"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

#[test]
fn the_redis_password_never_shows() {
    let client = outbound::Client::builder()
        .base_url("https://api.partner.example")
        .fleet(SecretString::from("redis://:hunter2@127.0.0.1:1"))
        .build()
        .expect("client");
    assert!(!format!("{client:?}").contains("hunter2"));
}

// ===== replicas as OS processes =====

/// A replica process's settings, passed in `FLEET_REPLICA` as `key=value;…`.
fn spec(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// Starts `n` replica processes (this test binary, running [`replica_process`]) and waits for
/// them: the (ok, failed) call counts of each.
async fn run_replicas(n: usize, spec: String) -> Vec<(u64, u64)> {
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "replica_process",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "-q",
                ])
                .args(["--test-threads", "1"])
                .env("FLEET_REPLICA", &spec)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("replica process")
        })
        .collect();
    // Replicas still running when an assertion fails are killed, not left loading the machine.
    struct Reap(Vec<u32>);
    impl Drop for Reap {
        fn drop(&mut self) {
            for pid in &self.0 {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
    let _reap = Reap(children.iter().map(std::process::Child::id).collect());
    let mut results = Vec::new();
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("join")
            .expect("replica output");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "replica failed: {text}");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("replica-result "))
            .unwrap_or_else(|| panic!("no result line in {text:?}"));
        let field = |name: &str| -> u64 {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in {line:?}"))
        };
        results.push((field("ok"), field("failed")));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_processes_keep_together_to_one_quota() {
    const RATE: f64 = 40.0;
    let redis = RedisServer::start();
    let server = TestServer::always(Reply::ok("")).await;
    let start = unix_ms() + 2_000;
    let results = run_replicas(
        3,
        spec(&[
            ("redis", redis.url()),
            ("base", server.origin()),
            ("rate", RATE.to_string()),
            ("burst", "4".into()),
            ("lease", "4".into()),
            ("concurrency", "8".into()),
            ("start", start.to_string()),
            ("seconds", "3".into()),
        ]),
    )
    .await;
    assert!(
        results.iter().all(|(ok, _)| *ok > 0),
        "every replica got calls through: {results:?}"
    );
    // Steady state: the 2 s after the first half second, when every replica wants more.
    let requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/api")
        .collect();
    let first = requests.iter().map(|r| r.at).min().expect("requests");
    let window = |r: &&support::Recorded| {
        r.at >= first + Duration::from_millis(500) && r.at < first + Duration::from_millis(2_500)
    };
    let in_window = requests.iter().filter(window).count() as f64;
    let quota = RATE * 2.0;
    // At most the quota, the burst once, and one lease per replica spent early; each replica
    // alone would have sent the whole quota (3x).
    assert!(
        in_window <= quota + 4.0 + 3.0 * 4.0 + 4.0,
        "{in_window} requests in 2 s at {RATE}/s"
    );
    assert!(
        in_window >= quota * 0.75,
        "{in_window} requests in 2 s at {RATE}/s: quota unused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replica_processes_with_fifty_cold_calls_each_fetch_one_token() {
    let redis = RedisServer::start();
    let (server, issued) = token_partner(Duration::from_millis(150), Default::default()).await;
    let results = run_replicas(
        4,
        spec(&[
            ("redis", redis.url()),
            ("base", server.origin()),
            ("token", server.url("/oauth/token")),
            ("concurrency", "50".into()),
            ("calls", "1".into()),
            ("start", (unix_ms() + 2_000).to_string()),
        ]),
    )
    .await;
    assert_eq!(results, vec![(50, 0); 4]);
    let fetched = issued.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&fetched),
        "{fetched} token requests for 4 cold replicas"
    );
}

/// The body of a replica process; does nothing unless started by [`run_replicas`].
#[test]
#[ignore = "a replica process, started by the fleet tests"]
fn replica_process() {
    let Ok(spec) = std::env::var("FLEET_REPLICA") else {
        return;
    };
    let get = |name: &str| {
        spec.split(';')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let number = |name: &str| get(name).map(|v| v.parse::<f64>().expect(name));
    let mut builder = outbound::Client::builder()
        .base_url(get("base").expect("base"))
        .allowed_hosts(["127.0.0.1"])
        .allow_insecure_http(true)
        .fleet(SecretString::from(get("redis").expect("redis")))
        .fleet_command_timeout(Duration::from_secs(2))
        .fleet_replicas_hint(3);
    if let Some(rate) = number("rate") {
        builder = builder
            .rate_limit(rate, number("burst").map(|b| b as u32))
            .fleet_lease(number("lease").unwrap_or(10.0) as u32);
    }
    if let Some(token_url) = get("token") {
        builder = builder.oauth2_client_credentials(
            token_url,
            "orders",
            SecretString::from("client-secret-5e884898da28047151d0e56f8dc629"),
        );
    }
    let client = builder.build().expect("client");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let start = UNIX_EPOCH + Duration::from_millis(number("start").expect("start") as u64);
    let (ok, failed) = runtime.block_on(async move {
        if get("token").is_none() {
            // Connect before the start, as a replica that already serves traffic would be.
            let _ = client
                .get("/warm-up")
                .timeout(Duration::from_millis(50))
                .send()
                .await;
        }
        if let Ok(wait) = start.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
        let until = number("seconds").map(|s| Instant::now() + Duration::from_secs_f64(s));
        let calls = number("calls").unwrap_or(f64::MAX) as u64;
        let mut tasks = Vec::new();
        for _ in 0..number("concurrency").unwrap_or(1.0) as usize {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, 0u64);
                for _ in 0..calls {
                    if until.is_some_and(|u| Instant::now() >= u) {
                        break;
                    }
                    let call = client
                        .get("/api")
                        .timeout(Duration::from_secs(1))
                        .send()
                        .await;
                    match call {
                        Ok(_) => ok += 1,
                        Err(e) if e.is_rate_limited() => {}
                        Err(_) => failed += 1,
                    }
                }
                (ok, failed)
            }));
        }
        let mut total = (0, 0);
        for task in tasks {
            let (ok, failed) = task.await.expect("task");
            total = (total.0 + ok, total.1 + failed);
        }
        total
    });
    println!("replica-result ok={ok} failed={failed}");
}
