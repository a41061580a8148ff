//! The spending ceiling (`[budget] max_calls` per period): when a bug calls a paid API in a
//! tight loop, the damage stops at the ceiling instead of a five-figure bill. Every request put
//! on the wire counts, retries included (they are billed too); past the ceiling a call fails at
//! once with `is_budget_exhausted()` and nothing is sent. Windows are aligned to the Unix epoch
//! on the wall clock, as invoices are. In fleet mode the count is the fleet's, in Redis; when
//! Redis is unreachable the local count goes on.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::profile::sections::Budget;
use crate::telemetry;

/// The ceiling of one client.
pub(crate) struct Ceiling {
    profile: Arc<str>,
    max: u64,
    per: Duration,
    window: Mutex<Window>,
    #[cfg(feature = "fleet")]
    fleet: Option<Arc<crate::fleet::Fleet>>,
}

#[derive(Default)]
struct Window {
    index: u64,
    used: u64,
    /// Warnings given in this window: 1 after 80 %, 2 after 100 %.
    warned: u8,
}

impl Window {
    /// Starts window `index` if it is a later one: a wall clock stepped back gives no new
    /// allowance.
    fn move_to(&mut self, index: u64) {
        if index > self.index {
            *self = Window {
                index,
                ..Window::default()
            };
        }
    }
}

#[cfg(feature = "fleet")]
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

impl Ceiling {
    pub(crate) fn new(
        profile: &str,
        budget: &Budget,
        #[cfg(feature = "fleet")] fleet: Option<Arc<crate::fleet::Fleet>>,
    ) -> Ceiling {
        Ceiling {
            profile: profile.into(),
            max: budget.max_calls,
            per: budget.per,
            window: Mutex::new(Window::default()),
            #[cfg(feature = "fleet")]
            fleet,
        }
    }

    /// The current window's number and the time until the next one.
    fn now(&self) -> (u64, Duration) {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let per = self.per.as_millis().max(1);
        let index = since.as_millis() / per;
        let ends = Duration::from_millis(u64::try_from((index + 1) * per).unwrap_or(u64::MAX));
        (
            u64::try_from(index).unwrap_or(u64::MAX),
            ends.saturating_sub(since),
        )
    }

    /// Takes one request from the ceiling, or refuses before anything is sent.
    pub(crate) async fn take(&self, deadline: Instant) -> Result<(), Error> {
        let (index, resets_in) = self.now();
        #[cfg(feature = "fleet")]
        if let Some(used) = self.count_in_fleet(index, deadline).await {
            // Never below what this replica counted itself (Redis may have lost counts in a
            // failover, or missed those made while it was unreachable).
            let local = self.remaining_used(index).saturating_add(1);
            return self.settle(index, used.max(local), resets_in, true);
        }
        #[cfg(not(feature = "fleet"))]
        let _ = deadline;
        let used = {
            let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            window.move_to(index);
            if window.used >= self.max {
                self.max.saturating_add(1)
            } else {
                window.used += 1;
                window.used
            }
        };
        self.settle(index, used, resets_in, false)
    }

    /// `used` is this request's number in the window: past `max`, it is refused.
    fn settle(
        &self,
        index: u64,
        used: u64,
        resets_in: Duration,
        shared: bool,
    ) -> Result<(), Error> {
        let warn = {
            let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            window.move_to(index);
            if shared {
                window.used = window.used.max(used.min(self.max));
            }
            let level = if used >= self.max {
                2
            } else if u128::from(used) * 5 >= u128::from(self.max) * 4 {
                1
            } else {
                0
            };
            let warn = level > window.warned;
            window.warned = window.warned.max(level);
            warn.then_some(level)
        };
        let left = self.max.saturating_sub(used);
        telemetry::budget_left(&self.profile, left);
        if let Some(level) = warn {
            telemetry::budget_warning(&self.profile, used.min(self.max), self.max, level == 2);
        }
        if used > self.max {
            return Err(Error::new(ErrorKind::BudgetExhausted)
                .with_detail(format!(
                    "{} calls per {} used (budget.max_calls); the period ends in {}",
                    self.max,
                    telemetry::shown(self.per),
                    telemetry::shown(Duration::from_secs(resets_in.as_secs()))
                ))
                .with_retry_after(resets_in));
        }
        Ok(())
    }

    /// What this replica counted in window `index`.
    #[cfg(feature = "fleet")]
    fn remaining_used(&self, index: u64) -> u64 {
        let window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.index == index {
            window.used
        } else {
            0
        }
    }

    /// Calls left in the current period, as this replica counts them.
    pub(crate) fn remaining(&self) -> u64 {
        let (index, _) = self.now();
        let window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.index == index {
            self.max.saturating_sub(window.used)
        } else {
            self.max
        }
    }

    #[cfg(feature = "fleet")]
    async fn count_in_fleet(&self, index: u64, deadline: Instant) -> Option<u64> {
        let fleet = self.fleet.as_ref()?;
        // The period is in the key: a rolling change of `per` starts a count of its own.
        let key = fleet.key(
            &format!("budget|{}", self.profile),
            &format!("{}ms:{index}", self.per.as_millis()),
        );
        let ttl = crate::fleet::expiry_ms(self.per);
        fleet
            .run("budget", deadline, |mut c| async move {
                redis::Script::new(COUNT)
                    .key(key)
                    .arg(ttl)
                    .invoke_async::<u64>(&mut c)
                    .await
            })
            .await
    }
}
