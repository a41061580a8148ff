//! Per-origin state (retry budget, circuit breaker, rate limiter), bounded in size.
//!
//! The origin gate already limits hosts, but not ports, so a caller that (mis)uses many absolute
//! URLs could otherwise grow this map without bound. Past [`MAX_ORIGINS`], new origins share one
//! overflow entry: state stays correct in spirit (more conservative) and memory stays flat.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use url::Url;

use crate::breaker::Breaker;
use crate::gate::{host_of, same_origin};
use crate::ratelimit::Limiter;
use crate::retry::RetryBudget;
use crate::telemetry::Labels;

/// Origins tracked individually per client.
pub(crate) const MAX_ORIGINS: usize = 256;

/// A map from origin (scheme, host, port) to shared state, created on first use.
pub(crate) struct PerOrigin<T> {
    /// `base_url`'s origin, which most calls go to: found without hashing or allocating.
    primary: Primary<T>,
    entries: Mutex<HashMap<String, Arc<T>>>,
    overflow: Arc<T>,
    make: Box<dyn Fn(&str) -> T + Send + Sync>,
}

struct Primary<T> {
    url: Url,
    entry: Arc<T>,
}

/// Everything a client keeps per origin.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) labels: Labels,
    pub(crate) budget: RetryBudget,
    /// `None` when `circuit_breaker.enabled = false`.
    pub(crate) breaker: Option<Arc<Breaker>>,
    pub(crate) limiter: Limiter,
    /// Recent attempts and failures, for `Client::health`.
    pub(crate) outcomes: crate::health::Outcomes,
    /// Calls in flight, and the bulkhead.
    pub(crate) in_flight: crate::health::InFlight,
    /// `scheme://host[:port]`.
    pub(crate) name: Arc<str>,
}

/// The name of `url`'s origin, `scheme://host[:port]` as the URL's origin serializes, except
/// that `api.example.` is `api.example`: one breaker, one quota, one pause for one host.
fn key(url: &Url) -> String {
    let (scheme, host) = (url.scheme(), host_of(url));
    match url.port() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

impl<T> PerOrigin<T> {
    /// `make` builds the state of an origin from its name (`https://host:port`); `primary`'s
    /// origin is created at once.
    pub(crate) fn new(
        primary: &Url,
        make: impl Fn(&str) -> T + Send + Sync + 'static,
    ) -> PerOrigin<T> {
        let key = key(primary);
        let entry = Arc::new(make(&key));
        PerOrigin {
            primary: Primary {
                url: primary.clone(),
                entry: entry.clone(),
            },
            entries: Mutex::new(HashMap::from([(key, entry)])),
            overflow: Arc::new(make("other")),
            make: Box::new(make),
        }
    }

    /// The state of `url`'s origin.
    pub(crate) fn get(&self, url: &Url) -> Arc<T> {
        if same_origin(url, &self.primary.url) {
            return self.primary.entry.clone();
        }
        let key = key(url);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(&key) {
            return entry.clone();
        }
        if entries.len() >= MAX_ORIGINS {
            return self.overflow.clone();
        }
        let entry = Arc::new((self.make)(&key));
        entries.insert(key, entry.clone());
        entry
    }

    /// Every origin with its own entry.
    pub(crate) fn all(&self) -> Vec<Arc<T>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// How many origins have their own entry.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<T> fmt::Debug for PerOrigin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("PerOrigin")
            .field("origins", &len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn same_origin_shares_state_and_ports_make_new_origins() {
        let map = PerOrigin::new(&Url::parse("https://b.example").expect("url"), |_| {
            AtomicUsize::new(0)
        });
        let a = map.get(&Url::parse("https://a.example/x").expect("url"));
        a.fetch_add(1, Ordering::SeqCst);
        let again = map.get(&Url::parse("https://A.example:443/y?q").expect("url"));
        assert_eq!(again.load(Ordering::SeqCst), 1);
        let other_port = map.get(&Url::parse("https://a.example:8443/").expect("url"));
        assert_eq!(other_port.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_trailing_dot_is_the_same_origin() {
        let map = PerOrigin::new(&Url::parse("https://b.example").expect("url"), |_| {
            AtomicUsize::new(0)
        });
        for url in ["https://b.example./x", "https://B.example.:443/y"] {
            let url = Url::parse(url).expect("url");
            assert!(Arc::ptr_eq(&map.get(&url), &map.primary.entry), "{url}");
        }
        let other = Url::parse("https://c.example.:8443/").expect("url");
        let again = Url::parse("https://c.example:8443/z").expect("url");
        assert!(Arc::ptr_eq(&map.get(&other), &map.get(&again)));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn the_number_of_tracked_origins_is_bounded() {
        let map = PerOrigin::new(&Url::parse("https://b.example").expect("url"), |_| ());
        for port in 1..=(MAX_ORIGINS as u16 * 4) {
            map.get(&Url::parse(&format!("https://a.example:{port}/")).expect("url"));
        }
        assert_eq!(map.len(), MAX_ORIGINS);
    }
}
