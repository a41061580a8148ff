//! The pipeline of one call, composed from the steps each module owns: the kill switch and the
//! origin gate, then per attempt the breaker, pacing, the spending ceiling, credentials and the
//! hook (`attempt::prepare`), the wire and its redirects, what the result means
//! (`attempt::classify`, `attempt::record`) and the retry decision.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::attempt;
use crate::auth;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::origins::Origin;
use crate::redirect::{self, Hop, Wire};
use crate::request::PreparedRequest;
use crate::response::{Answered, Response};
use crate::retry::{self, Attempt, Decision};
use crate::telemetry;
use crate::transport::{self, Deadline, Limit, Timer};

impl Client {
    /// One logical call: its span, then the pipeline.
    ///
    /// Written as a function returning a block rather than an `async fn`: an `async fn` keeps
    /// its arguments twice in its state (as passed, and as locals), and this state is what the
    /// caller's future holds and moves. The request stays here, lent to the pipeline.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would hold the request twice"
    )]
    pub(crate) fn execute(
        self,
        mut request: PreparedRequest,
    ) -> impl Future<Output = Result<Response>> + Send + 'static {
        async move {
            let s = &self.shared;
            let span = telemetry::CallSpan::new(
                &s.name,
                &request.method,
                &request.url,
                &s.redactor,
                &request.policy,
            );
            let started = Instant::now();
            let mut origin = None;
            // Pinned where it stays, and dropped (with its bulkhead slot) before the call's
            // metrics.
            let result = {
                let mut call = std::pin::pin!(self.call(&mut request, started, &mut origin, &span));
                // The span is entered for each poll, as `Instrument` would, but borrowed: a
                // clone would cost a subscriber a reference count and a close.
                std::future::poll_fn(|cx| {
                    let _entered = span.span().enter();
                    call.as_mut().poll(cx)
                })
                .await
            };
            let outcome = result.as_ref().map(|r| (r.status(), r.attempts()));
            // A call refused before it had an origin (isolation, the origin gate) is labelled
            // with the profile alone: the refused host is not a label, it could be anything.
            let labels = origin
                .as_ref()
                .map_or(&s.labels, |o: &Arc<Origin>| &o.labels);
            let elapsed = started.elapsed();
            telemetry::call_finished(&span, labels, &request.method, outcome, elapsed);
            result
        }
    }

    /// The pipeline. Sets `origin_out` once the origin is known, for the call's metrics.
    async fn call(
        &self,
        request: &mut PreparedRequest,
        started: Instant,
        origin_out: &mut Option<Arc<Origin>>,
        call_span: &telemetry::CallSpan<'_>,
    ) -> Result<Response> {
        let s = &self.shared;
        let total = request.timeout.unwrap_or(s.settings.timeouts.total);
        let call_deadline = Deadline {
            at: transport::later(started, total),
            limit: Limit::Total(total),
        };
        let PreparedRequest {
            method,
            url,
            headers,
            body,
            policy,
            ..
        } = request;
        let span = call_span.span();
        let ids = crate::request_id::RequestIds::start(&s.settings.log, headers, span);
        let fail = |e: Error, sent: u32| {
            e.with_request(method, s.redactor.url(url).to_string())
                .with_attempts(sent)
                .with_request_id(ids.current().as_deref())
        };

        // The kill switch, then 1. the origin gate (the URL is the same for every attempt).
        self.check_isolation().map_err(|e| fail(e, 0))?;
        s.gate.check(url).map_err(|e| fail(e, 0))?;

        for (name, value) in &s.default_headers {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        let has_idempotency_key = retry::ensure_idempotency_key(
            headers,
            method,
            &s.idempotency_header,
            s.settings.retry.auto_idempotency_key,
        );
        // Once per call: the caller's headers do not change between attempts, and credentials
        // are inserted already marked sensitive.
        s.redactor.mark_sensitive(headers);
        let origin = s.origins.get(url);
        *origin_out = Some(origin.clone());
        // The bulkhead: a slot for the whole call, given back however it ends.
        let _in_flight = origin
            .in_flight
            .enter(&origin.name, call_deadline.at)
            .await
            .map_err(|e| fail(e, 0))?;
        origin.budget.deposit_at(started);
        if let (Some(max), Some(body)) = (s.body.log, body.as_ref().and_then(|b| b.as_bytes())) {
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            telemetry::body("request", content_type, body, &s.redactor, max);
        }
        let wire = Wire {
            http: &s.http,
            gate: &s.gate,
            redactor: &s.redactor,
            timeouts: &s.settings.timeouts,
            follow: s.settings.follow_redirects,
            isolated: &s.isolated,
            origins: &s.origins,
            credentials: &s.credentials,
            scope: &s.credential_scope,
        };

        // `number` counts attempts for the retry policy; `sent` counts requests on the wire,
        // which is what `attempts()` reports (it includes a resend after a 401).
        let (mut number, mut sent) = (1, 0);
        // Whether this attempt is a retry paid from the budget (a 429's retry is not): only
        // those give their cost back when they succeed.
        let mut paid = false;
        // The status the call last saw, for an error that ends it before another answer.
        let mut last_status = None;
        let mut waited = Duration::ZERO;
        let mut resent_after_unauthorized = false;
        loop {
            self.check_isolation().map_err(|e| fail(e, sent))?;

            // 2. circuit breaker: fail fast before waiting for anything
            if let Some(breaker) = &origin.breaker {
                breaker
                    .check()
                    .map_err(|e| with_status(fail(e, sent), last_status))?;
            }

            // 3. rate limiter
            origin
                .limiter
                .acquire(call_deadline.at)
                .await
                .map_err(|e| fail(e, sent))?;

            // 4. credentials (a token request is I/O too: the kill switch is asked first)
            self.check_isolation().map_err(|e| fail(e, sent))?;
            let mut hop = Hop {
                method: method.clone(),
                url: url.clone(),
                headers: headers.clone(),
                body: body.clone(),
                hooked: Vec::new(),
            };
            let token = attempt::prepare(s, &mut hop, call_deadline, sent + 1)
                .await
                .map_err(|e| fail(e, sent))?;

            // The spending ceiling, counted for requests about to go out only (a call that fails
            // before the wire costs nothing): retries count too, they are billed.
            if let Some(ceiling) = &s.ceiling {
                ceiling
                    .take(call_deadline.at)
                    .await
                    .map_err(|e| with_status(fail(e, sent), last_status))?;
            }

            // The waits above can be long: the kill switch and the breaker are asked again
            // right before the wire, and the breaker's permit (a probe slot when half-open) is
            // taken only now.
            self.check_isolation().map_err(|e| fail(e, sent))?;
            let permit = match &origin.breaker {
                Some(breaker) => Some(
                    breaker
                        .permit()
                        .map_err(|e| with_status(fail(e, sent), last_status))?,
                ),
                None => None,
            };

            // 5. transport (and redirects, if the profile follows them)
            let attempt_started = Instant::now();
            let deadline = Deadline::for_attempt(
                attempt_started,
                s.settings.timeouts.attempt(),
                call_deadline,
            );
            sent += 1;
            let mut timer = Timer::new(deadline, s.settings.timeouts.read, attempt_started);
            let attempted = redirect::send(&wire, &mut hop, &mut timer).await;
            let finished = Instant::now();

            if let Ok(response) = &attempted.result {
                last_status = Some(response.status());
                ids.saw(response.headers(), span);
            }

            // 6. classify, 7. record (against the origin of the last hop)
            let outcome =
                attempt::classify(&attempted.result, s.settings.retry.hint_header.as_ref());
            attempt::record(
                &s.origins,
                &origin,
                permit,
                &attempted,
                (outcome, paid),
                s.settings.retry.max_retry_after,
                (attempt_started, finished),
            );

            // A 401 to a cached token: the server refused before acting, so one resend with a
            // fresh token is safe whatever the method. A second 401 is final. A 401 from a later
            // hop answers that hop (where credentials may have been stripped): it says nothing
            // of the token and the first request was acted on.
            if let (Ok(response), Some(token)) = (&attempted.result, &token)
                && response.status() == http::StatusCode::UNAUTHORIZED
                && attempted.redirected_to.is_none()
                // A streamed body cannot go again: the 401 is the answer.
                && body.as_ref().is_none_or(|b| b.can_resend())
            {
                if resent_after_unauthorized {
                    return Err(fail(auth::refused_fresh_token(), sent));
                }
                s.credentials.invalidate(token);
                resent_after_unauthorized = true;
                continue;
            }

            // 8. decide
            let attempt = Attempt {
                number,
                method,
                has_idempotency_key,
                outcome,
                time_left: call_deadline.at.saturating_duration_since(finished),
                vouched: policy.idempotent,
                max_attempts: policy.max_attempts,
                resendable: body.as_ref().is_none_or(|b| b.can_resend()),
                // Asked only where it matters: whether a 429's retry is paced by a pause.
                origin_paused: matches!(
                    outcome,
                    retry::Outcome::Response {
                        status: http::StatusCode::TOO_MANY_REQUESTS,
                        ..
                    }
                ) && origin.limiter.is_paused(),
            };
            // The id is read for the DEBUG event only when DEBUG is on.
            let id = tracing::enabled!(tracing::Level::DEBUG)
                .then(|| ids.last())
                .flatten();
            telemetry::attempt_finished(
                &attempt,
                waited,
                finished - attempt_started,
                id.as_deref(),
            );
            let stop = match s.retry.decide(&attempt, &origin.budget, fastrand::f64()) {
                Decision::Retry { after, paid: drew } => {
                    paid = drew;
                    telemetry::retry_scheduled(&attempt, after, &origin.labels, call_span);
                    drop(attempted);
                    tokio::time::sleep(after).await;
                    waited = after;
                    number += 1;
                    continue;
                }
                Decision::Stop(stop) => stop,
            };
            telemetry::retry_stopped(&attempt, stop, &origin.labels, call_span);
            return match attempted.result {
                Ok(response) => {
                    let response = Response::new(
                        response,
                        s.body.clone(),
                        timer,
                        Answered {
                            method: method.clone(),
                            attempts: sent,
                            note: stop.note(),
                            max_bytes: policy.max_response_bytes,
                            request_id: ids.current(),
                            retry_after: match outcome {
                                retry::Outcome::Response { retry_after, .. } => retry_after,
                                retry::Outcome::Failed { .. } => None,
                            },
                        },
                    );
                    // The caller is told what the server asked, saturated like every wait here:
                    // `u64::MAX` seconds must not hand the caller a `Duration` that panics when
                    // added to an `Instant`.
                    match stop.server_wait() {
                        Some(wait) if retry::asks_to_slow_down(response.status()) => {
                            Err(response.rate_limited(wait.min(transport::FAR_FUTURE)))
                        }
                        _ => Ok(response),
                    }
                }
                Err(err) => Err(err
                    .with_attempts(sent)
                    .with_note(stop.note())
                    .with_request_id(ids.current().as_deref())),
            };
        }
    }
}

/// `err` with the status the call last saw, if it saw one.
fn with_status(err: Error, status: Option<http::StatusCode>) -> Error {
    match status {
        Some(status) => err.with_status(status),
        None => err,
    }
}
