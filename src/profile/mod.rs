//! Integration profiles: named, validated client settings, usually kept in one TOML file.
//!
//! Parsing happens in two passes: serde reads each `[name]` table (every section denies unknown
//! keys, so a typo never silently turns a safeguard off), then [`validate`] checks values and
//! the relations between them. Both passes report the profile name and the key path. Secrets are
//! only *referenced* here (`{ env = "…" }`, `{ file = "…" }`) and are read when a client is built.

mod auth;
#[cfg(feature = "cli")]
mod check;
pub(crate) mod fleet;
mod headers;
mod layers;
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
#[derive(Clone, Default)]
pub struct Profiles {
    profiles: BTreeMap<String, Profile>,
    /// Each profile as written, `[defaults]` merged in, and the keys that came from them: what
    /// environment overrides apply to.
    raw: BTreeMap<String, (toml::Table, Vec<String>)>,
}

impl fmt::Debug for Profiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the raw tables: a proxy URL there may hold a password.
        f.debug_struct("Profiles")
            .field("profiles", &self.profiles)
            .finish()
    }
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
        let (profiles, mut problems) = Profiles::parse_each(text)?;
        match problems.is_empty() {
            true => Ok(profiles),
            false => Err(problems.swap_remove(0)),
        }
    }

    /// Parses every profile of `text`: the valid ones, and one error for each invalid one (in
    /// name order). Fails as a whole only when the document itself is not valid TOML.
    pub(crate) fn parse_each(text: &str) -> Result<(Profiles, Vec<Error>)> {
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
        let mut table = table;
        let defaults = match table.remove("defaults") {
            None => toml::Table::new(),
            Some(toml::Value::Table(defaults)) => defaults,
            Some(_) => {
                return Err(Error::config(ConfigError::new(
                    "",
                    "defaults",
                    "must be a table of settings applied under every profile",
                )));
            }
        };
        let mut profiles = Profiles::default();
        let mut problems = Vec::new();
        for (name, value) in table {
            let toml::Value::Table(mut body) = value else {
                problems.push(Error::config(ConfigError::new(
                    "",
                    name.as_str(),
                    "is not a profile; settings go under a [name] table",
                )));
                continue;
            };
            let from_defaults = layers::merge_defaults(&defaults, &mut body);
            match Profile::checked(&name, body.clone()) {
                Ok(profile) => {
                    profiles.profiles.insert(name.clone(), profile);
                    profiles.raw.insert(name, (body, from_defaults));
                }
                Err(e) => problems.push(Error::config(layers::blame_defaults(e, &from_defaults))),
            }
        }
        Ok((profiles, problems))
    }

    /// Applies environment overrides: `<PREFIX>_<PROFILE>__<SECTION>__<KEY>=value` sets one key
    /// of one profile (the profile name upper-cased, `-` written `_`), over the file and
    /// `[defaults]`, with the same validation. Values are read as TOML when they parse as a
    /// TOML value (`3`, `true`, `[408, 429]`), else as text (`5s`). A secret stays a secret
    /// source: `..__AUTH__KEY__ENV=VAR` names a variable; an inline secret is refused here too.
    ///
    /// ```no_run
    /// // With OUTBOUND_CRM__TIMEOUTS__TOTAL=5s in the environment:
    /// let profiles = outbound::Profiles::from_toml_file("integrations.toml")?.with_env("OUTBOUND")?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::is_config`] naming the variable: one that names no profile or no key, an
    /// unknown key, a value of the wrong type, or a value that breaks a rule.
    pub fn with_env(self, prefix: &str) -> Result<Profiles> {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        self.with_env_from(prefix, vars)
    }

    /// [`with_env`](Self::with_env) over the given variables instead of the process
    /// environment (from a config service, or in a test).
    ///
    /// ```
    /// let profiles = outbound::Profiles::from_toml_str("[crm]\nbase_url = \"https://api.crm.example\"")?
    ///     .with_env_from("OUTBOUND", [("OUTBOUND_CRM__RETRY__MAX_ATTEMPTS", "5")])?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`with_env`](Self::with_env).
    pub fn with_env_from<K, V>(
        mut self,
        prefix: &str,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Profiles>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars.into_iter().map(|(k, v)| (k.into(), v.into()));
        let names: Vec<String> = self.profiles.keys().cloned().collect();
        let overrides = layers::overrides(prefix, names.iter().map(String::as_str), vars)
            .map_err(Error::config)?;
        for name in &names {
            let mine: Vec<_> = overrides.iter().filter(|o| &o.profile == name).collect();
            if mine.is_empty() {
                continue;
            }
            let Some((body, from_defaults)) = self.raw.get_mut(name) else {
                continue;
            };
            for o in &mine {
                layers::set(body, &o.path, o.value.clone()).map_err(|problem| {
                    Error::config(ConfigError::new(name, o.variable.as_str(), problem))
                })?;
                let path = o.path.join(".");
                from_defaults.retain(|p| p != &path && !path.starts_with(&format!("{p}.")));
            }
            let profile = Profile::checked(name, body.clone()).map_err(|e| {
                // Named after the variable that set the key, when one did.
                let key = e.key().to_owned();
                match mine.iter().find(|o| {
                    let path = o.path.join(".");
                    key == path
                        || key.starts_with(&format!("{path}."))
                        || path.starts_with(&format!("{key}."))
                }) {
                    Some(o) => Error::config(e.named_after(&o.variable)),
                    None => Error::config(layers::blame_defaults(e, from_defaults)),
                }
            })?;
            self.profiles.insert(name.clone(), profile);
        }
        Ok(self)
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
    /// Parses and validates `body` as the profile `name`.
    fn checked(name: &str, body: toml::Table) -> Result<Profile, ConfigError> {
        let settings = parse_settings(name, body)?;
        // Refused here so that a bad file fails when it is loaded; `build` checks again,
        // since a builder may have changed the settings since.
        validate(name, &settings)?;
        Ok(Profile {
            name: name.to_owned(),
            settings,
        })
    }

    /// The profile's name (its table name in the file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every setting in force, defaults included, as the profile's TOML (`[name]` and its
    /// tables): what `outbound check` prints. A secret appears only as its source
    /// (`{ env = "VAR" }`), and URLs are masked as in logs.
    ///
    /// ```
    /// let profiles = outbound::Profiles::from_toml_str(r#"
    ///     [crm]
    ///     base_url = "https://api.crm.example"
    ///     auth = { type = "bearer", token = { env = "CRM_TOKEN" } }
    /// "#)?;
    /// let shown = profiles.get("crm")?.effective_toml();
    /// assert!(shown.contains(r#"total = "1m""#)); // a default
    /// assert!(shown.contains(r#"env = "CRM_TOKEN""#));
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn effective_toml(&self) -> String {
        let mut body = match toml::Table::try_from(&self.settings) {
            Ok(body) => body,
            // Every setting has a TOML form; this would be a bug, and says so without values.
            Err(e) => return format!("# [{}] cannot be shown: {e}\n", self.name),
        };
        // An unset attempt timeout is `min(30s, total)`: show what applies.
        if let Some(toml::Value::Table(timeouts)) = body.get_mut("timeouts") {
            let attempt = humantime::format_duration(self.settings.timeouts.attempt());
            timeouts.insert("attempt".into(), attempt.to_string().into());
        }
        let mut doc = toml::Table::new();
        doc.insert(self.name.clone(), body.into());
        toml::to_string(&doc)
            .unwrap_or_else(|e| format!("# [{}] cannot be shown: {e}\n", self.name))
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
