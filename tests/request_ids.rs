//! Request ids: the partner's id of each answer on the span, the response and the error; our
//! own id per call when asked; hostile values bounded and escaped. (On the span and the attempt
//! events: `tests/telemetry.rs`, where every test captures its logs.)

mod support;

use std::time::Duration;

use support::{Reply, TestServer, client_for};

fn fast(server: &TestServer) -> outbound::ClientBuilder {
    client_for(server).initial_backoff(Duration::from_millis(1))
}

#[tokio::test]
async fn an_error_keeps_the_request_id_and_shows_it() {
    let server = TestServer::always(Reply::status(404).header("CF-Ray", "8a1f2b-AMS")).await;
    let err = fast(&server)
        .build()
        .expect("client")
        .get("/missing")
        .send()
        .await
        .expect("answered")
        .error_for_status()
        .expect_err("404");
    assert_eq!(err.request_id(), Some("8a1f2b-AMS"));
    assert!(err.to_string().contains("request id 8a1f2b-AMS"), "{err}");
    let server = TestServer::always(
        Reply::ok("<html></html>")
            .header("content-type", "text/html")
            .header("X-Amzn-RequestId", "amzn-77"),
    )
    .await;
    let err = fast(&server)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("answered")
        .json::<serde_json::Value>()
        .await
        .expect_err("not JSON");
    assert_eq!(err.request_id(), Some("amzn-77"), "decode errors too");
}

#[tokio::test]
async fn a_hostile_request_id_is_bounded_and_escaped() {
    let huge = "r".repeat(10 * 1024);
    let server = TestServer::always(Reply::ok("").header("Request-Id", &huge)).await;
    let response = fast(&server)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("ok");
    let id = response.request_id().expect("id");
    assert!(id.chars().count() <= 130, "{} chars", id.chars().count());
    // A value with control characters (as bytes a header may carry) is escaped.
    let server = TestServer::always(Reply::ok("").header("Request-Id", "abc\tdef\u{85}ghi")).await;
    let response = fast(&server)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("ok");
    let id = response.request_id().expect("id");
    assert!(!id.contains('\t') && !id.contains('\u{85}'), "{id:?}");
}

#[tokio::test]
async fn our_own_request_id_is_the_same_on_every_attempt_and_kept_on_errors() {
    let server =
        TestServer::script(vec![Reply::status(503), Reply::status(503), Reply::ok("")]).await;
    let client = fast(&server).send_request_id(true).build().expect("client");
    let response = client.get("/").send().await.expect("ok");
    let sent: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("x-request-id").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|id| id == &sent[0]), "{sent:?}");
    assert_eq!(uuid::Uuid::parse_str(&sent[0]).map(|_| ()), Ok(()));
    assert_eq!(
        response.request_id(),
        Some(sent[0].as_str()),
        "no partner id: ours"
    );

    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let err = outbound::Client::builder()
        .base_url(format!("http://{dead}"))
        .allow_insecure_http(true)
        .max_attempts(1)
        .send_request_id(true)
        .build()
        .expect("client")
        .get("/")
        .header("X-Request-Id", "caller-chosen-1")
        .send()
        .await
        .expect_err("nothing listens");
    assert_eq!(err.request_id(), Some("caller-chosen-1"), "{err}");
}

#[test]
fn request_id_headers_come_from_the_profile_and_bad_names_are_refused() {
    let ok = outbound::Profiles::from_toml_str(
        "[p]\nbase_url = \"https://a.example\"\n[p.log]\nrequest_id_headers = [\"X-Partner-Trace\"]\nsend_request_id = true\n",
    );
    assert!(ok.is_ok(), "{ok:?}");
    let err = outbound::Profiles::from_toml_str(
        "[p]\nbase_url = \"https://a.example\"\n[p.log]\nrequest_id_headers = [\"bad name\"]\n",
    )
    .expect_err("bad name");
    assert!(err.to_string().contains("request_id_headers"), "{err}");
}
