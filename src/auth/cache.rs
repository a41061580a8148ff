//! The token cache of one client: shared by its clones, refreshed ahead of expiry, single-flight.
//!
//! - A cache hit is a read lock and a clock read.
//! - Past the refresh point (`refresh_before_expiry` ahead of expiry, at most half the lifetime),
//!   the first caller starts one background refresh and every caller keeps using the still-valid
//!   token. A failed refresh keeps the old token and is retried with backoff.
//! - With no valid token, callers queue on one lock, like `OnceCell::get_or_try_init`: the first
//!   fetches, the rest re-check the cache when their turn comes. A failure is shared with every
//!   caller that was already waiting, and repeated to new callers during a short backoff, so a
//!   token endpoint that is down costs one request per backoff, not one per call.
//! - All times are on the monotonic clock (`tokio::time::Instant`), so a wall-clock jump cannot
//!   make an expired token look fresh.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::token_endpoint::{TokenEndpoint, TokenFailure};
use crate::error::Error;
use crate::telemetry;
use crate::transport;

const FAILURE_BACKOFF_MIN: Duration = Duration::from_millis(500);
const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A cached access token.
pub(crate) struct Token {
    pub(crate) secret: SecretString,
    refresh_at: Instant,
    expires_at: Instant,
    generation: u64,
    /// The client secret's rotation count when it was asked for: a token from before a
    /// rotation is replaced (see [`TokenCache::token`]).
    secret_generation: u64,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("generation", &self.generation)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The state guarded by the single-flight lock.
#[derive(Default)]
struct Flight {
    failure: Option<Failure>,
}

struct Failure {
    failure: TokenFailure,
    at: Instant,
    not_before: Instant,
    consecutive: u32,
}

pub(crate) struct TokenCache {
    endpoint: TokenEndpoint,
    refresh_before_expiry: Duration,
    default_lifetime: Duration,
    current: RwLock<Option<Arc<Token>>>,
    flight: Arc<Mutex<Flight>>,
    generation: AtomicU64,
    /// The client secret's rotation count the cache last saw, to act once per rotation.
    secret_generation: AtomicU64,
    #[cfg(feature = "fleet")]
    fleet: Option<crate::fleet::TokenLink>,
    /// A digest of the token the API last refused, so the fleet's copy is dropped, not reused.
    #[cfg(feature = "fleet")]
    refused: std::sync::Mutex<Option<crate::fleet::Digest>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("token_url", &self.endpoint.shown_url())
            .field("cached", &self.cached().is_some())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(
        endpoint: TokenEndpoint,
        refresh_before_expiry: Duration,
        default_lifetime: Duration,
        #[cfg(feature = "fleet")] fleet: Option<&Arc<crate::fleet::Fleet>>,
    ) -> TokenCache {
        TokenCache {
            #[cfg(feature = "fleet")]
            fleet: fleet.and_then(|fleet| crate::fleet::TokenLink::new(fleet, &endpoint)),
            #[cfg(feature = "fleet")]
            refused: std::sync::Mutex::new(None),
            endpoint,
            refresh_before_expiry,
            default_lifetime,
            current: RwLock::new(None),
            flight: Arc::new(Mutex::new(Flight::default())),
            generation: AtomicU64::new(0),
            secret_generation: AtomicU64::new(0),
        }
    }

    fn cached(&self) -> Option<Arc<Token>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How long the cached token stays valid, if there is one.
    pub(crate) fn valid_for(&self) -> Option<Duration> {
        self.cached()
            .map(|token| token.expires_at.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// A valid token: from the cache, or fetched (once, however many callers wait).
    ///
    /// # Cancellation
    ///
    /// On a multi-thread runtime, dropping the future while it fetches does not cancel the
    /// fetch: it finishes in its own task and the token is cached for the next caller. On a
    /// current-thread runtime the fetch is cancelled with it, and the next waiting caller tries.
    ///
    /// # Secret rotation
    ///
    /// A token asked for with a client secret that has since changed is replaced as if its
    /// refresh time had come: calls keep using it while one background request fetches a token
    /// with the new secret, so a rotation fails no call, not even when the identity provider
    /// does not accept the new secret yet.
    pub(crate) async fn token(self: &Arc<Self>) -> Result<Arc<Token>, Error> {
        let secret = self.endpoint.client_secret.generation();
        if self.secret_generation.swap(secret, Ordering::AcqRel) != secret {
            self.secret_rotated();
        }
        let now = Instant::now();
        if let Some(token) = self.cached() {
            if now < token.refresh_at && token.secret_generation == secret {
                return Ok(token);
            }
            if now < token.expires_at {
                self.refresh_ahead();
                return Ok(token);
            }
        }
        // Boxed: the fetch's state is a kilobyte that every call's future would otherwise
        // carry, although only a call that finds no usable token awaits it.
        Box::pin(self.fetch_or_wait(now)).await
    }

    /// The client secret changed: in fleet mode tokens are sealed under the new one (the
    /// cached token is replaced by [`token`](Self::token)).
    fn secret_rotated(&self) {
        #[cfg(feature = "fleet")]
        if let Some(fleet) = &self.fleet {
            self.endpoint
                .client_secret
                .with(|secret| fleet.reseal(secret));
        }
        tracing::info!(
            token_url = %self.endpoint.shown_url(),
            "the client secret changed: the cached token is replaced by one asked for with the \
             new secret"
        );
    }

    /// Drops `stale` if it is still the cached token, so that a burst of 401s for one token
    /// causes one refresh, and a token fetched meanwhile is kept.
    pub(crate) fn invalidate(&self, stale: &Token) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current
            .as_ref()
            .is_some_and(|t| t.generation == stale.generation)
        {
            // The next fetch drops it from Redis too, if no replica replaced it yet.
            #[cfg(feature = "fleet")]
            if self.fleet.is_some() {
                *self.refused.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(crate::fleet::digest(&stale.secret));
            }
            *current = None;
        }
    }

    /// Starts one background refresh unless one is running or backing off after a failure.
    fn refresh_ahead(self: &Arc<Self>) {
        let Ok(mut flight) = self.flight.clone().try_lock_owned() else {
            return;
        };
        if flight
            .failure
            .as_ref()
            .is_some_and(|f| Instant::now() < f.not_before)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = self.clone();
        runtime.spawn(async move {
            // The old token stays in use whatever happens here.
            let _ = cache.refresh(&mut flight).await;
        });
    }

    async fn fetch_or_wait(self: &Arc<Self>, started: Instant) -> Result<Arc<Token>, Error> {
        let mut flight = self.flight.clone().lock_owned().await;
        if let Some(token) = self.cached()
            && Instant::now() < token.expires_at
        {
            return Ok(token);
        }
        if let Some(failure) = &flight.failure
            && (failure.at >= started || Instant::now() < failure.not_before)
        {
            return Err(failure.failure.to_error());
        }
        // On a multi-thread runtime the fetch runs in its own task holding the flight lock:
        // once started it finishes and is cached even if this caller times out or is dropped,
        // and the next caller uses it (otherwise short deadlines against a slow endpoint would
        // mint a token each and never succeed). The token request is bounded by its own
        // timeouts. A current-thread runtime runs a task only while someone drives it; one
        // that stops (a runtime per request) would freeze the lock for every other runtime, so
        // there the fetch stays in the caller's future and ends with it.
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime)
                if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
            {
                runtime
            }
            _ => return self.refresh(&mut flight).await,
        };
        let cache = self.clone();
        runtime
            .spawn(async move { cache.refresh(&mut flight).await })
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(crate::ErrorKind::Auth).with_detail("the token request was aborted"))
            })
    }

    /// Fetches a token and caches it, or records the failure. Called with the flight lock held.
    async fn refresh(&self, flight: &mut Flight) -> Result<Arc<Token>, Error> {
        let refreshing = self.cached().is_some();
        let sent = Instant::now();
        // Read before the request: a rotation during it makes this token one to replace.
        let secret_generation = self.endpoint.client_secret.generation();
        match self.obtain().await {
            Ok(obtained) => {
                let lifetime = obtained.lifetime;
                let margin = self.refresh_before_expiry.min(lifetime / 2);
                let remaining = obtained.remaining.min(lifetime);
                let token = Arc::new(Token {
                    secret: obtained.access_token,
                    refresh_at: transport::later(sent, remaining.saturating_sub(margin)),
                    expires_at: transport::later(sent, remaining),
                    generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
                    secret_generation,
                });
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
                flight.failure = None;
                if obtained.fetched {
                    telemetry::token_fetched(&self.endpoint.shown_url(), lifetime, refreshing);
                }
                Ok(token)
            }
            Err(failure) => {
                let consecutive = flight.failure.as_ref().map_or(0, |f| f.consecutive) + 1;
                let backoff = FAILURE_BACKOFF_MIN
                    .saturating_mul(1 << consecutive.min(16).saturating_sub(1))
                    .min(FAILURE_BACKOFF_MAX);
                telemetry::token_failed(&self.endpoint.shown_url(), &failure.cause, backoff);
                let err = failure.to_error();
                let now = Instant::now();
                flight.failure = Some(Failure {
                    failure,
                    at: now,
                    not_before: transport::later(now, backoff),
                    consecutive,
                });
                Err(err)
            }
        }
    }
}

/// A token to cache: fetched here, or (in fleet mode) another replica's.
struct Obtained {
    access_token: secrecy::SecretString,
    remaining: Duration,
    lifetime: Duration,
    /// Whether this replica asked the token endpoint for it.
    fetched: bool,
}

impl TokenCache {
    /// A token from the endpoint, or, in fleet mode, from Redis or the one replica fetching.
    async fn obtain(&self) -> Result<Obtained, TokenFailure> {
        #[cfg(feature = "fleet")]
        if let Some(link) = &self.fleet {
            let margin = |lifetime: Duration| self.refresh_before_expiry.min(lifetime / 2);
            let bound = self.endpoint.timeouts.attempt();
            let refused = *self.refused.lock().unwrap_or_else(PoisonError::into_inner);
            let token = link
                .obtain(
                    refused.as_ref(),
                    self.default_lifetime,
                    margin,
                    bound,
                    || self.endpoint.fetch(),
                )
                .await?;
            let mut current = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
            // Unless a newer refusal came in meanwhile.
            if *current == refused {
                *current = None;
            }
            drop(current);
            return Ok(Obtained {
                fetched: token.source != "shared",
                access_token: token.access_token,
                remaining: token.remaining,
                lifetime: token.lifetime,
            });
        }
        let issued = self.endpoint.fetch().await?;
        let lifetime = issued.lifetime.unwrap_or(self.default_lifetime);
        Ok(Obtained {
            access_token: issued.access_token,
            remaining: lifetime,
            lifetime,
            fetched: true,
        })
    }
}
