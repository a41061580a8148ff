//! `rate_limit.adaptive`: learning an origin's quota from 429s that say nothing.
//!
//! The AWS SDKs' adaptive retry mode, with CUBIC congestion control: nothing paces until the
//! origin throttles; then a token bucket paces at 0.7× the rate that was being sent, and the rate
//! climbs back along a cubic curve that is flat around the rate last throttled (so the client
//! spends most of its time just under the limit) and steep away from it. The rate never runs
//! ahead of twice what the client is actually sending, so a quiet spell does not bank a burst.
//!
//! Two changes from the AWS algorithm, both for a client with many calls in flight:
//!
//! - **One cut per episode.** A 429 to a request sent before the last cut says nothing about the
//!   new rate: with 100 calls in flight, one overshoot returns dozens of 429s, and cutting on
//!   each would take the rate to the floor (0.7^30). Only a throttle to a request sent after the
//!   last cut cuts again (TCP's once per window).
//! - **No slow start after a quiet spell.** The cap of twice the measured rate never falls below
//!   the rate last throttled: a client that was idle resumes at the limit it learned rather than
//!   at twice its idle rate.
//!
//! Which answers count: a 429 with neither `Retry-After` nor quota headers. One that carries
//! them is handled exactly by the server-requested pause; guessing would only add noise.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The cut on a throttle (CUBIC's β).
const BETA: f64 = 0.7;
/// How fast the rate climbs back (CUBIC's C, in requests/s per s³).
const SCALE: f64 = 0.4;
/// The lowest rate the bucket paces at: one request every two seconds.
const MIN_RATE: f64 = 0.5;
/// The bucket holds this much of a second of requests: a short burst, so a pause does not end
/// in a flood the server would refuse.
const BURST_SECONDS: f64 = 0.1;
/// Width of a measurement bucket, and the weight of the newest one.
const MEASURE_EVERY: f64 = 0.5;
const SMOOTH: f64 = 0.8;
/// Pacing engaged by a pattern of 429s ends after this long without one: one bad afternoon
/// must not pace an origin's bursts for the life of the process.
const RELEASE_AFTER: Duration = Duration::from_secs(30);

/// A slot taken from the bucket, given back when dropped unless kept.
#[must_use]
pub(crate) struct Slot<'a>(Option<&'a Adaptive>);

impl Slot<'_> {
    /// The call goes out: the slot is spent.
    pub(crate) fn keep(mut self) {
        self.0 = None;
    }

    /// [`keep`](Self::keep), for a slot taken only when adaptive pacing is on.
    pub(crate) fn keep_any(slot: Option<Self>) {
        if let Some(slot) = slot {
            slot.keep();
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(adaptive) = self.0 {
            let mut state = adaptive.lock();
            if let Some(bucket) = &mut state.bucket {
                bucket.tokens = (bucket.tokens + 1.0).min(bucket.capacity());
            }
        }
    }
}

/// The adaptive pacing of one origin.
#[derive(Debug)]
pub(crate) struct Adaptive {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// `None` until the first throttle: until then the origin has shown no limit.
    bucket: Option<Bucket>,
    /// The rate at the last throttle, and when it came.
    last_max: f64,
    last_throttle: Instant,
    /// When the rate was last cut (see the module doc).
    last_cut: Option<Instant>,
    measured: Measured,
    /// Engaged by a pattern rather than by `rate_limit.adaptive`: released after
    /// [`RELEASE_AFTER`] without a throttle, and asleep (deaf to throttles, pacing nothing)
    /// until the next pattern wakes it.
    from_pattern: bool,
    asleep: bool,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

/// The rate at which answers come back, smoothed over [`MEASURE_EVERY`] buckets.
#[derive(Debug)]
struct Measured {
    start: Instant,
    /// The index of the current bucket, the answers in it, and the smoothed rate (`None` until
    /// the first bucket closes).
    index: u64,
    count: u64,
    rate: Option<f64>,
}

impl Measured {
    fn record(&mut self, now: Instant) {
        let index = ((now - self.start).as_secs_f64() / MEASURE_EVERY) as u64;
        if index > self.index + 1 {
            // A silence of more than a window: what was sent before it says nothing about the
            // rate now, and averaging the silence in would read as a near-zero rate at the
            // first throttle after it. Measure afresh.
            *self = Measured::new(now);
        } else if index > self.index {
            let current = self.count as f64 / MEASURE_EVERY;
            self.rate = Some(match self.rate {
                Some(old) => current * SMOOTH + old * (1.0 - SMOOTH),
                None => current,
            });
            self.index = index;
            self.count = 0;
        }
        self.count += 1;
    }

    fn new(start: Instant) -> Measured {
        Measured {
            start,
            index: 0,
            count: 0,
            rate: None,
        }
    }

    /// The measured rate; before the first bucket closes, the answers so far over the time so far.
    fn rate(&self, now: Instant) -> f64 {
        self.rate.unwrap_or_else(|| {
            let elapsed = (now - self.start).as_secs_f64().max(0.1);
            self.count as f64 / elapsed
        })
    }
}

impl Adaptive {
    pub(crate) fn new(now: Instant) -> Adaptive {
        Adaptive {
            state: Mutex::new(State {
                bucket: None,
                last_max: 0.0,
                last_throttle: now,
                last_cut: None,
                measured: Measured::new(now),
                from_pattern: false,
                asleep: false,
            }),
        }
    }

    /// Engaged by a pattern of 429s that say nothing (see `Limiter::observe`) while the origin
    /// admitted `rate` calls a second: paced from now on, starting at 0.7× that rate.
    pub(crate) fn engaged(now: Instant, rate: f64) -> Adaptive {
        let adaptive = Adaptive::new(now);
        adaptive.lock().from_pattern = true;
        adaptive.wake(now, rate);
        adaptive
    }

    /// Whether pacing engaged by a pattern has been released (see [`RELEASE_AFTER`]).
    pub(crate) fn is_asleep(&self) -> bool {
        self.lock().asleep
    }

    /// A new pattern while the origin admitted `rate` calls a second: paced again, from 0.7×
    /// that rate.
    pub(crate) fn wake(&self, now: Instant, rate: f64) {
        {
            let mut state = self.lock();
            state.asleep = false;
            state.bucket = None;
            state.last_cut = None;
            state.measured = Measured::new(now);
            state.measured.rate = Some(rate);
        }
        self.observe(now, now, true);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot, or says how long until the next one. The slot goes back when dropped
    /// unless [`Slot::keep`] is called, so a caller that then waits for another gate, or is
    /// dropped, has cost nothing.
    pub(crate) fn take(&self, now: Instant) -> Result<Slot<'_>, Duration> {
        let mut state = self.lock();
        let Some(bucket) = &mut state.bucket else {
            return Ok(Slot(None));
        };
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(Slot(Some(self)));
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.rate))
    }

    /// Learns from one answer to a request sent at `sent`. Returns the new rate when this answer
    /// cut it.
    pub(crate) fn observe(&self, sent: Instant, now: Instant, throttled: bool) -> Option<f64> {
        let mut state = self.lock();
        state.measured.record(now);
        if state.asleep {
            return None;
        }
        if state.from_pattern
            && !throttled
            && now.saturating_duration_since(state.last_throttle) >= RELEASE_AFTER
        {
            state.asleep = true;
            state.bucket = None;
            return None;
        }
        let measured = state.measured.rate(now);
        let cut = throttled && state.last_cut.is_none_or(|cut| sent >= cut);
        let rate = if cut {
            // Before a measurement window closes (just after a pause, say) a handful of
            // answers says little: the bucket's own rate is what was being sent.
            let sending = match &state.bucket {
                Some(bucket) if state.measured.rate.is_none() => bucket.rate,
                Some(bucket) => measured.min(bucket.rate),
                None => measured,
            };
            state.last_max = sending;
            state.last_throttle = now;
            state.last_cut = Some(now);
            sending * BETA
        } else if throttled {
            // Sent before the last cut: that cut already answered it.
            return None;
        } else if state.bucket.is_some() {
            state.cubic(now).min((2.0 * measured).max(state.last_max))
        } else {
            return None;
        };
        let rate = rate.max(MIN_RATE);
        let bucket = state.bucket.get_or_insert(Bucket {
            rate,
            tokens: 0.0,
            refilled: now,
        });
        bucket.refill(now);
        bucket.rate = rate;
        bucket.tokens = bucket.tokens.min(bucket.capacity());
        cut.then_some(rate)
    }

    /// The rate the bucket paces at, if it paces yet.
    pub(crate) fn rate(&self) -> Option<f64> {
        self.lock().bucket.as_ref().map(|b| b.rate)
    }
}

impl State {
    /// CUBIC's window: `rate(t) = C (t - K)³ + last_max`, where `K` is the time the curve
    /// takes to climb back from the cut to `last_max`.
    fn cubic(&self, now: Instant) -> f64 {
        let k = (self.last_max * (1.0 - BETA) / SCALE).cbrt();
        let t = (now - self.last_throttle).as_secs_f64();
        SCALE * (t - k).powi(3) + self.last_max
    }
}

impl Bucket {
    fn capacity(&self) -> f64 {
        (self.rate * BURST_SECONDS).max(1.0)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity());
        self.refilled = self.refilled.max(now);
    }
}

#[cfg(test)]
mod tests;
