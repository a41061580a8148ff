//! Fleet mode's events and metrics (feature `fleet`). Labels are the profile, the operation and
//! an error category: never a key, the Redis URL or a secret.

use std::time::Duration;

use super::millis;

/// Metric names of fleet mode.
pub(crate) mod metric {
    /// Histogram, seconds: one Redis command, by `operation`.
    pub(crate) const REDIS_DURATION: &str = "outbound.fleet.redis.duration";
    /// Counter: failed Redis commands, by `operation` and `error` (`timeout`, `io`, `refused`,
    /// `other`).
    pub(crate) const REDIS_ERRORS: &str = "outbound.fleet.redis.errors";
    /// Gauge: 1 while the replica shares through Redis, 0 while it falls back to local state.
    pub(crate) const MODE: &str = "outbound.fleet.mode";
    /// Counter: switches from shared to local.
    pub(crate) const FALLBACKS: &str = "outbound.fleet.fallbacks";
    /// Counter: quota slots a lease granted.
    pub(crate) const LEASE_GRANTED: &str = "outbound.fleet.lease.granted";
    /// Counter: granted slots that expired unused.
    pub(crate) const LEASE_WASTED: &str = "outbound.fleet.lease.wasted";
    /// Counter: access tokens put in use, by `source` (`shared`: another replica's, from Redis;
    /// `token_endpoint`: fetched for the fleet; `local`: fetched for this replica alone).
    pub(crate) const TOKEN_SOURCE: &str = "outbound.fleet.token.source";
}

/// One Redis command answered (or failed) after `elapsed`.
pub(crate) fn command(profile: &str, operation: &'static str, elapsed: Duration) {
    metrics::histogram!(metric::REDIS_DURATION, "outbound.profile" => profile.to_owned(), "operation" => operation)
        .record(elapsed.as_secs_f64());
}

/// A Redis command failed; `error` is a category, never the driver's message.
pub(crate) fn command_failed(profile: &str, operation: &'static str, error: &'static str) {
    tracing::debug!(
        outbound.profile = profile,
        operation,
        error,
        "fleet: Redis command failed"
    );
    metrics::counter!(metric::REDIS_ERRORS, "outbound.profile" => profile.to_owned(), "operation" => operation, "error" => error)
        .increment(1);
}

/// The replica stopped sharing (once per switch) and paces alone until Redis answers again.
pub(crate) fn fell_back(
    profile: &str,
    operation: &'static str,
    error: &'static str,
    retry_in: Duration,
) {
    tracing::warn!(
        outbound.profile = profile,
        operation,
        error,
        retry_in_ms = millis(retry_in),
        "fleet: Redis unreachable; pacing and fetching tokens locally until it answers"
    );
    metrics::counter!(metric::FALLBACKS, "outbound.profile" => profile.to_owned()).increment(1);
    metrics::gauge!(metric::MODE, "outbound.profile" => profile.to_owned()).set(0.0);
}

/// Redis answered a probe: the replica shares again.
pub(crate) fn recovered(profile: &str, after: Duration) {
    tracing::warn!(
        outbound.profile = profile,
        local_for_ms = millis(after),
        "fleet: Redis answers again; sharing quota, pauses and tokens"
    );
    metrics::gauge!(metric::MODE, "outbound.profile" => profile.to_owned()).set(1.0);
}

/// The replica is in shared mode (at start).
pub(crate) fn sharing(profile: &str) {
    metrics::gauge!(metric::MODE, "outbound.profile" => profile.to_owned()).set(1.0);
}

/// A lease of `granted` slots; `wasted` slots of the previous one expired unused.
pub(crate) fn lease(profile: &str, granted: u32, wasted: u32) {
    if granted > 0 {
        metrics::counter!(metric::LEASE_GRANTED, "outbound.profile" => profile.to_owned())
            .increment(u64::from(granted));
    }
    if wasted > 0 {
        metrics::counter!(metric::LEASE_WASTED, "outbound.profile" => profile.to_owned())
            .increment(u64::from(wasted));
    }
}

/// A shared pause read from Redis applies here.
pub(crate) fn shared_pause(origin: &str, wait: Duration) {
    tracing::info!(
        origin,
        pause_ms = millis(wait),
        "calls to origin paused: another replica was asked to slow down"
    );
}

/// Where the access token now in use came from.
pub(crate) fn token_source(profile: &str, source: &'static str) {
    tracing::debug!(
        outbound.profile = profile,
        source,
        "fleet: access token in use"
    );
    metrics::counter!(metric::TOKEN_SOURCE, "outbound.profile" => profile.to_owned(), "source" => source)
        .increment(1);
}
