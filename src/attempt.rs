//! One attempt around the wire: step 4, the request completed before it (credentials, trace
//! context, the `on_attempt` hook), and steps 6 and 7, what its result means: its [`Outcome`]
//! for the retry policy, and what it teaches the breaker and the limiter of the origin that
//! answered, which after a redirect is not always the origin the call went to.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::auth::Token;
use crate::breaker::{Permit, Verdict};
use crate::error::Error;
use crate::origins::{Origin, PerOrigin};
use crate::redirect::{Attempted, Hop};
use crate::retry::{self, Delivery, Outcome};
use crate::shared::Shared;
use crate::transport::Deadline;
use tokio::time::Instant;

/// Step 6, classify: the outcome of an attempt, as far as retrying is concerned.
pub(crate) fn classify(
    result: &Result<reqwest::Response, Error>,
    hint_header: Option<&http::HeaderName>,
) -> Outcome {
    match result {
        Ok(response) => Outcome::Response {
            status: response.status(),
            retry_after: response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| retry::parse_retry_after(v.as_bytes(), SystemTime::now())),
            hint: hint_header
                .filter(|_| response.status().as_u16() >= 400)
                .and_then(|name| retry::parse_hint(response.headers().get(name)?.as_bytes())),
        },
        Err(err) => Outcome::Failed {
            kind: err.kind(),
            delivery: if err.never_sent() {
                Delivery::NeverSent
            } else {
                Delivery::MaybeReceived
            },
            permanent: err.is_permanent(),
        },
    }
}

/// Step 7, record: the breaker's verdict and a pause the server asked for, against the origin of
/// the last hop, whether it answered or failed. When that is a redirect target, the first origin
/// answered (with the redirect), which is a success for its breaker. A retry paid from the
/// budget (`paid`) that
/// succeeded gives its cost back to the call's retry budget.
pub(crate) fn record(
    origins: &PerOrigin<Origin>,
    origin: &Arc<Origin>,
    permit: Option<Permit>,
    attempted: &Attempted,
    (outcome, paid): (Outcome, bool),
    max_retry_after: Duration,
    (sent, answered): (Instant, Instant),
) {
    let verdict = Verdict::of(&outcome);
    origin
        .outcomes
        .record(matches!(verdict, Some(Verdict::Failure)));
    if paid && verdict == Some(Verdict::Success) {
        origin.budget.refund();
    }
    let answered_by = match &attempted.redirected_to {
        Some(url) => origins.get(url),
        None => origin.clone(),
    };
    if let Some(verdict) = verdict {
        if Arc::ptr_eq(&answered_by, origin) {
            if let Some(permit) = permit {
                permit.record(verdict);
            }
        } else {
            if let Some(permit) = permit {
                permit.record(Verdict::Success);
            }
            if let Some(target) = &answered_by.breaker {
                target.observe(verdict);
            }
        }
    }
    if let (Ok(response), Outcome::Response { retry_after, .. }) = (&attempted.result, outcome) {
        answered_by.limiter.observe(
            response.status(),
            response.headers(),
            (retry_after, sent, answered),
            max_retry_after,
        );
    }
}

/// Step 4 and what completes a request before the wire: credentials (where their scope
/// allows), the trace context, then the `on_attempt` hook (which sees both, and whose headers
/// are masked like the caller's). Returns the OAuth token used, for a 401.
pub(crate) async fn prepare(
    s: &Shared,
    hop: &mut Hop,
    deadline: Deadline,
    number: u32,
) -> Result<Option<Arc<Token>>, Error> {
    let in_scope = s.credential_scope.covers(&hop.url);
    let token = if in_scope {
        deadline
            .run(s.credentials.apply(&mut hop.url, &mut hop.headers))
            .await
            .and_then(|applied| applied)?
    } else {
        None
    };
    // Before the hook, so that a signature can cover it.
    #[cfg(feature = "opentelemetry")]
    if s.settings.propagate_trace_context {
        crate::telemetry::trace_context::inject(&mut hop.headers);
    }
    if let Some(hook) = &s.hook {
        let before: Vec<_> = hop.headers.keys().cloned().collect();
        let mut request = crate::hook::AttemptRequest {
            method: &hop.method,
            url: &hop.url,
            headers: &mut hop.headers,
            body: hop.body.as_ref().and_then(|b| b.as_bytes()).map(|b| &b[..]),
            number,
            in_scope,
        };
        crate::hook::run(hook, &mut request)?;
        hop.hooked = hop
            .headers
            .keys()
            .filter(|name| !before.contains(name))
            .cloned()
            .collect();
        s.redactor.mark_sensitive(&mut hop.headers);
    }
    Ok(token)
}
