//! The state every clone of a [`Client`](crate::Client) shares, and the one constructor that
//! builds it from checked settings.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use http::HeaderName;
use url::Url;

use crate::auth::{Credentials, Scope};
use crate::breaker::Breaker;
use crate::error::Result;
use crate::gate::OriginGate;
use crate::origins::{Origin, PerOrigin};
use crate::profile::{Checked, Settings};
use crate::ratelimit::Limiter;
use crate::redact::Redactor;
use crate::response::BodyContext;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::telemetry::Labels;
use crate::transport;

/// Everything the clones of one client share.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) settings: Settings,
    pub(crate) base_url: Url,
    pub(crate) http: reqwest::Client,
    pub(crate) gate: OriginGate,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) credentials: Credentials,
    pub(crate) credential_scope: Scope,
    pub(crate) idempotency_header: HeaderName,
    pub(crate) body: Arc<BodyContext>,
    pub(crate) retry: RetryPolicy,
    pub(crate) origins: PerOrigin<Origin>,
    /// The metric labels of calls refused before they had an origin.
    pub(crate) labels: Labels,
    pub(crate) isolated: AtomicBool,
}

impl Shared {
    /// Builds the shared state of a client from settings that passed validation, reading the
    /// secrets they point to and the TLS files they name.
    ///
    /// # Errors
    ///
    /// `is_config()` when a secret cannot be read or a TLS file cannot be used.
    pub(crate) fn new(name: String, settings: Settings, checked: Checked) -> Result<Shared> {
        let Checked { base_url, quota } = checked;
        let s = &settings;
        let http = transport::build(&name, s)?;
        let credentials = Credentials::resolve(&name, s.auth.as_ref(), &http, &s.timeouts)?;
        let mut query_params = s.redact.query_params.clone();
        query_params.extend(credentials.query_param().map(str::to_owned));
        let mut headers = s.redact.headers.clone();
        headers.extend(
            credentials
                .header_name()
                .map(|name| name.as_str().to_owned()),
        );
        let redactor = Arc::new(Redactor::new(
            &headers,
            &query_params,
            &s.redact.json_fields,
        ));
        let body = Arc::new(BodyContext {
            redactor: redactor.clone(),
            max_bytes: s.max_response_bytes,
            timeouts: s.timeouts.clone(),
            log: s.log.bodies.then_some(s.log.max_body_bytes as usize),
        });
        Ok(Shared {
            gate: OriginGate::new(s, &base_url),
            origins: origins(&name, &base_url, s, quota),
            labels: Labels::new(&name, "none"),
            credential_scope: Scope::new(&base_url, s.auth.as_ref()),
            idempotency_header: s.retry.idempotency_header.clone(),
            retry: RetryPolicy::new(&s.retry),
            isolated: AtomicBool::new(false),
            name,
            base_url,
            http,
            redactor,
            credentials,
            body,
            settings,
        })
    }
}

/// The per-origin state of a client with validated settings `s`.
fn origins(
    name: &str,
    base_url: &Url,
    s: &Settings,
    quota: Option<governor::Quota>,
) -> PerOrigin<Origin> {
    let budget_percent = s.retry.budget_percent;
    let breaker = s.circuit_breaker.enabled.then(|| s.circuit_breaker.clone());
    let profile = name.to_owned();
    PerOrigin::new(base_url, move |origin| Origin {
        // The overflow entry of `PerOrigin` has no origin of its own.
        labels: Labels::new(&profile, origin),
        budget: RetryBudget::new(budget_percent),
        breaker: breaker
            .as_ref()
            .map(|settings| Arc::new(Breaker::new(origin.to_owned(), settings))),
        limiter: Limiter::new(origin.to_owned(), quota),
    })
}
