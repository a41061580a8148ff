//! Observability: OpenTelemetry-shaped spans, decision events, metrics with low-cardinality
//! labels, and the masked body log.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::metrics::Recorded;
use support::trace::Capture;
use support::{Reply, TestServer};

fn fast(server: &TestServer) -> outbound::ClientBuilder {
    support::client_for(server).initial_backoff(Duration::from_millis(5))
}

/// Runs `f` on a current-thread runtime with `recorder` as this thread's metrics recorder.
fn with_metrics<F: std::future::Future>(recorder: &Recorded, f: impl FnOnce() -> F) -> F::Output {
    metrics::with_local_recorder(recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
}

fn events<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

#[tokio::test]
async fn a_retried_call_has_one_span_with_the_otel_fields_and_retry_events() {
    let (capture, _guard) = Capture::start_json();
    let server = TestServer::script(vec![Reply::status(503), Reply::ok("")]).await;
    fast(&server)
        .build()
        .expect("client")
        .get("/v1/orders?api_key=k-123")
        .send()
        .await
        .expect("ok");
    let lines = capture.json_lines();

    let closed: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "close")
        .collect();
    assert_eq!(closed.len(), 1, "one span per logical call");
    let span = &closed[0]["span"];
    // Named after the method; the host and port are in `url.full` (and, for an OpenTelemetry
    // exporter, in `server.address` and `server.port`: tests/trace_context.rs).
    assert_eq!(span["name"], "GET");
    assert_eq!(span["otel.kind"], "client");
    assert_eq!(span["http.response.status_code"], 200);
    assert_eq!(span["http.request.resend_count"], 1);
    assert_eq!(span["outbound.attempts"], 2);
    assert_eq!(span["outbound.profile"], "default");
    assert!(
        span["url.full"]
            .as_str()
            .is_some_and(|u| u.ends_with("/v1/orders?api_key=REDACTED")),
        "{span}"
    );

    let scheduled = events(&lines, "retry scheduled");
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0]["fields"]["reason"], "503");
    // The line says which call it is about, although a call that is not retried records
    // its fields only at its end.
    assert_eq!(scheduled[0]["span"]["outbound.profile"], "default");
    assert!(
        scheduled[0]["span"]["url.full"]
            .as_str()
            .is_some_and(|u| u.ends_with("/v1/orders?api_key=REDACTED")),
        "{}",
        scheduled[0]
    );
    assert!(
        scheduled[0]["fields"]["backoff_ms"]
            .as_u64()
            .is_some_and(|ms| ms <= 5)
    );
    let attempts = events(&lines, "attempt finished");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1]["fields"]["attempt"], 2);
}

#[tokio::test]
async fn a_cancelled_call_still_says_which_call_it_was() {
    let (capture, _guard) = Capture::start_json();
    let server = TestServer::always(Reply::Stall).await;
    let client = fast(&server).build().expect("client");
    let call = client.get("/v1/slow").send();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(100), call)
            .await
            .is_err(),
        "the caller gave up"
    );
    let lines = capture.json_lines();
    let closed: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "close")
        .collect();
    assert_eq!(closed.len(), 1);
    let span = &closed[0]["span"];
    assert_eq!(span["error.type"], "cancelled");
    assert!(
        span["url.full"]
            .as_str()
            .is_some_and(|u| u.ends_with("/v1/slow")),
        "{span}"
    );
}

#[tokio::test]
async fn a_refused_retry_says_why() {
    let (capture, _guard) = Capture::start_json();
    let server = TestServer::always(Reply::status(503)).await;
    fast(&server)
        .build()
        .expect("client")
        .post("/charges")
        .send()
        .await
        .expect("a 503");
    let lines = capture.json_lines();
    let refused = events(&lines, "retry refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["fields"]["why"], "not_replay_safe");
    let closed: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "close")
        .collect();
    assert_eq!(closed[0]["span"]["error.type"], "503");
}

#[test]
fn metrics_follow_otel_names_with_low_cardinality_labels() {
    let recorder = Recorded::default();
    with_metrics(&recorder, || async {
        let server = TestServer::script(vec![Reply::status(503), Reply::ok("")]).await;
        let client = fast(&server).build().expect("client");
        client
            .get("/v1/contacts/42?token=abc")
            .send()
            .await
            .expect("ok");
        let _ = client.get("https://elsewhere.example/").send().await;
    });

    let durations = recorder.updates("http.client.request.duration");
    assert_eq!(durations.len(), 2);
    let refused = &durations[1];
    assert_eq!(refused.label("outcome"), Some("disallowed"));
    assert_eq!(
        refused.label("server.address"),
        Some("none"),
        "a refused host is never a label"
    );
    let d = &durations[0];
    assert!(d.value > 0.0 && d.value < 5.0, "seconds: {}", d.value);
    assert_eq!(d.label("http.request.method"), Some("GET"));
    assert_eq!(d.label("http.response.status_class"), Some("2xx"));
    assert_eq!(d.label("outcome"), Some("ok"));
    assert_eq!(d.label("server.address"), Some("127.0.0.1"));
    assert_eq!(d.label("outbound.profile"), Some("default"));
    assert_eq!(recorder.updates("outbound.client.attempts")[0].value, 2.0);
    let retries = recorder.updates("outbound.client.retries");
    assert_eq!(
        (retries.len(), retries[0].label("reason")),
        (1, Some("503"))
    );
    for update in recorder.all() {
        for (key, value) in &update.labels {
            assert!(
                !value.contains('/') && !value.contains('?'),
                "{key}={value} in {}",
                update.name
            );
        }
    }
}

#[test]
fn breaker_state_is_a_gauge_and_each_change_an_event() {
    let recorder = Recorded::default();
    let (capture, _guard) = Capture::start_json();
    with_metrics(&recorder, || async {
        let server = TestServer::always(Reply::status(503)).await;
        let client = fast(&server)
            .max_attempts(1)
            .circuit_breaker_minimum_requests(2)
            .build()
            .expect("client");
        for _ in 0..3 {
            let _ = client.get("/x").send().await;
        }
    });
    let gauge = recorder.updates("outbound.client.circuit_breaker.state");
    assert_eq!(gauge.last().map(|g| g.value), Some(2.0), "open");
    let lines = capture.json_lines();
    let changes = events(&lines, "circuit breaker state changed");
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0]["fields"]["from"].as_str(),
            changes[0]["fields"]["to"].as_str()
        ),
        (Some("closed"), Some("open"))
    );
    assert_eq!(changes[0]["level"], "WARN");
}

#[tokio::test]
async fn body_log_is_off_by_default_and_masks_fields_when_on() {
    const CANARY: &str = "pw-canary-0123456789";
    let response =
        format!(r#"{{"user":{{"password":"{CANARY}"}},"card":"4111111111111111","id":7}}"#);
    let server = TestServer::always(Reply::json(200, &response)).await;

    let (capture, guard) = Capture::start();
    let quiet = fast(&server).build().expect("client");
    quiet
        .post("/login")
        .json(&serde_json::json!({ "password": CANARY }))
        .send()
        .await
        .expect("ok")
        .text()
        .await
        .expect("body");
    assert!(
        !capture.text().contains("direction"),
        "no body log unless asked"
    );
    drop(guard);

    let (capture, _guard) = Capture::start();
    let logging = fast(&server)
        .log_bodies(true)
        .redact_json_fields(["id"])
        .build()
        .expect("client");
    logging
        .post("/login")
        .json(&serde_json::json!({ "password": CANARY, "login": "ada" }))
        .send()
        .await
        .expect("ok")
        .bytes()
        .await
        .expect("body");
    let text = capture.text();
    assert!(
        text.contains(r#"direction="request""#) && text.contains(r#"direction="response""#),
        "{text}"
    );
    assert!(
        text.contains("************6789"),
        "long values keep their last four characters: {text}"
    );
    assert!(
        text.contains("************1111"),
        "card numbers are masked: {text}"
    );
    assert!(text.contains("ada"), "other fields are shown: {text}");
    assert!(
        !text.contains(CANARY) && !text.contains("4111111111111111"),
        "{text}"
    );
}

#[tokio::test]
async fn the_partners_request_id_is_on_the_response_the_span_and_every_attempt() {
    let (capture, _guard) = Capture::start_json();
    let server = TestServer::script(vec![
        Reply::status(503).header("X-Request-Id", "req_first"),
        Reply::ok("").header("Request-Id", "req_8812"),
    ])
    .await;
    let response = fast(&server)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("ok");
    assert_eq!(response.request_id(), Some("req_8812"));
    let lines = capture.json_lines();
    let attempts: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "attempt finished")
        .map(|l| l["fields"]["request_id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(attempts, ["req_first", "req_8812"]);
    let closed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "close")
        .expect("span");
    assert_eq!(closed["span"]["outbound.request_id"], "req_8812");
}

#[tokio::test]
async fn the_span_shows_a_calls_own_policy() {
    let (capture, _guard) = Capture::start_json();
    let server = TestServer::always(Reply::ok("")).await;
    fast(&server)
        .build()
        .expect("client")
        .post("/v1/search")
        .idempotent()
        .max_attempts(2)
        .send()
        .await
        .expect("sent");
    let closed = capture
        .json_lines()
        .into_iter()
        .find(|l| l["fields"]["message"] == "close")
        .expect("span closed");
    assert_eq!(closed["span"]["outbound.max_attempts"], 2);
    assert_eq!(closed["span"]["outbound.idempotent"], true);
}

#[tokio::test]
async fn headers_the_hook_sets_are_masked_in_logs() {
    let (capture, _guard) = Capture::start();
    let server = TestServer::script(vec![Reply::status(503), Reply::ok("")]).await;
    fast(&server)
        .redact_headers(["x-signature"])
        .on_attempt(|request| {
            request
                .headers_mut()
                .insert("x-signature", "t=1,v1=5f2b9c0e7d".parse()?);
            Ok(())
        })
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("sent");
    let log = capture.text();
    assert!(
        log.contains("retry scheduled"),
        "the retried call was logged"
    );
    assert!(
        !log.contains("5f2b9c0e7d"),
        "the signature leaked into a log"
    );
}

#[tokio::test]
async fn the_spending_ceiling_warns_once_at_80_and_once_at_100_percent() {
    let (capture, _guard) = Capture::start();
    let server = TestServer::always(Reply::ok("")).await;
    let client = fast(&server)
        .budget(5, std::time::Duration::from_secs(86_400))
        .build()
        .expect("client");
    for _ in 0..10 {
        let _ = client.get("/").send().await;
    }
    let log = capture.text();
    assert_eq!(
        log.matches("80 % of the spending ceiling used").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("spending ceiling used up").count(), 1);
}
