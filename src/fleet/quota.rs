//! The fleet-wide quota and pause of one origin.
//!
//! **Quota.** `rate_limit` is the quota of all replicas together: GCRA in one Lua script on
//! Redis's own clock (`TIME`), so replicas' clocks never matter. A replica takes a *lease* of up
//! to `fleet.lease` slots at once and spends them locally for at most [`LEASE_LIFETIME`]; what
//! is left then is wasted, never carried over, so the fleet exceeds the quota by at most one
//! lease per replica, spent early. The lease asked for shrinks when slots go unused and grows
//! back when they run out, so an idle replica does not sit on slots a busy one needs.
//!
//! **Pause.** A pause a server asks for is written with an extend-only script and read with
//! every lease (or, for an origin without a shared quota, at most every [`PAUSE_READ_EVERY`]),
//! so every replica's calls to the origin stop within 250 ms.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::Fleet;
use crate::profile::fleet::Share;
use crate::profile::sections::RateLimit;
use crate::telemetry::fleet as telemetry;
use crate::transport::later;

/// How long a replica may spend the slots of one lease.
pub(crate) const LEASE_LIFETIME: Duration = Duration::from_millis(250);
/// How stale a replica's view of the shared pause may be, for an origin without a shared quota.
const PAUSE_READ_EVERY: Duration = Duration::from_millis(200);

/// KEYS: the quota's theoretical arrival time (µs on Redis's clock), the pause.
/// ARGV: emission interval (µs), burst (slots), slots wanted, whether to honour the pause.
/// Returns {slots granted, µs until the next slot, ms of pause left}.
const LEASE: &str = r"
if ARGV[4] == '1' then
  local pause = redis.call('PTTL', KEYS[2])
  if pause > 0 then return {0, 0, pause} end
end
local t = redis.call('TIME')
-- Counted from 2023 so that a double keeps sub-microsecond steps for centuries.
local now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
-- A legitimate TAT is never further ahead; one that is (a clock stepped back after a failover,
-- a replica with a larger burst) would otherwise refuse every call until the clock caught up.
if tat > now + interval * burst then
  tat = now + interval * burst
  redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
local room = math.floor((now + interval * burst - tat) / interval)
local n = math.min(tonumber(ARGV[3]), room)
if n < 1 then
  return {0, math.ceil(tat + interval - interval * burst - now), 0}
end
tat = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return {n, 0, 0}
";

/// KEYS: the pause. ARGV: its length in ms. Extends the pause, never shortens it.
const PAUSE: &str = r"
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
";

/// What the fleet says about a call's slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go.
    Granted,
    /// The origin is paused for this long, fleet-wide.
    Paused(Duration),
    /// The fleet's quota has no slot before this long.
    Wait(Duration),
    /// Redis is not in use now: pace locally.
    Local,
}

/// The fleet state of one origin of one client.
pub(crate) struct OriginLink {
    fleet: Arc<Fleet>,
    tat_key: String,
    pause_key: String,
    /// The shared quota, when `[rate_limit]` is set and shared.
    gcra: Option<Gcra>,
    share_pause: bool,
    lease: tokio::sync::Mutex<Lease>,
    /// When this replica last read the shared pause (without a shared quota).
    pause_read: Mutex<Option<Instant>>,
    lease_script: Script,
    pause_script: Script,
}

struct Gcra {
    interval_us: f64,
    burst: u32,
}

struct Lease {
    remaining: u32,
    expires: Instant,
    /// The fleet said no slot before this: callers wait without asking Redis again.
    not_before: Option<Instant>,
    /// Slots the next lease asks for.
    want: u32,
}

impl OriginLink {
    /// The link of `origin`, or `None` when this client shares nothing per origin.
    pub(crate) fn new(
        fleet: &Arc<Fleet>,
        profile: &str,
        origin: &str,
        limit: Option<&RateLimit>,
    ) -> Option<OriginLink> {
        // The adaptive rate stays each replica's own: it learns from the answers that replica
        // sees.
        let gcra = limit
            .filter(|_| fleet.shares(Share::RateLimit))
            .and_then(|limit| Some((limit.requests_per_second?, limit.burst)))
            .map(|(rate, burst)| Gcra {
                interval_us: 1e6 / rate,
                burst: burst
                    .unwrap_or(rate.ceil().min(f64::from(u32::MAX)) as u32)
                    .max(1),
            });
        let share_pause = fleet.shares(Share::Pause);
        if gcra.is_none() && !share_pause {
            return None;
        }
        let tag = format!("{profile}|{origin}");
        let lease = fleet.settings.lease;
        Some(OriginLink {
            tat_key: fleet.key(&tag, "quota"),
            pause_key: fleet.key(&tag, "pause"),
            fleet: fleet.clone(),
            gcra,
            share_pause,
            lease: tokio::sync::Mutex::new(Lease {
                remaining: 0,
                expires: Instant::now(),
                not_before: None,
                want: lease,
            }),
            pause_read: Mutex::new(None),
            lease_script: Script::new(LEASE),
            pause_script: Script::new(PAUSE),
        })
    }

    /// Whether the fleet paces this origin's quota (so the local limiter is only the fallback).
    pub(crate) fn shares_quota(&self) -> bool {
        self.gcra.is_some()
    }

    /// Asks the fleet for one slot, without waiting: the caller waits as it would locally.
    ///
    /// # Cancellation
    ///
    /// A slot is taken only when this returns `Granted`; a lease fetched by a caller that is
    /// dropped stays for the next caller.
    pub(crate) async fn admit(&self, deadline: Instant) -> Admit {
        if !self.fleet.is_shared() {
            self.fleet.probe_when_due();
            return Admit::Local;
        }
        match &self.gcra {
            Some(gcra) => self.lease(gcra, deadline).await,
            None => self.read_pause(deadline).await,
        }
    }

    async fn lease(&self, gcra: &Gcra, deadline: Instant) -> Admit {
        // Callers queue here while one asks Redis; none waits past its own deadline.
        let Ok(mut lease) = tokio::time::timeout_at(deadline, self.lease.lock()).await else {
            return Admit::Wait(Duration::from_millis(1));
        };
        let now = Instant::now();
        if lease.remaining > 0 && now < lease.expires {
            lease.remaining -= 1;
            return Admit::Granted;
        }
        if let Some(at) = lease.not_before.filter(|at| now < *at) {
            return Admit::Wait(at - now);
        }
        let max = self.fleet.settings.lease;
        let wasted = lease.remaining;
        lease.want = if wasted > 0 {
            (lease.want / 2).max(1)
        } else {
            lease.want.saturating_mul(2).min(max)
        };
        lease.remaining = 0;
        let want = lease.want;
        let mut invocation = self.lease_script.key(&self.tat_key);
        invocation
            .key(&self.pause_key)
            .arg(gcra.interval_us)
            .arg(gcra.burst)
            .arg(want)
            .arg(if self.share_pause { "1" } else { "0" });
        let answer = self
            .fleet
            .run("lease", deadline, |mut c| async move {
                invocation.invoke_async::<(u32, u64, u64)>(&mut c).await
            })
            .await;
        let Some((granted, wait_us, pause_ms)) = answer else {
            telemetry::lease(self.fleet.profile(), 0, wasted);
            return Admit::Local;
        };
        telemetry::lease(self.fleet.profile(), granted, wasted);
        if pause_ms > 0 {
            return Admit::Paused(Duration::from_millis(pause_ms));
        }
        if granted == 0 {
            let wait = Duration::from_micros(wait_us.max(1));
            lease.not_before = Some(later(Instant::now(), wait));
            return Admit::Wait(wait);
        }
        lease.remaining = granted - 1;
        lease.expires = later(Instant::now(), LEASE_LIFETIME);
        Admit::Granted
    }

    async fn read_pause(&self, deadline: Instant) -> Admit {
        let now = Instant::now();
        {
            let mut read = self
                .pause_read
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // One reader at a time: the others go on with what was last read (a pause read
            // earlier is already in the local limiter).
            if read.is_some_and(|at| now < later(at, PAUSE_READ_EVERY)) {
                return Admit::Granted;
            }
            *read = Some(now);
        }
        let key = self.pause_key.clone();
        let left = self
            .fleet
            .run("pause_read", deadline, |mut c| async move {
                redis::cmd("PTTL").arg(key).query_async::<i64>(&mut c).await
            })
            .await;
        match left {
            None => Admit::Local,
            Some(ms) if ms > 0 => Admit::Paused(Duration::from_millis(ms.unsigned_abs())),
            Some(_) => Admit::Granted,
        }
    }

    /// Tells the fleet that the server asked to pause this origin for `wait`. Runs in the
    /// background: the call that saw the answer does not wait for Redis.
    pub(crate) fn publish_pause(self: &Arc<Self>, wait: Duration) {
        if !self.share_pause || !self.fleet.is_shared() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let link = self.clone();
        let ms = super::expiry_ms(wait);
        runtime.spawn(async move {
            let deadline = Fleet::background();
            let mut invocation = link.pause_script.key(&link.pause_key);
            invocation.arg(ms);
            link.fleet
                .run("pause", deadline, |mut c| async move {
                    invocation.invoke_async::<()>(&mut c).await
                })
                .await;
        });
    }
}
