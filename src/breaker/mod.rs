//! Step 2: a circuit breaker per origin, so a partner that is down is shed in microseconds
//! instead of tying up every worker until its timeouts fire.
//!
//! `failsafe` runs the closed → open → half-open state machine. Two parts are ours:
//!
//! - the failure policy: failsafe's time-window policy is an exponential moving average that
//!   cannot open before a whole window has passed since start; ours counts outcomes in a sliding
//!   window and opens when at least `minimum_requests` calls saw `failure_ratio` failures;
//! - the probe gate: failsafe lets every call through while half-open; ours lets exactly
//!   `half_open_requests` probes out and fails the rest fast. A probe's success closes the
//!   breaker, its failure re-opens it.
//!
//! Failures are connect errors, timeouts, resets, 5xx and 408; any other 4xx is the caller's
//! mistake and counts as a success. A 429 says "slow down", not "I am broken": it counts as a
//! success here, and pacing (`ratelimit`) handles it, so a burst of throttling or a few lock
//! contentions never cut every endpoint of a healthy origin off.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use failsafe::StateMachine;
use http::StatusCode;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::profile::sections::CircuitBreaker as Settings;
use crate::retry::Outcome;

mod observer;
mod policy;

use observer::{Observer, ObserverState};

use policy::{SLOTS, Slot, WindowPolicy};

/// The breaker of one origin.
pub(crate) struct Breaker {
    machine: StateMachine<WindowPolicy, Observer>,
    observer: Arc<ObserverState>,
    /// Held around every call into failsafe. failsafe changes its state under its own lock but
    /// tells the observer after releasing it, so without ours a racing caller could see
    /// failsafe half-open while the probe gate still reads open, and pass without a probe slot.
    serial: Mutex<()>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("origin", &self.observer.origin)
            .field("state", &self.observer.state())
            .finish()
    }
}

/// The breaker's state, as our observer last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

/// What an attempt tells the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    Failure,
}

impl Verdict {
    /// The verdict for a response status.
    pub(crate) fn of_status(status: StatusCode) -> Verdict {
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            Verdict::Failure
        } else {
            Verdict::Success
        }
    }

    /// The verdict for an attempt, if it says anything about the origin's health.
    pub(crate) fn of(outcome: &Outcome) -> Option<Verdict> {
        match *outcome {
            Outcome::Response { status, .. } => Some(Verdict::of_status(status)),
            Outcome::Failed { kind, .. } => matches!(
                kind,
                ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Request
            )
            .then_some(Verdict::Failure),
        }
    }
}

impl Breaker {
    pub(crate) fn new(origin: String, settings: &Settings) -> Breaker {
        // failsafe adds it to a std `Instant`: saturate here so no setting can overflow there.
        let open_for = settings.open_for.min(crate::transport::FAR_FUTURE);
        let observer = Arc::new(ObserverState {
            origin: origin.into(),
            state: AtomicU8::new(State::Closed as u8),
            opened_at: Mutex::new(None),
            probes: AtomicU32::new(0),
            epoch: AtomicU64::new(0),
            half_open_requests: settings.half_open_requests,
            open_for,
        });
        let policy = WindowPolicy {
            ratio: settings.failure_ratio,
            minimum: settings.minimum_requests,
            slot: settings.window / SLOTS,
            open_for,
            start: Instant::now(),
            slots: [Slot::default(); SLOTS as usize],
        };
        Breaker {
            machine: StateMachine::new(policy, Observer(observer.clone())),
            observer,
            serial: Mutex::new(()),
        }
    }

    fn serial(&self) -> std::sync::MutexGuard<'_, ()> {
        self.serial.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails fast with `is_circuit_open()` if an attempt would be refused now, without taking
    /// anything: checked before a call waits for its rate-limit slot or its token. The permit
    /// itself is taken after those waits, right before the wire.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let _serial = self.serial();
        if !self.machine.is_call_permitted() {
            return Err(self.refusal("is open"));
        }
        if self.observer.state() == State::HalfOpen
            && self.observer.probes.load(Ordering::Acquire) == 0
        {
            return Err(self.refusal("is half-open and its probes are in flight"));
        }
        Ok(())
    }

    /// Lets an attempt through, or fails fast with `is_circuit_open()` and no I/O.
    pub(crate) fn permit(self: &Arc<Self>) -> Result<Permit, Error> {
        let _serial = self.serial();
        if !self.machine.is_call_permitted() {
            return Err(self.refusal("is open"));
        }
        let probe = self.observer.state() == State::HalfOpen;
        if probe {
            let taken =
                self.observer
                    .probes
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            if taken.is_err() {
                return Err(self.refusal("is half-open and its probes are in flight"));
            }
        }
        Ok(Permit {
            breaker: self.clone(),
            probe,
            epoch: self.observer.epoch.load(Ordering::Acquire),
            recorded: false,
        })
    }

    /// Records an answer this origin gave to a request that was not sent under its own permit
    /// (a redirect target), if the breaker would have let one through.
    pub(crate) fn observe(self: &Arc<Self>, verdict: Verdict) {
        if let Ok(permit) = self.permit() {
            permit.record(verdict);
        }
    }

    fn refusal(&self, what: &str) -> Error {
        let origin = &self.observer.origin;
        let mut err = Error::new(ErrorKind::CircuitOpen);
        match self.observer.next_probe_in() {
            Some(wait) if !wait.is_zero() => {
                err = err.with_detail(format!(
                    "the breaker for {origin} {what}; it lets a probe through in {}",
                    crate::telemetry::shown(wait)
                ));
                err.with_retry_after(wait)
            }
            _ => err.with_detail(format!("the breaker for {origin} {what}")),
        }
    }

    #[cfg(test)]
    pub(crate) fn state(&self) -> State {
        self.observer.state()
    }

    /// The state's name, and while open, how long until a probe may pass: for `health()`.
    pub(crate) fn health(&self) -> (&'static str, Option<std::time::Duration>) {
        let state = self.observer.state();
        let open_for = (state == State::Open)
            .then(|| self.observer.next_probe_in())
            .flatten();
        (state.name(), open_for)
    }
}

/// Permission for one attempt. Record its verdict; a probe dropped without one (the call was
/// cancelled) gives its slot back, since it taught the breaker nothing.
pub(crate) struct Permit {
    breaker: Arc<Breaker>,
    probe: bool,
    /// How many times the breaker had opened when this permit was taken.
    epoch: u64,
    recorded: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Permit {
    /// Records the attempt's verdict. A permit taken before the breaker last opened is a
    /// straggler: what it saw predates the opening, so it neither closes nor re-opens anything.
    pub(crate) fn record(mut self, verdict: Verdict) {
        self.recorded = true;
        let breaker = &self.breaker;
        let _serial = breaker.serial();
        if breaker.observer.epoch.load(Ordering::Acquire) != self.epoch {
            return;
        }
        match verdict {
            Verdict::Success => breaker.machine.on_success(),
            Verdict::Failure => breaker.machine.on_error(),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.probe || self.recorded {
            return;
        }
        let breaker = &self.breaker;
        let _serial = breaker.serial();
        // A slot of an earlier half-open period is not given back to a later one.
        if breaker.observer.epoch.load(Ordering::Acquire) == self.epoch
            && breaker.observer.state() == State::HalfOpen
        {
            breaker.observer.probes.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(minimum: u32, open_for_ms: u64, probes: u32) -> Settings {
        Settings {
            enabled: true,
            failure_ratio: 0.5,
            minimum_requests: minimum,
            window: Duration::from_secs(30),
            open_for: Duration::from_millis(open_for_ms),
            half_open_requests: probes,
        }
    }

    fn fail(breaker: &Arc<Breaker>) {
        breaker
            .permit()
            .expect("permitted")
            .record(Verdict::Failure);
    }

    #[tokio::test]
    async fn opens_only_with_the_minimum_number_of_calls() {
        let breaker = Arc::new(Breaker::new(
            "https://a.example".into(),
            &settings(4, 10_000, 1),
        ));
        for _ in 0..3 {
            fail(&breaker);
        }
        assert_eq!(breaker.state(), State::Closed);
        fail(&breaker);
        assert_eq!(breaker.state(), State::Open);
        let err = breaker.permit().expect_err("open");
        assert!(err.is_circuit_open());
        assert!(
            err.retry_after()
                .is_some_and(|d| d <= Duration::from_secs(10))
        );
    }

    #[tokio::test]
    async fn successes_keep_the_ratio_below_the_threshold() {
        let breaker = Arc::new(Breaker::new(
            "https://a.example".into(),
            &settings(4, 10_000, 1),
        ));
        for _ in 0..10 {
            breaker
                .permit()
                .expect("permitted")
                .record(Verdict::Success);
            breaker
                .permit()
                .expect("permitted")
                .record(Verdict::Success);
            fail(&breaker);
        }
        assert_eq!(breaker.state(), State::Closed);
    }

    #[tokio::test]
    async fn half_open_lets_exactly_the_configured_probes_through() {
        let breaker = Arc::new(Breaker::new(
            "https://a.example".into(),
            &settings(1, 50, 2),
        ));
        fail(&breaker);
        std::thread::sleep(Duration::from_millis(80));
        let first = breaker.permit().expect("probe 1");
        let second = breaker.permit().expect("probe 2");
        assert!(
            breaker
                .permit()
                .expect_err("no third probe")
                .is_circuit_open()
        );
        drop(second); // cancelled: its slot comes back
        let again = breaker.permit().expect("the slot was returned");
        first.record(Verdict::Success);
        assert_eq!(breaker.state(), State::Closed);
        drop(again);
        assert!(breaker.permit().is_ok());
    }

    #[tokio::test]
    async fn failed_probe_reopens() {
        let breaker = Arc::new(Breaker::new(
            "https://a.example".into(),
            &settings(1, 50, 1),
        ));
        fail(&breaker);
        std::thread::sleep(Duration::from_millis(80));
        fail(&breaker);
        assert_eq!(breaker.state(), State::Open);
    }

    #[test]
    fn client_errors_count_as_success() {
        for (status, verdict) in [
            (404, Verdict::Success),
            (401, Verdict::Success),
            (422, Verdict::Success),
            (408, Verdict::Failure),
            (429, Verdict::Success),
            (500, Verdict::Failure),
            (503, Verdict::Failure),
        ] {
            let status = StatusCode::from_u16(status).expect("status");
            assert_eq!(Verdict::of_status(status), verdict, "{status}");
        }
    }
}
