//! The HTTP transport of a client, rebuilt when its TLS files change: a renewed client
//! certificate and key (cert-manager, Vault) or a rotated CA bundle take effect without a restart.
//!
//! A call asks at most once per second ([`CHECK_EVERY`](crate::auth::rotating::CHECK_EVERY)) whether the files changed (one read of each,
//! compared by digest). Changed files build a new transport; new requests use it, with new
//! connections, while calls already on the wire finish on the old one. Files that cannot be read
//! or do not make a transport (a certificate without its new key yet, an empty file) keep the
//! old transport in use and warn once per change of contents, naming the key and the path, never
//! their contents.

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::auth::rotating::Due;
use crate::error::Result;
use crate::profile::Settings;
use crate::transport;

/// The `reqwest` client of a profile, and how to rebuild it.
pub(crate) enum Transport {
    /// No TLS files: nothing to watch, and a request borrows the client (no lock, no reference
    /// count touched by every call on every core).
    Fixed(reqwest::Client),
    Watched {
        current: RwLock<reqwest::Client>,
        files: Box<Files>,
    },
}

pub(crate) struct Files {
    profile: String,
    settings: Settings,
    due: Due,
    /// The digest of the files in use (or last warned about), and whether that was a problem.
    last: Mutex<(u64, bool)>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field(
                "watches_tls_files",
                &matches!(self, Transport::Watched { .. }),
            )
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Builds the transport of validated `settings`; watches its TLS files if it has any.
    pub(crate) fn build(profile: &str, settings: &Settings) -> Result<Arc<Transport>> {
        let client = transport::build(profile, settings)?;
        let tls = &settings.tls;
        if tls.ca_file.is_none() && tls.client_cert_file.is_none() {
            return Ok(Transport::fixed(client));
        }
        Ok(Arc::new(Transport::Watched {
            current: RwLock::new(client),
            files: Box::new(Files {
                profile: profile.to_owned(),
                settings: settings.clone(),
                due: Due::new(),
                last: Mutex::new((digest(settings).unwrap_or_default(), false)),
            }),
        }))
    }

    /// A transport that never changes.
    pub(crate) fn fixed(client: reqwest::Client) -> Arc<Transport> {
        Arc::new(Transport::Fixed(client))
    }

    /// The client for the next request, after a check of the TLS files if one is due.
    pub(crate) fn client(&self) -> Cow<'_, reqwest::Client> {
        match self {
            Transport::Fixed(client) => Cow::Borrowed(client),
            Transport::Watched { current, files } => {
                if files.due.take() {
                    Self::check(current, files);
                }
                Cow::Owned(
                    current
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone(),
                )
            }
        }
    }

    fn check(current: &RwLock<reqwest::Client>, files: &Files) {
        let mut last = files.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = match digest(&files.settings) {
            Ok(now) => now,
            Err((key, path, kind)) => {
                // Warned once per problem: its digest stands in for the contents.
                let mut h = DefaultHasher::new();
                (key, kind.to_string()).hash(&mut h);
                let marker = h.finish();
                if *last != (marker, true) {
                    tracing::warn!(
                        outbound.profile = %files.profile,
                        key,
                        path = %path.display(),
                        error = %kind,
                        "TLS file cannot be read: the current transport stays in use"
                    );
                    *last = (marker, true);
                }
                return;
            }
        };
        if last.0 == now {
            return;
        }
        match transport::build(&files.profile, &files.settings) {
            Ok(client) => {
                *current.write().unwrap_or_else(PoisonError::into_inner) = client;
                tracing::info!(
                    outbound.profile = %files.profile,
                    "TLS files changed: new connections use them"
                );
                *last = (now, false);
            }
            Err(e) => {
                tracing::warn!(
                    outbound.profile = %files.profile,
                    error = %e,
                    "TLS files changed but cannot be used: the current transport stays in use"
                );
                *last = (now, true);
            }
        }
    }
}

/// A digest of the TLS files' contents (a change detector, not a security measure), or the key,
/// path and error of the first one that cannot be read.
fn digest(s: &Settings) -> std::result::Result<u64, (&'static str, &Path, std::io::ErrorKind)> {
    let mut h = DefaultHasher::new();
    for (key, path) in s.tls.files() {
        if let Some(path) = path {
            let bytes = std::fs::read(path).map_err(|e| (key, path, e.kind()))?;
            bytes.hash(&mut h);
        }
    }
    Ok(h.finish())
}
