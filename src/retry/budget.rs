//! A retry budget per origin, so that retries cannot turn an outage into a retry storm.
//!
//! Capping attempts per call is not enough: with `max_attempts = 3`, a fleet sends three times
//! its normal load to an origin that is already down. A budget instead caps retries as a share
//! of recent traffic, as Finagle's `RetryBudget`, Envoy's retry budgets and the AWS SDKs' retry
//! quota do: every call deposits `budget_percent`/100 of a token, every retry withdraws one, and
//! a small reserve (`MIN_RETRIES_PER_SEC` over the window) lets a quiet client still retry. When
//! an origin is down, the client sends about `1 + budget_percent/100` times its calls, not
//! `max_attempts` times.
//!
//! A retry that succeeds pays its way back (as the AWS SDKs' retry quota refunds a successful
//! retry's cost): the budget is meant to stop futile retries, and a retry the origin answered
//! well was not futile. So a flaky but healthy origin, where most retries succeed, gets the
//! retries it needs, while a down origin, where none do, still sees about 1.2× its calls.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::window::Window;

/// The window over which deposits and withdrawals count.
const WINDOW: Duration = Duration::from_secs(10);
const SLOTS: usize = 10;
/// Retries allowed with no traffic at all: 10 per 10 s window.
const MIN_RETRIES_PER_SEC: u64 = 1;
/// Token amounts are in hundredths, so a deposit of `budget_percent` is exact.
const ONE_RETRY: u64 = 100;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    deposited: u64,
    withdrawn: u64,
}

/// One origin's budget. Shared by the clones of a client.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    percent: u64,
    slots: Mutex<Window<Slot, SLOTS>>,
}

impl RetryBudget {
    pub(crate) fn new(budget_percent: u32) -> RetryBudget {
        RetryBudget {
            percent: u64::from(budget_percent),
            slots: Mutex::new(Window::new(Instant::now(), WINDOW)),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Window<Slot, SLOTS>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one call (its first attempt).
    pub(crate) fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// Records one call that started at `now`: the caller has read the clock already.
    pub(crate) fn deposit_at(&self, now: Instant) {
        self.credit(now, self.percent);
    }

    /// Gives back the cost of one retry that succeeded.
    pub(crate) fn refund(&self) {
        self.credit(Instant::now(), ONE_RETRY);
    }

    fn credit(&self, now: Instant, amount: u64) {
        let mut slots = self.slots();
        let tick = slots.enter(now);
        let slot = slots.slot_mut(tick);
        slot.deposited = slot.deposited.saturating_add(amount);
    }

    /// Takes one retry from the budget, or says there is none left.
    pub(crate) fn try_withdraw(&self) -> bool {
        let mut slots = self.slots();
        let tick = slots.enter(Instant::now());
        let (deposited, withdrawn) = slots
            .inside(tick)
            .fold((0, 0), |(d, w), (_, s)| (d + s.deposited, w + s.withdrawn));
        let reserve = MIN_RETRIES_PER_SEC * WINDOW.as_secs() * ONE_RETRY;
        if reserve + deposited < withdrawn + ONE_RETRY {
            return false;
        }
        slots.slot_mut(tick).withdrawn += ONE_RETRY;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(budget: &RetryBudget) -> usize {
        std::iter::from_fn(|| budget.try_withdraw().then_some(()))
            .take(10_000)
            .count()
    }

    #[tokio::test(start_paused = true)]
    async fn idle_client_may_retry_ten_times_per_window() {
        let budget = RetryBudget::new(20);
        assert_eq!(drain(&budget), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_add_at_most_the_budget_share_of_calls() {
        let budget = RetryBudget::new(20);
        for _ in 0..1_000 {
            budget.deposit();
        }
        assert_eq!(drain(&budget), 10 + 200);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_percent_leaves_only_the_reserve() {
        let budget = RetryBudget::new(0);
        for _ in 0..1_000 {
            budget.deposit();
        }
        assert_eq!(drain(&budget), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deposit_dated_before_the_window_does_not_erase_newer_withdrawals() {
        let budget = RetryBudget::new(20);
        let started = Instant::now();
        tokio::time::advance(Duration::from_millis(10_500)).await;
        assert_eq!(drain(&budget), 10);
        // A call that started at 0 and waited 10.5 s for its bulkhead slot deposits now; its
        // start's slot is the one the withdrawals above use.
        budget.deposit_at(started);
        assert_eq!(drain(&budget), 0, "the withdrawals still count");
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_refills_once_the_window_has_passed() {
        let budget = RetryBudget::new(20);
        assert_eq!(drain(&budget), 10);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            drain(&budget),
            0,
            "withdrawals still count within the window"
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(drain(&budget), 10);
    }

    /// Calls whose attempts each fail with probability `p` (drawn from `rolls`), up to
    /// `max_attempts`, retried while the budget allows, a successful retry refunded. Returns
    /// (calls that succeeded, requests sent, retries the budget refused).
    fn simulate(
        budget: &RetryBudget,
        calls: usize,
        p: f64,
        rolls: &[f64],
    ) -> (usize, usize, usize) {
        let (mut ok, mut sent, mut refused) = (0, 0, 0);
        let mut roll = rolls.iter().cycle();
        for _ in 0..calls {
            budget.deposit();
            for attempt in 1..=3 {
                sent += 1;
                let failed = *roll.next().expect("rolls") < p;
                if !failed {
                    ok += 1;
                    if attempt > 1 {
                        budget.refund();
                    }
                    break;
                }
                if attempt == 3 {
                    break;
                }
                if !budget.try_withdraw() {
                    refused += 1;
                    break;
                }
            }
        }
        (ok, sent, refused)
    }

    proptest::proptest! {
        // A flaky but healthy origin (a quarter of answers fail): successful retries pay their
        // way back, so the budget never refuses one and every call gets its three attempts.
        #[test]
        fn a_flaky_origin_gets_the_retries_it_needs(
            rolls in proptest::collection::vec(0.0f64..1.0, 2_000..4_000),
        ) {
            let budget = RetryBudget::new(20);
            let (ok, _, refused) = simulate(&budget, 2_000, 0.25, &rolls);
            proptest::prop_assert_eq!(refused, 0);
            proptest::prop_assert!(ok as f64 >= 2_000.0 * 0.96, "{ok} of 2000");
        }

        // A down origin: nothing succeeds, nothing is refunded, and the retries stay within the
        // budget's share plus its reserve.
        #[test]
        fn a_down_origin_sees_about_one_point_two_times_its_calls(
            calls in 100usize..5_000,
        ) {
            let budget = RetryBudget::new(20);
            let (ok, sent, _) = simulate(&budget, calls, 2.0, &[0.5]);
            proptest::prop_assert_eq!(ok, 0);
            proptest::prop_assert!(sent <= calls + calls / 5 + 10, "{sent} requests for {calls} calls");
        }
    }
}
