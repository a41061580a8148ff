//! The calls real integrations make: form and multipart bodies, streamed bodies, streamed
//! downloads, per-call policy, retry hints from the server and the per-attempt hook; each keeps
//! every guarantee of a plain call.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use support::{Reply, TestServer, client_for};

fn fast(server: &TestServer) -> outbound::ClientBuilder {
    client_for(server).initial_backoff(Duration::from_millis(1))
}

// ===== bodies =====

#[tokio::test]
async fn a_form_is_sent_urlencoded_with_its_content_type() {
    let server = TestServer::always(Reply::ok("")).await;
    fast(&server)
        .build()
        .expect("client")
        .post("/v1/charges")
        .form(&[("amount", "2000"), ("description", "a&b=c d")])
        .send()
        .await
        .expect("sent");
    let request = &server.requests()[0];
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.body, b"amount=2000&description=a%26b%3Dc+d");
}

#[tokio::test]
async fn a_form_that_cannot_be_encoded_is_refused_before_io() {
    let server = TestServer::always(Reply::ok("")).await;
    let nested = serde_json::json!({ "card": { "number": "4242" } });
    let err = fast(&server)
        .build()
        .expect("client")
        .post("/v1/charges")
        .form(&nested)
        .send()
        .await
        .expect_err("nested");
    assert!(err.is_builder(), "{err}");
    assert!(!err.to_string().contains("4242"), "{err}");
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn a_multipart_upload_is_sent_whole_again_on_a_retry() {
    let dir = std::env::temp_dir().join(format!("outbound-mp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("scan.png");
    let file: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &file).expect("file");
    let server = TestServer::script(vec![Reply::status(503), Reply::ok("")]).await;
    let form = outbound::multipart::Form::new()
        .text("purpose", "invoice")
        .part(
            "scan",
            outbound::multipart::Part::file(&path)
                .mime_str("image/png")
                .expect("mime"),
        )
        .part(
            "note",
            outbound::multipart::Part::bytes(&b"a \"quoted\"\r\nname"[..])
                .file_name("n\"1\r\n.txt"),
        );
    let response = fast(&server)
        .build()
        .expect("client")
        .post("/v1/files")
        .multipart(form)
        .idempotency_key("upload-7")
        .send()
        .await
        .expect("sent");
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 2));
    let requests = server.requests();
    assert_eq!(requests[0].body, requests[1].body, "the same form, whole");
    let body = &requests[1].body;
    let content_type = requests[1].header("content-type").expect("content type");
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .expect("multipart");
    assert!(body.ends_with(format!("--{boundary}--\r\n").as_bytes()));
    assert!(
        body.windows(file.len()).any(|w| w == file),
        "the file's bytes"
    );
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("name=\"purpose\"\r\n\r\ninvoice\r\n"),
        "{text:.300}"
    );
    assert!(text.contains("filename=\"scan.png\"\r\nContent-Type: image/png"));
    // A name cannot end its header or start another.
    assert!(
        text.contains("filename=\"n%221%0D%0A.txt\""),
        "escaped file name"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn a_file_that_vanished_before_the_retry_fails_the_call_clearly() {
    let dir = std::env::temp_dir().join(format!("outbound-gone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("export.csv");
    std::fs::write(&path, "id\n1\n").expect("file");
    let server = TestServer::always(Reply::status(503)).await;
    let doomed = path.clone();
    let client = fast(&server)
        .on_attempt(move |request| {
            if request.attempt() == 2 {
                std::fs::remove_file(&doomed)?;
            }
            Ok(())
        })
        .build()
        .expect("client");
    let form =
        outbound::multipart::Form::new().part("file", outbound::multipart::Part::file(&path));
    let err = client
        .put("/v1/imports/1")
        .multipart(form)
        .send()
        .await
        .expect_err("the file is gone");
    assert!(err.is_builder(), "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("cannot read") && shown.contains("export.csv"),
        "{shown}"
    );
    assert_eq!(server.hits(), 1, "the second attempt sent nothing");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

fn chunks(
    parts: &[&'static str],
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::iter(
        parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn a_streamed_body_is_sent_once_even_for_an_idempotent_method() {
    let server = TestServer::always(Reply::status(503)).await;
    let response = fast(&server)
        .build()
        .expect("client")
        .put("/v1/imports/7")
        .body_stream(chunks(&["id,amount\n", "1,20.00\n"]))
        .send()
        .await
        .expect("answered");
    assert_eq!((response.status().as_u16(), response.attempts()), (503, 1));
    assert_eq!(server.requests()[0].body, b"id,amount\n1,20.00\n");
}

#[tokio::test]
async fn a_stream_that_fails_midway_fails_the_call_and_is_not_retried() {
    let server = TestServer::always(Reply::ok("")).await;
    let broken = futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"first,")),
        Err(std::io::Error::other("disk read failed")),
    ]);
    let err = fast(&server)
        .build()
        .expect("client")
        .put("/v1/imports/8")
        .body_stream(broken)
        .send()
        .await
        .expect_err("the body broke");
    assert_eq!(err.attempts(), 1, "{err}");
    assert!(!err.is_builder() && !err.is_status(), "{err:?}");
}

#[tokio::test]
async fn a_redirect_that_needs_a_streamed_body_again_is_refused() {
    let server =
        TestServer::script(vec![Reply::redirect(307, "/v2/imports/9"), Reply::ok("")]).await;
    let err = fast(&server)
        .follow_redirects(true)
        .build()
        .expect("client")
        .put("/v1/imports/9")
        .body_stream(chunks(&["row\n"]))
        .send()
        .await
        .expect_err("cannot re-send");
    assert!(err.is_redirect(), "{err}");
    assert_eq!(server.hits(), 1);
}

// ===== streamed downloads =====

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_one_gib_download_streams_in_constant_memory_and_stops_at_its_limit() {
    const GIB: u64 = 1 << 30;
    let server = TestServer::always(Reply::Endless).await;
    let client = fast(&server)
        .max_response_bytes(1024)
        .build()
        .expect("client");
    let mut response = client
        .get("/v1/exports/all")
        .max_response_bytes(GIB)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("head");
    let before = rss_kib();
    let mut read = 0u64;
    let mut peak = before;
    let err = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len() as u64;
                if read % (64 << 20) < chunk.len() as u64 {
                    peak = peak.max(rss_kib());
                }
            }
            Ok(None) => panic!("an endless body ended"),
            Err(err) => break err,
        }
    };
    assert!(err.is_body_too_large(), "{err}");
    assert!(read <= GIB && read > GIB - 65_536, "read {read} bytes");
    let grown = peak.saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew {grown} KiB streaming 1 GiB");
    // The chunk that crossed the limit is refused again, not skipped.
    assert!(
        response
            .chunk()
            .await
            .expect_err("still too large")
            .is_body_too_large()
    );
}

#[tokio::test]
async fn a_stream_keeps_the_read_timeout_between_chunks() {
    let server = TestServer::always(Reply::StallBody { status: 200 }).await;
    let mut response = fast(&server)
        .read_timeout(Duration::from_millis(200))
        .build()
        .expect("client")
        .get("/v1/exports/slow")
        .send()
        .await
        .expect("head");
    let err = response.chunk().await.expect_err("stalled");
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn bytes_stream_counts_after_decompression_and_ends_after_the_error() {
    let server = TestServer::always(Reply::gzip_bomb(8 << 20)).await;
    let mut stream = fast(&server)
        .build()
        .expect("client")
        .get("/bomb")
        .max_response_bytes(1 << 20)
        .send()
        .await
        .expect("head")
        .bytes_stream();
    let mut read = 0;
    let mut errors = 0;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => read += chunk.len(),
            Err(err) => {
                assert!(err.is_body_too_large(), "{err}");
                errors += 1;
            }
        }
    }
    assert_eq!(errors, 1);
    assert!(read <= 1 << 20, "{read}");
}

#[tokio::test]
async fn a_head_answer_has_no_body_whatever_its_content_length() {
    let server = TestServer::always(Reply::ok(vec![b'x'; 4 << 20])).await;
    let client = fast(&server)
        .max_response_bytes(1024)
        .build()
        .expect("client");
    let response = client.head("/v1/files/big").send().await.expect("head");
    assert_eq!(response.bytes().await.expect("no body").len(), 0);
    let mut response = client.head("/v1/files/big").send().await.expect("head");
    assert!(response.chunk().await.expect("no body").is_none());
}

// ===== per-call policy =====

#[tokio::test]
async fn max_attempts_1_sends_a_get_once() {
    let server = TestServer::always(Reply::status(503)).await;
    let response = fast(&server)
        .build()
        .expect("client")
        .get("/v1/reports/monthly")
        .max_attempts(1)
        .send()
        .await
        .expect("answered");
    assert_eq!((response.status().as_u16(), server.hits()), (503, 1));
}

#[tokio::test]
async fn max_attempts_outside_1_to_10_is_refused() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = fast(&server).build().expect("client");
    for n in [0, 11, u32::MAX] {
        let err = client
            .get("/")
            .max_attempts(n)
            .send()
            .await
            .expect_err("bad");
        assert!(err.is_builder(), "{n}: {err}");
    }
    assert!(
        client
            .get("/")
            .max_response_bytes(0)
            .send()
            .await
            .expect_err("0")
            .is_builder()
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn a_keyless_post_the_caller_vouches_for_is_retried() {
    let server = TestServer::script(vec![Reply::status(503), Reply::ok("")]).await;
    let client = fast(&server).build().expect("client");
    let response = client
        .post("/v1/search")
        .json(&serde_json::json!({ "query": "open" }))
        .idempotent()
        .send()
        .await
        .expect("answered");
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 2));

    let server = TestServer::script(vec![Reply::status(503), Reply::ok("")]).await;
    let response = fast(&server)
        .build()
        .expect("client")
        .post("/v1/search")
        .json(&serde_json::json!({ "query": "open" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        (response.status().as_u16(), response.attempts()),
        (503, 1),
        "not vouched"
    );
}

// ===== retry hints =====

fn hinted(server: &TestServer) -> outbound::Client {
    fast(server)
        .retry_hint_header("Stripe-Should-Retry")
        .build()
        .expect("client")
}

#[tokio::test]
async fn a_false_hint_makes_a_retryable_status_final() {
    let server =
        TestServer::always(Reply::status(503).header("Stripe-Should-Retry", "false")).await;
    let response = hinted(&server).get("/").send().await.expect("answered");
    assert_eq!((response.attempts(), server.hits()), (1, 1));
}

#[tokio::test]
async fn a_true_hint_makes_a_final_status_retryable_when_replay_is_safe() {
    let server = TestServer::script(vec![
        Reply::status(400).header("Stripe-Should-Retry", "true"),
        Reply::ok(""),
    ])
    .await;
    let response = hinted(&server)
        .post("/v1/charges")
        .idempotency_key("charge-1")
        .send()
        .await
        .expect("answered");
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 2));
}

#[tokio::test]
async fn a_hint_never_makes_a_keyless_post_retryable() {
    let server = TestServer::always(Reply::status(503).header("Stripe-Should-Retry", "true")).await;
    let response = hinted(&server)
        .post("/v1/charges")
        .send()
        .await
        .expect("answered");
    assert_eq!((response.attempts(), server.hits()), (1, 1));
}

#[tokio::test]
async fn a_garbage_hint_is_no_hint() {
    for garbage in ["yes", "1", "", "true,false", "tru\u{e9}"] {
        let server = TestServer::script(vec![
            Reply::status(503).header("Stripe-Should-Retry", garbage),
            Reply::ok(""),
        ])
        .await;
        let response = hinted(&server).get("/").send().await.expect("answered");
        assert_eq!(response.attempts(), 2, "{garbage:?}: 503 stays retryable");
    }
}

#[test]
fn a_bad_hint_header_name_is_refused_naming_the_key() {
    let err = outbound::Profiles::from_toml_str(
        "[p]\nbase_url = \"https://a.example\"\n[p.retry]\nhint_header = \"bad header\"\n",
    )
    .expect_err("bad name");
    assert!(err.to_string().contains("hint_header"), "{err}");
}

// ===== the per-attempt hook =====

#[tokio::test]
async fn every_attempt_and_the_401_resend_carry_a_fresh_signature() {
    let server = TestServer::start(|r| match (r.path(), r.header("x-signature")) {
        ("/oauth/token", _) => Reply::json(
            200,
            r#"{"access_token":"tok","token_type":"Bearer","expires_in":600}"#,
        ),
        (_, Some("sig-1")) => Reply::status(401),
        (_, Some("sig-2")) => Reply::status(503),
        _ => Reply::ok(""),
    })
    .await;
    let counter = Arc::new(AtomicU32::new(0));
    let seen = counter.clone();
    let client = support::oauth_client_for(&server)
        .initial_backoff(Duration::from_millis(1))
        .redact_headers(["x-signature"])
        .on_attempt(move |request| {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            assert_eq!(request.attempt(), n, "numbered from 1, the resend included");
            assert!(
                request.headers().contains_key("authorization"),
                "after credentials"
            );
            request
                .headers_mut()
                .insert("x-signature", format!("sig-{n}").parse()?);
            Ok(())
        })
        .build()
        .expect("client");
    let response = client.get("/v1/orders").send().await.expect("answered");
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 3));
    let signatures: Vec<_> = server
        .requests()
        .iter()
        .filter(|r| r.path() == "/v1/orders")
        .map(|r| r.header("x-signature").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(signatures, ["sig-1", "sig-2", "sig-3"]);
}

#[tokio::test]
async fn a_hook_error_fails_the_call_before_the_wire() {
    let server = TestServer::always(Reply::ok("")).await;
    let err = fast(&server)
        .on_attempt(|_| Err("the signing key is not loaded".into()))
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect_err("refused by the hook");
    assert!(err.is_builder(), "{err}");
    let source = std::error::Error::source(&err)
        .expect("the hook's error")
        .to_string();
    assert_eq!(source, "the signing key is not loaded");
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn a_hook_that_panics_fails_its_call_and_the_client_keeps_working() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = fast(&server)
        .on_attempt(|request| {
            if request.url().path() == "/boom" {
                panic!("hook bug");
            }
            Ok(())
        })
        .build()
        .expect("client");
    let err = client.get("/boom").send().await.expect_err("panicked");
    assert!(
        err.is_builder() && err.to_string().contains("panicked"),
        "{err}"
    );
    client
        .get("/fine")
        .send()
        .await
        .expect("the client still works");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_body_that_failed_keeps_failing_instead_of_looking_complete() {
    let server = TestServer::always(Reply::Truncated { status: 200 }).await;
    let mut response = fast(&server)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("head");
    let first = loop {
        match response.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a truncated body ended cleanly"),
            Err(err) => break err,
        }
    };
    let again = response.chunk().await.expect_err("still failed");
    assert_eq!(again.kind(), first.kind());
}

#[tokio::test]
async fn headers_the_hook_adds_never_follow_a_redirect_to_another_origin() {
    let target = TestServer::always(Reply::ok("")).await;
    let location = target.url("/landing");
    let origin = TestServer::always(Reply::redirect(302, &location)).await;
    let client = fast(&origin)
        .follow_redirects(true)
        .on_attempt(|request| {
            if request.in_credential_scope() {
                request
                    .headers_mut()
                    .insert("x-partner-signature", "sig-abc".parse()?);
            }
            Ok(())
        })
        .build()
        .expect("client");
    client.get("/start").send().await.expect("followed");
    assert_eq!(
        origin.requests()[0].header("x-partner-signature"),
        Some("sig-abc")
    );
    assert_eq!(target.requests()[0].header("x-partner-signature"), None);
}

#[test]
fn a_decode_error_never_shows_a_map_key_that_looks_like_data() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let body = r#"{"balances":{"alice@corp.example":{"amount":"x"}}}"#;
        let server = TestServer::always(Reply::json(200, body)).await;
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Doc {
            balances: std::collections::HashMap<String, Balance>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Balance {
            amount: u64,
        }
        let err = fast(&server)
            .build()
            .expect("client")
            .get("/")
            .send()
            .await
            .expect("head")
            .json::<Doc>()
            .await
            .expect_err("a string amount");
        let shown = err.to_string();
        assert!(shown.contains("at balances.….amount"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
    });
}
