//! W3C trace context (feature `opentelemetry`): with `propagate_trace_context`, every attempt
//! carries the `traceparent` of the call's span, as a real OpenTelemetry pipeline recorded it.

#![cfg(feature = "opentelemetry")]

mod support;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use support::{Reply, TestServer, client_for};
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn every_attempt_carries_the_traceparent_the_exporter_recorded() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::script(vec![Reply::status(503), Reply::ok("")]).await;
    client_for(&server)
        .initial_backoff(Duration::from_millis(1))
        .propagate_trace_context(true)
        .build()
        .expect("client")
        .get("/v1/orders")
        .header("baggage", "user=ada")
        .send()
        .await
        .expect("sent");
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let call = spans
        .iter()
        // `otel.name` names it after the method, as the HTTP conventions ask.
        .find(|s| s.name == "GET" && s.span_kind == opentelemetry::trace::SpanKind::Client)
        .expect("the call's span was exported");
    // Every HTTP client attribute of the conventions reaches the exporter, those a log line
    // does not carry included.
    let attribute = |key: &str| {
        call.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute("server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        attribute("server.port"),
        Some(server.addr().port().to_string())
    );
    assert!(
        attribute("url.full").is_some_and(|u| u.ends_with("/v1/orders")),
        "{:?}",
        call.attributes
    );
    assert_eq!(
        attribute("http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attribute("http.request.resend_count").as_deref(), Some("1"));
    assert_eq!(attribute("outbound.profile").as_deref(), Some("default"));
    let expected = format!(
        "00-{}-{}-01",
        call.span_context.trace_id(),
        call.span_context.span_id()
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.header("traceparent"), Some(expected.as_str()));
        assert_eq!(request.header("tracestate"), None);
        // The caller's own header goes as they set it; the client adds no baggage of its own.
        assert_eq!(request.header("baggage"), Some("user=ada"));
    }
}

#[tokio::test]
async fn no_traceparent_unless_the_profile_asks() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = TestServer::always(Reply::ok("")).await;
    client_for(&server)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("sent");
    assert_eq!(server.requests()[0].header("traceparent"), None);
}

#[tokio::test]
async fn without_an_opentelemetry_layer_nothing_is_sent() {
    let server = TestServer::always(Reply::ok("")).await;
    client_for(&server)
        .propagate_trace_context(true)
        .build()
        .expect("client")
        .get("/")
        .send()
        .await
        .expect("sent");
    assert_eq!(server.requests()[0].header("traceparent"), None);
}
