//! Our view of failsafe's state machine: the state, when it opened, the probe gate and the
//! epoch that tells a straggler's verdict from a current one. failsafe calls it after each
//! transition, with the breaker's `serial` lock held by whoever caused the transition.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use failsafe::Instrument;
use tokio::time::Instant;

use super::State;
use crate::telemetry;

pub(super) struct ObserverState {
    pub(super) origin: Arc<str>,
    pub(super) state: AtomicU8,
    pub(super) opened_at: Mutex<Option<Instant>>,
    /// Probe slots left in this half-open period.
    pub(super) probes: AtomicU32,
    /// How many times the breaker has opened: a permit from an earlier epoch is a straggler.
    pub(super) epoch: AtomicU64,
    pub(super) half_open_requests: u32,
    pub(super) open_for: Duration,
}

impl ObserverState {
    pub(super) fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            s if s == State::Open as u8 => State::Open,
            s if s == State::HalfOpen as u8 => State::HalfOpen,
            _ => State::Closed,
        }
    }

    pub(super) fn next_probe_in(&self) -> Option<Duration> {
        let opened = (*self
            .opened_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner))?;
        Some(
            crate::transport::later(opened, self.open_for)
                .saturating_duration_since(Instant::now()),
        )
    }

    fn transition(&self, to: State, reason: &'static str) {
        let from = self.state();
        self.state.store(to as u8, Ordering::Release);
        // failsafe reports "closed" when a breaker is created; only changes are news.
        if from == to {
            return;
        }
        telemetry::breaker_transition(&self.origin, from.name(), to.name(), reason);
    }
}

/// failsafe's instrument: keeps our view of the state and arms the probe gate.
pub(super) struct Observer(pub(super) Arc<ObserverState>);

impl Instrument for Observer {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        let reason = if self.0.state() == State::HalfOpen {
            "a probe failed"
        } else {
            "the failure ratio reached circuit_breaker.failure_ratio"
        };
        self.0.probes.store(0, Ordering::Release);
        self.0.epoch.fetch_add(1, Ordering::AcqRel);
        *self
            .0
            .opened_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        self.0.transition(State::Open, reason);
    }

    fn on_half_open(&self) {
        self.0
            .probes
            .store(self.0.half_open_requests, Ordering::Release);
        self.0
            .transition(State::HalfOpen, "circuit_breaker.open_for elapsed");
    }

    fn on_closed(&self) {
        self.0.transition(State::Closed, "a probe succeeded");
    }
}
