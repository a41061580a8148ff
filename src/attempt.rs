//! Steps 6 and 7: what one attempt's result means. Its [`Outcome`] for the retry policy, and
//! what it teaches the breaker and the limiter of the origin that answered, which after a
//! redirect is not always the origin the call went to.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::breaker::{Permit, Verdict};
use crate::error::Error;
use crate::origins::{Origin, PerOrigin};
use crate::redirect::Attempted;
use crate::retry::{self, Delivery, Outcome};

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
) {
    let verdict = Verdict::of(&outcome);
    if paid && verdict == Some(Verdict::Success) {
        origin.budget.refund();
    }
    let answered_by = if attempted.redirected {
        origins.get(&attempted.url)
    } else {
        origin.clone()
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
            retry_after,
            max_retry_after,
        );
    }
}
