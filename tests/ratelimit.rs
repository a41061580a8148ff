//! Pacing: a client-side quota, a per-origin pause when the server says to slow down, and the
//! kill switch.

mod support;

use std::time::{Duration, SystemTime};

use outbound::{Client, ClientBuilder};
use support::{Reply, TestServer};
use tokio::time::Instant;

/// One attempt per call, so pauses are seen by the *next* call, not a retry.
fn single(server: &TestServer) -> ClientBuilder {
    support::client_for(server).max_attempts(1)
}

#[tokio::test]
async fn five_per_second_with_burst_one_paces_ten_calls() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = single(&server)
        .rate_limit(5.0, Some(1))
        .build()
        .expect("client");
    let started = Instant::now();
    for _ in 0..10 {
        client.get("/x").send().await.expect("paced, not refused");
    }
    let elapsed = started.elapsed();
    // Nine gaps of 200 ms.
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let seen = server.requests();
    for pair in seen.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(150));
    }
}

#[tokio::test]
async fn a_wait_past_the_deadline_fails_fast() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = single(&server)
        .rate_limit(1.0, Some(1))
        .build()
        .expect("client");
    client.get("/x").send().await.expect("the burst slot");
    let started = Instant::now();
    let err = client
        .get("/x")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("the next slot is a second away");
    assert!(err.is_rate_limited(), "{err}");
    assert!(
        err.retry_after()
            .is_some_and(|d| d > Duration::from_millis(500)),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(server.hits(), 1);
}

async fn assert_next_call_waits(client: &Client, server: &TestServer, at_least: Duration) {
    client.get("/first").send().await.expect("answered");
    client
        .get("/second")
        .send()
        .await
        .expect("waited, then sent");
    let seen = server.requests();
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= at_least,
        "the next call reached the server after {gap:?}"
    );
    assert!(gap < at_least + Duration::from_secs(2), "{gap:?}");
}

#[tokio::test]
async fn a_pattern_of_429s_pauses_the_origin_but_not_others() {
    let throttled = Reply::status(429).header("retry-after", "2");
    let server = TestServer::script(vec![
        throttled.clone(),
        throttled.clone(),
        throttled,
        Reply::ok(""),
    ])
    .await;
    let other = TestServer::always(Reply::ok("")).await;
    let client = single(&server).build().expect("client");
    for _ in 0..3 {
        let response = client.get("/first").send().await.expect("the 429 itself");
        assert_eq!(response.status(), 429);
    }
    let started = Instant::now();
    client
        .get(other.url("/elsewhere"))
        .send()
        .await
        .expect("other origin");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "another origin was slowed"
    );
    client.get("/second").send().await.expect("after the pause");
    let seen = server.requests();
    let gap = seen[3].at - seen[2].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "reached the server early: {gap:?}"
    );
}

// Isolated 429s (one object's lock contention, one endpoint's own limit) delay the retry of the
// call that got them; every other call goes on.
#[tokio::test]
async fn a_lone_429_delays_only_its_own_call() {
    let server = TestServer::start(|request| match request.path() {
        "/contended" => Reply::status(429).header("retry-after", "1"),
        _ => Reply::ok(""),
    })
    .await;
    let client = support::client_for(&server)
        .max_attempts(2)
        .build()
        .expect("client");
    let contended = tokio::spawn({
        let client = client.clone();
        async move { client.get("/contended").send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    for _ in 0..5 {
        client.get("/other").send().await.expect("not paused");
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the origin was paused for everyone"
    );
    let response = contended.await.expect("no panic").expect("the second 429");
    assert_eq!(response.attempts(), 2);
    let tries: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/contended")
        .collect();
    let gap = tries[1].at - tries[0].at;
    assert!(
        gap >= Duration::from_millis(900),
        "its retry came early: {gap:?}"
    );
}

#[tokio::test]
async fn retry_after_as_a_date_pauses_the_origin() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let server = TestServer::script(vec![
        Reply::status(503).header("retry-after", &at),
        Reply::ok(""),
    ])
    .await;
    let client = single(&server).build().expect("client");
    assert_next_call_waits(&client, &server, Duration::from_millis(900)).await;
}

#[tokio::test]
async fn ratelimit_headers_showing_an_exhausted_quota_pause_the_origin() {
    let server = TestServer::script(vec![
        Reply::ok("")
            .header("ratelimit-policy", r#""default";q=10;w=1"#)
            .header("ratelimit", r#""default";r=0;t=1"#),
        Reply::ok(""),
    ])
    .await;
    let client = single(&server).build().expect("client");
    assert_next_call_waits(&client, &server, Duration::from_millis(900)).await;

    let server = TestServer::script(vec![
        Reply::ok("")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", "1"),
        Reply::ok(""),
    ])
    .await;
    let client = single(&server).build().expect("client");
    assert_next_call_waits(&client, &server, Duration::from_millis(900)).await;
}

#[tokio::test]
async fn a_pause_longer_than_the_deadline_fails_fast() {
    let server = TestServer::script(vec![
        Reply::status(503).header("retry-after", "30"),
        Reply::ok(""),
    ])
    .await;
    let client = single(&server).build().expect("client");
    client.get("/x").send().await.expect("the 503");
    let started = Instant::now();
    let err = client
        .get("/x")
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .expect_err("paused");
    assert!(err.is_rate_limited(), "{err}");
    assert!(
        err.retry_after()
            .is_some_and(|d| d > Duration::from_secs(25))
    );
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn garbage_rate_limit_headers_are_ignored() {
    let server = TestServer::script(vec![
        Reply::status(429)
            .header("retry-after", "soon")
            .header("ratelimit", "r=zero;t=later")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", "-4"),
        Reply::ok(""),
    ])
    .await;
    let client = single(&server).build().expect("client");
    client.get("/x").send().await.expect("the 429");
    let started = Instant::now();
    client.get("/x").send().await.expect("not paused");
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn isolate_fails_every_clone_fast_until_restored() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = support::client_for(&server).build().expect("client");
    let clone = client.clone();
    client.isolate();
    assert!(clone.is_isolated());
    for c in [&client, &clone] {
        let err = c.get("/x").send().await.expect_err("isolated");
        assert!(err.is_isolated(), "{err}");
        assert_eq!(err.kind(), outbound::ErrorKind::Isolated);
    }
    assert_eq!(server.connections(), 0, "no I/O while isolated");
    clone.restore();
    assert!(!client.is_isolated());
    client.get("/x").send().await.expect("restored");
    assert_eq!(server.hits(), 1);
}

// A wait of days (or more seconds than a u64 holds) is a long wait, not garbage: the call ends
// as rate limited, and the origin is paused for `retry.max_retry_after`.
#[tokio::test]
async fn retry_after_of_days_ends_the_call_and_pauses_the_origin_for_the_cap() {
    for huge in [
        "172800",
        "99999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let server = TestServer::always(Reply::status(503).header("retry-after", huge)).await;
        let client = support::client_for(&server)
            .initial_backoff(Duration::from_millis(5))
            .total_timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let started = Instant::now();
        let err = client.get("/x").send().await.expect_err("too long to wait");
        assert!(err.is_rate_limited(), "{huge}: {err}");
        // The server's ask, saturated: adding it to an Instant never overflows.
        let asked = err.retry_after().expect("the server's wait");
        assert!(asked > Duration::from_secs(86_400), "{huge}: {asked:?}");
        assert!(
            Instant::now().checked_add(asked).is_some(),
            "{huge}: {asked:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "{huge}");
        let again = client.get("/y").send().await.expect_err("paused");
        assert!(again.is_rate_limited(), "{huge}: {again}");
        let pause = again.retry_after().expect("the pause");
        assert!(
            pause <= Duration::from_secs(60) && pause > Duration::from_secs(50),
            "{huge}: paused for {pause:?}, not max_retry_after"
        );
        assert_eq!(server.hits(), 1, "{huge}");
    }
}

#[tokio::test]
async fn retry_after_past_the_cap_is_rate_limited_on_the_last_attempt_and_for_a_keyless_post() {
    let server = TestServer::always(Reply::status(503).header("retry-after", "100000")).await;
    let last = support::client_for(&server)
        .initial_backoff(Duration::from_millis(5))
        .max_attempts(1)
        .build()
        .expect("client")
        .get("/x")
        .send()
        .await;
    assert!(
        last.as_ref().is_err_and(|e| e.is_rate_limited()),
        "{last:?}"
    );
    let server = TestServer::always(Reply::status(429).header("retry-after", "100000")).await;
    let post = support::client_for(&server)
        .build()
        .expect("client")
        .post("/orders")
        .send()
        .await;
    assert!(
        post.as_ref().is_err_and(|e| e.is_rate_limited()),
        "{post:?}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn error_for_status_on_a_429_out_of_attempts_keeps_retry_after() {
    let server = TestServer::always(Reply::status(429).header("Retry-After", "1")).await;
    let err = support::client_for(&server)
        .max_attempts(1)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("answered")
        .error_for_status()
        .expect_err("429");
    assert!(err.is_status(), "{err}");
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(1)));

    let server = TestServer::always(Reply::status(500).header("Retry-After", "1")).await;
    let err = support::client_for(&server)
        .max_attempts(1)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("answered")
        .error_for_status()
        .expect_err("500");
    assert_eq!(
        err.retry_after(),
        None,
        "only 429 and 503 ask to come back later"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_headerless_429s_pauses_the_origin_and_the_calls_succeed_once_paced() {
    // As nginx's limit_req answers: 429, no Retry-After, no quota headers, for a second.
    let started = std::time::Instant::now();
    let server = TestServer::start(move |_| {
        if started.elapsed() < Duration::from_secs(1) {
            Reply::status(429)
        } else {
            Reply::ok("")
        }
    })
    .await;
    let client = support::client_for(&server).build().expect("client");
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.get(format!("/v1/items/{i}")).send().await })
        })
        .collect();
    for call in calls {
        let response = call
            .await
            .expect("task")
            .expect("never the breaker, never an error");
        assert_eq!(
            response.status(),
            200,
            "after {} attempts",
            response.attempts()
        );
    }
    // One 429 per call at most before the pause, then one success each.
    assert!(server.hits() <= 40 * 2 + 5, "{} requests", server.hits());
    // The breaker never opened: another endpoint answers at once.
    client
        .get("/v1/other")
        .send()
        .await
        .expect("other endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_of_429s_asking_for_no_wait_is_paced_all_the_same() {
    // Retry-After: 0 on every answer for a second: no wait asked, yet a throttling origin.
    let started = std::time::Instant::now();
    let server = TestServer::start(move |_| {
        if started.elapsed() < Duration::from_secs(1) {
            Reply::status(429).header("Retry-After", "0")
        } else {
            Reply::ok("")
        }
    })
    .await;
    let client = support::client_for(&server).build().expect("client");
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/").send().await })
        })
        .collect();
    for call in calls {
        let response = call.await.expect("task").expect("paced, then answered");
        assert_eq!(response.status(), 200, "after {}", response.attempts());
    }
    assert!(
        server.hits() <= 30 * 2 + 5,
        "{} requests for 30 calls",
        server.hits()
    );
}
