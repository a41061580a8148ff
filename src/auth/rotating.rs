//! Secrets from `{ file = .. }`, re-read when the file changes (a rotated Kubernetes or Vault
//! mount), without a restart and without failing a call in flight.
//!
//! A call asks at most once per [`CHECK_EVERY`] (one small read, compared with the value in use;
//! comparing contents rather than timestamps catches a rewrite of the same length within a
//! filesystem's timestamp granularity). A new value is used from the next request on; calls
//! already on the wire keep the one they sent. A file that turns unreadable, empty or unusable
//! keeps the last good value in use and warns once per change of problem, naming the profile,
//! the key and the path, never a value.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::profile::SecretSource;

/// How often a file secret is looked at, at most.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// One secret of a client, rotating when it comes from a file.
pub(crate) struct RotatingSecret {
    profile: String,
    key: &'static str,
    source: SecretSource,
    /// What a usable value looks like (e.g. one a header can carry); `Err` says why not.
    accept: Accept,
    current: RwLock<SecretString>,
    /// Bumped on every rotation, so that what was derived from the old value (a cached token,
    /// a sealing key) is dropped.
    generation: AtomicU64,
    due: Option<Due>,
    /// The problem last warned about, so it is warned about once.
    problem: Mutex<Option<String>>,
}

impl fmt::Debug for RotatingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatingSecret")
            .field("key", &self.key)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What a usable value looks like; `Err` says why a value is not.
pub(crate) type Accept = fn(&str) -> Result<(), &'static str>;

/// Any non-empty value.
pub(crate) fn any(_: &str) -> Result<(), &'static str> {
    Ok(())
}

impl RotatingSecret {
    /// Reads `source` (the profile's `key`) for the first time; a problem now is a config error.
    pub(crate) fn resolve(
        profile: &str,
        key: &'static str,
        source: &SecretSource,
        accept: Accept,
    ) -> Result<RotatingSecret, String> {
        let value = source.resolve()?;
        accept(value.expose_secret()).map_err(str::to_owned)?;
        Ok(RotatingSecret {
            profile: profile.to_owned(),
            key,
            due: matches!(source, SecretSource::File(_)).then(Due::new),
            source: source.clone(),
            accept,
            current: RwLock::new(value),
            generation: AtomicU64::new(0),
            problem: Mutex::new(None),
        })
    }

    /// A fixed secret (never re-read).
    pub(crate) fn fixed(value: SecretString) -> RotatingSecret {
        RotatingSecret {
            profile: String::new(),
            key: "",
            source: SecretSource::Value(value.clone()),
            accept: any,
            current: RwLock::new(value),
            generation: AtomicU64::new(0),
            due: None,
            problem: Mutex::new(None),
        }
    }

    /// Runs `f` with the value in use, after a check of the file if one is due.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&SecretString) -> R) -> R {
        self.check();
        f(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// How many times the value changed, after a check of the file if one is due.
    pub(crate) fn generation(&self) -> u64 {
        self.check();
        self.generation.load(Ordering::Acquire)
    }

    fn check(&self) {
        let Some(due) = &self.due else {
            return;
        };
        if !due.take() {
            return;
        }
        let SecretSource::File(path) = &self.source else {
            return;
        };
        // One check at a time: a slow read finishing after a later one must not win.
        let mut problem = match self.problem.try_lock() {
            Ok(problem) => problem,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        let read = self.source.resolve().and_then(|value| {
            (self.accept)(value.expose_secret())
                .map(|()| value)
                .map_err(|why| format!("secret file {} {why}", path.display()))
        });
        match read {
            Ok(value) => {
                let same = self
                    .current
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expose_secret()
                    == value.expose_secret();
                if !same {
                    *self.current.write().unwrap_or_else(PoisonError::into_inner) = value;
                    self.generation.fetch_add(1, Ordering::AcqRel);
                    tracing::info!(
                        outbound.profile = %self.profile,
                        key = self.key,
                        path = %path.display(),
                        "secret file changed: the new value is used from the next request"
                    );
                } else if problem.is_some() {
                    tracing::info!(
                        outbound.profile = %self.profile,
                        key = self.key,
                        path = %path.display(),
                        "secret file is usable again"
                    );
                }
                *problem = None;
            }
            Err(why) => {
                if problem.as_deref() != Some(why.as_str()) {
                    tracing::warn!(
                        outbound.profile = %self.profile,
                        key = self.key,
                        problem = %why,
                        "secret file cannot be used: the last good value stays in use"
                    );
                    *problem = Some(why);
                }
            }
        }
    }
}

/// When a check is due: one caller per [`CHECK_EVERY`] gets to do it, the others pay one clock
/// read and one atomic load.
pub(crate) struct Due {
    base: Instant,
    /// Nanoseconds after `base`.
    next: AtomicU64,
}

impl Due {
    pub(crate) fn new() -> Due {
        let base = Instant::now();
        Due {
            base,
            next: AtomicU64::new(CHECK_EVERY.as_nanos() as u64),
        }
    }

    /// Whether this caller should check now (and no other will until the next interval).
    pub(crate) fn take(&self) -> bool {
        let now = self.base.elapsed().as_nanos() as u64;
        let next = self.next.load(Ordering::Relaxed);
        now >= next
            && self
                .next
                .compare_exchange(
                    next,
                    now + CHECK_EVERY.as_nanos() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}
