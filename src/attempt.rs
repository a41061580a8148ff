//! Steps 6 and 7: what one attempt's result means. Its [`Outcome`] for the retry policy, and
//! what it teaches the breaker and the limiter of the origin that answered, which after a
//! redirect is not always the origin the call went to.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::breaker::{Permit, Verdict};
use crate::error::Error;
use crate::origins::{Origin, PerOrigin};
use crate::redirect::Landed;
use crate::retry::{self, Delivery, Outcome};

/// Step 6, classify: the outcome of an attempt, as far as retrying is concerned.
pub(crate) fn classify(result: &Result<Landed, Error>) -> Outcome {
    match result {
        Ok(landed) => Outcome::Response {
            status: landed.response.status(),
            retry_after: landed
                .response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| retry::parse_retry_after(v.as_bytes(), SystemTime::now())),
        },
        Err(err) => Outcome::Failed {
            kind: err.kind(),
            delivery: if err.never_sent() {
                Delivery::NeverSent
            } else {
                Delivery::MaybeReceived
            },
        },
    }
}

/// Step 7, record: the breaker's verdict and a pause the server asked for, against the origin
/// that answered. When a redirect target answered, the first origin answered too (with the
/// redirect), which is a success for its breaker; the target's breaker and limiter get the rest.
pub(crate) fn record(
    origins: &PerOrigin<Origin>,
    origin: &Arc<Origin>,
    permit: Option<Permit>,
    result: &Result<Landed, Error>,
    outcome: Outcome,
    max_retry_after: Duration,
) {
    let answered_by = match result {
        Ok(landed) if landed.redirected => origins.get(&landed.url),
        _ => origin.clone(),
    };
    if let Some(verdict) = Verdict::of(&outcome) {
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
    if let (Ok(landed), Outcome::Response { retry_after, .. }) = (result, outcome) {
        answered_by.limiter.observe(
            landed.response.status(),
            landed.response.headers(),
            retry_after,
            max_retry_after,
        );
    }
}
