//! TLS, where TLS is the point: real certificates from a throwaway CA, a real rustls server on
//! loopback, and the profile's trust root, minimum version and client identity.

mod support;

use outbound::{Client, ClientBuilder, TlsVersion};
use support::tls::{Pki, TLS12, TLS13, TlsServer, server_config};

fn https(server: &TlsServer) -> ClientBuilder {
    Client::builder()
        .base_url(server.url())
        .max_attempts(1)
        .proxy(outbound::Proxy::None)
}

#[tokio::test]
async fn extra_ca_file_is_trusted() {
    let pki = Pki::new("ca");
    let leaf = pki.leaf("server", "127.0.0.1");
    let server = TlsServer::start(server_config(&leaf, &[&TLS13, &TLS12], None)).await;
    let client = https(&server)
        .tls_ca_file(pki.ca_file())
        .build()
        .expect("client");
    let body = client
        .get("/")
        .send()
        .await
        .expect("trusted")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "secure");
}

#[tokio::test]
async fn unknown_ca_is_refused_as_a_connect_error() {
    let pki = Pki::new("untrusted");
    let leaf = pki.leaf("server", "127.0.0.1");
    let server = TlsServer::start(server_config(&leaf, &[&TLS13, &TLS12], None)).await;
    let err = https(&server)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect_err("untrusted");
    assert!(err.is_connect(), "{err}");
    assert_eq!(server.handshakes(), 0);
}

#[tokio::test]
async fn minimum_version_tls13_refuses_a_tls12_only_server() {
    let pki = Pki::new("version");
    let leaf = pki.leaf("server", "127.0.0.1");
    let server = TlsServer::start(server_config(&leaf, &[&TLS12], None)).await;
    let strict = https(&server)
        .tls_ca_file(pki.ca_file())
        .tls_min_version(TlsVersion::Tls13)
        .build()
        .expect("client");
    let err = strict.get("/").send().await.expect_err("TLS 1.2 only");
    assert!(err.is_connect(), "{err}");
    // The default minimum (TLS 1.2) talks to the same server: the version was the reason.
    let default = https(&server)
        .tls_ca_file(pki.ca_file())
        .build()
        .expect("client");
    assert_eq!(
        default.get("/").send().await.expect("TLS 1.2").status(),
        200
    );
}

#[tokio::test]
async fn client_identity_is_presented_for_mutual_tls() {
    let pki = Pki::new("mtls");
    let leaf = pki.leaf("server", "127.0.0.1");
    let client_leaf = pki.leaf("client", "orders-service.internal");
    let server =
        TlsServer::start(server_config(&leaf, &[&TLS13, &TLS12], Some(pki.ca_der()))).await;

    let anonymous = https(&server)
        .tls_ca_file(pki.ca_file())
        .build()
        .expect("client");
    let err = anonymous
        .get("/")
        .send()
        .await
        .expect_err("the server requires a client certificate");
    // In TLS 1.3 the client's handshake completes before the server checks its certificate, so
    // the refusal arrives as a failed exchange, not a connect error (and is never taken as
    // proof that the request was not received).
    assert_eq!(err.kind(), outbound::ErrorKind::Request, "{err}");

    let identified = https(&server)
        .tls_ca_file(pki.ca_file())
        .tls_client_cert_file(&client_leaf.cert_file)
        .tls_client_key_file(&client_leaf.key_file)
        .build()
        .expect("client");
    assert_eq!(
        identified.get("/").send().await.expect("mTLS").status(),
        200
    );
}

#[tokio::test]
async fn unusable_tls_files_are_config_errors_naming_the_key() {
    let pki = Pki::new("files");
    let leaf = pki.leaf("client", "x.internal");
    let not_pem = pki.dir.join("garbage.pem");
    std::fs::write(&not_pem, "not a certificate").expect("write");

    let err = Client::builder()
        .base_url("https://api.partner.example")
        .tls_ca_file(&not_pem)
        .build()
        .expect_err("no certificate");
    assert!(
        err.is_config() && err.to_string().contains("tls.ca_file"),
        "{err}"
    );

    let err = Client::builder()
        .base_url("https://api.partner.example")
        .tls_client_cert_file(&leaf.cert_file)
        .tls_client_key_file(pki.dir.join("missing.key"))
        .build()
        .expect_err("no key file");
    assert!(
        err.is_config() && err.to_string().contains("tls.client_key_file"),
        "{err}"
    );

    let err = Client::builder()
        .base_url("https://api.partner.example")
        .tls_client_cert_file(&leaf.cert_file)
        .tls_client_key_file(&not_pem)
        .build()
        .expect_err("not a key");
    assert!(
        err.is_config() && err.to_string().contains("tls.client_cert_file"),
        "{err}"
    );
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
}

// ===== handshake failures say why, and those a retry cannot fix are not retried =====

/// A client that would retry (3 attempts, no delay to speak of).
fn retrying(server: &TlsServer) -> ClientBuilder {
    Client::builder()
        .base_url(server.url())
        .proxy(outbound::Proxy::None)
        .initial_backoff(std::time::Duration::from_millis(1))
}

#[tokio::test]
async fn refused_server_certificates_name_the_cause_and_are_not_retried() {
    let pki = Pki::new("causes");
    let stranger = Pki::new("stranger");
    let cases = [
        (
            stranger.leaf("server", "127.0.0.1"),
            "not trusted (unknown issuer)",
        ),
        (
            pki.leaf("server", "other.example"),
            "not valid for this host name",
        ),
        (pki.expired_leaf("server", "127.0.0.1"), "has expired"),
    ];
    for (leaf, cause) in cases {
        let server = TlsServer::start(server_config(&leaf, &[&TLS13, &TLS12], None)).await;
        let err = retrying(&server)
            .tls_ca_file(pki.ca_file())
            .build()
            .expect("client")
            .get("/")
            .send()
            .await
            .expect_err(cause);
        assert!(err.is_connect(), "{err}");
        let shown = err.to_string();
        assert!(shown.contains(cause), "{shown}");
        assert!(
            !shown.contains("other.example"),
            "no name from the certificate: {shown}"
        );
        assert_eq!(
            err.attempts(),
            1,
            "{cause}: a retry meets the same certificate"
        );
    }
}

#[tokio::test]
async fn no_common_protocol_version_is_named_and_not_retried() {
    let pki = Pki::new("version-cause");
    let leaf = pki.leaf("server", "127.0.0.1");
    let server = TlsServer::start(server_config(&leaf, &[&TLS12], None)).await;
    let err = retrying(&server)
        .tls_ca_file(pki.ca_file())
        .tls_min_version(TlsVersion::Tls13)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect_err("TLS 1.2 only");
    assert!(err.to_string().contains("protocol version"), "{err}");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn a_required_client_certificate_is_named_and_not_retried() {
    let pki = Pki::new("mtls-cause");
    let leaf = pki.leaf("server", "127.0.0.1");
    let server =
        TlsServer::start(server_config(&leaf, &[&TLS13, &TLS12], Some(pki.ca_der()))).await;
    let err = retrying(&server)
        .tls_ca_file(pki.ca_file())
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect_err("no client certificate");
    assert!(err.to_string().contains("client certificate"), "{err}");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn a_connection_closed_during_the_handshake_is_still_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let err = Client::builder()
        .base_url(format!("https://{addr}"))
        .proxy(outbound::Proxy::None)
        .initial_backoff(std::time::Duration::from_millis(1))
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect_err("closed");
    assert_eq!(err.attempts(), 3, "{err}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
}
