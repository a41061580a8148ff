//! [`Client`]: one per integration, and the pipeline of a call.
//!
//! This file only composes. Each step of an attempt is owned by its module: the origin gate
//! (`gate`), credentials (`auth`), the wire and its time limits (`transport`, with `redirect` for
//! hops), the breaker (`breaker`), pacing (`ratelimit`), the retry decision (`retry`), and the
//! bounded body (`response`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, Method};
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::attempt;
use crate::auth;
use crate::builder::ClientBuilder;
use crate::error::Error;
use crate::error::Result;
use crate::origins::Origin;
use crate::profile::{Profile, Settings};
use crate::redirect::{self, Hop, Wire};
use crate::request::{self, PreparedRequest, RequestBuilder};
use crate::response::Response;
use crate::retry::{self, Attempt, Decision};
use crate::shared::Shared;
use crate::telemetry;
use crate::transport::{self, Deadline, Limit, Timer};

/// A client for one integration, built from a [`Profile`] or a [`ClientBuilder`].
///
/// Cheap to clone (an `Arc` inside); clones share the connection pool and every piece of
/// per-origin state. Every call is bounded in time and size, goes only where the profile allows,
/// and never shows a secret in an error or a log.
///
/// ```no_run
/// # async fn demo() -> Result<(), outbound::Error> {
/// let profiles = outbound::Profiles::from_toml_str(r#"
///     [crm]
///     base_url = "https://api.crm.example/v1"
/// "#)?;
/// let crm = outbound::Client::from_profile(profiles.get("crm")?)?;
/// let contact = crm.get("/contacts/42").send().await?.error_for_status()?.text().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

// ===== impl Client =====

impl Client {
    /// A builder with the defaults of an empty profile; `base_url` must be set.
    ///
    /// ```
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.partner.example")
    ///     .total_timeout(std::time::Duration::from_secs(10))
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new(String::new(), Settings::default())
    }

    /// A builder that starts from `profile`, to override some of its settings.
    pub fn builder_from(profile: &Profile) -> ClientBuilder {
        ClientBuilder::new(profile.name.clone(), profile.settings.clone())
    }

    /// Builds a client from `profile`, reading the secrets it points to.
    ///
    /// # Errors
    ///
    /// [`Error::is_config`](crate::Error::is_config) when a secret cannot be read (the message
    /// names the variable or the file, never a value) or a TLS file is invalid.
    pub fn from_profile(profile: &Profile) -> Result<Client> {
        Client::builder_from(profile).build()
    }

    pub(crate) fn from_shared(shared: Shared) -> Client {
        Client {
            shared: Arc::new(shared),
        }
    }

    /// Starts a GET request. `url` is a path relative to `base_url` or an absolute URL.
    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a POST request.
    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Starts a PUT request.
    pub fn put(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// Starts a PATCH request.
    pub fn patch(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// Starts a DELETE request.
    pub fn delete(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// Starts a HEAD request.
    pub fn head(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// Starts a request with any method. `url` is a path relative to `base_url` (whose path is
    /// kept as a prefix) or an absolute URL, which the profile must allow.
    pub fn request(&self, method: Method, url: impl AsRef<str>) -> RequestBuilder {
        let url = request::resolve_url(&self.shared.base_url, url.as_ref());
        RequestBuilder::new(self.clone(), method, url)
    }

    /// Calls left under the profile's spending ceiling (`[budget]`) in the current period, as
    /// this replica counts them; `None` without a ceiling.
    pub fn budget_remaining(&self) -> Option<u64> {
        self.shared
            .ceiling
            .as_ref()
            .map(crate::ceiling::Ceiling::remaining)
    }

    /// The profile name this client was built from (empty for [`Client::builder`]).
    pub fn profile_name(&self) -> &str {
        &self.shared.name
    }

    pub(crate) fn redacted(&self, url: &Url) -> String {
        self.shared.redactor.url(url).to_string()
    }

    pub(crate) fn redacted_headers<'a>(&'a self, headers: &'a HeaderMap) -> impl fmt::Debug + 'a {
        self.shared.redactor.headers(headers)
    }

    pub(crate) fn idempotency_header(&self) -> &HeaderName {
        &self.shared.idempotency_header
    }

    /// One logical call: its span, then the pipeline.
    pub(crate) async fn execute(&self, request: PreparedRequest) -> Result<Response> {
        let s = &self.shared;
        let span = telemetry::call_span(&s.name, &request.method, &request.url, &s.redactor);
        telemetry::call_policy(&span, &request.policy);
        let method = request.method.clone();
        let started = Instant::now();
        let mut origin = None;
        // Boxed: the pipeline's state is several KiB, and a boxed future is moved as a pointer
        // instead of being copied into every future that awaits it.
        let result = Box::pin(self.call(request, started, &mut origin))
            .instrument(span.clone())
            .await;
        let outcome = result.as_ref().map(|r| (r.status(), r.attempts()));
        // A call refused before it had an origin (isolation, the origin gate) is labelled with
        // the profile alone: the refused host is not a label, it could be anything.
        let labels = origin
            .as_ref()
            .map_or(&s.labels, |o: &Arc<Origin>| &o.labels);
        telemetry::call_finished(&span, labels, &method, outcome, started.elapsed());
        result
    }

    /// The pipeline. Sets `origin_out` once the origin is known, for the call's metrics.
    async fn call(
        &self,
        request: PreparedRequest,
        started: Instant,
        origin_out: &mut Option<Arc<Origin>>,
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
            mut headers,
            body,
            policy,
            ..
        } = request;
        let span = tracing::Span::current();
        let ids = crate::request_id::RequestIds::start(&s.settings.log, &mut headers, &span);
        let fail = |e: Error, sent: u32| {
            e.with_request(&method, s.redactor.url(&url).to_string())
                .with_attempts(sent)
                .with_request_id(ids.current().as_deref())
        };

        // The kill switch, then 1. the origin gate (the URL is the same for every attempt).
        self.check_isolation().map_err(|e| fail(e, 0))?;
        s.gate.check(&url).map_err(|e| fail(e, 0))?;

        for (name, value) in &s.default_headers {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        let has_idempotency_key = retry::ensure_idempotency_key(
            &mut headers,
            &method,
            &s.idempotency_header,
            s.settings.retry.auto_idempotency_key,
        );
        // Once per call: the caller's headers do not change between attempts, and credentials
        // are inserted already marked sensitive.
        s.redactor.mark_sensitive(&mut headers);
        let origin = s.origins.get(&url);
        *origin_out = Some(origin.clone());
        origin.budget.deposit();
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
            let attempted = redirect::send(&wire, hop, &mut timer).await;

            if let Ok(response) = &attempted.result {
                last_status = Some(response.status());
                ids.saw(response.headers(), &span);
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
            );

            // A 401 to a cached token: the server refused before acting, so one resend with a
            // fresh token is safe whatever the method. A second 401 is final. A 401 from a later
            // hop answers that hop (where credentials may have been stripped): it says nothing
            // of the token and the first request was acted on.
            if let (Ok(response), Some(token)) = (&attempted.result, &token)
                && response.status() == http::StatusCode::UNAUTHORIZED
                && !attempted.redirected
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
            let finished = Instant::now();
            let attempt = Attempt {
                number,
                method: &method,
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
                    telemetry::retry_scheduled(&attempt, after, &origin.labels);
                    drop(attempted);
                    tokio::time::sleep(after).await;
                    waited = after;
                    number += 1;
                    continue;
                }
                Decision::Stop(stop) => stop,
            };
            telemetry::retry_stopped(&attempt, stop, &origin.labels);
            return match attempted.result {
                Ok(response) => {
                    let response = Response::new(
                        response,
                        method,
                        attempted.url,
                        s.body.clone(),
                        timer,
                        sent,
                        stop.note(),
                    )
                    .with_max_bytes(policy.max_response_bytes)
                    .with_request_id(ids.current().as_deref())
                    .with_retry_after(match outcome {
                        retry::Outcome::Response { retry_after, .. } => retry_after,
                        retry::Outcome::Failed { .. } => None,
                    });
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

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("Client")
            .field("profile", &s.name)
            .field("base_url", &s.redactor.url(&s.base_url))
            .field("gate", &s.gate)
            .field("credentials", &s.credentials)
            .field("timeouts", &s.settings.timeouts)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_clone_send_sync() {
        fn assert_impls<T: Clone + Send + Sync + 'static>() {}
        assert_impls::<Client>();
    }
}
