//! [`Client::health`](crate::Client::health): a snapshot of what the client knows about each
//! origin, cheap enough for a readiness probe, serializable for an endpoint. And what it is
//! built from: the recent outcomes and calls in flight of each origin, and the bulkhead
//! (`[concurrency] max_in_flight`) that keeps one slow partner from taking every worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::telemetry::millis;

/// What a client knows of its integration, now.
///
/// ```
/// let client = outbound::Client::builder().base_url("https://api.partner.example").build()?;
/// let health = client.health();
/// assert_eq!(health.origins[0].breaker, "closed");
/// println!("{}", serde_json::to_string(&health).expect("serializable"));
/// # Ok::<(), outbound::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// The profile name.
    pub profile: String,
    /// The kill switch is on.
    pub isolated: bool,
    /// How long the cached OAuth token stays valid, if there is one.
    pub token_valid_for_ms: Option<u64>,
    /// Calls left under the spending ceiling in this period, if there is one.
    pub budget_remaining: Option<u64>,
    /// Every origin the client has state for (at least `base_url`'s).
    pub origins: Vec<OriginHealth>,
}

/// One origin in a [`Health`] snapshot.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct OriginHealth {
    /// `scheme://host[:port]`.
    pub origin: String,
    /// `closed`, `open`, `half_open`, or `disabled`.
    pub breaker: &'static str,
    /// While open: how long until it lets a probe through.
    pub breaker_open_for_ms: Option<u64>,
    /// While a server-requested pause holds: how long it still lasts.
    pub paused_for_ms: Option<u64>,
    /// With `rate_limit.adaptive`, once the origin has throttled: the rate learned, in
    /// requests per second.
    pub adaptive_rate: Option<f64>,
    /// Failed attempts among the attempts of the last 10 s (0 when there were none).
    pub failure_ratio: f64,
    /// Attempts in the last 10 s.
    pub recent_attempts: u64,
    /// Calls to this origin in flight now.
    pub in_flight: u64,
}

/// How far back [`Outcomes`] count: ten one-second slots.
const SLOTS: usize = 10;

/// Attempts and failures of the last [`WINDOW`], in one-second slots.
#[derive(Debug)]
pub(crate) struct Outcomes {
    start: Instant,
    slots: Mutex<[(u64, u64, u64); SLOTS]>,
}

impl Outcomes {
    pub(crate) fn new() -> Outcomes {
        Outcomes {
            start: Instant::now(),
            slots: Mutex::new([(0, 0, 0); SLOTS]),
        }
    }

    fn tick(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Counts one attempt.
    pub(crate) fn record(&self, failed: bool) {
        let tick = self.tick();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut slots[(tick % SLOTS as u64) as usize];
        if slot.0 != tick {
            *slot = (tick, 0, 0);
        }
        slot.1 += 1;
        slot.2 += u64::from(failed);
    }

    /// (attempts, failures) of the window.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let tick = self.tick();
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .iter()
            .filter(|(t, _, _)| tick.saturating_sub(*t) < SLOTS as u64)
            .fold((0, 0), |(a, f), (_, sa, sf)| (a + sa, f + sf))
    }
}

/// Calls of one origin in flight, and its bulkhead.
#[derive(Debug)]
pub(crate) struct InFlight {
    count: AtomicU64,
    bulkhead: Option<(Arc<Semaphore>, u32)>,
}

/// A call's place in flight; leaves on drop, cancellation included.
pub(crate) struct Slot<'a> {
    count: &'a AtomicU64,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl InFlight {
    pub(crate) fn new(max_in_flight: Option<u32>) -> InFlight {
        InFlight {
            count: AtomicU64::new(0),
            bulkhead: max_in_flight.map(|max| (Arc::new(Semaphore::new(max as usize)), max)),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Enters: waits for a bulkhead slot until `deadline`, or fails with `is_overloaded()`.
    ///
    /// # Cancellation
    ///
    /// Cancel-safe: a slot is held only by the returned `Slot`, and given back when it drops.
    pub(crate) async fn enter(&self, origin: &str, deadline: Instant) -> Result<Slot<'_>, Error> {
        let permit = match &self.bulkhead {
            None => None,
            Some((semaphore, max)) => {
                let acquired = match semaphore.clone().try_acquire_owned() {
                    Ok(permit) => Ok(permit),
                    Err(_) => tokio::time::timeout_at(deadline, semaphore.clone().acquire_owned())
                        .await
                        .map_err(|_| ())
                        .and_then(|p| p.map_err(|_| ())),
                };
                match acquired {
                    Ok(permit) => Some(permit),
                    Err(()) => {
                        return Err(Error::new(ErrorKind::Overloaded).with_detail(format!(
                            "{max} calls to {origin} in flight (concurrency.max_in_flight) and \\
                             none ended before the deadline"
                        )));
                    }
                }
            }
        };
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            count: &self.count,
            _permit: permit,
        })
    }
}

impl crate::Client {
    /// A snapshot of what the client knows of its integration: per origin, the breaker's state
    /// (and until when it is open), a server-requested pause, the failure ratio of the last
    /// 10 s and the calls in flight; the OAuth token's remaining validity and the spending
    /// ceiling's remaining calls. A few locks and clock reads: cheap enough for a readiness
    /// probe, serializable for an endpoint.
    pub fn health(&self) -> Health {
        let s = &self.shared;
        let mut origins: Vec<OriginHealth> = s
            .origins
            .all()
            .iter()
            .map(|origin| {
                let (breaker, open_for) = origin
                    .breaker
                    .as_ref()
                    .map_or(("disabled", None), |b| b.health());
                let (attempts, failures) = origin.outcomes.counts();
                OriginHealth {
                    origin: origin.name.to_string(),
                    breaker,
                    breaker_open_for_ms: open_for.map(millis),
                    paused_for_ms: origin.limiter.paused_for().map(millis),
                    adaptive_rate: origin.limiter.adaptive_rate(),
                    failure_ratio: if attempts == 0 {
                        0.0
                    } else {
                        failures as f64 / attempts as f64
                    },
                    recent_attempts: attempts,
                    in_flight: origin.in_flight.now(),
                }
            })
            .collect();
        origins.sort_by(|a, b| a.origin.cmp(&b.origin));
        Health {
            profile: s.name.clone(),
            isolated: s.isolated.load(Ordering::Relaxed),
            token_valid_for_ms: s.credentials.token_valid_for().map(millis),
            budget_remaining: s.ceiling.as_ref().map(crate::ceiling::Ceiling::remaining),
            origins,
        }
    }
}
