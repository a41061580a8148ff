//! `[profile.auth]` as it is written in TOML: one of three kinds chosen by `type`.

use std::collections::BTreeMap;
use std::time::Duration;

use http::HeaderName;
use serde::{Deserialize, Serialize};
use url::Url;

use super::secret::SecretSource;
use super::values::{
    deserialize_auth_header, deserialize_url, duration, serialize_masked_values,
    serialize_opt_header_name, serialize_url,
};

/// How the client authenticates to the token endpoint (`auth.auth_method`, RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// `[profile.auth]`, one of three kinds chosen by `type`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Auth {
    /// OAuth 2.0 client credentials (RFC 6749 §4.4).
    Oauth2ClientCredentials {
        #[serde(deserialize_with = "deserialize_url", serialize_with = "serialize_url")]
        token_url: Url,
        client_id: String,
        client_secret: SecretSource,
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        auth_method: AuthMethod,
        #[serde(default)]
        audience: Option<String>,
        /// Shown masked: a token request's extra parameters may be credentials
        /// (`client_assertion`).
        #[serde(default, serialize_with = "serialize_masked_values")]
        extra_params: BTreeMap<String, String>,
        #[serde(with = "duration", default = "default_refresh_before_expiry")]
        refresh_before_expiry: Duration,
        #[serde(with = "duration", default = "default_token_lifetime")]
        default_token_lifetime: Duration,
        #[serde(default)]
        hosts: Vec<String>,
    },
    /// A static API key, sent in a header (default `X-Api-Key`) or, if a partner insists, a
    /// query parameter.
    ApiKey {
        key: SecretSource,
        /// Unset (and no `query_param`): `X-Api-Key`.
        #[serde(
            default,
            deserialize_with = "deserialize_auth_header",
            serialize_with = "serialize_opt_header_name"
        )]
        header: Option<HeaderName>,
        #[serde(default)]
        query_param: Option<String>,
        #[serde(default)]
        hosts: Vec<String>,
    },
    /// A static bearer token.
    Bearer {
        token: SecretSource,
        #[serde(default)]
        hosts: Vec<String>,
    },
}

impl Auth {
    /// `auth.hosts`: hosts besides `base_url`'s origin that also get the credentials.
    pub(crate) fn hosts(&self) -> &[String] {
        match self {
            Auth::Oauth2ClientCredentials { hosts, .. }
            | Auth::ApiKey { hosts, .. }
            | Auth::Bearer { hosts, .. } => hosts,
        }
    }

    pub(crate) fn hosts_mut(&mut self) -> &mut Vec<String> {
        match self {
            Auth::Oauth2ClientCredentials { hosts, .. }
            | Auth::ApiKey { hosts, .. }
            | Auth::Bearer { hosts, .. } => hosts,
        }
    }

    /// The `type` key's value.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Auth::Oauth2ClientCredentials { .. } => "oauth2_client_credentials",
            Auth::ApiKey { .. } => "api_key",
            Auth::Bearer { .. } => "bearer",
        }
    }
}

fn default_refresh_before_expiry() -> Duration {
    Duration::from_secs(60)
}

fn default_token_lifetime() -> Duration {
    Duration::from_secs(300)
}
