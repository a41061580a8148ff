//! Where a secret comes from: an environment variable or a file, never the profile itself.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// A reference to a secret, resolved when the client is built.
///
/// Profile syntax: `{ env = "CRM_CLIENT_SECRET" }` or `{ file = "/run/secrets/crm" }`. An inline
/// string is refused, without echoing it, so a secret pasted into a profile never reaches an
/// error message.
#[derive(Clone)]
pub(crate) enum SecretSource {
    Env(String),
    File(PathBuf),
    /// A secret handed to the builder in memory (never from a profile file).
    Value(SecretString),
}

impl PartialEq for SecretSource {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SecretSource::Env(a), SecretSource::Env(b)) => a == b,
            (SecretSource::File(a), SecretSource::File(b)) => a == b,
            // Secrets are not compared: two in-memory sources are never "the same setting".
            _ => false,
        }
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The variable name and the path are not secret; the value is never held here.
        match self {
            SecretSource::Env(var) => write!(f, "{{ env = {var:?} }}"),
            SecretSource::File(path) => write!(f, "{{ file = {:?} }}", path.display()),
            SecretSource::Value(_) => f.write_str("{ value = REDACTED }"),
        }
    }
}

impl SecretSource {
    /// Reads the secret. The error names the variable or the path, never a value.
    pub(crate) fn resolve(&self) -> Result<SecretString, String> {
        let value = match self {
            SecretSource::Value(secret) if secret.expose_secret().is_empty() => {
                return Err("the secret is empty".into());
            }
            SecretSource::Value(secret) => return Ok(secret.clone()),
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!("environment variable {var} is not set"));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("environment variable {var} is not valid UTF-8"));
                }
            },
            SecretSource::File(path) => match std::fs::read_to_string(path) {
                Ok(mut value) => {
                    // Files written by `echo` or a secret manager end with one newline.
                    if value.ends_with('\n') {
                        value.pop();
                        if value.ends_with('\r') {
                            value.pop();
                        }
                    }
                    value
                }
                Err(e) => {
                    return Err(format!(
                        "cannot read secret file {}: {}",
                        path.display(),
                        e.kind()
                    ));
                }
            },
        };
        if value.is_empty() {
            return Err(match self {
                SecretSource::Env(var) => format!("environment variable {var} is empty"),
                SecretSource::File(path) => format!("secret file {} is empty", path.display()),
                SecretSource::Value(_) => "the secret is empty".into(),
            });
        }
        Ok(SecretString::from(value))
    }
}

/// Only where the secret comes from, as it is written in a profile; a secret held in memory is
/// shown masked.
impl Serialize for SecretSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (key, value) = match self {
            SecretSource::Env(var) => ("env", var.clone()),
            SecretSource::File(path) => ("file", path.display().to_string()),
            SecretSource::Value(_) => ("value", crate::redact::MASK.to_owned()),
        };
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(key, &value)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SourceVisitor)
    }
}

const EXPECTED: &str = "a secret source: { env = \"VAR\" } or { file = \"path\" }";

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = SecretSource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, _value: &str) -> Result<SecretSource, E> {
        // Never echo the value: it is most likely the secret itself.
        Err(E::custom(format!(
            "an inline secret is not accepted; use {EXPECTED}"
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretSource, A::Error> {
        let mut source = None;
        while let Some(key) = map.next_key::<String>()? {
            let next = match key.as_str() {
                "env" => SecretSource::Env(map.next_value()?),
                "file" => SecretSource::File(map.next_value()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field `{other}`, expected `env` or `file`"
                    )));
                }
            };
            if source.replace(next).is_some() {
                return Err(de::Error::custom("give exactly one of `env` or `file`"));
            }
        }
        match source {
            Some(SecretSource::Env(var)) if var.is_empty() => {
                Err(de::Error::custom("`env` must name a variable"))
            }
            Some(source) => Ok(source),
            None => Err(de::Error::custom(format!("expected {EXPECTED}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_loses_exactly_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("outbound-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("secret");
        std::fs::write(&path, "s3cret\n\n").expect("write secret");
        let secret = SecretSource::File(path.clone())
            .resolve()
            .expect("resolves");
        assert_eq!(secret.expose_secret(), "s3cret\n");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let err = SecretSource::File("/nonexistent/outbound/secret".into())
            .resolve()
            .unwrap_err();
        assert!(err.contains("/nonexistent/outbound/secret"), "{err}");
    }
}
