//! Credential settings of [`ClientBuilder`].

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::ClientBuilder;
use crate::profile::SecretSource;
use crate::profile::sections::{Auth, AuthMethod, parse_header_name};

impl ClientBuilder {
    /// Sends `key` in header `header` on every request. Profile: `[auth] type = "api_key"`,
    /// `header`.
    pub fn api_key(mut self, header: impl AsRef<str>, key: SecretString) -> ClientBuilder {
        let header = match parse_header_name(header.as_ref()) {
            Ok(header) => header,
            Err(problem) => return self.fail("auth.header", problem),
        };
        self.settings.auth = Some(Auth::ApiKey {
            key: SecretSource::Value(key),
            header: Some(header),
            query_param: None,
            hosts: Vec::new(),
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
            hosts: Vec::new(),
        });
        self
    }

    /// Sends `Authorization: Bearer <token>` on every request. Profile: `[auth] type =
    /// "bearer"`.
    pub fn bearer_token(mut self, token: SecretString) -> ClientBuilder {
        self.settings.auth = Some(Auth::Bearer {
            token: SecretSource::Value(token),
            hosts: Vec::new(),
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
            hosts: Vec::new(),
        });
        self
    }

    /// Hosts besides `base_url`'s origin that also get the credentials; each must be in
    /// `allowed_hosts`. Set the credentials first. Profile key: `auth.hosts`.
    ///
    /// By default credentials go to `base_url`'s origin only: an absolute URL to another
    /// allowed host (a CDN, a file host) carries no token, key or bearer.
    ///
    /// ```
    /// # use outbound::SecretString;
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.partner.example")
    ///     .allowed_hosts(["api.partner.example", "uploads.partner.example"])
    ///     .bearer_token(SecretString::from("token"))
    ///     .auth_hosts(["uploads.partner.example"])
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn auth_hosts<I, S>(mut self, hosts: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match &mut self.settings.auth {
            Some(auth) => {
                auth.hosts_mut().extend(hosts.into_iter().map(Into::into));
                self
            }
            None => self.fail("auth.hosts", "needs credentials to be set first"),
        }
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
}
