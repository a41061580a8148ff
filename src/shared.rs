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

/// Everything the clones of one client share.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) settings: Settings,
    pub(crate) base_url: Url,
    pub(crate) http: Arc<crate::reload::Transport>,
    pub(crate) gate: OriginGate,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) credentials: Credentials,
    pub(crate) credential_scope: Scope,
    pub(crate) idempotency_header: HeaderName,
    pub(crate) body: Arc<BodyContext>,
    pub(crate) retry: RetryPolicy,
    pub(crate) origins: PerOrigin<Origin>,
    /// `[budget]`: the spending ceiling.
    pub(crate) ceiling: Option<crate::ceiling::Ceiling>,
    /// `[headers]`: sent on every call that does not set its own.
    pub(crate) default_headers: http::HeaderMap,
    /// `ClientBuilder::on_attempt`.
    pub(crate) hook: Option<crate::hook::Hook>,
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
        let Checked {
            base_url,
            quota,
            headers: default_headers,
        } = checked;
        let s = &settings;
        let http = crate::reload::Transport::build(&name, s)?;
        #[cfg(feature = "fleet")]
        let fleet = s
            .fleet
            .as_ref()
            .map(|f| crate::fleet::Fleet::new(&name, f).map(Arc::new))
            .transpose()
            .map_err(crate::Error::config)?;
        let credentials = Credentials::resolve(
            &name,
            s.auth.as_ref(),
            &http,
            &s.timeouts,
            #[cfg(feature = "fleet")]
            fleet.as_ref(),
        )?;
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
        let ceiling = s.budget.as_ref().map(|budget| {
            crate::ceiling::Ceiling::new(
                &name,
                budget,
                #[cfg(feature = "fleet")]
                fleet.clone(),
            )
        });
        Ok(Shared {
            ceiling,
            gate: OriginGate::new(s, &base_url),
            origins: origins(
                &name,
                &base_url,
                s,
                quota,
                #[cfg(feature = "fleet")]
                fleet,
            ),
            labels: Labels::new(&name, "none"),
            credential_scope: Scope::new(&base_url, s.auth.as_ref()),
            idempotency_header: s.retry.idempotency_header.clone(),
            retry: RetryPolicy::new(&s.retry),
            isolated: AtomicBool::new(false),
            hook: None,
            default_headers,
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
    #[cfg(feature = "fleet")] fleet: Option<Arc<crate::fleet::Fleet>>,
) -> PerOrigin<Origin> {
    let budget_percent = s.retry.budget_percent;
    let adaptive = s.rate_limit.as_ref().and_then(|l| l.adaptive);
    let max_in_flight = s.concurrency.as_ref().map(|c| c.max_in_flight);
    #[cfg(feature = "fleet")]
    let (quota, link) = fleet_quota(s, quota, fleet);
    let breaker = s.circuit_breaker.enabled.then(|| s.circuit_breaker.clone());
    let profile = name.to_owned();
    PerOrigin::new(base_url, move |origin| Origin {
        // The overflow entry of `PerOrigin` has no origin of its own.
        labels: Labels::new(&profile, origin),
        budget: RetryBudget::new(budget_percent),
        outcomes: crate::health::Outcomes::new(),
        in_flight: crate::health::InFlight::new(max_in_flight),
        name: origin.into(),
        breaker: breaker
            .as_ref()
            .map(|settings| Arc::new(Breaker::new(origin.to_owned(), settings))),
        limiter: {
            let limiter = Limiter::new(origin.to_owned(), quota).adaptive(adaptive);
            #[cfg(feature = "fleet")]
            let limiter = limiter.with_fleet(link(&profile, origin));
            limiter
        },
    })
}

/// In fleet mode: the local quota becomes the fallback (`rate / replicas_hint`) when the quota is
/// shared, and each origin gets its link to the fleet.
#[cfg(feature = "fleet")]
#[allow(clippy::type_complexity)]
fn fleet_quota(
    s: &Settings,
    quota: Option<governor::Quota>,
    fleet: Option<Arc<crate::fleet::Fleet>>,
) -> (
    Option<governor::Quota>,
    impl Fn(&str, &str) -> Option<Arc<crate::fleet::OriginLink>> + Send + Sync + 'static,
) {
    let limit = s.rate_limit.clone();
    let quota = match (&fleet, &limit) {
        (Some(fleet), Some(limit)) if fleet.shares(crate::profile::fleet::Share::RateLimit) => {
            let hint = f64::from(fleet.settings.replicas_hint);
            let alone = crate::profile::sections::RateLimit {
                requests_per_second: limit.requests_per_second.map(|rate| rate / hint),
                burst: limit
                    .burst
                    .map(|b| (b / fleet.settings.replicas_hint).max(1)),
                adaptive: limit.adaptive,
            };
            // A rate validation accepted, divided, may fall below what can be paced: then the
            // fleet's quota alone paces, and the fallback keeps the whole quota.
            crate::ratelimit::quota(&alone).or(quota)
        }
        _ => quota,
    };
    let link = move |profile: &str, origin: &str| {
        let fleet = fleet.as_ref()?;
        crate::fleet::OriginLink::new(fleet, profile, origin, limit.as_ref()).map(Arc::new)
    };
    (quota, link)
}
