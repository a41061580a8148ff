//! The connection to Redis: made once (callers queue behind the first), dropped on the first
//! failed command, which switches the replica to local state with one warning, and probed back
//! in the background (1 s, doubling to 30 s).

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

use super::{Fleet, Local, PROBE, PROBE_MAX, PROBE_MIN, telemetry};

impl Fleet {
    /// The connection manager, connecting once (callers queue behind the first).
    pub(super) async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let _turn = self.connecting.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        if !self.is_shared()
            && !self
                .local
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .probing
        {
            // The connect this caller queued behind failed: the probe will try again.
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "fleet: Redis unreachable",
            )));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_budget()))
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(manager.clone());
        Ok(manager)
    }

    pub(super) fn cached(&self) -> Option<ConnectionManager> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A command failed: count it, and switch to local mode (warning once per switch).
    pub(super) fn failed(&self, operation: &'static str, error: &'static str) {
        telemetry::command_failed(&self.profile, operation, error);
        // The next probe connects afresh: a connection whose peer vanished without a reset
        // (a host gone, a failover) may time out until the kernel gives up, minutes later.
        self.forget_connection();
        if self.shared.swap(false, Ordering::AcqRel) {
            let now = Instant::now();
            let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
            *local = Local {
                since: now,
                probe_at: crate::transport::later(now, PROBE_MIN),
                backoff: PROBE_MIN,
                probing: false,
            };
            telemetry::fell_back(&self.profile, operation, error, PROBE_MIN);
        }
    }

    /// Checks Redis in the background with the full command timeout (one check at a time);
    /// switches to local mode if it does not answer.
    pub(super) fn verify(self: &Arc<Self>) {
        if self.verifying.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.verifying.store(false, Ordering::Release);
            return;
        };
        let fleet = self.clone();
        runtime.spawn(async move {
            let key = fleet.key("probe", "probe");
            let deadline = Fleet::background();
            fleet
                .run("verify", deadline, |mut c| async move {
                    Script::new(PROBE)
                        .key(key)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await;
            fleet.verifying.store(false, Ordering::Release);
        });
    }

    /// In local mode: starts one background probe of Redis once its backoff has passed. The
    /// caller never waits for it.
    pub(super) fn probe_when_due(self: &Arc<Self>) {
        let now = Instant::now();
        {
            let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
            if local.probing || now < local.probe_at {
                return;
            }
            local.probing = true;
        }
        // Built before the task: a task dropped before it first runs (a runtime shutting
        // down) still schedules the next probe.
        let mut probe = Probe {
            fleet: self.clone(),
            answered: false,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let fleet = probe.fleet.clone();
            let key = fleet.key("probe", "probe");
            let answer = tokio::time::timeout(fleet.connect_budget(), async {
                let mut connection = fleet.connection().await?;
                Script::new(PROBE)
                    .key(key)
                    .invoke_async::<i64>(&mut connection)
                    .await
            })
            .await;
            match answer {
                Ok(Ok(_)) => probe.succeeded(),
                Ok(Err(e)) => {
                    telemetry::command_failed(&fleet.profile, "probe", category(&e));
                    fleet.forget_connection();
                }
                Err(_) => {
                    telemetry::command_failed(&fleet.profile, "probe", "timeout");
                    fleet.forget_connection();
                }
            }
        });
    }

    pub(super) fn forget_connection(&self) {
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Ends a probe: back to shared mode, or the next probe after a doubled backoff.
pub(super) struct Probe {
    fleet: Arc<Fleet>,
    answered: bool,
}

impl Probe {
    fn succeeded(&mut self) {
        self.answered = true;
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut local = self
            .fleet
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        local.probing = false;
        if self.answered {
            local.backoff = PROBE_MIN;
            self.fleet.shared.store(true, Ordering::Release);
            telemetry::recovered(&self.fleet.profile, now - local.since);
        } else {
            local.backoff = (local.backoff * 2).min(PROBE_MAX);
            local.probe_at = crate::transport::later(now, local.backoff);
        }
    }
}

/// A Redis error's category for logs and metrics: the driver's message may quote a key or the
/// URL, so it is never shown.
pub(super) fn category(e: &redis::RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        "io"
    } else if matches!(
        e.kind(),
        redis::ErrorKind::AuthenticationFailed
            | redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
    ) {
        "refused"
    } else {
        "other"
    }
}
