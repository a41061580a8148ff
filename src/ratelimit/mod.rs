//! Step 3: client-side pacing per origin.
//!
//! Two gates, both per origin and shared by a client's clones:
//!
//! - an optional quota (`rate_limit.requests_per_second`, `burst`), enforced with `governor`'s
//!   GCRA: a call waits for its slot only if the slot comes before its deadline, and otherwise
//!   fails at once with `is_rate_limited()` and the expected wait;
//! - a "blocked until" gate, set when the server says to slow down (429 or 503 with
//!   `Retry-After`, or rate-limit headers showing the quota exhausted, see [`headers`]). It pauses
//!   every call to that origin, not just the retry of the call that saw it, and works without a
//!   quota.
//!
//! - with `rate_limit.adaptive`, a rate learned from 429s that say nothing (see [`adaptive`]).
//!
//! Waiting is a plain sleep followed by a fresh check: a call dropped while it waits has taken
//! nothing, so cancellation never leaks a slot.

mod adaptive;
mod headers;
mod scope;

use adaptive::Adaptive;

use scope::{HeaderlessBackoff, Recent, Scope};

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota};
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::profile::sections::RateLimit;
use crate::telemetry;

pub(crate) use headers::exhausted_for;

/// What a call waits for.
#[derive(Clone, Copy)]
enum Cause {
    Quota,
    #[cfg_attr(not(feature = "fleet"), allow(dead_code))]
    Fleet,
    Adaptive,
}

/// The pacing state of one origin.
pub(crate) struct Limiter {
    origin: Arc<str>,
    quota: Option<DefaultDirectRateLimiter>,
    /// Set at build with `rate_limit.adaptive`, or engaged by a pattern of 429s that say
    /// nothing (see [`Limiter::observe`]).
    adaptive: std::sync::OnceLock<Adaptive>,
    /// `rate_limit.adaptive` unset: a pattern of bare 429s engages the adaptive pacing.
    auto_adaptive: bool,
    blocked_until: Mutex<Option<Instant>>,
    /// Recent answers, to tell a pattern of 429s from isolated ones, and the client's own
    /// backoff for 429s that say nothing.
    recent: Mutex<(Recent, HeaderlessBackoff)>,
    /// Fleet mode: the quota and pause shared with the other replicas. `quota` above is then
    /// the fallback for while Redis is unreachable.
    #[cfg(feature = "fleet")]
    fleet: Option<Arc<crate::fleet::OriginLink>>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("origin", &self.origin)
            .field("quota", &self.quota.is_some())
            .finish_non_exhaustive()
    }
}

/// The GCRA quota for `limit`, or `None` if it sets none or it cannot be paced (a rate whose
/// period no `Duration` holds or that rounds to zero). Validation refuses those with a message.
pub(crate) fn quota(limit: &RateLimit) -> Option<Quota> {
    let rate = limit.requests_per_second?;
    let period = Duration::try_from_secs_f64(1.0 / rate).ok()?;
    let burst = limit
        .burst
        .unwrap_or(rate.ceil().min(f64::from(u32::MAX)) as u32);
    Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst.max(1))?))
}

impl Limiter {
    pub(crate) fn new(origin: String, quota: Option<Quota>) -> Limiter {
        Limiter {
            origin: origin.into(),
            quota: quota.map(governor::RateLimiter::direct),
            adaptive: std::sync::OnceLock::new(),
            auto_adaptive: true,
            blocked_until: Mutex::new(None),
            recent: Mutex::new((Recent::new(Instant::now()), HeaderlessBackoff::new())),
            #[cfg(feature = "fleet")]
            fleet: None,
        }
    }

    /// `rate_limit.adaptive`: `true` paces at a rate learned from throttling answers from the
    /// first; unset, only once they form a pattern; `false`, never.
    pub(crate) fn adaptive(mut self, setting: Option<bool>) -> Limiter {
        if setting == Some(true) {
            let _ = self.adaptive.set(Adaptive::new(Instant::now()));
        }
        self.auto_adaptive = setting.is_none();
        self
    }

    /// Fleet mode: shares this origin's quota and pauses through `link`.
    #[cfg(feature = "fleet")]
    pub(crate) fn with_fleet(mut self, link: Option<Arc<crate::fleet::OriginLink>>) -> Limiter {
        self.fleet = link;
        self
    }

    /// Waits for this origin's next slot, or fails at once if it comes after `deadline`.
    ///
    /// # Cancellation
    ///
    /// Cancel-safe: a slot is taken only when this returns `Ok`.
    pub(crate) async fn acquire(&self, deadline: Instant) -> Result<(), Error> {
        loop {
            // The clock is read only where a rule is in force: most origins have none.
            let blocked = *self
                .blocked_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(until) = blocked
                && let now = Instant::now()
                && until > now
            {
                let wait = until - now;
                if until >= deadline {
                    return Err(self.refusal(
                        format!(
                            "calls to {} are paused: the server asked to slow down",
                            self.origin
                        ),
                        wait,
                    ));
                }
                telemetry::rate_limit_wait(&self.origin, "pause", wait);
                tokio::time::sleep_until(until).await;
                continue;
            }
            // The adaptive rate first. Its slot goes back (when dropped) if a quota then makes
            // the call wait, or if the call is dropped while it asks Redis.
            let slot = match self.adaptive.get() {
                Some(adaptive) => {
                    let now = Instant::now();
                    match adaptive.take(now) {
                        Ok(slot) => Some(slot),
                        Err(wait) => {
                            self.wait_for(Cause::Adaptive, now, wait, deadline).await?;
                            continue;
                        }
                    }
                }
                None => None,
            };
            #[cfg(feature = "fleet")]
            if let Some(link) = &self.fleet {
                use crate::fleet::Admit;
                match link.admit(deadline).await {
                    Admit::Local => {}
                    Admit::Granted if link.shares_quota() => {
                        adaptive::Slot::keep_any(slot);
                        return Ok(());
                    }
                    // Only the pause is shared: the local quota still paces.
                    Admit::Granted => {}
                    Admit::Paused(wait) => {
                        if self.pause(Instant::now(), wait) {
                            crate::telemetry::fleet::shared_pause(&self.origin, wait);
                        }
                        continue;
                    }
                    Admit::Wait(wait) => {
                        drop(slot);
                        self.wait_for(Cause::Fleet, Instant::now(), wait, deadline)
                            .await?;
                        continue;
                    }
                }
            }
            if let Some(quota) = &self.quota
                && let Err(not_until) = quota.check()
            {
                drop(slot);
                let wait = not_until.wait_time_from(quota.clock().now());
                self.wait_for(Cause::Quota, Instant::now(), wait, deadline)
                    .await?;
                continue;
            }
            adaptive::Slot::keep_any(slot);
            return Ok(());
        }
    }

    /// Sleeps `wait` for `cause`, or fails at once when that passes `deadline`.
    async fn wait_for(
        &self,
        cause: Cause,
        now: Instant,
        wait: Duration,
        deadline: Instant,
    ) -> Result<(), Error> {
        if crate::transport::later(now, wait) >= deadline {
            let what = match cause {
                Cause::Quota => "the next slot of rate_limit.requests_per_second",
                Cause::Fleet => "the fleet's next slot of rate_limit.requests_per_second",
                Cause::Adaptive => "the next slot at the rate learned (rate_limit.adaptive)",
            };
            let detail = format!("{what} for {} is too late", self.origin);
            return Err(self.refusal(detail, wait));
        }
        let label = match cause {
            Cause::Quota | Cause::Fleet => "quota",
            Cause::Adaptive => "adaptive",
        };
        telemetry::rate_limit_wait(&self.origin, label, wait);
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn refusal(&self, detail: String, wait: Duration) -> Error {
        Error::new(ErrorKind::RateLimited)
            .with_detail(format!(
                "{detail}; the wait of {} would pass the deadline",
                telemetry::shown(wait)
            ))
            .with_retry_after(wait)
    }

    /// Step 7: pauses the origin when a response says its quota or the origin is exhausted
    /// (see [`scope`] for the rule); a lone 429 is left to the retry of its own call.
    /// `retry_after` is the response's already-parsed `Retry-After`; pauses are capped at
    /// `max_wait`.
    pub(crate) fn observe(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        (retry_after, sent, now): (Option<Duration>, Instant, Instant),
        max_wait: Duration,
    ) {
        let quota = headers::mentions_quota(headers);
        let says_nothing = status == StatusCode::TOO_MANY_REQUESTS
            && retry_after.is_none_or(|wait| wait.is_zero())
            && !quota;
        if let Some(adaptive) = self.adaptive.get()
            && let Some(rate) = adaptive.observe(sent, now, says_nothing)
        {
            telemetry::adaptive_cut(&self.origin, rate);
        }
        let mut state = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let (recent, backoff) = &mut *state;
        let answer = if says_nothing {
            scope::Answer::Silent
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            scope::Answer::Throttled
        } else {
            scope::Answer::Admitted
        };
        let counts = recent.record(now, answer);
        // 429s that say nothing, as a pattern of their own (a few among 429s that state a wait
        // are answered by that wait), are a quota the server will not state: without
        // pacing, the calls that waited out the pause would all go at once when it ends and
        // meet the same 429s. So the origin is paced at a learned rate from then on, starting
        // from the rate it admitted calls at (isolated 429s never form the pattern).
        // It is released after a quiet spell (see `adaptive`), and woken by the next pattern.
        // Only where some calls were admitted: 429s to every call are an origin refusing
        // altogether, or one call's retries meeting a lock, which the pause alone answers.
        let rate = if self.auto_adaptive && says_nothing && counts.is_silent_pattern() {
            recent.admitted_rate(now)
        } else {
            0.0
        };
        if rate > 0.0 {
            match self.adaptive.get() {
                None => {
                    if self.adaptive.set(Adaptive::engaged(now, rate)).is_ok() {
                        telemetry::adaptive_engaged(&self.origin, rate);
                    }
                }
                Some(adaptive) if adaptive.is_asleep() => {
                    adaptive.wake(now, rate);
                    telemetry::adaptive_engaged(&self.origin, rate);
                }
                Some(_) => {}
            }
        }
        if status.is_success() {
            backoff.reset();
        }
        // The wall clock is read only for quota headers, which count in it.
        let quota_wait = quota
            .then(|| exhausted_for(headers, SystemTime::now()))
            .flatten();
        let decided = scope::decide(status, retry_after, quota_wait, counts, || {
            backoff.pause(now, max_wait)
        });
        drop(state);
        let (wait, reason) = match decided {
            Scope::None => return,
            Scope::Call { wait } => {
                telemetry::throttled_call(&self.origin, wait);
                return;
            }
            Scope::Origin { wait, reason } => (wait.min(max_wait), reason),
        };
        if wait.is_zero() {
            return;
        }
        if self.pause(now, wait) {
            telemetry::paused(&self.origin, status, wait, reason.as_str());
            #[cfg(feature = "fleet")]
            if let Some(link) = &self.fleet {
                link.publish_pause(wait);
            }
        }
    }

    /// How long a server-requested pause still holds this origin, if one does.
    pub(crate) fn paused_for(&self) -> Option<Duration> {
        let now = Instant::now();
        self.blocked_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// The rate learned for this origin (`rate_limit.adaptive`), once it has throttled.
    pub(crate) fn adaptive_rate(&self) -> Option<f64> {
        self.adaptive.get()?.rate()
    }

    /// Whether a server-requested pause holds this origin now.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused_for().is_some()
    }

    /// Pauses the origin until `now + wait` unless it is already paused longer; whether the
    /// pause grew.
    fn pause(&self, now: Instant, wait: Duration) -> bool {
        let until = crate::transport::later(now, wait);
        let mut blocked = self
            .blocked_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if blocked.is_none_or(|current| current < until) {
            *blocked = Some(until);
            return true;
        }
        false
    }
}
