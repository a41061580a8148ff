//! Step 4: credentials. Secrets stay in [`SecretString`] and are exposed only while the header
//! (or query parameter) is built for one request; the header is marked sensitive so that no
//! `Debug` of it, ours or a dependency's, shows the value.

mod cache;
pub(crate) mod rotating;
pub(crate) mod token_endpoint;

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use url::Url;

use crate::error::Error;
use crate::gate;
use crate::profile::sections::{Auth, Timeouts};
use crate::profile::{ConfigError, SecretSource};

pub(crate) use cache::{Token, TokenCache};
pub(crate) use rotating::RotatingSecret;
pub(crate) use token_endpoint::TokenEndpoint;

/// The resolved credentials of a client.
pub(crate) enum Credentials {
    None,
    /// A header whose whole value is the secret, or `Bearer <secret>`.
    Header {
        name: HeaderName,
        secret: RotatingSecret,
        bearer: bool,
    },
    /// An API key in a query parameter (the parameter is always redacted).
    Query {
        param: String,
        secret: RotatingSecret,
    },
    /// OAuth 2.0 client credentials: a cached bearer token.
    OAuth(Arc<TokenCache>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Header { name, bearer, .. } => f
                .debug_struct("Header")
                .field("name", name)
                .field("bearer", bearer)
                .finish_non_exhaustive(),
            Credentials::Query { param, .. } => f
                .debug_struct("Query")
                .field("param", param)
                .finish_non_exhaustive(),
            Credentials::OAuth(cache) => f.debug_tuple("OAuth").field(cache).finish(),
        }
    }
}

/// The secret `[auth]` names, its key, and what a usable value of it looks like: one answer for
/// building the credentials and for `outbound check --secrets`.
pub(crate) fn secret_of(auth: &Auth) -> (&'static str, &SecretSource, rotating::Accept) {
    match auth {
        Auth::Oauth2ClientCredentials { client_secret, .. } => {
            ("auth.client_secret", client_secret, rotating::any)
        }
        // A key in a query parameter is percent-encoded; one in a header must be one a header
        // can carry.
        Auth::ApiKey {
            key,
            query_param: Some(_),
            ..
        } => ("auth.key", key, rotating::any),
        Auth::ApiKey { key, .. } => ("auth.key", key, header_safe),
        Auth::Bearer { token, .. } => ("auth.token", token, header_safe),
    }
}

/// A value a header can carry (checked for every rotated value too, so a bad one is never used).
pub(crate) fn header_safe(value: &str) -> Result<(), &'static str> {
    HeaderValue::try_from(value)
        .map(drop)
        .map_err(|_| "holds characters a header cannot carry")
}

/// `auth.header`'s default.
const DEFAULT_API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

impl Credentials {
    /// Reads the secrets the profile's `[auth]` section points to. Token requests go over `http`
    /// with the profile's `timeouts`.
    pub(crate) fn resolve(
        profile: &str,
        auth: Option<&Auth>,
        http: &std::sync::Arc<crate::reload::Transport>,
        timeouts: &Timeouts,
        #[cfg(feature = "fleet")] fleet: Option<&Arc<crate::fleet::Fleet>>,
    ) -> Result<Credentials, Error> {
        let Some(auth) = auth else {
            return Ok(Credentials::None);
        };
        let (key, source, accept) = secret_of(auth);
        let secret = RotatingSecret::resolve(profile, key, source, accept)
            .map_err(|problem| Error::config(ConfigError::new(profile, key, problem)))?;
        let credentials = match auth {
            Auth::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret: _,
                scopes,
                auth_method,
                audience,
                extra_params,
                refresh_before_expiry,
                default_token_lifetime,
                hosts: _,
            } => {
                let endpoint = TokenEndpoint {
                    http: http.clone(),
                    url: token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: secret,
                    method: *auth_method,
                    scopes: scopes.clone(),
                    audience: audience.clone(),
                    extra_params: extra_params.clone(),
                    timeouts: timeouts.clone(),
                };
                Credentials::OAuth(Arc::new(TokenCache::new(
                    endpoint,
                    *refresh_before_expiry,
                    *default_token_lifetime,
                    #[cfg(feature = "fleet")]
                    fleet,
                )))
            }
            Auth::ApiKey {
                header,
                query_param,
                ..
            } => match query_param {
                Some(param) => Credentials::Query {
                    param: param.clone(),
                    secret,
                },
                None => Credentials::Header {
                    name: header.clone().unwrap_or(DEFAULT_API_KEY_HEADER),
                    secret,
                    bearer: false,
                },
            },
            Auth::Bearer { .. } => Credentials::Header {
                name: http::header::AUTHORIZATION,
                secret,
                bearer: true,
            },
        };
        Ok(credentials)
    }

    /// The header that carries a static secret, so the redactor always masks it and redirects
    /// never carry it to another origin, whatever its name.
    pub(crate) fn header_name(&self) -> Option<&HeaderName> {
        match self {
            Credentials::Header { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The query parameter that carries the key, so the redactor always masks it.
    pub(crate) fn query_param(&self) -> Option<&str> {
        match self {
            Credentials::Query { param, .. } => Some(param),
            _ => None,
        }
    }

    fn header_value(&self) -> Option<HeaderValue> {
        let Credentials::Header { secret, bearer, .. } = self else {
            return None;
        };
        let mut value = secret
            .with(|secret| {
                if *bearer {
                    HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
                } else {
                    HeaderValue::try_from(secret.expose_secret())
                }
            })
            .ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Adds the credentials to one outgoing request. Returns the OAuth token used, if any, so
    /// that a 401 can invalidate exactly that token.
    ///
    /// # Errors
    ///
    /// `is_auth()` when no token can be obtained.
    pub(crate) async fn apply(
        &self,
        url: &mut Url,
        headers: &mut HeaderMap,
    ) -> Result<Option<Arc<Token>>, Error> {
        match self {
            Credentials::None => {}
            Credentials::Header { name, .. } => {
                if let Some(value) = self.header_value() {
                    headers.insert(name.clone(), value);
                }
            }
            Credentials::Query { param, secret } => {
                secret.with(|secret| {
                    url.query_pairs_mut()
                        .append_pair(param, secret.expose_secret());
                });
            }
            Credentials::OAuth(cache) => {
                let token = cache.token().await?;
                let mut value =
                    HeaderValue::try_from(format!("Bearer {}", token.secret.expose_secret()))
                        .map_err(|_| {
                            Error::new(crate::ErrorKind::Auth).with_detail(
                                "the access token contains characters a header cannot carry",
                            )
                        })?;
                value.set_sensitive(true);
                headers.insert(http::header::AUTHORIZATION, value);
                return Ok(Some(token));
            }
        }
        Ok(None)
    }

    /// Puts an API key carried in a query parameter on `url` (once, replacing any value the
    /// server's `Location` put there). Other credentials travel in headers.
    pub(crate) fn restore_query(&self, url: &mut Url) {
        let Credentials::Query { param, secret } = self else {
            return;
        };
        let others: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != param.as_str())
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        let mut pairs = url.query_pairs_mut();
        pairs.clear().extend_pairs(others);
        secret.with(|secret| pairs.append_pair(param, secret.expose_secret()));
    }

    /// How long the cached OAuth token stays valid (`None` without OAuth or without a token).
    pub(crate) fn token_valid_for(&self) -> Option<std::time::Duration> {
        match self {
            Credentials::OAuth(cache) => cache.valid_for(),
            _ => None,
        }
    }

    /// After a 401: forget `token` (if still current) so the next call fetches a new one.
    pub(crate) fn invalidate(&self, token: &Token) {
        if let Credentials::OAuth(cache) = self {
            cache.invalidate(token);
        }
    }
}

/// Where credentials may be sent: `base_url`'s origin, and the hosts listed in `auth.hosts`.
/// Another allowed host (a CDN, a file host) gets a call without them.
#[derive(Debug)]
pub(crate) struct Scope {
    base: Url,
    /// `auth.hosts`, normalized as the origin gate compares hosts.
    hosts: Vec<String>,
}

impl Scope {
    pub(crate) fn new(base_url: &Url, auth: Option<&Auth>) -> Scope {
        let hosts = auth.map_or(&[][..], Auth::hosts);
        Scope {
            base: base_url.clone(),
            hosts: hosts.iter().map(|h| gate::normalize(h)).collect(),
        }
    }

    /// Whether a request to `url` carries the credentials.
    pub(crate) fn covers(&self, url: &Url) -> bool {
        // A listed host gets them over the base's scheme only: never over plain http when the
        // base is https.
        gate::same_origin(url, &self.base)
            || url.scheme() == self.base.scheme()
                && self.hosts.iter().any(|h| h == gate::host_of(url))
    }
}

/// The API answered 401 to a token fetched after its first 401.
pub(crate) fn refused_fresh_token() -> Error {
    Error::new(crate::ErrorKind::Auth)
        .with_detail("the API refused a freshly issued access token")
        .with_status(http::StatusCode::UNAUTHORIZED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_the_base_origin_and_listed_hosts_over_the_base_scheme_only() {
        let base = Url::parse("https://api.example/v2").expect("base");
        let auth = Auth::Bearer {
            token: crate::profile::SecretSource::Value("t".into()),
            hosts: vec!["cdn.example".into()],
        };
        let scope = Scope::new(&base, Some(&auth));
        for (url, covered) in [
            ("https://api.example/v2/x", true),
            ("https://API.example:443/other", true),
            ("https://api.example./v2/x", true),
            ("https://cdn.example./f", true),
            ("https://api.example:8443/x", false),
            ("http://api.example/x", false),
            ("https://cdn.example/f", true),
            ("https://cdn.example:9000/f", true),
            ("http://cdn.example/f", false),
            ("https://evil.example/f", false),
        ] {
            let url = Url::parse(url).expect("url");
            assert_eq!(scope.covers(&url), covered, "{url}");
        }
    }
}
