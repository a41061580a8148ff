//! A safe-by-default HTTP client for calling third-party APIs.
//!
//! One [`Client`] per integration (a payment provider, a CRM, a partner's REST API), built from a
//! named [`Profile`]. Every call is bounded in time and in size, goes only to the hosts the
//! profile allows, and never shows a secret in an error, a `Debug` or a log line.
//!
//! ```no_run
//! use outbound::{Client, Profiles};
//!
//! # #[derive(serde::Deserialize)] struct Contact {}
//! # async fn run() -> Result<(), outbound::Error> {
//! let profiles = Profiles::from_toml_str(r#"
//!     [crm]
//!     base_url = "https://api.crm.example"
//!
//!     [crm.timeouts]
//!     total = "20s"
//!
//!     [crm.auth]
//!     type = "api_key"
//!     key = { env = "CRM_API_KEY" }
//! "#)?;
//! let crm = Client::from_profile(profiles.get("crm")?)?;
//!
//! let contact: Contact = crm.get("/v1/contacts/42").send().await?.error_for_status()?.json().await?;
//! # Ok(()) }
//! ```
//!
//! # Defaults and why
//!
//! | Setting | Default | Why |
//! |---|---|---|
//! | `timeouts` | connect 3 s, read 30 s, attempt 30 s, total 60 s | a call never hangs; none can be turned off |
//! | `max_response_bytes` | 16 MiB, after decompression | a huge body or a gzip bomb is an error, not an outage |
//! | `allowed_hosts` | `base_url`'s host | an absolute URL cannot send credentials elsewhere |
//! | `allow_insecure_http` | `false` | no credential travels in clear text |
//! | `follow_redirects` | `false` | a 3xx is returned; when on, credentials never cross origins |
//! | `tls.min_version` | TLS 1.2 (rustls) | no downgrade to broken protocol versions |
//! | redaction | built-in header and query lists | logs and errors never carry a secret |
//!
//! # Errors
//!
//! Every fallible operation returns the one opaque [`Error`]. Branch on its predicates
//! ([`Error::is_timeout`], [`Error::is_disallowed`], [`Error::is_body_too_large`], …) or on
//! [`Error::kind`], never on its message.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod attempt;
mod auth;
mod body;
mod breaker;
mod builder;
mod ceiling;
#[cfg(feature = "cli")]
pub mod cli;
mod client;
mod error;
#[cfg(feature = "fleet")]
mod fleet;
mod gate;
mod health;
mod hook;
#[doc(hidden)]
pub mod internals;
mod isolation;
pub mod multipart;
mod origins;
mod pipeline;
mod profile;
mod ratelimit;
mod redact;
mod redirect;
mod reload;
mod request;
mod request_id;
mod response;
mod retry;
mod shared;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod tls_error;
mod transport;
mod window;

pub use builder::ClientBuilder;
pub use client::Client;
pub use error::{Error, ErrorKind, Result};
pub use health::{Health, OriginHealth};
pub use hook::{AttemptRequest, HookError};
pub use profile::sections::{AuthMethod, Proxy, TlsVersion};
pub use profile::{Profile, Profiles};
pub use redact::RedactedUrl;
pub use request::RequestBuilder;
pub use response::Response;

pub use http::{self, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
pub use secrecy::{self, SecretString};
