//! The demo "partner API" the tour talks to: a few endpoints that behave well and a few that
//! do not, on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::server::{self, Reply, TestServer};

/// The demo "partner API": a few endpoints that behave well and a few that do not.
pub(crate) async fn demo_api() -> TestServer {
    let bomb = Reply::gzip_bomb(64 * 1024 * 1024);
    let flaky = AtomicUsize::new(0);
    let flaky_again = AtomicUsize::new(0);
    let busy = AtomicUsize::new(0);
    let search = AtomicUsize::new(0);
    let outage_over = std::sync::atomic::AtomicBool::new(false);
    let tokens = Tokens::default();
    let uploads = AtomicUsize::new(0);
    let signed = std::sync::Mutex::new(Vec::new());
    let export: Vec<u8> = b"id,amount\n"
        .iter()
        .chain(b"1,20.00\n".repeat(1 << 20).iter())
        .copied()
        .collect();
    TestServer::start(move |request| match request.path() {
        "/oauth/token" => tokens.issue(),
        "/v1/me" if tokens.is_valid(request.header("authorization")) => {
            Reply::json(200, r#"{"client":"orders-service"}"#)
        }
        "/v1/me" => {
            Reply::status(401).header("www-authenticate", r#"Bearer error="invalid_token""#)
        }
        "/v1/admin/revoke" => {
            tokens.revoke_latest();
            Reply::status(204)
        }
        // Fails twice, then recovers.
        "/v1/flaky" if flaky.fetch_add(1, Ordering::SeqCst) < 2 => Reply::status(503),
        "/v1/flaky" => Reply::json(200, r#"{"status":"recovered"}"#),
        // Fails once, for the log excerpt.
        "/v1/flaky-again" if flaky_again.fetch_add(1, Ordering::SeqCst) == 0 => Reply::status(503),
        "/v1/flaky-again" => Reply::json(200, r#"{"status":"recovered"}"#),
        // Every other charge attempt hits a failover: 503 first, then success.
        "/v1/charges" if charge_attempt(request).is_multiple_of(2) => Reply::status(503),
        "/v1/charges" => Reply::json(201, r#"{"charge":"ch_1"}"#),
        // Asks the client to slow down once.
        "/v1/busy" if busy.fetch_add(1, Ordering::SeqCst) == 0 => {
            Reply::status(429).header("retry-after", "1")
        }
        "/v1/busy" => Reply::json(200, r#"{"ok":true}"#),
        // Down until healed, for the circuit breaker.
        "/v1/outage" if !outage_over.load(Ordering::SeqCst) => Reply::status(503),
        "/v1/outage" => Reply::json(200, r#"{"ok":true}"#),
        "/v1/admin/heal" => {
            outage_over.store(true, Ordering::SeqCst);
            Reply::status(204)
        }
        // Unavailable for a second, once, for the pacing step.
        "/v1/search" if search.fetch_add(1, Ordering::SeqCst) == 0 => {
            Reply::status(503).header("retry-after", "1")
        }
        "/v1/search" => Reply::json(200, r#"{"results":[]}"#),
        "/v1/files" if uploads.fetch_add(1, Ordering::SeqCst) == 0 => Reply::status(503),
        "/v1/files" => Reply::json(
            201,
            &format!(r#"{{"received_bytes":{}}}"#, request.body.len()),
        ),
        "/v1/exports/2024.csv" => Reply::ok(export.clone()),
        "/v1/signed" => crate::calls::verify_signature(request, &signed),
        "/v1/contacts/42" => Reply::json(200, r#"{"id":42,"name":"Ada Lovelace","plan":"pro"}"#),
        "/v1/reports/slow" => Reply::Stall,
        "/v1/export" => Reply::ok(vec![b'x'; 4 * 1024 * 1024]),
        "/v1/export.gz" => bomb.clone(),
        "/v1/maintenance" => Reply::status(503),
        _ => Reply::status(404),
    })
    .await
}

/// The demo's token endpoint: tokens live 2 s; the latest one can be revoked.
#[derive(Default)]
struct Tokens {
    issued: AtomicUsize,
    revoked: std::sync::Mutex<Vec<String>>,
}

impl Tokens {
    fn issue(&self) -> Reply {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::json(
            200,
            &format!(r#"{{"access_token":"demo-token-{n}","token_type":"Bearer","expires_in":2}}"#),
        )
        .delay(std::time::Duration::from_millis(100))
    }

    fn is_valid(&self, authorization: Option<&str>) -> bool {
        let revoked = self.revoked.lock().expect("lock");
        authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| {
                token.starts_with("demo-token-") && !revoked.iter().any(|r| r == token)
            })
    }

    fn revoke_latest(&self) {
        let n = self.issued.load(Ordering::SeqCst);
        self.revoked
            .lock()
            .expect("lock")
            .push(format!("demo-token-{n}"));
    }
}

/// Attempts at /v1/charges so far, this one included, counted per idempotency key (or none).
fn charge_attempt(request: &server::Recorded) -> usize {
    static SEEN: std::sync::Mutex<Vec<Option<String>>> = std::sync::Mutex::new(Vec::new());
    let key = request.header("idempotency-key").map(str::to_owned);
    let mut seen = SEEN.lock().expect("lock");
    seen.push(key.clone());
    seen.iter().filter(|k| **k == key).count() - 1
}
