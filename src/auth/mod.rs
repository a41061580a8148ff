//! Step 4: credentials. Secrets stay in [`SecretString`] and are exposed only while the header
//! (or query parameter) is built for one request; the header is marked sensitive so that no
//! `Debug` of it, ours or a dependency's, shows the value.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::Error;
use crate::profile::ConfigError;
use crate::profile::sections::Auth;

const DEFAULT_API_KEY_HEADER: &str = "x-api-key";

/// The resolved credentials of a client.
pub(crate) enum Credentials {
    None,
    /// A header whose whole value is the secret, or `Bearer <secret>`.
    Header {
        name: HeaderName,
        secret: SecretString,
        bearer: bool,
    },
    /// An API key in a query parameter (the parameter is always redacted).
    Query {
        param: String,
        secret: SecretString,
    },
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
        }
    }
}

impl Credentials {
    /// Reads the secrets the profile's `[auth]` section points to.
    pub(crate) fn resolve(profile: &str, auth: Option<&Auth>) -> Result<Credentials, Error> {
        let config =
            |key: &str, problem: String| Error::config(ConfigError::new(profile, key, problem));
        let credentials = match auth {
            None => Credentials::None,
            Some(Auth::Oauth2ClientCredentials { .. }) => {
                return Err(config(
                    "auth.type",
                    "oauth2_client_credentials is not supported by this version".into(),
                ));
            }
            Some(Auth::ApiKey {
                key,
                header,
                query_param,
            }) => {
                let secret = key.resolve().map_err(|p| config("auth.key", p))?;
                match query_param {
                    Some(param) => Credentials::Query {
                        param: param.clone(),
                        secret,
                    },
                    None => Credentials::Header {
                        name: HeaderName::from_bytes(
                            header
                                .as_deref()
                                .unwrap_or(DEFAULT_API_KEY_HEADER)
                                .as_bytes(),
                        )
                        .map_err(|_| config("auth.header", "is not a valid header name".into()))?,
                        secret,
                        bearer: false,
                    },
                }
            }
            Some(Auth::Bearer { token }) => Credentials::Header {
                name: http::header::AUTHORIZATION,
                secret: token.resolve().map_err(|p| config("auth.token", p))?,
                bearer: true,
            },
        };
        if let Credentials::Header { .. } = credentials
            && credentials.header_value().is_none()
        {
            let key = match auth {
                Some(Auth::Bearer { .. }) => "auth.token",
                _ => "auth.key",
            };
            return Err(config(
                key,
                "the secret contains characters a header cannot carry".into(),
            ));
        }
        Ok(credentials)
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
        let mut value = if *bearer {
            HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
        } else {
            HeaderValue::try_from(secret.expose_secret())
        }
        .ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Adds the credentials to one outgoing request.
    pub(crate) fn apply(&self, url: &mut Url, headers: &mut HeaderMap) {
        match self {
            Credentials::None => {}
            Credentials::Header { name, .. } => {
                if let Some(value) = self.header_value() {
                    headers.insert(name.clone(), value);
                }
            }
            Credentials::Query { param, secret } => {
                url.query_pairs_mut()
                    .append_pair(param, secret.expose_secret());
            }
        }
    }
}
