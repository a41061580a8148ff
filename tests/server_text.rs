//! Text a server chose reaches an error or a log only escaped and bounded, and URLs it sends
//! back (signed `Location`s) are masked like ours.

mod support;

use support::{Reply, TestServer, client_for};

async fn token_error(token_body: String, status: u16) -> outbound::Error {
    let server = TestServer::start(move |request| match request.path() {
        "/oauth/token" => Reply::json(status, &token_body),
        _ => Reply::ok(""),
    })
    .await;
    support::oauth_client_for(&server)
        .build()
        .expect("client")
        .get("/x")
        .send()
        .await
        .expect_err("no token")
}

#[tokio::test]
async fn a_huge_oauth_error_code_is_escaped_and_bounded() {
    let huge = format!("invalid\\nFORGED log line {}", "x".repeat(10_000));
    let err = token_error(
        format!(r#"{{"error":"{huge}","error_description":"{huge}"}}"#),
        400,
    )
    .await;
    assert!(err.is_auth(), "{err}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains('\n'), "a raw newline: {shown}");
        assert!(shown.len() < 1_000, "{} bytes", shown.len());
        assert!(shown.contains("invalid"), "{shown}");
    }
}

#[tokio::test]
async fn a_strange_token_type_is_escaped_and_bounded() {
    let odd = format!("mac\\r\\nX-Forged: 1{}", "y".repeat(5_000));
    let err = token_error(
        format!(r#"{{"access_token":"tok","token_type":"{odd}","expires_in":60}}"#),
        200,
    )
    .await;
    assert!(err.is_auth(), "{err}");
    let shown = err.to_string();
    assert!(!shown.contains('\n') && !shown.contains('\r'), "{shown}");
    assert!(shown.len() < 1_000, "{} bytes", shown.len());
}

#[tokio::test]
async fn response_debug_masks_signed_urls_in_location() {
    let signed =
        "https://cdn.example/f.pdf?X-Amz-Signature=sig-canary&X-Amz-Credential=cred-canary&part=1";
    let server = TestServer::always(
        Reply::redirect(302, signed).header("content-location", "/f?token=tok-canary;v=2"),
    )
    .await;
    let response = client_for(&server)
        .build()
        .expect("client")
        .get("/download")
        .send()
        .await
        .expect("the 302");
    let shown = format!("{response:?}");
    assert!(!shown.contains("canary"), "{shown}");
    assert!(shown.contains("part=1") && shown.contains("v=2"), "{shown}");
}
