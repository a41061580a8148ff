//! The decision after each attempt: retry after some delay, or stop and say why.

use std::time::Duration;

use http::{Method, StatusCode};

use super::backoff::Backoff;
use super::budget::RetryBudget;
use super::replay::{self, Delivery};
use crate::error::ErrorKind;
use crate::profile::sections::Retry;

/// How one attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// The server answered.
    Response {
        status: StatusCode,
        /// The parsed `Retry-After`, if the response had a valid one.
        retry_after: Option<Duration>,
        /// The server's own verdict in `retry.hint_header` (`true`: worth retrying, `false`:
        /// final), on an error status.
        hint: Option<bool>,
    },
    /// The attempt failed before a response head arrived.
    Failed {
        kind: ErrorKind,
        delivery: Delivery,
        /// The same cause would fail a retry (a refused certificate).
        permanent: bool,
    },
}

/// One finished attempt of a call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt<'a> {
    /// 1-based.
    pub(crate) number: u32,
    pub(crate) method: &'a Method,
    pub(crate) has_idempotency_key: bool,
    pub(crate) outcome: Outcome,
    /// Until the call's total deadline.
    pub(crate) time_left: Duration,
    /// The caller vouched that the request is replay-safe (`RequestBuilder::idempotent`).
    pub(crate) vouched: bool,
    /// This call's own `max_attempts`, replacing the profile's.
    pub(crate) max_attempts: Option<u32>,
    /// The body can be sent again (false once a streamed body was read from).
    pub(crate) resendable: bool,
    /// The origin is paused now (a server asked it): a retry waits for the pause.
    pub(crate) origin_paused: bool,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// `paid`: the retry drew on the origin's budget (and gives it back if it succeeds).
    Retry {
        after: Duration,
        paid: bool,
    },
    Stop(StopReason),
}

/// Why a call ended with the outcome of its last attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The outcome is not worth retrying: a success, or a final status or error.
    Final,
    /// Sending the request again could repeat a side effect.
    NotReplaySafe,
    /// `retry.max_attempts` reached.
    AttemptsExhausted,
    /// The origin's retry budget is spent.
    BudgetExhausted,
    /// The server asked to wait longer than `retry.max_retry_after`.
    RetryAfterTooLong { wait: Duration },
    /// The wait before the next attempt would end past the deadline.
    DeadlinePassed {
        wait: Duration,
        asked_by_server: bool,
    },
}

impl StopReason {
    /// A short note for the final error or response, when the reason is not self-evident.
    pub(crate) fn note(self) -> Option<&'static str> {
        match self {
            StopReason::Final | StopReason::AttemptsExhausted => None,
            StopReason::NotReplaySafe => Some(
                "not retried: the method is not idempotent and the request has no idempotency key",
            ),
            StopReason::BudgetExhausted => {
                Some("not retried: the retry budget for this origin is exhausted")
            }
            StopReason::RetryAfterTooLong { .. } => {
                Some("not retried: the server asked to wait longer than retry.max_retry_after")
            }
            StopReason::DeadlinePassed { .. } => {
                Some("not retried: the next attempt could not start before the total deadline")
            }
        }
    }

    /// The server's requested wait, when it is why the call stopped.
    pub(crate) fn server_wait(self) -> Option<Duration> {
        match self {
            StopReason::RetryAfterTooLong { wait }
            | StopReason::DeadlinePassed {
                wait,
                asked_by_server: true,
            } => Some(wait),
            _ => None,
        }
    }
}

/// 429 and 503: the answers whose `Retry-After` asks the caller to wait (a 503 asks every call
/// to the origin, a 429 its own call unless it is part of a pattern; see `ratelimit`).
pub(crate) fn asks_to_slow_down(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 503)
}

/// The retry settings of one client.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
    retry_on_status: Vec<u16>,
    max_retry_after: Duration,
}

impl RetryPolicy {
    pub(crate) fn new(retry: &Retry) -> RetryPolicy {
        RetryPolicy {
            max_attempts: retry.max_attempts,
            backoff: Backoff {
                initial: retry.initial_backoff,
                max: retry.max_backoff,
                multiplier: retry.multiplier,
            },
            retry_on_status: retry.retry_on_status.clone(),
            max_retry_after: retry.max_retry_after,
        }
    }

    /// Whether `outcome` is worth another attempt at all.
    fn is_retryable(&self, outcome: &Outcome, has_key: bool) -> bool {
        match *outcome {
            // The server knows best whether its error is transient; replay safety still rules.
            Outcome::Response {
                hint: Some(hint), ..
            } => hint,
            Outcome::Response { status, .. } => {
                self.retry_on_status.contains(&status.as_u16())
                    // A keyed request answered 409 collided with its own first attempt, still
                    // in flight on the server; 422 (key reused with another payload) is final.
                    || (has_key && status == StatusCode::CONFLICT)
            }
            Outcome::Failed {
                permanent: true, ..
            } => false,
            Outcome::Failed { kind, .. } => {
                matches!(
                    kind,
                    ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Request
                )
            }
        }
    }

    /// Decides after `attempt`. `unit` is a uniform random number in `[0, 1)` for the jitter.
    /// The budget is consulted last, so a retry that would not happen anyway costs nothing.
    pub(crate) fn decide(
        &self,
        attempt: &Attempt<'_>,
        budget: &RetryBudget,
        unit: f64,
    ) -> Decision {
        // A wait past the cap ends the call as rate limited whatever else holds: returning the
        // bare 429 or 503 would hide that the server asked for more than the profile allows.
        if let Outcome::Response {
            status,
            retry_after: Some(wait),
            ..
        } = attempt.outcome
            && asks_to_slow_down(status)
            && wait > self.max_retry_after
        {
            return Decision::Stop(StopReason::RetryAfterTooLong { wait });
        }
        if !self.is_retryable(&attempt.outcome, attempt.has_idempotency_key) {
            return Decision::Stop(StopReason::Final);
        }
        let delivery = match attempt.outcome {
            Outcome::Response { .. } => Delivery::MaybeReceived,
            Outcome::Failed { delivery, .. } => delivery,
        };
        let vouched = attempt.has_idempotency_key || attempt.vouched;
        if !attempt.resendable || !replay::is_replay_safe(attempt.method, vouched, delivery) {
            return Decision::Stop(StopReason::NotReplaySafe);
        }
        if attempt.number >= attempt.max_attempts.unwrap_or(self.max_attempts) {
            return Decision::Stop(StopReason::AttemptsExhausted);
        }
        let asked = match attempt.outcome {
            Outcome::Response { retry_after, .. } => retry_after,
            Outcome::Failed { .. } => None,
        };
        if let Some(wait) = asked
            && wait > self.max_retry_after
        {
            return Decision::Stop(StopReason::RetryAfterTooLong { wait });
        }
        let backoff = self.backoff.delay(attempt.number, unit);
        let after = asked.map_or(backoff, |wait| wait.max(backoff));
        if after >= attempt.time_left {
            return Decision::Stop(StopReason::DeadlinePassed {
                wait: after,
                asked_by_server: asked.is_some_and(|wait| wait >= backoff),
            });
        }
        // The budget guards a failing origin against amplified load. A 429 is not a failure:
        // when its retry waits for the server's `Retry-After` or for the origin's pause, which
        // pacing enforces for every call, it does not draw on the budget. A 429 that asks for
        // no wait, at an origin that is not paused, is paced by nothing else: it does.
        let paced = attempt.origin_paused
            || matches!(
                attempt.outcome,
                Outcome::Response {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    retry_after: Some(wait),
                    ..
                } if !wait.is_zero()
            );
        let paid = !paced;
        if paid && !budget.try_withdraw() {
            return Decision::Stop(StopReason::BudgetExhausted);
        }
        Decision::Retry { after, paid }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(&Retry::default())
    }

    fn attempt<'a>(method: &'a Method, key: bool, outcome: Outcome) -> Attempt<'a> {
        Attempt {
            number: 1,
            method,
            has_idempotency_key: key,
            outcome,
            time_left: Duration::from_secs(60),
            vouched: false,
            max_attempts: None,
            resendable: true,
            origin_paused: false,
        }
    }

    fn status(code: u16) -> Outcome {
        Outcome::Response {
            status: StatusCode::from_u16(code).expect("status"),
            retry_after: None,
            hint: None,
        }
    }

    fn decide(a: &Attempt<'_>) -> Decision {
        policy().decide(a, &RetryBudget::new(20), 0.5)
    }

    #[tokio::test]
    async fn client_errors_are_final() {
        for code in [400, 401, 403, 404, 422] {
            let a = attempt(&Method::GET, true, status(code));
            assert_eq!(decide(&a), Decision::Stop(StopReason::Final), "{code}");
        }
    }

    #[tokio::test]
    async fn keyed_conflict_is_retried_and_unkeyed_is_final() {
        let keyed = attempt(&Method::POST, true, status(409));
        assert!(matches!(decide(&keyed), Decision::Retry { .. }));
        let unkeyed = attempt(&Method::PUT, false, status(409));
        assert_eq!(decide(&unkeyed), Decision::Stop(StopReason::Final));
    }

    #[tokio::test]
    async fn refused_connection_is_retried_even_for_a_keyless_post() {
        let refused = Outcome::Failed {
            kind: ErrorKind::Connect,
            delivery: Delivery::NeverSent,
            permanent: false,
        };
        assert!(matches!(
            decide(&attempt(&Method::POST, false, refused)),
            Decision::Retry { .. }
        ));
        let reset = Outcome::Failed {
            kind: ErrorKind::Request,
            delivery: Delivery::MaybeReceived,
            permanent: false,
        };
        assert_eq!(
            decide(&attempt(&Method::POST, false, reset)),
            Decision::Stop(StopReason::NotReplaySafe)
        );
    }

    #[tokio::test]
    async fn retry_after_longer_than_backoff_sets_the_delay() {
        let outcome = Outcome::Response {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(7)),
            hint: None,
        };
        assert_eq!(
            decide(&attempt(&Method::GET, false, outcome)),
            Decision::Retry {
                after: Duration::from_secs(7),
                paid: false,
            }
        );
    }

    #[tokio::test]
    async fn retry_after_past_the_cap_or_the_deadline_stops_at_once() {
        let outcome = Outcome::Response {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: Some(Duration::from_secs(120)),
            hint: None,
        };
        let stop = decide(&attempt(&Method::GET, false, outcome));
        assert_eq!(
            stop,
            Decision::Stop(StopReason::RetryAfterTooLong {
                wait: Duration::from_secs(120)
            })
        );

        let outcome = Outcome::Response {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(10)),
            hint: None,
        };
        let mut a = attempt(&Method::GET, false, outcome);
        a.time_left = Duration::from_secs(5);
        let Decision::Stop(reason) = decide(&a) else {
            panic!("must stop");
        };
        assert_eq!(reason.server_wait(), Some(Duration::from_secs(10)));
    }

    #[tokio::test]
    async fn last_attempt_is_not_retried() {
        let mut a = attempt(&Method::GET, false, status(503));
        a.number = 3;
        assert_eq!(decide(&a), Decision::Stop(StopReason::AttemptsExhausted));
    }

    #[tokio::test]
    async fn exhausted_budget_stops_retries() {
        let budget = RetryBudget::new(0);
        while budget.try_withdraw() {}
        let a = attempt(&Method::GET, false, status(503));
        assert_eq!(
            policy().decide(&a, &budget, 0.5),
            Decision::Stop(StopReason::BudgetExhausted)
        );
    }
}
