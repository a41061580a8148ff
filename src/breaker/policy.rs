//! The breaker's failure policy: outcomes counted in a sliding window.
//!
//! failsafe's own time-window policy is an exponential moving average that cannot open before a
//! whole window has passed since start; this one opens as soon as at least `minimum_requests`
//! calls in the window saw `failure_ratio` failures.

use std::time::Duration;

use failsafe::FailurePolicy;
use tokio::time::Instant;

/// Buckets per window.
pub(super) const SLOTS: u32 = 10;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slot {
    tick: u64,
    successes: u32,
    failures: u32,
}

/// Outcomes counted in `SLOTS` buckets over `circuit_breaker.window`.
pub(super) struct WindowPolicy {
    pub(super) ratio: f64,
    pub(super) minimum: u32,
    pub(super) slot: Duration,
    pub(super) open_for: Duration,
    pub(super) start: Instant,
    pub(super) slots: [Slot; SLOTS as usize],
}

impl WindowPolicy {
    fn current(&mut self) -> &mut Slot {
        let tick = (self.start.elapsed().as_nanos() / self.slot.as_nanos().max(1)) as u64;
        let slot = &mut self.slots[(tick % u64::from(SLOTS)) as usize];
        if slot.tick != tick {
            *slot = Slot {
                tick,
                ..Slot::default()
            };
        }
        slot
    }

    fn totals(&mut self) -> (u32, u32) {
        let tick = self.current().tick;
        self.slots
            .iter()
            .filter(|s| s.tick + u64::from(SLOTS) > tick)
            .fold((0u32, 0u32), |(ok, bad), s| {
                (
                    ok.saturating_add(s.successes),
                    bad.saturating_add(s.failures),
                )
            })
    }
}

impl FailurePolicy for WindowPolicy {
    fn record_success(&mut self) {
        let slot = self.current();
        slot.successes = slot.successes.saturating_add(1);
    }

    fn mark_dead_on_failure(&mut self) -> Option<Duration> {
        let slot = self.current();
        slot.failures = slot.failures.saturating_add(1);
        let (successes, failures) = self.totals();
        let total = successes.saturating_add(failures);
        (total >= self.minimum && f64::from(failures) >= self.ratio * f64::from(total))
            .then_some(self.open_for)
    }

    fn revived(&mut self) {
        self.slots = [Slot::default(); SLOTS as usize];
    }
}
