//! `[profile.fleet]`: the Redis that replicas of one service share (feature `fleet`).
//!
//! The section parses in every build, so a profile written for fleet mode is refused by a build
//! without the feature with a message that says so, instead of silently pacing one replica to the
//! whole fleet's quota.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::SecretSource;
use super::sections::RateLimit;
use super::validate::ConfigError;
use super::values::duration;

/// What the replicas share (`fleet.share`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Share {
    /// `[rate_limit]` is the quota of all replicas together.
    RateLimit,
    /// A pause a server asks for reaches every replica.
    Pause,
    /// One OAuth token for the fleet.
    Token,
}

/// `[profile.fleet]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fleet {
    /// A secret source: the URL may hold a password.
    pub(crate) redis_url: SecretSource,
    #[serde(default = "default_key_prefix")]
    pub(crate) key_prefix: String,
    #[serde(default = "default_share")]
    pub(crate) share: Vec<Share>,
    #[serde(with = "duration", default = "default_command_timeout")]
    pub(crate) command_timeout: Duration,
    #[serde(default = "default_lease")]
    pub(crate) lease: u32,
    #[serde(default = "default_replicas_hint")]
    pub(crate) replicas_hint: u32,
}

impl Fleet {
    /// Fleet settings with the defaults of the profile file.
    #[cfg(feature = "fleet")]
    pub(crate) fn new(redis_url: SecretSource) -> Fleet {
        Fleet {
            redis_url,
            key_prefix: default_key_prefix(),
            share: default_share(),
            command_timeout: default_command_timeout(),
            lease: default_lease(),
            replicas_hint: default_replicas_hint(),
        }
    }

    /// Whether `what` is shared.
    #[cfg(feature = "fleet")]
    pub(crate) fn shares(&self, what: Share) -> bool {
        self.share.contains(&what)
    }
}

fn default_key_prefix() -> String {
    "outbound".into()
}

fn default_share() -> Vec<Share> {
    vec![Share::RateLimit, Share::Pause, Share::Token]
}

fn default_command_timeout() -> Duration {
    Duration::from_millis(10)
}

fn default_lease() -> u32 {
    10
}

fn default_replicas_hint() -> u32 {
    1
}

/// The longest `command_timeout`: a store slower than this is not worth waiting for on every
/// lease, and every call may pay it once when Redis stops answering.
const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The most slots one lease may take.
const MAX_LEASE: u32 = 10_000;

/// The fastest quota the fleet shares: Redis counts it in microseconds.
const MAX_SHARED_RATE: f64 = 1e6;

/// Checks `[fleet]` of `profile`, whose `[rate_limit]` is `limit`.
pub(crate) fn validate(
    profile: &str,
    fleet: &Fleet,
    limit: Option<&RateLimit>,
) -> Result<(), ConfigError> {
    let err = |key: &str, problem: String| Err(ConfigError::new(profile, key, problem));
    if !cfg!(feature = "fleet") {
        return err(
            "fleet",
            "fleet mode needs outbound's `fleet` feature (features = [\"fleet\"] in Cargo.toml)"
                .into(),
        );
    }
    let prefix = &fleet.key_prefix;
    if prefix.is_empty()
        || prefix.len() > 64
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'{' | b'}' | b'*' | b'?' | b'['))
    {
        return err(
            "fleet.key_prefix",
            "must be 1 to 64 printable ASCII characters without spaces, braces or glob characters \
             (it is the prefix a Redis ACL grants)"
                .into(),
        );
    }
    if fleet.share.is_empty() {
        return err(
            "fleet.share",
            "must name at least one of \"rate_limit\", \"pause\", \"token\" (or remove [fleet])"
                .into(),
        );
    }
    if fleet.command_timeout.is_zero() || fleet.command_timeout > MAX_COMMAND_TIMEOUT {
        return err(
            "fleet.command_timeout",
            format!(
                "must be greater than 0 and at most {}",
                humantime::format_duration(MAX_COMMAND_TIMEOUT)
            ),
        );
    }
    if !(1..=MAX_LEASE).contains(&fleet.lease) {
        return err("fleet.lease", format!("must be between 1 and {MAX_LEASE}"));
    }
    if fleet.replicas_hint == 0 {
        return err("fleet.replicas_hint", "must be at least 1".into());
    }
    if let Some(limit) = limit
        && fleet.share.contains(&Share::RateLimit)
        && limit
            .requests_per_second
            .is_some_and(|rate| rate > MAX_SHARED_RATE)
    {
        return err(
            "rate_limit.requests_per_second",
            format!("a quota shared by the fleet must be at most {MAX_SHARED_RATE} per second"),
        );
    }
    Ok(())
}
