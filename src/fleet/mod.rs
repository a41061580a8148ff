//! Fleet mode (feature `fleet`): the replicas of one service share one quota, one
//! server-requested pause and one OAuth token per integration through Redis.
//!
//! [`Fleet`] is the link to Redis of one client: one connection manager, every command bounded
//! by `fleet.command_timeout` and by the call's deadline. Redis is an optimization, never a
//! dependency of a call: the first failed command switches the replica to local state (pacing
//! at `rate / replicas_hint`, its own token) with one warning, and from then on no call waits
//! for Redis; a background probe (1 s, doubling to 30 s) switches back when it answers.
//!
//! - [`connection`]: connecting once, the switch to local state and the probe back;
//! - [`quota`]: GCRA leases and the shared pause, per origin;
//! - [`token`]: the shared, encrypted access token;
//! - [`seal`]: its encryption.

mod connection;
mod quota;
mod seal;
mod token;

use connection::category;
pub(crate) use quota::{Admit, OriginLink};
pub(crate) use token::{Digest, TokenLink, digest};

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::profile::ConfigError;
use crate::profile::fleet::{Fleet as Settings, Share};
use crate::telemetry::fleet as telemetry;

/// The longest expiry Redis is asked to keep (about 31 years): Redis refuses one past its
/// clock's range, and every wait here is capped long before.
const MAX_EXPIRY_MS: u64 = 1_000_000_000_000;

/// `d` as a Redis expiry (`PX`): at least 1 ms, at most [`MAX_EXPIRY_MS`].
pub(crate) fn expiry_ms(d: Duration) -> u64 {
    crate::telemetry::millis(d).clamp(1, MAX_EXPIRY_MS)
}

const PROBE_MIN: Duration = Duration::from_secs(1);
const PROBE_MAX: Duration = Duration::from_secs(30);
/// The longest a new connection may take (within the call's deadline): a TCP and TLS handshake
/// on a loaded host takes longer than one command, and callers that arrive meanwhile share it.
const CONNECT_BUDGET: Duration = Duration::from_millis(500);

/// The probe does what calls do: runs a script that reads the clock and writes a key, so a
/// Redis that answers PING but refuses scripts (ACL), writes (out of memory, a read-only
/// replica after a failover) is not taken for a working one.
const PROBE: &str = r"
redis.call('TIME')
redis.call('SET', KEYS[1], '1', 'PX', 1000)
return 1
";

/// The Redis link of one client, shared by its clones and by every origin's state.
pub(crate) struct Fleet {
    profile: Arc<str>,
    pub(crate) settings: Settings,
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    connecting: tokio::sync::Mutex<()>,
    /// True while Redis answers: read on every call without a lock.
    shared: AtomicBool,
    /// A background check of a Redis that a call's deadline cut short is running.
    verifying: AtomicBool,
    local: Mutex<Local>,
}

/// The fallback state: since when, and when to probe Redis again.
struct Local {
    since: Instant,
    probe_at: Instant,
    backoff: Duration,
    probing: bool,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("Fleet")
            .field("key_prefix", &self.settings.key_prefix)
            .field("shared", &self.is_shared())
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Reads the Redis URL and prepares the link; nothing connects until the first call.
    pub(crate) fn new(profile: &str, settings: &Settings) -> Result<Fleet, ConfigError> {
        let err = |problem: String| ConfigError::new(profile, "fleet.redis_url", problem);
        let url = settings.redis_url.resolve().map_err(err)?;
        let scheme = url.expose_secret().split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("redis" | "rediss")) {
            return Err(err("must be a redis:// or rediss:// URL".into()));
        }
        // The driver's message may quote the URL: say what is wrong without it.
        let client = redis::Client::open(url.expose_secret())
            .map_err(|_| err("is not a valid Redis URL".into()))?;
        let now = Instant::now();
        telemetry::sharing(profile);
        Ok(Fleet {
            profile: profile.into(),
            settings: settings.clone(),
            client,
            connection: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            shared: AtomicBool::new(true),
            verifying: AtomicBool::new(false),
            local: Mutex::new(Local {
                since: now,
                probe_at: now,
                backoff: PROBE_MIN,
                probing: false,
            }),
        })
    }

    pub(crate) fn shares(&self, what: Share) -> bool {
        self.settings.shares(what)
    }

    pub(crate) fn profile(&self) -> &str {
        &self.profile
    }

    /// Whether the replica shares through Redis now (false while it falls back).
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Acquire)
    }

    /// Runs one Redis operation within `command_timeout` and before `deadline`. `None` when
    /// the replica is in local mode or the operation failed (which switches it to local mode);
    /// the caller then does without Redis.
    pub(crate) async fn run<T, F, Fut>(
        self: &Arc<Self>,
        operation: &'static str,
        deadline: Instant,
        command: F,
    ) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_shared() {
            self.probe_when_due();
            return None;
        }
        self.run_in_any_mode(operation, deadline, command).await
    }

    /// [`run`](Self::run), also in local mode: for cleanup that must not wait for the next
    /// probe (releasing a lock this replica holds).
    pub(crate) async fn run_in_any_mode<T, F, Fut>(
        self: &Arc<Self>,
        operation: &'static str,
        deadline: Instant,
        command: F,
    ) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let connection = match self.cached() {
            Some(c) => c,
            None => {
                let until = deadline.min(crate::transport::later(started, self.connect_budget()));
                match tokio::time::timeout_at(until, self.connection()).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        self.failed("connect", category(&e));
                        return None;
                    }
                    Err(_) if until < deadline => {
                        self.failed("connect", "timeout");
                        return None;
                    }
                    Err(_) => {
                        self.verify();
                        return None;
                    }
                }
            }
        };
        let sent = Instant::now();
        let timeout = self.settings.command_timeout;
        let full = crate::transport::later(sent, timeout);
        let until = deadline.min(full);
        let outcome = tokio::time::timeout_at(until, command(connection)).await;
        let elapsed = sent.elapsed();
        match outcome {
            Ok(Ok(value)) => {
                telemetry::command(&self.profile, operation, elapsed);
                Some(value)
            }
            Ok(Err(e)) => {
                self.failed(operation, category(&e));
                None
            }
            Err(_) if full <= deadline => {
                self.failed(operation, "timeout");
                None
            }
            // Cut short by the call's own deadline: not proof that Redis is slow, but calls with
            // short deadlines must not keep paying for a Redis that is. One check in the
            // background, with the whole command timeout, decides.
            Err(_) => {
                self.verify();
                None
            }
        }
    }

    pub(crate) fn connect_budget(&self) -> Duration {
        self.settings.command_timeout.max(CONNECT_BUDGET)
    }

    /// The deadline of work no caller waits for (writing a pause, releasing a lock): only the
    /// command timeout bounds it.
    pub(crate) fn background() -> Instant {
        crate::transport::later(Instant::now(), Duration::from_secs(3600))
    }

    /// The prefix of every key this client writes.
    pub(crate) fn key(&self, tag: &str, suffix: &str) -> String {
        // The braces are a hash tag: every key of one tag lives in one cluster slot, so one
        // script can touch them all.
        format!("{}:{{{tag}}}:{suffix}", self.settings.key_prefix)
    }
}
