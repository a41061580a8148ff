//! [`ClientBuilder`]: every profile setting as a method; one validation shared with profiles.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use secrecy::SecretString;
use url::Url;

use crate::auth::Credentials;
use crate::client::{Client, Shared};
use crate::error::{Error, Result};
use crate::gate::OriginGate;
use crate::origins::PerOrigin;
use crate::profile::sections::{Auth, AuthMethod, Proxy, TlsVersion};
use crate::profile::{ConfigError, SecretSource, Settings, validate};
use crate::redact::Redactor;
use crate::response::BodyContext;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::transport;

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
    settings: Settings,
    error: Option<Error>,
}

impl ClientBuilder {
    pub(crate) fn new(name: String, settings: Settings) -> ClientBuilder {
        ClientBuilder {
            name,
            settings,
            error: None,
        }
    }

    fn fail(mut self, key: &str, problem: impl Into<String>) -> ClientBuilder {
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

    /// Attempts per call, the first included (1 disables retries). Profile key:
    /// `retry.max_attempts`. Default: 3; at most 10.
    pub fn max_attempts(mut self, attempts: u32) -> ClientBuilder {
        self.settings.retry.max_attempts = attempts;
        self
    }

    /// The ceiling of the first backoff. Profile key: `retry.initial_backoff`. Default: 100 ms.
    pub fn initial_backoff(mut self, backoff: Duration) -> ClientBuilder {
        self.settings.retry.initial_backoff = backoff;
        self
    }

    /// The largest backoff. Profile key: `retry.max_backoff`. Default: 10 s.
    pub fn max_backoff(mut self, backoff: Duration) -> ClientBuilder {
        self.settings.retry.max_backoff = backoff;
        self
    }

    /// Growth of the backoff ceiling per attempt. Profile key: `retry.multiplier`. Default: 2.0.
    pub fn backoff_multiplier(mut self, multiplier: f64) -> ClientBuilder {
        self.settings.retry.multiplier = multiplier;
        self
    }

    /// Statuses worth another attempt. Profile key: `retry.retry_on_status`. Default: 408, 429,
    /// 500, 502, 503, 504.
    pub fn retry_on_status(mut self, statuses: impl IntoIterator<Item = u16>) -> ClientBuilder {
        self.settings.retry.retry_on_status = statuses.into_iter().collect();
        self
    }

    /// Generates an idempotency key (a UUID v4) for each call of a non-idempotent method that
    /// has none, so that POST and PATCH can be retried. Profile key:
    /// `retry.auto_idempotency_key`. Default: `false`; only turn it on for APIs that honour the
    /// header.
    pub fn auto_idempotency_key(mut self, auto: bool) -> ClientBuilder {
        self.settings.retry.auto_idempotency_key = auto;
        self
    }

    /// The longest `Retry-After` the client waits for; a longer one ends the call at once with
    /// [`Error::is_rate_limited`]. Profile key: `retry.max_retry_after`. Default: 60 s.
    pub fn max_retry_after(mut self, max: Duration) -> ClientBuilder {
        self.settings.retry.max_retry_after = max;
        self
    }

    /// The share of calls that retries may add, per origin, over a 10 s window (plus a reserve of
    /// 10 retries per window). Profile key: `retry.budget_percent`. Default: 20.
    pub fn retry_budget_percent(mut self, percent: u32) -> ClientBuilder {
        self.settings.retry.budget_percent = percent;
        self
    }

    /// The header that carries idempotency keys. Profile key: `retry.idempotency_header`.
    /// Default: `Idempotency-Key`.
    pub fn idempotency_header(mut self, name: impl Into<String>) -> ClientBuilder {
        self.settings.retry.idempotency_header = name.into();
        self
    }

    /// Sends `key` in header `header` on every request. Profile: `[auth] type = "api_key"`,
    /// `header`.
    pub fn api_key(mut self, header: impl Into<String>, key: SecretString) -> ClientBuilder {
        self.settings.auth = Some(Auth::ApiKey {
            key: SecretSource::Value(key),
            header: Some(header.into()),
            query_param: None,
        });
        self
    }

    /// Sends `key` as query parameter `param`, which is then always redacted. Profile:
    /// `[auth] type = "api_key"`, `query_param`. Prefer a header where the partner allows it:
    /// URLs end up in more places than headers.
    pub fn api_key_query_param(
        mut self,
        param: impl Into<String>,
        key: SecretString,
    ) -> ClientBuilder {
        self.settings.auth = Some(Auth::ApiKey {
            key: SecretSource::Value(key),
            header: None,
            query_param: Some(param.into()),
        });
        self
    }

    /// Sends `Authorization: Bearer <token>` on every request. Profile: `[auth] type =
    /// "bearer"`.
    pub fn bearer_token(mut self, token: SecretString) -> ClientBuilder {
        self.settings.auth = Some(Auth::Bearer {
            token: SecretSource::Value(token),
        });
        self
    }

    /// Authenticates with OAuth 2.0 client credentials (RFC 6749 §4.4): tokens from `token_url`
    /// are cached, refreshed ahead of expiry and sent as `Authorization: Bearer`. Profile:
    /// `[auth] type = "oauth2_client_credentials"`, `token_url`, `client_id`, `client_secret`.
    /// The other `auth.*` keys keep their defaults unless set with the `oauth2_*` methods.
    pub fn oauth2_client_credentials(
        mut self,
        token_url: impl AsRef<str>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> ClientBuilder {
        let token_url = match Url::parse(token_url.as_ref()) {
            Ok(url) => url,
            Err(e) => return self.fail("auth.token_url", format!("invalid URL ({e})")),
        };
        self.settings.auth = Some(Auth::Oauth2ClientCredentials {
            token_url,
            client_id: client_id.into(),
            client_secret: SecretSource::Value(client_secret),
            scopes: Vec::new(),
            auth_method: AuthMethod::default(),
            audience: None,
            extra_params: Default::default(),
            refresh_before_expiry: Duration::from_secs(60),
            default_token_lifetime: Duration::from_secs(300),
        });
        self
    }

    fn oauth2(mut self, key: &str, f: impl FnOnce(&mut Auth)) -> ClientBuilder {
        match &mut self.settings.auth {
            Some(auth @ Auth::Oauth2ClientCredentials { .. }) => {
                f(auth);
                self
            }
            _ => self.fail(key, "needs oauth2_client_credentials to be set first"),
        }
    }

    /// The scopes to ask for. Profile key: `auth.scopes`. Default: none.
    pub fn oauth2_scopes<I, S>(self, scopes: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        self.oauth2("auth.scopes", |auth| {
            if let Auth::Oauth2ClientCredentials { scopes: s, .. } = auth {
                *s = scopes;
            }
        })
    }

    /// How the client authenticates to the token endpoint. Profile key: `auth.auth_method`.
    /// Default: [`AuthMethod::ClientSecretBasic`].
    pub fn oauth2_auth_method(self, method: AuthMethod) -> ClientBuilder {
        self.oauth2("auth.auth_method", |auth| {
            if let Auth::Oauth2ClientCredentials { auth_method, .. } = auth {
                *auth_method = method;
            }
        })
    }

    /// Adds `audience` to token requests (some providers need it). Profile key:
    /// `auth.audience`.
    pub fn oauth2_audience(self, audience: impl Into<String>) -> ClientBuilder {
        let value = audience.into();
        self.oauth2("auth.audience", |auth| {
            if let Auth::Oauth2ClientCredentials { audience, .. } = auth {
                *audience = Some(value);
            }
        })
    }

    /// Adds a form parameter to token requests. Profile key: `auth.extra_params`.
    pub fn oauth2_extra_param(
        self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> ClientBuilder {
        let (name, value) = (name.into(), value.into());
        self.oauth2("auth.extra_params", |auth| {
            if let Auth::Oauth2ClientCredentials { extra_params, .. } = auth {
                extra_params.insert(name, value);
            }
        })
    }

    /// How long before expiry a token is refreshed (at most half its lifetime). Profile key:
    /// `auth.refresh_before_expiry`. Default: 60 s.
    pub fn oauth2_refresh_before_expiry(self, ahead: Duration) -> ClientBuilder {
        self.oauth2("auth.refresh_before_expiry", |auth| {
            if let Auth::Oauth2ClientCredentials {
                refresh_before_expiry,
                ..
            } = auth
            {
                *refresh_before_expiry = ahead;
            }
        })
    }

    /// The lifetime assumed for a token whose response has no `expires_in`. Profile key:
    /// `auth.default_token_lifetime`. Default: 5 min.
    pub fn oauth2_default_token_lifetime(self, lifetime: Duration) -> ClientBuilder {
        self.oauth2("auth.default_token_lifetime", |auth| {
            if let Auth::Oauth2ClientCredentials {
                default_token_lifetime,
                ..
            } = auth
            {
                *default_token_lifetime = lifetime;
            }
        })
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
        let (name, s) = (self.name, self.settings);
        validate(&name, &s).map_err(Error::config)?;
        let base_url = s
            .base_url
            .clone()
            .ok_or_else(|| Error::config(ConfigError::new(&name, "base_url", "is required")))?;
        let http = transport::build(&name, &s)?;
        let credentials = Credentials::resolve(&name, s.auth.as_ref(), &http, &s.timeouts)?;
        let mut query_params = s.redact.query_params.clone();
        query_params.extend(credentials.query_param().map(str::to_owned));
        let mut headers = s.redact.headers.clone();
        headers.extend(
            credentials
                .header_name()
                .map(|name| name.as_str().to_owned()),
        );
        let redactor = Arc::new(Redactor::new(&headers, &query_params));
        let idempotency_header = HeaderName::from_bytes(s.retry.idempotency_header.as_bytes())
            .map_err(|_| {
                Error::config(ConfigError::new(
                    &name,
                    "retry.idempotency_header",
                    "is not a valid header name",
                ))
            })?;
        let budget_percent = s.retry.budget_percent;
        let body = Arc::new(BodyContext {
            redactor: redactor.clone(),
            max_bytes: s.max_response_bytes,
            timeouts: s.timeouts.clone(),
        });
        Ok(Client::from_shared(Shared {
            gate: OriginGate::new(&s, &base_url),
            name,
            base_url,
            http,
            redactor,
            credentials,
            idempotency_header,
            body,
            retry: RetryPolicy::new(&s.retry),
            budgets: PerOrigin::new(move || RetryBudget::new(budget_percent)),
            settings: s,
        }))
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
