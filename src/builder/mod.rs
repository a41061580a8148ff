//! [`ClientBuilder`]: every profile setting as a method; one validation shared with profiles.
//!
//! This file holds the destination, time, TLS and redaction settings and `build`; the retry and
//! credential settings are in `retry.rs` and `auth.rs`.

mod auth;
#[cfg(feature = "fleet")]
mod fleet;
mod retry;
mod shedding;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::profile::sections::{Proxy, TlsVersion};
use crate::profile::{ConfigError, Settings, validate};
use crate::redact::Redactor;
use crate::shared::Shared;

/// Builds a [`Client`]. Start from [`Client::builder`] or [`Client::builder_from`].
///
/// Setters never fail; the first invalid input is returned by [`build`](ClientBuilder::build),
/// which also runs the same validation as a profile file, so an error names the same key
/// (`timeouts.attempt`) however the setting came in. Each method's doc names its profile key.
///
/// ```
/// use std::time::Duration;
///
/// let profiles = outbound::Profiles::from_toml_str("[crm]\nbase_url = 'https://api.crm.example'")?;
/// let client = outbound::Client::builder_from(profiles.get("crm")?)
///     .attempt_timeout(Duration::from_secs(5))
///     .build()?;
/// # Ok::<(), outbound::Error>(())
/// ```
#[must_use = "a ClientBuilder does nothing until it is built"]
pub struct ClientBuilder {
    name: String,
    pub(super) settings: Settings,
    error: Option<Error>,
    hook: Option<crate::hook::Hook>,
}

impl ClientBuilder {
    pub(crate) fn new(name: String, settings: Settings) -> ClientBuilder {
        ClientBuilder {
            name,
            settings,
            error: None,
            hook: None,
        }
    }

    pub(super) fn fail(mut self, key: &str, problem: impl Into<String>) -> ClientBuilder {
        if self.error.is_none() {
            self.error = Some(Error::config(ConfigError::new(&self.name, key, problem)));
        }
        self
    }

    /// The URL relative paths are resolved against. Profile key: `base_url`. Required.
    ///
    /// Must be `https` (see [`allow_insecure_http`](Self::allow_insecure_http)) and must not
    /// contain credentials or a query.
    pub fn base_url(mut self, url: impl AsRef<str>) -> ClientBuilder {
        match Url::parse(url.as_ref()) {
            Ok(url) => {
                self.settings.base_url = Some(url);
                self
            }
            Err(e) => self.fail("base_url", format!("invalid URL ({e})")),
        }
    }

    /// The hosts requests may go to. Profile key: `allowed_hosts`. Default: `base_url`'s host.
    pub fn allowed_hosts<I, S>(mut self, hosts: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.allowed_hosts = Some(hosts.into_iter().map(Into::into).collect());
        self
    }

    /// Allows plain `http://` URLs. Profile key: `allow_insecure_http`. Default: `false`.
    ///
    /// # Security
    ///
    /// Requests, credentials included, travel unencrypted. Meant for loopback tests and
    /// sidecars, never for a third party across a network.
    pub fn allow_insecure_http(mut self, allow: bool) -> ClientBuilder {
        self.settings.allow_insecure_http = allow;
        self
    }

    /// The largest response body read, after decompression. Profile key: `max_response_bytes`.
    /// Default: 16 MiB.
    pub fn max_response_bytes(mut self, max: u64) -> ClientBuilder {
        self.settings.max_response_bytes = max;
        self
    }

    /// Follows redirects to allowed origins (never https→http), dropping credentials on a change
    /// of origin. Profile key: `follow_redirects`. Default: `false` (the 3xx is returned).
    pub fn follow_redirects(mut self, follow: bool) -> ClientBuilder {
        self.settings.follow_redirects = follow;
        self
    }

    /// Sends a W3C `traceparent` naming the call's span on every attempt, so a partner's traces
    /// join yours; never `baggage` or `tracestate`. Needs the `opentelemetry` feature and a
    /// `tracing-opentelemetry` layer in the subscriber (without one, nothing is sent). Profile
    /// key: `propagate_trace_context`. Default: false: third parties do not need your trace
    /// ids.
    pub fn propagate_trace_context(mut self, propagate: bool) -> ClientBuilder {
        self.settings.propagate_trace_context = propagate;
        self
    }

    /// A header every call carries unless it sets its own: an API version pin, `Accept`, or a
    /// `User-Agent` of your own (the default is `outbound/<version> (<profile>)`). Profile
    /// table: `[headers]`. Never credentials: `Authorization`, `Cookie` and the API key header
    /// are refused at build; they belong in `[auth]`.
    ///
    /// ```
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.stripe.example")
    ///     .default_header("Stripe-Version", "2024-06-20")
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn default_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> ClientBuilder {
        self.settings.headers.insert(name.into(), value.into());
        self
    }

    /// Which proxy to use. Profile key: `proxy`. Default: [`Proxy::System`].
    pub fn proxy(mut self, proxy: Proxy) -> ClientBuilder {
        self.settings.proxy = proxy;
        self
    }

    /// Time to establish a connection, TLS included. Profile key: `timeouts.connect`.
    /// Default: 3 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.settings.timeouts.connect = timeout;
        self
    }

    /// Longest wait between two reads from the server. Profile key: `timeouts.read`.
    /// Default: 30 s.
    pub fn read_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.settings.timeouts.read = timeout;
        self
    }

    /// Time for one attempt, from sending to the end of the body. Profile key:
    /// `timeouts.attempt`. Default: 30 s, or the total if that is shorter. Must not exceed the
    /// total.
    pub fn attempt_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.settings.timeouts.attempt = Some(timeout);
        self
    }

    /// Deadline of a whole call, across attempts and waits. Profile key: `timeouts.total`.
    /// Default: 60 s. [`RequestBuilder::timeout`](crate::RequestBuilder::timeout) overrides it
    /// per call.
    pub fn total_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.settings.timeouts.total = timeout;
        self
    }

    /// The oldest TLS version accepted. Profile key: `tls.min_version`. Default: TLS 1.2.
    pub fn tls_min_version(mut self, version: TlsVersion) -> ClientBuilder {
        self.settings.tls.min_version = version;
        self
    }

    /// A PEM file of extra trust roots, added to the system's. Profile key: `tls.ca_file`.
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> ClientBuilder {
        self.settings.tls.ca_file = Some(path.into());
        self
    }

    /// The PEM certificate chain of the client identity (mTLS). Profile key:
    /// `tls.client_cert_file`; needs [`tls_client_key_file`](Self::tls_client_key_file).
    pub fn tls_client_cert_file(mut self, path: impl Into<PathBuf>) -> ClientBuilder {
        self.settings.tls.client_cert_file = Some(path.into());
        self
    }

    /// The PEM private key of the client identity (mTLS). Profile key: `tls.client_key_file`.
    pub fn tls_client_key_file(mut self, path: impl Into<PathBuf>) -> ClientBuilder {
        self.settings.tls.client_key_file = Some(path.into());
        self
    }

    /// More headers whose values are masked and dropped on cross-origin redirects. Profile key:
    /// `redact.headers`. The built-in list (`authorization`, `x-api-key`, `cookie`, …) always
    /// applies.
    pub fn redact_headers<I, S>(mut self, names: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings
            .redact
            .headers
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// More JSON fields masked in the body log. Profile key: `redact.json_fields`. The built-in
    /// list (`password`, `secret`, `client_secret`, `access_token`, `token`, `api_key`, card
    /// fields, …) always applies; names match ignoring case, `_` and `-`.
    pub fn redact_json_fields<I, S>(mut self, names: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings
            .redact
            .json_fields
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Logs request and response bodies at DEBUG, with sensitive JSON fields, form parameters
    /// and card numbers masked. Profile key: `log.bodies`. Default: `false`.
    ///
    /// # Security
    ///
    /// Masking covers the built-in lists and the profile's `redact.json_fields`; a secret in a
    /// field with another name is logged. Turn this on to debug an integration, not for good.
    pub fn log_bodies(mut self, log: bool) -> ClientBuilder {
        self.settings.log.bodies = log;
        self
    }

    /// Bodies larger than this are described in the body log, not shown. Profile key:
    /// `log.max_body_bytes`. Default: 4096.
    pub fn log_max_body_bytes(mut self, max: u64) -> ClientBuilder {
        self.settings.log.max_body_bytes = max;
        self
    }

    /// Response headers that carry the partner's request id, first match wins. Profile key:
    /// `log.request_id_headers`. Default: `Request-Id`, `X-Request-Id`, `X-Amzn-RequestId`,
    /// `CF-Ray`.
    pub fn request_id_headers<I, S>(mut self, names: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Vec::new();
        for name in names {
            match crate::profile::sections::parse_header_name(name.as_ref()) {
                Ok(name) => parsed.push(name),
                Err(problem) => return self.fail("log.request_id_headers", problem),
            }
        }
        self.settings.log.request_id_headers = parsed;
        self
    }

    /// Sends one `X-Request-Id` of ours per call (a UUID, the same on every attempt, or the
    /// call's own if it set one), recorded on the span and kept as `request_id()` when the
    /// partner sends none. Profile key: `log.send_request_id`. Default: false.
    pub fn send_request_id(mut self, send: bool) -> ClientBuilder {
        self.settings.log.send_request_id = send;
        self
    }

    /// More query parameters whose values are masked. Profile key: `redact.query_params`.
    pub fn redact_query_params<I, S>(mut self, names: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings
            .redact
            .query_params
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Validates the settings, reads the secrets and builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::is_config`] for an invalid setting (naming the profile and key), a secret that
    /// cannot be read, or TLS files that cannot be used.
    pub fn build(self) -> Result<Client> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let (name, settings) = (self.name, self.settings);
        let checked = validate(&name, &settings).map_err(Error::config)?;
        let mut shared = Shared::new(name, settings, checked)?;
        shared.hook = self.hook;
        Ok(Client::from_shared(shared))
    }

    /// Runs `hook` on every request a call sends: after credentials, right before the wire, on
    /// every retry and on the resend after a 401. For request signing that must change per
    /// attempt (a timestamp, an HMAC, AWS SigV4). Headers it sets are masked in logs when their
    /// name is on the redaction list ([`redact_headers`](Self::redact_headers)).
    ///
    /// An error it returns fails the call with [`Error::is_builder`] (its error as the source);
    /// so does a panic, and the client keeps working.
    ///
    /// ```
    /// use std::time::{SystemTime, UNIX_EPOCH};
    ///
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.partner.example")
    ///     .redact_headers(["x-signature"])
    ///     .on_attempt(|request| {
    ///         let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    ///         let signature = format!("t={now},v1=…"); // an HMAC over now, path and body
    ///         request.headers_mut().insert("x-signature", signature.parse()?);
    ///         Ok(())
    ///     })
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn on_attempt<F>(mut self, hook: F) -> ClientBuilder
    where
        F: Fn(&mut crate::AttemptRequest<'_>) -> Result<(), crate::HookError>
            + Send
            + Sync
            + 'static,
    {
        self.hook = Some(std::sync::Arc::new(hook));
        self
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redactor = Redactor::default();
        f.debug_struct("ClientBuilder")
            .field("profile", &self.name)
            .field(
                "base_url",
                &self.settings.base_url.as_ref().map(|u| redactor.url(u)),
            )
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}
