//! The fleet's shared access token: one per (token URL, client id, scopes, audience).
//!
//! A replica that needs a token reads Redis first; on a miss it takes a `SET NX PX` lock and
//! fetches, while the others poll for its result until the lock's holder is done or their own
//! bound passes (then they fetch themselves: the lock is for efficiency, never a reason to
//! fail). The value is sealed ([`super::seal`]); one that does not open is a miss. A 401 drops
//! the shared token only if it is still the one refused, compared in Lua.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use super::Fleet;
use super::seal::Seal;
use crate::auth::TokenEndpoint;
use crate::auth::token_endpoint::{Issued, TokenFailure};
use crate::profile::fleet::Share;
use crate::telemetry::fleet as telemetry;
use crate::transport::later;

/// How often a replica waiting for another's fetch looks for its result.
const POLL_EVERY: Duration = Duration::from_millis(25);
/// At most this much more than the refresh margin must be left of a shared token to take it.
const SLACK: Duration = Duration::from_secs(1);

/// KEYS: the token. Returns {value, ms left} or nil.
const READ: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
";

/// KEYS: the lock. ARGV: this replica's id, a value for this taking of the lock (the id and a
/// sequence number), the lock's lifetime in ms. Takes the lock, or takes it over from an earlier
/// fetch of this same replica (which another caller now waits for).
const LOCK: &str = r"
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// KEYS: a key. ARGV: the value it must still hold. Deletes it only then.
const DELETE_IF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A token in use, and where it came from.
pub(crate) struct Obtained {
    pub(crate) access_token: SecretString,
    /// How long it stays valid from now.
    pub(crate) remaining: Duration,
    /// Its whole lifetime, for the refresh margin.
    pub(crate) lifetime: Duration,
    /// The sealed value in Redis, to drop it after a 401 only if it is still this one.
    sealed: Option<Arc<[u8]>>,
    /// `shared`, `token_endpoint` or `local`.
    pub(crate) source: &'static str,
}

/// The shared token of one client.
pub(crate) struct TokenLink {
    fleet: Arc<Fleet>,
    value_key: String,
    lock_key: String,
    /// This replica's id in the lock.
    owner: String,
    /// Numbers each taking of the lock, so a late release never drops a newer one.
    taken: std::sync::atomic::AtomicU64,
    /// Re-derived when the client secret rotates ([`TokenLink::reseal`]).
    seal: std::sync::RwLock<Seal>,
    read: Script,
    lock: Script,
    delete_if: Script,
}

/// A digest of a token, to recognise the one the API refused without keeping it twice.
pub(crate) type Digest = [u8; 32];

/// The digest of `token`.
pub(crate) fn digest(token: &SecretString) -> Digest {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

impl TokenLink {
    /// The link for `endpoint`'s token, or `None` when the fleet does not share tokens.
    pub(crate) fn new(fleet: &Arc<Fleet>, endpoint: &TokenEndpoint) -> Option<TokenLink> {
        if !fleet.shares(Share::Token) {
            return None;
        }
        let tag = format!("token|{}", identity(endpoint));
        let value_key = fleet.key(&tag, "value");
        Some(TokenLink {
            seal: std::sync::RwLock::new(
                endpoint
                    .client_secret
                    .with(|secret| Seal::new(secret, &value_key)),
            ),
            lock_key: fleet.key(&tag, "lock"),
            value_key,
            fleet: fleet.clone(),
            owner: format!("{}:", uuid::Uuid::new_v4().simple()),
            taken: std::sync::atomic::AtomicU64::new(0),
            read: Script::new(READ),
            lock: Script::new(LOCK),
            delete_if: Script::new(DELETE_IF),
        })
    }

    /// The client secret rotated: tokens are sealed under a key from the new one. Tokens other
    /// replicas sealed under the old one no longer open here (a miss: this replica fetches).
    pub(crate) fn reseal(&self, secret: &SecretString) {
        *self
            .seal
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Seal::new(secret, &self.value_key);
    }

    /// A token from Redis if one there is valid past `margin(lifetime)`, else fetched by one
    /// replica of the fleet. `bound` is how long one fetch may take: the lock's lifetime and
    /// the longest this replica waits for another's fetch. `refused` is the sealed token the
    /// API just answered 401 to: dropped from Redis if still there, never taken again.
    pub(crate) async fn obtain<F, Fut>(
        &self,
        refused: Option<&Digest>,
        default_lifetime: Duration,
        margin: impl Fn(Duration) -> Duration,
        bound: Duration,
        fetch: F,
    ) -> Result<Obtained, TokenFailure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Issued, TokenFailure>>,
    {
        let deadline = later(Instant::now(), bound);
        loop {
            match self.read(deadline).await {
                None => return self.fetch_alone(default_lifetime, fetch).await,
                Some(Some(found)) if refused == Some(&digest(&found.access_token)) => {
                    // Compared in Lua: a token another replica stored meanwhile stays.
                    if let Some(sealed) = &found.sealed {
                        self.forget(sealed, deadline).await;
                    }
                }
                // With some slack past the refresh point: a copy about to reach it would be
                // taken, refreshed at once, and taken again.
                Some(Some(found))
                    if found.remaining
                        > margin(found.lifetime) + (found.lifetime / 10).min(SLACK) =>
                {
                    telemetry::token_source(self.fleet.profile(), found.source);
                    return Ok(found);
                }
                Some(_) => {}
            }
            // Held for the fetch and the store after it.
            let hold = bound
                .saturating_add(self.fleet.connect_budget())
                .saturating_add(self.fleet.settings.command_timeout);
            let lock_ms = super::expiry_ms(hold);
            let n = self
                .taken
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let value = format!("{}{n}", self.owner);
            let mut invocation = self.lock.key(&self.lock_key);
            invocation.arg(&self.owner).arg(&value).arg(lock_ms);
            let locked = self
                .fleet
                .run("token_lock", deadline, |mut c| async move {
                    invocation.invoke_async::<i64>(&mut c).await
                })
                .await;
            match locked {
                None => return self.fetch_alone(default_lifetime, fetch).await,
                Some(1) => return self.fetch_for_fleet(default_lifetime, value, fetch).await,
                Some(_) if Instant::now() >= deadline => {
                    return self.fetch_alone(default_lifetime, fetch).await;
                }
                Some(_) => tokio::time::sleep(POLL_EVERY.min(deadline - Instant::now())).await,
            }
        }
    }

    /// Holding the lock: fetch, store sealed, release (also when this future is dropped, and
    /// also when a Redis hiccup meanwhile switched the replica to local mode).
    async fn fetch_for_fleet<F, Fut>(
        &self,
        default_lifetime: Duration,
        lock: String,
        fetch: F,
    ) -> Result<Obtained, TokenFailure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Issued, TokenFailure>>,
    {
        let held = Held(self, lock);
        let sent = Instant::now();
        let issued = fetch().await;
        let mut obtained = issued.map(|i| obtained(i, default_lifetime, "token_endpoint"));
        if let Ok(token) = &mut obtained {
            // Its lifetime started when the endpoint issued it, during the fetch.
            token.sealed = self.store(token, sent.elapsed()).await;
            telemetry::token_source(self.fleet.profile(), token.source);
        }
        drop(held);
        obtained
    }

    /// Releases the lock if it still holds `value`, in the background.
    fn release(&self, value: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (fleet, script) = (self.fleet.clone(), self.delete_if.clone());
        let key = self.lock_key.clone();
        runtime.spawn(async move {
            let mut invocation = script.key(key);
            invocation.arg(value);
            fleet
                .run_in_any_mode("token_unlock", Fleet::background(), |mut c| async move {
                    invocation.invoke_async::<i64>(&mut c).await
                })
                .await;
        });
    }

    /// Without Redis (down, or the lock holder too slow): this replica fetches for itself.
    async fn fetch_alone<F, Fut>(
        &self,
        default_lifetime: Duration,
        fetch: F,
    ) -> Result<Obtained, TokenFailure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Issued, TokenFailure>>,
    {
        let token = obtained(fetch().await?, default_lifetime, "local");
        telemetry::token_source(self.fleet.profile(), token.source);
        Ok(token)
    }

    /// The token in Redis: `None` if Redis did not answer, `Some(None)` on a miss (absent,
    /// expired, or sealed under another secret).
    async fn read(&self, deadline: Instant) -> Option<Option<Obtained>> {
        let invocation = self.read.key(&self.value_key);
        let found = self
            .fleet
            .run("token_read", deadline, |mut c| async move {
                invocation
                    .invoke_async::<Option<(Vec<u8>, i64)>>(&mut c)
                    .await
            })
            .await?;
        let Some((sealed, left_ms)) = found else {
            return Some(None);
        };
        // A value without an expiry (restored, persisted) is a miss: the next store fixes it.
        let Some(remaining) = u64::try_from(left_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
        else {
            return Some(None);
        };
        let plain = self
            .seal
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .open(&sealed);
        Some(plain.as_deref().and_then(|plain| {
            let (lifetime, token) = plain.split_first_chunk::<8>()?;
            let token = std::str::from_utf8(token).ok()?;
            Some(Obtained {
                access_token: SecretString::from(token),
                remaining,
                lifetime: Duration::from_millis(u64::from_be_bytes(*lifetime)),
                sealed: Some(sealed.into()),
                source: "shared",
            })
        }))
    }

    /// Stores `token` sealed for the rest of its lifetime; the sealed value, if stored.
    async fn store(&self, token: &Obtained, spent: Duration) -> Option<Arc<[u8]>> {
        let ms = super::expiry_ms(token.lifetime.saturating_sub(spent));
        let lifetime_ms = super::expiry_ms(token.lifetime);
        let mut plain = secrecy::zeroize::Zeroizing::new(lifetime_ms.to_be_bytes().to_vec());
        plain.extend_from_slice(token.access_token.expose_secret().as_bytes());
        let sealed: Arc<[u8]> = self
            .seal
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .seal(&plain)?
            .into();
        let (key, value) = (self.value_key.clone(), sealed.clone());
        let deadline = Fleet::background();
        self.fleet
            .run("token_store", deadline, |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(&*value)
                    .arg("PX")
                    .arg(ms)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?;
        Some(sealed)
    }

    /// After a 401: drops the shared token if it is still `sealed`.
    async fn forget(&self, sealed: &[u8], deadline: Instant) {
        let mut invocation = self.delete_if.key(&self.value_key);
        invocation.arg(sealed);
        self.fleet
            .run("token_forget", deadline, |mut c| async move {
                invocation.invoke_async::<i64>(&mut c).await
            })
            .await;
    }
}

/// The token lock, held (with this value) until dropped.
struct Held<'a>(&'a TokenLink, String);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release(std::mem::take(&mut self.1));
    }
}

fn obtained(issued: Issued, default_lifetime: Duration, source: &'static str) -> Obtained {
    let lifetime = issued.lifetime.unwrap_or(default_lifetime);
    Obtained {
        access_token: issued.access_token,
        remaining: lifetime,
        lifetime,
        sealed: None,
        source,
    }
}

/// A digest of what makes two clients' tokens interchangeable: the key names no client id.
fn identity(endpoint: &TokenEndpoint) -> String {
    let mut scopes = endpoint.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let mut hash = Sha256::new();
    hash.update((scopes.len() as u64).to_be_bytes());
    for part in [endpoint.url.as_str(), &endpoint.client_id]
        .into_iter()
        .chain(scopes.iter().map(String::as_str))
        .chain([endpoint.audience.as_deref().unwrap_or("")])
    {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
