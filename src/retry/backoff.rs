//! Exponential backoff with full jitter: `random(0, min(max, initial × multiplier^(n-1)))`.
//!
//! Full jitter spreads a fleet's retries over the whole window instead of synchronizing them
//! (the AWS architecture blog's comparison of jitter strategies), at the cost of sometimes
//! retrying early, which the retry budget bounds.

use std::time::Duration;

/// The backoff settings of a profile (`retry.initial_backoff`, `max_backoff`, `multiplier`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) multiplier: f64,
}

impl Backoff {
    /// The ceiling of the delay after attempt `attempt` (1-based): `min(max, initial ×
    /// multiplier^(attempt-1))`, computed without overflow however large `attempt` is.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(i32::MAX as u32) as i32;
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        if secs.is_finite() && secs < self.max.as_secs_f64() {
            Duration::from_secs_f64(secs.max(0.0))
        } else {
            self.max
        }
    }

    /// The delay after attempt `attempt`, with `unit` a uniform random number in `[0, 1)`.
    pub(crate) fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ceiling = self.ceiling(attempt);
        // Not `mul_f64`: near `Duration::MAX` its float round trip overflows and panics.
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * unit)
            .map_or(ceiling, |d| d.min(ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_ceiling_at_duration_max_never_panics() {
        let b = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            multiplier: 1e300,
        };
        for unit in [0.0, 0.5, 0.999_999_999, 1.0, f64::NAN] {
            assert!(b.delay(7, unit) <= Duration::MAX);
        }
    }

    fn backoff(initial_ms: u64, max_ms: u64, multiplier: f64) -> Backoff {
        Backoff {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            multiplier,
        }
    }

    #[test]
    fn ceiling_grows_geometrically_up_to_the_cap() {
        let b = backoff(100, 1_000, 2.0);
        let ceilings: Vec<u128> = (1..=6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let b = backoff(100, 10_000, 10.0);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(10));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(5));
    }

    proptest! {
        #[test]
        fn delay_is_never_above_the_cap_nor_negative(
            initial in 1u64..10_000,
            extra in 0u64..100_000,
            multiplier in 1.0f64..10.0,
            attempt in 1u32..1_000,
            unit in 0.0f64..1.0,
        ) {
            let b = backoff(initial, initial + extra, multiplier);
            let delay = b.delay(attempt, unit);
            prop_assert!(delay <= b.max);
            prop_assert!(delay <= b.ceiling(attempt));
        }

        #[test]
        fn ceiling_never_shrinks_as_attempts_grow(
            initial in 1u64..10_000,
            extra in 0u64..100_000,
            multiplier in 1.0f64..10.0,
            attempt in 1u32..1_000,
        ) {
            let b = backoff(initial, initial + extra, multiplier);
            prop_assert!(b.ceiling(attempt + 1) >= b.ceiling(attempt));
        }

        #[test]
        fn mean_delay_grows_with_the_attempt_until_the_cap(seed in any::<u64>()) {
            // Expectation over many draws: the mean delay after attempt 3 exceeds attempt 1's.
            let b = backoff(100, 60_000, 2.0);
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut mean = |n: u32| -> f64 {
                (0..2_000).map(|_| b.delay(n, rng.f64()).as_secs_f64()).sum::<f64>() / 2_000.0
            };
            prop_assert!(mean(3) > mean(1));
        }
    }
}
