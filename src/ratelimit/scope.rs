//! Which calls a server's "slow down" applies to: every call to the origin, or only the call
//! that was told.
//!
//! The rule follows the evidence:
//!
//! - **Quota headers at 0** (`RateLimit`, `RateLimit-Remaining`, `X-RateLimit-Remaining`): the
//!   server says the origin's quota is spent. The whole origin pauses until the reset.
//! - **503 with `Retry-After`**: the origin says it is unavailable. The whole origin pauses.
//! - **429 with `Retry-After`, as a pattern**: at least [`PATTERN_MIN`] of the answers in the last
//!   [`WINDOW`], and at least half of them. A throttling origin answers 429 to nearly every call,
//!   so the pattern forms within a few answers and the whole origin pauses. A share rather than a
//!   count, because a busy client sees many isolated 429s per second from a healthy origin that
//!   answers one object's lock contention or one endpoint's own limit with a 429: at 2 % of 10 000
//!   calls a second that is 200 a second, never half.
//! - **A lone 429 with `Retry-After`** delays the retry of that call only (the retry policy
//!   honours its `Retry-After`); other calls go on.
//!
//! Pure: the caller passes the clock and keeps the counts, so the rule is tested without a
//! server.

use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use crate::window::Window;

/// How far back answers count toward a pattern of 429s.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);
/// The fewest 429s in [`WINDOW`] that can form a pattern.
pub(crate) const PATTERN_MIN: u32 = 3;
const SLOTS: usize = 10;

/// Why a whole origin pauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Quota headers say nothing remains.
    QuotaExhausted,
    /// A 503 with `Retry-After`.
    Unavailable,
    /// 429s with `Retry-After` that form a pattern.
    Throttling,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::QuotaExhausted => "quota_exhausted",
            Reason::Unavailable => "unavailable",
            Reason::Throttling => "throttling",
        }
    }
}

/// What one answer asks of the origin's other calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Nothing: no wait was asked for.
    None,
    /// The whole origin pauses for this long.
    Origin { wait: Duration, reason: Reason },
    /// A lone 429: only the call that got it waits (its retry honours `Retry-After`).
    Call { wait: Duration },
}

/// The rule above. `quota_wait` is what the quota headers say (see `headers`), `recent` the
/// answers and 429s of the last [`WINDOW`], this one included. `own_backoff` is the pause the
/// client picks for a pattern of 429s that carry no wait at all (see [`HeaderlessBackoff`]).
pub(crate) fn decide(
    status: StatusCode,
    retry_after: Option<Duration>,
    quota_wait: Option<Duration>,
    recent: Counts,
    own_backoff: impl FnOnce() -> Option<Duration>,
) -> Scope {
    if let Some(wait) = quota_wait {
        return Scope::Origin {
            wait,
            reason: Reason::QuotaExhausted,
        };
    }
    let Some(wait) = retry_after else {
        // 429s that say neither how long nor why, as a pattern: the origin throttles and will
        // not say for how long, so the client backs off on its own.
        if status == StatusCode::TOO_MANY_REQUESTS && recent.is_pattern() {
            return match own_backoff() {
                Some(wait) => Scope::Origin {
                    wait,
                    reason: Reason::Throttling,
                },
                None => Scope::None,
            };
        }
        return Scope::None;
    };
    match status {
        StatusCode::SERVICE_UNAVAILABLE => Scope::Origin {
            wait,
            reason: Reason::Unavailable,
        },
        // A pattern whose `Retry-After` asks for no wait at all (0, or a date in the past) is
        // paced as if it said nothing.
        StatusCode::TOO_MANY_REQUESTS if recent.is_pattern() => Scope::Origin {
            wait: if wait.is_zero() {
                own_backoff().unwrap_or(wait)
            } else {
                wait
            },
            reason: Reason::Throttling,
        },
        StatusCode::TOO_MANY_REQUESTS => Scope::Call { wait },
        _ => Scope::None,
    }
}

/// The client's own pause for 429s that carry no wait: about 1 s, doubling while they go on
/// (once per pause, however many answers of a burst arrive), up to `retry.max_retry_after`;
/// a success starts over.
#[derive(Debug)]
pub(crate) struct HeaderlessBackoff {
    next: Duration,
    until: Option<Instant>,
}

/// The first pause for header-less 429s.
const HEADERLESS_FIRST: Duration = Duration::from_secs(1);

impl HeaderlessBackoff {
    pub(crate) fn new() -> HeaderlessBackoff {
        HeaderlessBackoff {
            next: HEADERLESS_FIRST,
            until: None,
        }
    }

    /// The pause to start at `now`, or `None` while the last one lasts (the rest of a burst).
    pub(crate) fn pause(&mut self, now: Instant, max: Duration) -> Option<Duration> {
        if self.until.is_some_and(|until| now < until) {
            return None;
        }
        let wait = self.next.min(max);
        self.until = Some(crate::transport::later(now, wait));
        self.next = wait.saturating_mul(2).min(max);
        Some(wait)
    }

    /// A success: the next pattern starts over at about 1 s.
    pub(crate) fn reset(&mut self) {
        self.next = HEADERLESS_FIRST;
    }
}

/// What one answer was, as a window counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Anything but a 429.
    Admitted,
    /// A 429 that says how long to wait or which quota is spent.
    Throttled,
    /// A 429 with neither a `Retry-After` that asks for a wait nor quota headers.
    Silent,
}

/// Answers and 429s seen in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) answers: u32,
    /// Every 429.
    pub(crate) throttled: u32,
    /// Of those, the 429s that said nothing.
    pub(crate) silent: u32,
}

impl Counts {
    /// At least [`PATTERN_MIN`] 429s, and at least half of the answers.
    pub(crate) fn is_pattern(self) -> bool {
        pattern(self.throttled, self.answers)
    }

    /// The same of the 429s that said nothing alone: what makes pacing at a learned rate
    /// engage, since the 429s that say how long to wait are answered by the pause they ask for.
    pub(crate) fn is_silent_pattern(self) -> bool {
        pattern(self.silent, self.answers)
    }
}

fn pattern(of: u32, answers: u32) -> bool {
    of >= PATTERN_MIN && u64::from(of) * 2 >= u64::from(answers)
}

/// The answers of the last [`WINDOW`], in slots of a tenth of it.
#[derive(Debug)]
pub(crate) struct Recent(Window<Counts, SLOTS>);

impl Recent {
    pub(crate) fn new(start: Instant) -> Recent {
        Recent(Window::new(start, WINDOW))
    }

    /// Answers other than 429 a second, over the part of the window that saw answers (a client
    /// that started 200 ms ago and got 20 of them gets them at 100 a second, not 20): what the
    /// origin admits, when it throttles the rest.
    pub(crate) fn admitted_rate(&self, now: Instant) -> f64 {
        let tick = self.0.tick(now);
        let inside = self.0.inside(tick).filter(|(_, c)| c.answers > 0);
        let (admitted, oldest) = inside.fold((0u64, tick), |(n, oldest), (t, c)| {
            let admitted = c.answers.saturating_sub(c.throttled);
            (n + u64::from(admitted), oldest.min(t))
        });
        let slots = (tick - oldest + 1) as f64;
        admitted as f64 / (slots * WINDOW.as_secs_f64() / SLOTS as f64)
    }

    /// Counts one answer at `now` and returns the window's counts, this answer included.
    pub(crate) fn record(&mut self, now: Instant, answer: Answer) -> Counts {
        let tick = self.0.enter(now);
        let counts = self.0.slot_mut(tick);
        counts.answers = counts.answers.saturating_add(1);
        let throttled = answer != Answer::Admitted;
        counts.throttled = counts.throttled.saturating_add(u32::from(throttled));
        let silent = answer == Answer::Silent;
        counts.silent = counts.silent.saturating_add(u32::from(silent));
        self.0
            .inside(tick)
            .fold(Counts::default(), |total, (_, c)| Counts {
                answers: total.answers.saturating_add(c.answers),
                throttled: total.throttled.saturating_add(c.throttled),
                silent: total.silent.saturating_add(c.silent),
            })
    }
}

#[cfg(test)]
mod tests;
