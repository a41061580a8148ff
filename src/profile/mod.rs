//! Integration profiles: named, validated client settings, usually kept in one TOML file.
//!
//! Parsing happens in two passes: serde reads each `[name]` table (every section denies unknown
//! keys, so a typo never silently turns a safeguard off), then [`validate`] checks values and
//! the relations between them. Both passes report the profile name and the key path. Secrets are
//! only *referenced* here (`{ env = "…" }`, `{ file = "…" }`) and are read when a client is built.

pub(crate) mod fleet;
mod headers;
mod secret;
pub(crate) mod sections;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub(crate) use headers::user_agent;
pub(crate) use secret::SecretSource;
pub(crate) use sections::Settings;
pub(crate) use validate::{Checked, ConfigError, validate};

use crate::error::{Error, Result};
use crate::redact::Redactor;

/// All the profiles of one TOML file, by name.
///
/// ```
/// let profiles = outbound::Profiles::from_toml_str(r#"
///     [crm]
///     base_url = "https://api.crm.example"
///
///     [crm.timeouts]
///     total = "20s"
/// "#)?;
/// assert_eq!(profiles.get("crm")?.name(), "crm");
/// assert!(profiles.get("billing").unwrap_err().is_config());
/// # Ok::<(), outbound::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Profiles {
    profiles: BTreeMap<String, Profile>,
}

impl Profiles {
    /// Reads and validates a profile file.
    ///
    /// # Errors
    ///
    /// [`Error::is_config`]: the file cannot be read, is not valid TOML, or a profile in it is
    /// invalid. The message names the profile and the key.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Profiles> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(ConfigError::new(
                "",
                "",
                format!("cannot read profile file {}: {}", path.display(), e.kind()),
            ))
        })?;
        Profiles::from_toml_str(&text)
    }

    /// Parses and validates profiles from TOML text: one top-level table per profile.
    ///
    /// # Errors
    ///
    /// [`Error::is_config`], naming the profile and the key, for a syntax error, an unknown key,
    /// a value of the wrong type or a value that breaks a rule (`retry.multiplier must be >=
    /// 1.0`). The message never quotes the document, so a misplaced secret is not echoed.
    pub fn from_toml_str(text: &str) -> Result<Profiles> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            // The syntax error's own Display quotes the offending line; give its position only.
            let at = e
                .span()
                .map(|span| line_col(text, span.start))
                .map(|(line, col)| format!(" at line {line}, column {col}"))
                .unwrap_or_default();
            Error::config(ConfigError::new(
                "",
                "",
                format!("invalid TOML{at}: {}", e.message()),
            ))
        })?;
        let mut profiles = BTreeMap::new();
        for (name, value) in table {
            let toml::Value::Table(body) = value else {
                return Err(Error::config(ConfigError::new(
                    "",
                    name.as_str(),
                    "is not a profile; settings go under a [name] table",
                )));
            };
            let settings = parse_settings(&name, body).map_err(Error::config)?;
            // Refused here so that a bad file fails when it is loaded; `build` checks again,
            // since a builder may have changed the settings since.
            validate(&name, &settings).map_err(Error::config)?;
            profiles.insert(name.clone(), Profile { name, settings });
        }
        Ok(Profiles { profiles })
    }

    /// The profile called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::is_config`] when there is no such profile; the message lists the known names.
    pub fn get(&self, name: &str) -> Result<&Profile> {
        self.profiles.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            Error::config(ConfigError::new(
                name,
                "",
                format!("no such profile (known: {})", known.join(", ")),
            ))
        })
    }

    /// The names of all profiles, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}

fn parse_settings(name: &str, body: toml::Table) -> Result<Settings, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(body)).map_err(|e| {
        // The path names the key itself, unknown keys included ("timeouts.conect").
        let mut key = e.path().to_string();
        if key == "." {
            key.clear();
        }
        let message = e.inner().message();
        // Inside a table chosen by a tag (`[x.auth]`, by `type`) the path stops at the table;
        // a field's own deserializer then names its key ("auth.header: …").
        match message.split_once(": ") {
            Some((own, problem)) if own.starts_with(&format!("{key}.")) => {
                ConfigError::new(name, own, problem)
            }
            _ => ConfigError::new(name, key, message),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// One integration's validated settings, from a profile file or a [`ClientBuilder`].
///
/// A `Profile` holds references to secrets (an environment variable name, a file path), never
/// their values, and its `Debug` masks anything in a URL that could be a credential.
///
/// [`ClientBuilder`]: crate::ClientBuilder
#[derive(Clone)]
pub struct Profile {
    pub(crate) name: String,
    pub(crate) settings: Settings,
}

impl Profile {
    /// The profile's name (its table name in the file).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        let redactor = Redactor::default();
        let mut d = f.debug_struct("Profile");
        d.field("name", &self.name);
        d.field("base_url", &s.base_url.as_ref().map(|u| redactor.url(u)));
        d.field("allowed_hosts", &s.allowed_hosts)
            .field("allow_insecure_http", &s.allow_insecure_http)
            .field("max_response_bytes", &s.max_response_bytes)
            .field("follow_redirects", &s.follow_redirects)
            .field("proxy", &s.proxy)
            .field("timeouts", &s.timeouts)
            .field("retry", &s.retry)
            .field("circuit_breaker", &s.circuit_breaker)
            .field("rate_limit", &s.rate_limit)
            .field("auth", &s.auth.as_ref().map(sections::Auth::kind_name))
            .field("tls", &s.tls)
            .field("redact", &s.redact)
            .field("log", &s.log)
            .finish()
    }
}
