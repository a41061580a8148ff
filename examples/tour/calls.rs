//! Step 11 of the tour: the calls real integrations make (an upload, a streamed download, a
//! signed request), and the demo API's side of the signature.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::ensure;
use hmac::{Hmac, Mac};
use outbound::Client;
use sha2::Sha256;

use crate::server::{Recorded, Reply};

/// The secret the demo partner shares with us for signatures (a demo value).
const SIGNING_KEY: &[u8] = b"demo-signing-key";

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.METHOD.path.body">`, as Stripe-like partners ask.
fn signature(timestamp: u64, nonce: u32, method: &str, path: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_KEY).expect("any key length");
    mac.update(format!("{timestamp}.{nonce}.{method}.{path}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},n={nonce},v1={hex}")
}

/// The demo API checks each signature and refuses a replayed one; the first signed request gets
/// a 503, so the retry must carry a new signature.
pub(crate) fn verify_signature(request: &Recorded, seen: &Mutex<Vec<String>>) -> Reply {
    let Some(header) = request.header("x-signature") else {
        return Reply::status(401);
    };
    let field = |name: &str| {
        header
            .split(',')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let (Some(t), Some(n)) = (field("t"), field("n")) else {
        return Reply::status(401);
    };
    let expected = signature(t, n as u32, &request.method, request.path(), &request.body);
    let mut seen = seen.lock().expect("lock");
    if expected != header || seen.iter().any(|s| s == header) {
        return Reply::status(401);
    }
    seen.push(header.to_owned());
    if seen.len() == 1 {
        return Reply::status(503);
    }
    Reply::json(200, r#"{"verified":true}"#)
}

pub(crate) async fn tour(origin: &str) -> anyhow::Result<()> {
    let partner = Client::builder()
        .base_url(format!("{origin}/v1"))
        .allow_insecure_http(true)
        .max_response_bytes(1024 * 1024)
        .initial_backoff(std::time::Duration::from_millis(10))
        .redact_headers(["x-signature"])
        .on_attempt(|request| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let body = request.body().unwrap_or_default().to_vec();
            let value = signature(
                now,
                request.attempt(),
                request.method().as_str(),
                request.url().path(),
                &body,
            );
            request.headers_mut().insert("x-signature", value.parse()?);
            Ok(())
        })
        .build()?;

    let form = outbound::multipart::Form::new()
        .text("purpose", "invoice")
        .part(
            "file",
            outbound::multipart::Part::bytes(vec![b'%'; 300_000])
                .file_name("invoice-7.pdf")
                .mime_str("application/pdf")?,
        );
    let upload = partner
        .post("/files")
        .multipart(form)
        .idempotency_key("upload-invoice-7")
        .send()
        .await?;
    let attempts = upload.attempts();
    let answer: serde_json::Value = upload.error_for_status()?.json().await?;
    println!(
        "Upload: a 300 KB multipart form, {attempts} attempts (the first got a 503; the form was sent whole again) -> {answer}"
    );
    ensure!(attempts == 2 && answer["received_bytes"].as_u64() > Some(300_000));

    let mut export = partner
        .get("/exports/2024.csv")
        .max_response_bytes(64 * 1024 * 1024)
        .send()
        .await?
        .error_for_status()?;
    let (mut bytes, mut chunks, mut rows) = (0usize, 0usize, 0usize);
    while let Some(chunk) = export.chunk().await? {
        bytes += chunk.len();
        chunks += 1;
        rows += chunk.iter().filter(|b| **b == b'\n').count();
    }
    println!(
        "Download: {bytes} bytes in {chunks} chunks, {rows} lines, read as they came (the profile's 1 MiB cap raised for this call alone)"
    );
    ensure!(bytes > 8_000_000 && rows == (1 << 20) + 1);

    let signed = partner
        .post("/signed")
        .json(&serde_json::json!({ "amount": 2000 }))
        .idempotent()
        .send()
        .await?;
    println!(
        "Signed request: {} after {} attempts, each with its own signature (the partner refuses a replayed one)",
        signed.status(),
        signed.attempts()
    );
    ensure!(signed.status() == 200 && signed.attempts() == 2);
    Ok(())
}

/// Step 12: a bug calls a paid endpoint in a tight loop; the spending ceiling stops it.
pub(crate) async fn ceiling(origin: &str) -> anyhow::Result<()> {
    let paid = Client::builder()
        .base_url(format!("{origin}/v1"))
        .allow_insecure_http(true)
        .budget(50, std::time::Duration::from_secs(86_400))
        .build()?;
    let mut sent = 0;
    let stopped = loop {
        match paid.get("/contacts/42").send().await {
            Ok(_) => sent += 1,
            Err(err) => break err,
        }
        ensure!(sent <= 50, "the ceiling did not hold");
    };
    println!(
        "A runaway loop with [budget] max_calls = 50, per = \"1d\": {sent} calls went out, then -> {stopped}"
    );
    ensure!(sent == 50 && stopped.is_budget_exhausted() && paid.budget_remaining() == Some(0));
    let health = paid.health();
    println!(
        "client.health(), for a readiness probe: {}",
        serde_json::to_string(&health)?
    );
    ensure!(health.budget_remaining == Some(0) && health.origins[0].breaker == "closed");
    Ok(())
}
