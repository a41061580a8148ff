//! Secrets and TLS files re-read when they change, as a rotated mount changes them.
//!
//! Every test captures logs (the capture is per thread, and a binary whose tests all capture
//! never caches a callsite as uninteresting).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use outbound::{Client, Profiles};
use support::tls::{Pki, TLS12, TLS13, TlsServer, server_config};
use support::trace::Capture;
use support::{Reply, TestServer};

/// Longer than one check interval (1 s).
const PAST_A_CHECK: Duration = Duration::from_millis(1300);

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("outbound-rotation-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Dir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces `path` the way a mount is rotated: a new file renamed over the old one.
fn rotate(path: &Path, value: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, value).expect("write");
    std::fs::rename(&next, path).expect("rename");
}

fn client(server: &TestServer, auth: &str) -> Client {
    let toml = format!(
        "[p]\nbase_url = '{}'\nallowed_hosts = ['127.0.0.1']\nallow_insecure_http = true\n\
         [p.retry]\nmax_attempts = 1\n[p.auth]\n{auth}\n",
        server.origin()
    );
    let profiles = Profiles::from_toml_str(&toml).expect("profile");
    Client::from_profile(profiles.get("p").expect("p")).expect("client")
}

/// An API key from the file `key`.
fn key_client(server: &TestServer, key: &Path) -> Client {
    client(
        server,
        &format!("type = 'api_key'\nkey = {{ file = '{}' }}", key.display()),
    )
}

/// OAuth client credentials from the server's `/oauth/token`, the secret from the file `secret`
/// (sent in the form body, so the server can tell secrets apart).
fn oauth_client(server: &TestServer, secret: &Path) -> Client {
    client(
        server,
        &format!(
            "type = 'oauth2_client_credentials'\ntoken_url = '{}'\nclient_id = 'orders'\n\
             auth_method = 'client_secret_post'\nclient_secret = {{ file = '{}' }}",
            server.url("/oauth/token"),
            secret.display()
        ),
    )
}

async fn key_sent(client: &Client, server: &TestServer) -> String {
    client.get("/a").send().await.expect("call");
    let last = server.requests().pop().expect("a request");
    last.header("x-api-key").expect("the key").to_owned()
}

#[tokio::test]
async fn a_rotated_api_key_file_is_used_from_the_next_request_without_a_restart() {
    let (capture, _guard) = Capture::start();
    let dir = Dir::new("key");
    let key = dir.path("key");
    std::fs::write(&key, "key-one\n").expect("write");
    let server = TestServer::always(Reply::ok("")).await;
    let client = key_client(&server, &key);
    assert_eq!(key_sent(&client, &server).await, "key-one");

    // The same length, as a rotated key usually has.
    rotate(&key, "key-two\n");
    tokio::time::sleep(PAST_A_CHECK).await;
    assert_eq!(key_sent(&client, &server).await, "key-two");
    assert_eq!(key_sent(&client, &server).await, "key-two");
    let logs = capture.text();
    assert_eq!(logs.matches("secret file changed").count(), 1, "{logs}");
    assert!(
        !logs.contains("key-one") && !logs.contains("key-two"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_secret_file_gone_bad_keeps_the_last_good_value_and_warns_once_per_change() {
    let (capture, _guard) = Capture::start();
    let dir = Dir::new("bad");
    let key = dir.path("key");
    std::fs::write(&key, "good-key").expect("write");
    let server = TestServer::always(Reply::ok("")).await;
    let client = key_client(&server, &key);
    assert_eq!(key_sent(&client, &server).await, "good-key");

    for (bad, why) in [
        ("empty", "is empty"),
        ("a value a header cannot carry", "cannot carry"),
        ("a directory", "cannot read secret file"),
        ("gone", "cannot read secret file"),
    ] {
        match bad {
            "empty" => rotate(&key, ""),
            "a value a header cannot carry" => rotate(&key, "bad\u{7f}key"),
            "a directory" => {
                std::fs::remove_file(&key).expect("remove");
                std::fs::create_dir(&key).expect("a directory in its place");
            }
            _ => std::fs::remove_dir(&key).expect("gone"),
        }
        for _ in 0..3 {
            tokio::time::sleep(PAST_A_CHECK / 2).await;
            assert_eq!(key_sent(&client, &server).await, "good-key", "{bad}");
        }
        let logs = capture.text();
        assert!(logs.contains(why), "{bad}: {why:?} missing from {logs}");
    }
    let logs = capture.text();
    // One warning per change of problem: empty, unusable, a directory (gone reads the same as
    // a directory: "cannot read secret file" with another error kind, so it warns again).
    let warnings = logs.matches("the last good value stays in use").count();
    assert_eq!(warnings, 4, "{logs}");
    assert!(
        !logs.contains("good-key") && !logs.contains("bad\u{7f}key"),
        "{logs}"
    );

    // Fixed again: used, and said so.
    rotate(&key, "new-key!");
    tokio::time::sleep(PAST_A_CHECK).await;
    assert_eq!(key_sent(&client, &server).await, "new-key!");
}

#[tokio::test]
async fn a_rotated_client_secret_replaces_the_cached_token_without_failing_a_call() {
    let (capture, _guard) = Capture::start();
    let dir = Dir::new("oauth");
    let secret = dir.path("secret");
    std::fs::write(&secret, "secret-1").expect("write");
    // Tokens name the client secret they were issued for (sent in the form body).
    let server = TestServer::start(|request| {
        if request.path() == "/oauth/token" {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            let which = if body.contains("secret-2") {
                "two"
            } else {
                "one"
            };
            return Reply::json(
                200,
                &format!(
                    r#"{{"access_token":"token-{which}","token_type":"Bearer","expires_in":600}}"#
                ),
            );
        }
        Reply::ok("")
    })
    .await;
    let client = oauth_client(&server, &secret);
    let bearer = |server: &TestServer| {
        let calls = server.requests();
        let last = calls
            .iter()
            .rev()
            .find(|r| r.path() == "/a")
            .expect("a call");
        last.header("authorization").expect("bearer").to_owned()
    };
    client.get("/a").send().await.expect("call");
    assert_eq!(bearer(&server), "Bearer token-one");
    client.get("/a").send().await.expect("call");
    assert_eq!(server.hits_on("/oauth/token"), 1, "cached");

    rotate(&secret, "secret-2");
    tokio::time::sleep(PAST_A_CHECK).await;
    // The old token keeps the calls going while one background request asks for a new one.
    let mut seen = Vec::new();
    for _ in 0..40 {
        client
            .get("/a")
            .send()
            .await
            .expect("no call fails during a rotation");
        seen.push(bearer(&server));
        if seen.last().is_some_and(|b| b == "Bearer token-two") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        seen.last().map(String::as_str),
        Some("Bearer token-two"),
        "{seen:?}"
    );
    assert_eq!(server.hits_on("/oauth/token"), 2);
    let logs = capture.text();
    assert!(logs.contains("the client secret changed"), "{logs}");
    assert!(
        !logs.contains("secret-1") && !logs.contains("secret-2"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_client_secret_the_provider_does_not_accept_yet_fails_no_call() {
    let (_capture, _guard) = Capture::start();
    let dir = Dir::new("staged");
    let secret = dir.path("secret");
    std::fs::write(&secret, "secret-1").expect("write");
    let server = TestServer::start(|request| {
        if request.path() == "/oauth/token" {
            if String::from_utf8_lossy(&request.body).contains("secret-2") {
                return Reply::json(401, r#"{"error":"invalid_client"}"#);
            }
            return Reply::json(
                200,
                r#"{"access_token":"token-one","token_type":"Bearer","expires_in":600}"#,
            );
        }
        Reply::ok("")
    })
    .await;
    let client = oauth_client(&server, &secret);
    client.get("/a").send().await.expect("call");
    // Written to the mount before the provider has it.
    rotate(&secret, "secret-2");
    tokio::time::sleep(PAST_A_CHECK).await;
    for _ in 0..10 {
        let ok = client
            .get("/a")
            .send()
            .await
            .expect("the old token still works");
        assert_eq!(ok.status(), 200);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        server.hits_on("/oauth/token") >= 2,
        "a new token was asked for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_during_a_rotation_is_not_failed() {
    let (_capture, _guard) = Capture::start();
    let dir = Dir::new("inflight");
    let key = dir.path("key");
    std::fs::write(&key, "key-one").expect("write");
    let server = TestServer::always(Reply::ok("slow").delay(Duration::from_millis(1500))).await;
    let client = key_client(&server, &key);
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.get("/a").send().await?.text().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    rotate(&key, "key-two");
    tokio::time::sleep(PAST_A_CHECK).await;
    let during = client.get("/b").send().await.expect("a call during");
    assert_eq!(during.status(), 200);
    assert_eq!(
        slow.await.expect("task").expect("the call in flight"),
        "slow"
    );
    let sent: Vec<_> = server
        .requests()
        .iter()
        .map(|r| {
            (
                r.path().to_owned(),
                r.header("x-api-key").map(str::to_owned),
            )
        })
        .collect();
    assert!(
        sent.contains(&("/a".into(), Some("key-one".into()))),
        "{sent:?}"
    );
    assert!(
        sent.contains(&("/b".into(), Some("key-two".into()))),
        "{sent:?}"
    );
}

#[tokio::test]
async fn a_renewed_client_certificate_is_used_without_a_restart() {
    let (capture, _guard) = Capture::start();
    let pki = Pki::new("rotation");
    let stranger = Pki::new("rotation-stranger");
    let server_leaf = pki.leaf("server", "127.0.0.1");
    let server = TlsServer::start(server_config(
        &server_leaf,
        &[&TLS13, &TLS12],
        Some(pki.ca_der()),
    ))
    .await;
    // The client starts with a certificate the server does not trust (an expired one, say).
    let dir = Dir::new("mtls");
    let (cert, key) = (dir.path("client.pem"), dir.path("client.key"));
    let old = stranger.leaf("client", "orders.internal");
    std::fs::copy(&old.cert_file, &cert).expect("cert");
    std::fs::copy(&old.key_file, &key).expect("key");
    let client = Client::builder()
        .base_url(server.url())
        .max_attempts(1)
        .proxy(outbound::Proxy::None)
        .tls_ca_file(pki.ca_file())
        .tls_client_cert_file(&cert)
        .tls_client_key_file(&key)
        .build()
        .expect("client");
    client
        .get("/")
        .send()
        .await
        .expect_err("untrusted client certificate");

    // Renewed: the new pair is written over the old files.
    let renewed = pki.leaf("client", "orders.internal");
    std::fs::copy(&renewed.cert_file, &cert).expect("cert");
    std::fs::copy(&renewed.key_file, &key).expect("key");
    tokio::time::sleep(PAST_A_CHECK).await;
    let ok = client
        .get("/")
        .send()
        .await
        .expect("the renewed certificate");
    assert_eq!(ok.status(), 200);
    assert!(capture.text().contains("TLS files changed"));

    // A key file that turns to garbage keeps the working transport, with one warning.
    std::fs::write(&key, "not a key").expect("garbage");
    for _ in 0..3 {
        tokio::time::sleep(PAST_A_CHECK / 2).await;
        assert_eq!(client.get("/").send().await.expect("still").status(), 200);
    }
    let logs = capture.text();
    assert_eq!(
        logs.matches("TLS files changed but cannot be used").count(),
        1,
        "{logs}"
    );
    assert!(!logs.contains("BEGIN"), "no key material in logs: {logs}");
}
