//! Fleet mode settings (`[fleet]`, feature `fleet`).

use std::time::Duration;

use secrecy::SecretString;

use super::ClientBuilder;
use crate::profile::SecretSource;
use crate::profile::fleet::Fleet;

impl ClientBuilder {
    /// Shares this client's quota, server-requested pauses and OAuth token with every replica
    /// that uses the same Redis (or Valkey). Profile key: `fleet.redis_url`, with the defaults of
    /// the other `fleet.*` keys. The URL is a secret: it may hold a password.
    ///
    /// Redis trouble never fails a call: the replica falls back to local state until Redis
    /// answers again.
    ///
    /// ```
    /// use secrecy::SecretString;
    ///
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.partner.example")
    ///     .rate_limit(200.0, None) // for the whole fleet
    ///     .fleet(SecretString::from("redis://127.0.0.1:6379"))
    ///     .fleet_replicas_hint(4)
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn fleet(mut self, redis_url: SecretString) -> ClientBuilder {
        self.settings.fleet = Some(Fleet::new(SecretSource::Value(redis_url)));
        self
    }

    fn fleet_settings(self, key: &str, set: impl FnOnce(&mut Fleet)) -> ClientBuilder {
        let mut this = self;
        match this.settings.fleet.as_mut() {
            Some(fleet) => {
                set(fleet);
                this
            }
            None => this.fail(key, "set the Redis URL first with ClientBuilder::fleet"),
        }
    }

    /// The prefix of every Redis key the client writes. Profile key: `fleet.key_prefix`.
    /// Default: `outbound`.
    pub fn fleet_key_prefix(self, prefix: impl Into<String>) -> ClientBuilder {
        let prefix = prefix.into();
        self.fleet_settings("fleet.key_prefix", |f| f.key_prefix = prefix)
    }

    /// How long a Redis command may take before it counts as a failure. Profile key:
    /// `fleet.command_timeout`. Default: 10 ms.
    pub fn fleet_command_timeout(self, timeout: Duration) -> ClientBuilder {
        self.fleet_settings("fleet.command_timeout", |f| f.command_timeout = timeout)
    }

    /// Quota slots a replica takes at once (1: exact sharing). Profile key: `fleet.lease`.
    /// Default: 10.
    pub fn fleet_lease(self, slots: u32) -> ClientBuilder {
        self.fleet_settings("fleet.lease", |f| f.lease = slots)
    }

    /// While Redis is unreachable, each replica paces at `rate / replicas`. Profile key:
    /// `fleet.replicas_hint`. Default: 1.
    pub fn fleet_replicas_hint(self, replicas: u32) -> ClientBuilder {
        self.fleet_settings("fleet.replicas_hint", |f| f.replicas_hint = replicas)
    }
}
