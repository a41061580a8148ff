//! A walk through what `outbound` does, against a demo third-party API embedded in this process.
//!
//! Run it with `cargo run --example tour`. It needs no setup and no network beyond loopback,
//! prints each step in plain words, checks that each step behaved as described, and exits.

#[path = "../../tests/support/server.rs"]
mod server;

#[path = "../../tests/support/trace.rs"]
mod trace;

mod calls;
mod demo;

use anyhow::ensure;
use demo::demo_api;
use outbound::{Client, Profiles};

fn step(n: u32, title: &str) {
    println!("\n== {n}. {title}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let api = demo_api().await;
    println!("A demo partner API is listening on {}.", api.origin());

    step(1, "A profile, loaded from TOML");
    let toml = format!(
        r#"
        [partner]
        base_url = "{origin}/v1"
        allow_insecure_http = true     # loopback demo only: https is required otherwise
        max_response_bytes = 1048576   # 1 MiB

        [partner.timeouts]
        attempt = "500ms"
        total = "2s"
        "#,
        origin = api.origin()
    );
    println!("{}", toml.trim_end());
    let profiles = Profiles::from_toml_str(&toml)?;
    let partner = Client::from_profile(profiles.get("partner")?)?;
    println!("-> client built for profile {:?}.", partner.profile_name());

    step(2, "A call");
    let response = partner
        .get("/contacts/42")
        .send()
        .await?
        .error_for_status()?;
    println!("GET {} -> {}", response.url(), response.status());
    let contact: serde_json::Value = response.json().await?;
    println!("-> {contact}");
    ensure!(
        contact["name"] == "Ada Lovelace",
        "unexpected contact {contact}"
    );

    step(3, "A server that never answers");
    let started = tokio::time::Instant::now();
    let err = partner
        .get("/reports/slow")
        .send()
        .await
        .expect_err("stalls");
    println!("-> after {:?}: {err}", started.elapsed());
    ensure!(err.is_timeout(), "expected a timeout, got {err}");

    step(4, "Destinations the profile does not allow");
    let err = partner
        .get("https://attacker.example/collect")
        .send()
        .await
        .expect_err("foreign");
    println!("An absolute URL to another host -> {err}");
    ensure!(err.is_disallowed());
    let err =
        Profiles::from_toml_str("[crm]\nbase_url = 'http://api.crm.example'\n").expect_err("http");
    println!("A profile with an http:// base_url -> {err}");
    ensure!(err.is_config());
    let err = Profiles::from_toml_str(
        "[crm]\nbase_url = 'https://api.crm.example'\n[crm.timeouts]\nconect = '3s'\n",
    )
    .expect_err("typo");
    println!("A typo in a key -> {err}");

    step(5, "A body larger than max_response_bytes");
    let err = partner
        .get("/export")
        .send()
        .await?
        .bytes()
        .await
        .expect_err("too large");
    println!("4 MiB with Content-Length -> {err}");
    ensure!(err.is_body_too_large());
    let err = partner
        .get("/export.gz")
        .send()
        .await?
        .bytes()
        .await
        .expect_err("bomb");
    println!("A gzip bomb (64 KiB on the wire, 64 MiB inflated) -> {err}");
    ensure!(err.is_body_too_large());

    step(6, "Errors and logs never show a secret");
    let err = partner
        .get("/maintenance?account=7&api_key=sk_live_51Hx9")
        .send()
        .await?
        .error_for_status()
        .expect_err("503");
    println!("-> {err}");
    ensure!(!err.to_string().contains("sk_live_51Hx9"), "the key leaked");
    ensure!(err.status().map(|s| s.as_u16()) == Some(503));
    let err = partner
        .get(format!("http://ops:hunter2@{}/v1/contacts/42", api.addr()))
        .send()
        .await
        .expect_err("userinfo");
    println!("A URL with a password -> {err}");
    ensure!(
        !format!("{err:?}").contains("hunter2"),
        "the password leaked"
    );

    step(7, "Retries that cannot cause harm");
    // The steps above failed often enough to open this client's circuit breaker for the demo
    // API (see step 9); a fresh client from the same profile starts with fresh per-origin state.
    let partner = Client::from_profile(profiles.get("partner")?)?;
    let response = partner.get("/flaky").send().await?;
    println!(
        "GET /flaky -> {} after {} attempts (two 503s, retried with jittered backoff)",
        response.status(),
        response.attempts()
    );
    ensure!(response.status() == 200 && response.attempts() == 3);
    let response = partner
        .post("/charges")
        .json(&serde_json::json!({"amount": 1000}))
        .send()
        .await?;
    println!(
        "POST /charges without an idempotency key -> {} after {} attempt: a POST that may have \
         charged a card is never sent twice",
        response.status(),
        response.attempts()
    );
    ensure!(response.status() == 503 && response.attempts() == 1);
    let response = partner
        .post("/charges")
        .json(&serde_json::json!({"amount": 1000}))
        .idempotency_key("order-8812")
        .send()
        .await?;
    let keys: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.path() == "/v1/charges")
        .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    println!(
        "POST /charges with Idempotency-Key -> {} after {} attempts; keys the server saw: {keys:?}",
        response.status(),
        response.attempts()
    );
    ensure!(response.status() == 201 && keys == ["order-8812", "order-8812"]);
    let started = tokio::time::Instant::now();
    let response = partner
        .get("/busy")
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await?;
    println!(
        "GET /busy answered 429 with Retry-After: 1 -> {} after waiting {:?}",
        response.status(),
        started.elapsed()
    );
    ensure!(response.status() == 200 && started.elapsed() >= std::time::Duration::from_millis(900));

    step(8, "OAuth tokens: cached, refreshed ahead, single flight");
    let crm = Client::builder()
        .base_url(format!("{}/v1", api.origin()))
        .allow_insecure_http(true)
        .oauth2_client_credentials(
            api.url("/oauth/token"),
            "orders-service",
            outbound::SecretString::from("demo-client-secret"),
        )
        .build()?;
    let token_requests = || {
        api.requests()
            .iter()
            .filter(|r| r.path() == "/oauth/token")
            .count()
    };
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let crm = crm.clone();
        calls.spawn(async move { crm.get("/me").send().await.map(|r| r.status()) });
    }
    while let Some(status) = calls.join_next().await {
        ensure!(status?? == 200);
    }
    println!(
        "20 concurrent first calls -> 200 each, with {} token request",
        token_requests()
    );
    ensure!(token_requests() == 1);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    crm.get("/me").send().await?.error_for_status()?;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    println!(
        "Past the refresh point (half of the 2 s lifetime) -> the call used the valid token while \
         one background refresh ran: {} token requests in all",
        token_requests()
    );
    ensure!(token_requests() == 2);
    partner
        .post(format!("{}/v1/admin/revoke", api.origin()))
        .send()
        .await?;
    let response = crm.get("/me").send().await?;
    println!(
        "The partner revoked the token -> 401, one refresh, one resend: {} after {} attempts, \
         {} token requests in all",
        response.status(),
        response.attempts(),
        token_requests()
    );
    ensure!(response.status() == 200 && response.attempts() == 2 && token_requests() == 3);
    println!("Debug of the client shows no secret: {crm:?}");
    ensure!(
        !format!("{crm:?}").contains("demo-token")
            && !format!("{crm:?}").contains("demo-client-secret")
    );

    step(
        9,
        "Shedding and pacing: circuit breaker, Retry-After pauses, kill switch",
    );
    let shedding = Client::builder()
        .base_url(format!("{}/v1", api.origin()))
        .allow_insecure_http(true)
        .max_attempts(1)
        .circuit_breaker_minimum_requests(5)
        .circuit_breaker_open_for(std::time::Duration::from_secs(1))
        .build()?;
    let outage_hits = || {
        api.requests()
            .iter()
            .filter(|r| r.path() == "/v1/outage")
            .count()
    };
    for _ in 0..5 {
        shedding.get("/outage").send().await?;
    }
    println!("5 calls to a failing endpoint -> 503 each; the breaker opens");
    let started = tokio::time::Instant::now();
    let mut last = None;
    for _ in 0..100 {
        last = shedding.get("/outage").send().await.err();
    }
    let last = last.expect("shed");
    println!(
        "100 more calls fail fast in {:?} in all, none reaching the server ({} requests so far): {last}",
        started.elapsed(),
        outage_hits()
    );
    ensure!(last.is_circuit_open() && outage_hits() == 5);
    partner
        .post(format!("{}/v1/admin/heal", api.origin()))
        .send()
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = shedding.get("/outage").send().await?;
    println!(
        "The partner recovers; after open_for (1 s) one probe goes out -> {}: the breaker closes",
        response.status()
    );
    ensure!(response.status() == 200 && shedding.get("/outage").send().await?.status() == 200);

    let response = shedding.get("/search").send().await?;
    println!(
        "GET /search -> {} with Retry-After: 1: calls to this origin pause (a lone 429 would delay only its own call)",
        response.status()
    );
    let started = tokio::time::Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let shedding = shedding.clone();
        calls.spawn(async move { shedding.get("/search").send().await.map(|r| r.status()) });
    }
    while let Some(status) = calls.join_next().await {
        ensure!(status?? == 200);
    }
    println!(
        "3 concurrent calls waited {:?} for the pause, then went out",
        started.elapsed()
    );
    ensure!(started.elapsed() >= std::time::Duration::from_millis(800));

    shedding.isolate();
    let err = shedding
        .get("/contacts/42")
        .send()
        .await
        .expect_err("isolated");
    println!("Kill switch: client.isolate() -> {err}");
    ensure!(err.is_isolated());
    shedding.restore();
    println!(
        "client.restore() -> {}",
        shedding.get("/contacts/42").send().await?.status()
    );

    step(10, "What the logs show: one retried call, as JSON");
    let log = trace::Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_current_span(true)
        .with_span_list(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(log.clone())
        .finish();
    let logged = Client::from_profile(profiles.get("partner")?)?;
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        logged
            .get("/flaky-again?api_key=sk_live_51Hx9")
            .send()
            .await?;
    }
    let text = log.text();
    for line in text.lines() {
        println!("{line}");
    }
    ensure!(text.contains("retry scheduled") && text.contains("http.response.status_code"));
    ensure!(
        !text.contains("sk_live_51Hx9"),
        "the key leaked into the log"
    );

    step(11, "Uploads, streamed downloads, signed requests");
    calls::tour(&api.origin()).await?;

    step(12, "A spending ceiling stops a runaway loop");
    calls::ceiling(&api.origin()).await?;

    println!("\nThe demo API saw {} requests. Tour complete.", api.hits());
    Ok(())
}
