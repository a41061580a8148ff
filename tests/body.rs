//! Response bodies are bounded by max_response_bytes, after decompression, and decode errors
//! never quote the body.

mod support;

use support::{Reply, TestServer, client_for};

const LIMIT: u64 = 64 * 1024;

fn limited(server: &TestServer) -> outbound::Client {
    client_for(server)
        .max_response_bytes(LIMIT)
        .build()
        .expect("client")
}

#[tokio::test]
async fn over_limit_content_length_is_refused_before_reading() {
    let server = TestServer::always(Reply::ok(vec![b'x'; LIMIT as usize + 1])).await;
    let response = limited(&server).get("/big").send().await.expect("head");
    let err = response.bytes().await.expect_err("too large");
    assert!(err.is_body_too_large(), "{err}");
    assert!(
        err.to_string()
            .contains("Content-Length of 65537 bytes exceeds max_response_bytes (65536)"),
        "{err}"
    );
    assert_eq!(err.status(), Some(outbound::StatusCode::OK));
}

#[tokio::test]
async fn endless_chunked_body_stops_at_the_limit() {
    let server = TestServer::always(Reply::Endless).await;
    let response = limited(&server).get("/stream").send().await.expect("head");
    let err = response.text().await.expect_err("too large");
    assert!(err.is_body_too_large(), "{err}");
}

#[tokio::test]
async fn gzip_bomb_is_stopped_after_decompression() {
    // 64 MiB of zeros, about 64 KiB on the wire.
    let server = TestServer::always(Reply::gzip_bomb(64 * 1024 * 1024)).await;
    let response = limited(&server).get("/bomb").send().await.expect("head");
    let err = response.bytes().await.expect_err("too large once inflated");
    assert!(err.is_body_too_large(), "{err}");
    assert!(err.to_string().contains("after decompression"), "{err}");
}

#[tokio::test]
async fn body_within_the_limit_is_read_whole_and_decompressed() {
    let server = TestServer::always(Reply::gzip_bomb(1000)).await;
    let bytes = limited(&server)
        .get("/small")
        .send()
        .await
        .expect("head")
        .bytes()
        .await
        .expect("body");
    assert_eq!(bytes.len(), 1000);
    assert!(bytes.iter().all(|b| *b == 0));
}

#[tokio::test]
async fn json_decode_error_says_where_without_quoting_the_body() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Order {
        amount: u32,
    }
    let server =
        TestServer::always(Reply::json(200, r#"{"token":"tok-canary","amount":"ten"}"#)).await;
    let err = limited(&server)
        .get("/order")
        .send()
        .await
        .expect("head")
        .json::<Order>()
        .await
        .expect_err("wrong type");
    assert!(err.is_decode(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("does not match the expected type at amount (line 1, column"),
        "{shown}"
    );
    assert!(
        !shown.contains("tok-canary") && !shown.contains("ten"),
        "{shown}"
    );
}

#[tokio::test]
async fn error_for_status_keeps_the_status() {
    let server = TestServer::always(Reply::status(503)).await;
    let err = limited(&server)
        .get("/down")
        .send()
        .await
        .expect("a 503 is a response")
        .error_for_status()
        .expect_err("5xx");
    assert!(err.is_status());
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert!(err.to_string().contains("GET http://127.0.0.1"), "{err}");
}

#[tokio::test]
async fn a_decode_error_points_at_the_field_as_a_path() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Page {
        items: Vec<Item>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        price: u64,
    }
    let body = r#"{"items":[{"price":1},{"price":2},{"price":3},{"price":"4242 4242 4242 4242"}]}"#;
    let server = TestServer::always(Reply::json(200, body)).await;
    let err = limited(&server)
        .get("/items")
        .send()
        .await
        .expect("head")
        .json::<Page>()
        .await
        .expect_err("a string where a number goes");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("at items[3].price"), "{shown}");
    assert!(!shown.contains("4242"), "{shown}");
}

#[tokio::test]
async fn an_html_page_behind_a_200_is_named_before_parsing() {
    let server = TestServer::always(
        Reply::ok("<html><body>Sign in to continue, tok-canary</body></html>")
            .header("content-type", "text/html; charset=utf-8"),
    )
    .await;
    let err = limited(&server)
        .get("/order")
        .send()
        .await
        .expect("head")
        .json::<serde_json::Value>()
        .await
        .expect_err("not JSON");
    assert!(err.is_decode(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("expected JSON, got text/html"), "{shown}");
    assert!(!shown.contains("tok-canary"), "{shown}");
    // A JSON type with parameters, or a +json type, is JSON.
    for content_type in [
        "application/json; charset=utf-8",
        "application/problem+json",
    ] {
        let server = TestServer::always(Reply::ok("{}").header("content-type", content_type)).await;
        limited(&server)
            .get("/")
            .send()
            .await
            .expect("head")
            .json::<serde_json::Value>()
            .await
            .expect(content_type);
    }
}
