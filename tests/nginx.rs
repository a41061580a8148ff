//! Against a real third-party server: Debian's nginx on loopback, TLS 1.3 with HTTP/2 and
//! HTTP/1.1, gzip, `limit_req`, redirects and mutual TLS. Requests are counted from nginx's
//! access log, not from our side.
//!
//! Run with `cargo test --features nginx-tests --test nginx`; needs `nginx` on PATH.

#![cfg(feature = "nginx-tests")]

mod support;

use std::time::Duration;

use outbound::{Client, ClientBuilder, SecretString};
use support::nginx::Nginx;
use support::tls::Pki;
use support::trace::Capture;

fn client(nginx: &Nginx, pki: &Pki, port: u16) -> ClientBuilder {
    Client::builder()
        .base_url(nginx.origin(port))
        .tls_ca_file(pki.ca_file())
        .proxy(outbound::Proxy::None)
        .initial_backoff(Duration::from_millis(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_caps_hold_over_h2_and_h1() {
    let pki = Pki::new("nginx-bodies");
    let nginx = Nginx::start(&pki);
    for (port, protocol) in [(nginx.h2, "HTTP/2.0"), (nginx.h1, "HTTP/1.1")] {
        let client = client(&nginx, &pki, port)
            .max_response_bytes(1 << 20)
            .build()
            .expect("client");
        let small = client.get("/small").send().await.expect("small");
        assert_eq!(small.text().await.expect("body"), "hello from nginx");
        let big = client.get("/big").send().await.expect("head of big");
        let err = big.bytes().await.expect_err("20 MiB over a 1 MiB cap");
        assert!(err.is_body_too_large(), "{protocol}: {err}");
        // A HEAD answer keeps the resource's Content-Length but has no body (over h2 the length
        // reaches the client and must not trip the cap).
        let head = client.head("/big").send().await.expect("HEAD");
        assert_eq!(head.bytes().await.expect("no body").len(), 0, "{protocol}");
        let logged = nginx.logged("GET", "/small");
        assert!(
            logged
                .iter()
                .any(|l| l.starts_with(&port.to_string()) && l.ends_with(protocol)),
            "{protocol} on {port}: {logged:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_is_counted_after_decompression() {
    let pki = Pki::new("nginx-gzip");
    let nginx = Nginx::start(&pki);
    let tight = client(&nginx, &pki, nginx.h2)
        .max_response_bytes(1 << 20)
        .build()
        .expect("client");
    let err = tight
        .get("/export.csv")
        .send()
        .await
        .expect("head")
        .bytes()
        .await
        .expect_err("4 MiB of text, a few KiB on the wire");
    assert!(err.is_body_too_large(), "{err}");
    let roomy = client(&nginx, &pki, nginx.h2)
        .max_response_bytes(8 << 20)
        .build()
        .expect("client");
    let body = roomy
        .get("/export.csv")
        .send()
        .await
        .expect("head")
        .bytes()
        .await
        .expect("body");
    assert!(
        body.len() > 4_000_000 && body.starts_with(b"id,name,amount\n"),
        "{}",
        body.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_req_burst_is_paced_not_a_breaker_opening() {
    let pki = Pki::new("nginx-limit");
    let nginx = Nginx::start(&pki);
    let client = client(&nginx, &pki, nginx.h2)
        .total_timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/limited").send().await })
        })
        .collect();
    let mut ok = 0;
    for call in calls {
        match call.await.expect("task") {
            Ok(response) if response.status() == 200 => ok += 1,
            Ok(response) => panic!(
                "ended with {} after {}",
                response.status(),
                response.attempts()
            ),
            Err(err) => {
                assert!(
                    !err.is_circuit_open(),
                    "a 429 burst opened the breaker: {err}"
                );
                panic!("{err}");
            }
        }
    }
    assert_eq!(ok, 40, "every call succeeds once paced");
    let requests = nginx.logged("GET", "/limited").len();
    assert!(requests <= 40 * 3, "{requests} requests for 40 calls");
    // The breaker is closed: another endpoint of the origin answers at once.
    let small = client.get("/small").send().await.expect("not circuit open");
    assert_eq!(small.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_keep_replay_safety_by_nginxs_own_count() {
    let pki = Pki::new("nginx-redirects");
    let nginx = Nginx::start(&pki);
    let client = client(&nginx, &pki, nginx.h2)
        .follow_redirects(true)
        .allowed_hosts(["127.0.0.1"])
        .allow_insecure_http(true)
        .build()
        .expect("client");
    let same = client.get("/same").send().await.expect("same origin");
    assert_eq!(same.status(), 200);
    let other = client
        .get("/other-port")
        .send()
        .await
        .expect("another port");
    assert_eq!(other.status(), 200);
    assert_eq!(nginx.logged("GET", "/small").len(), 2);

    let err = client
        .get("/to-http")
        .send()
        .await
        .expect_err("https to http");
    assert!(err.is_redirect(), "{err}");
    assert!(
        nginx.logged("GET", "/small").len() == 2,
        "nothing sent over plain http"
    );

    // A keyless POST answered with a redirect to a dead port: answered once, never re-sent.
    let err = client
        .post("/to-dead")
        .body("charge")
        .send()
        .await
        .expect_err("dead");
    assert_eq!(err.attempts(), 1, "{err}");
    assert_eq!(nginx.logged("POST", "/to-dead").len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_and_without_a_client_certificate() {
    let pki = Pki::new("nginx-mtls");
    let nginx = Nginx::start(&pki);
    // nginx completes the handshake and refuses in HTTP: 400, final, sent once.
    let refused = client(&nginx, &pki, nginx.mtls)
        .build()
        .expect("client")
        .get("/small")
        .send()
        .await
        .expect("nginx answers");
    assert_eq!((refused.status().as_u16(), refused.attempts()), (400, 1));
    let leaf = pki.leaf("client", "orders-service.internal");
    let identified = client(&nginx, &pki, nginx.mtls)
        .tls_client_cert_file(&leaf.cert_file)
        .tls_client_key_file(&leaf.key_file)
        .build()
        .expect("client");
    assert_eq!(
        identified
            .get("/small")
            .send()
            .await
            .expect("mTLS")
            .status(),
        200
    );
}

#[tokio::test]
async fn no_canary_in_a_trace_log_of_h2_traffic() {
    let pki = Pki::new("nginx-canary");
    let nginx = Nginx::start(&pki);
    let (capture, _guard) = Capture::start();
    let query = client(&nginx, &pki, nginx.h2)
        .api_key_query_param("api_key", SecretString::from("canary-query-6b1f"))
        .follow_redirects(true)
        .build()
        .expect("client");
    let header = client(&nginx, &pki, nginx.h2)
        .bearer_token(SecretString::from("canary-bearer-93c2"))
        .redact_headers(["x-signature"])
        .on_attempt(|r| {
            r.headers_mut()
                .insert("x-signature", "canary-signature-77ad".parse()?);
            Ok(())
        })
        .build()
        .expect("client");
    for path in ["/small", "/same", "/unavailable", "/big"] {
        query.get(path).send().await.expect("query client");
        header.get(path).send().await.expect("header client");
    }
    let log = capture.text();
    assert!(
        log.contains("h2") || log.contains("HTTP/2"),
        "the log covers h2 traffic"
    );
    for canary in [
        "canary-query-6b1f",
        "canary-bearer-93c2",
        "canary-signature-77ad",
    ] {
        assert!(!log.contains(canary), "{canary} in the TRACE log");
    }
    // Both clients' /small, and the query client's redirect from /same.
    let reached = nginx.logged("GET", "/small");
    assert_eq!(reached.len(), 3, "the calls reached nginx: {reached:?}");
}
